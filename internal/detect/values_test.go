package detect_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// uriOf returns a request URI of n bytes: prefix, then fill.
func uriOf(prefix, fill string, n int) string {
	u := prefix
	for len(u)+len(fill) <= n {
		u += fill
	}
	return u + strings.Repeat("x", n-len(u))
}

// TestLongValues checks where long values are cut: a finding (and the state
// it is read from) shows at most StoredValueLen bytes of a value, ending in
// "…" when cut, while Aggregate, which the report reads, keeps every value
// whole, so two URIs that differ only past the cut stay two.
func TestLongValues(t *testing.T) {
	shared := uriOf("/api/v1/namespaces/", "a", 300)
	tests := []struct {
		name string
		uris []string
		// wantCut is whether the finding's values are cut.
		wantCut bool
		// wantShown is the number of values the finding shows.
		wantShown int
	}{
		{"short", []string{"/api/v1/pods"}, false, 1},
		{"exactly the bound", []string{uriOf("/api/v1/", "b", detect.StoredValueLen)}, false, 1},
		{"one byte over", []string{uriOf("/api/v1/", "b", detect.StoredValueLen+1)}, true, 1},
		{"600 bytes", []string{uriOf("/api/v1/", "b", 600)}, true, 1},
		{"600 bytes of 3-byte characters", []string{uriOf("/api/v1/namespaces/", "日", 600)}, true, 1},
		// Cut, the two look alike in a finding; a report tells them apart.
		{"two sharing 300 bytes", []string{uriOf(shared+"/one", "c", 600), uriOf(shared+"/two", "d", 600)}, true, 1},
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines [][]byte
			for i, u := range tt.uris {
				lines = append(lines, synth.Probe{At: at.Add(time.Duration(i) * time.Second), SrcIP: "203.0.113.50", UserAgent: "zgrab/0.x", URI: u}.Line())
			}
			b := synth.Batch(lines, "/aws/eks/demo/cluster", "s1", 1)

			pub := &recorder{}
			d, _ := newDetector(t, pub)
			if _, err := d.Process(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			if len(pub.got) == 0 {
				t.Fatal("no findings")
			}
			for _, f := range pub.got {
				got := f.Values["request_uri"]
				if len(got) != tt.wantShown {
					t.Errorf("%s: %d request_uri values, want %d: %q", f.Rule, len(got), tt.wantShown, got)
				}
				for _, v := range got {
					cut := strings.HasSuffix(v, "…")
					if len(v) > detect.StoredValueLen || !utf8.ValidString(v) || cut != tt.wantCut {
						t.Errorf("%s: value %q: %d bytes, valid UTF-8 %v, cut %v; want at most %d, valid, cut %v",
							f.Rule, v, len(v), utf8.ValidString(v), cut, detect.StoredValueLen, tt.wantCut)
					}
					if memstate.Clip(v, detect.StoredValueLen) != v {
						t.Errorf("%s: memstate.Clip changes %q", f.Rule, v)
					}
					if !matchesOne(strings.TrimSuffix(v, "…"), tt.uris) {
						t.Errorf("%s: value %q is no prefix of the URIs", f.Rule, v)
					}
				}
			}

			d, _ = newDetector(t, nil)
			aggs, _ := d.Aggregate(&b)
			if len(aggs) == 0 {
				t.Fatal("no aggregates")
			}
			for _, a := range aggs {
				if diff := cmp.Diff(slices.Sorted(slices.Values(tt.uris)), a.Values["request_uri"]); diff != "" {
					t.Errorf("%s report values (-want +got):\n%s", a.Rule, diff)
				}
			}
		})
	}
}

func matchesOne(prefix string, vs []string) bool {
	for _, v := range vs {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}
