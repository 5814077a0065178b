package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/synth"
)

// sentinel returns the one sentinel err wraps, or fails.
func sentinel(t *testing.T, err error) error {
	t.Helper()
	if err == nil {
		return nil
	}
	var found []error
	for _, s := range []error{ErrTruncated, ErrTooLarge, ErrMalformed, ErrNotAudit} {
		if errors.Is(err, s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("error %v wraps %d sentinels, want 1", err, len(found))
	}
	return found[0]
}

func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 0)
	}
	for _, l := range synth.Lines(20, 0.5, 7, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), time.Second) {
		f.Add(l, 0)
		f.Add(l, len(l)/2)
	}
	for _, s := range []string{
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","KIND":"x"}`,
		`{"Kind":"Event","APIVERSION":"audit.k8s.io/v1","User":{"USERNAME":"a","groups":["x"]},"user":{"groups":[null]}}`,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","sourceIPs":["a","b"],"sourceIPs":[null]}`,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","responseStatus":{"code":4e2}}`,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","responseStatus":{"code":-0},"user":null}`,
		`{"ki\u006ed":"Event","apiVersion":"audit.k8s.io/v1"}`,
		`{"ſtage":"x","kind":"Event","apiVersion":"audit.k8s.io/v1"}`,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","requestObject":null,"requestObject":[1,{"a":true}]}`,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","userAgent":"a\ud83d\ude00\ud800"}`,
	} {
		f.Add([]byte(s), 0)
	}
}

// FuzzParse checks Parse against the encoding/json decoder it must agree
// with, on any input: the same Event and the same sentinel error.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, line []byte, maxSize int) {
		got, err := Parse(line, maxSize)
		limit := maxSize
		if limit <= 0 {
			limit = DefaultMaxSize
		}
		if len(line) > limit {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse() of %d bytes with limit %d: error = %v, want ErrTooLarge", len(line), limit, err)
			}
			return
		}
		want, wantErr := parse(line, maxSize, false)
		if g, w := sentinel(t, err), sentinel(t, wantErr); g != w {
			t.Fatalf("Parse() error = %v, encoding/json gives %v", err, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Parse() differs from encoding/json (-want +got):\n%s", diff)
		}
		if err != nil {
			return
		}
		// The helpers must cope with whatever Parse accepted.
		_ = got.SrcIP()
		_ = got.ForwardedFor()
		_ = got.IsHealthPath()
		if got.RequestReceived.IsZero() && !got.StageTimestamp.IsZero() {
			t.Fatalf("RequestReceived is zero but StageTimestamp %v is not; want the fallback", got.StageTimestamp)
		}
	})
}
