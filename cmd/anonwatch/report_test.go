package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// longURI returns a request URI of n bytes that starts with prefix.
func longURI(prefix string, fill byte, n int) string {
	return prefix + strings.Repeat(string(fill), n-len(prefix))
}

// TestReplayLongValues checks that `replay --report` prints whole values,
// so long request URIs that share a prefix longer than a finding shows stay
// apart, while a finding shows each cut to detect.StoredValueLen, marked
// with "…".
func TestReplayLongValues(t *testing.T) {
	shared := longURI("/api/v1/namespaces/default/configmaps/", 'a', 300)
	tests := []struct {
		name string
		uris []string
	}{
		{"two 600-byte URIs sharing 300 bytes", []string{longURI(shared+"/x", 'x', 600), longURI(shared+"/y", 'y', 600)}},
		{"1 KiB of multi-byte characters", []string{"/api/v1/namespaces/" + strings.Repeat("é", 512)}},
		{"short", []string{"/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/secrets"}},
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines bytes.Buffer
			for i, u := range tt.uris {
				lines.Write(synth.Probe{At: at.Add(time.Duration(i) * time.Second), SrcIP: "203.0.113.5", UserAgent: "zgrab/0.x", URI: u}.Line())
				lines.WriteByte('\n')
			}
			p := filepath.Join(t.TempDir(), "long.jsonl")
			if err := os.WriteFile(p, lines.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}

			code, out, stderr := runCLI(t, "", "replay", "--report", p)
			if code != exitOK {
				t.Fatalf("replay --report: exit %d: %s", code, stderr)
			}
			rows := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var row reportRow
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("report line %q: %v", line, err)
				}
				rows++
				if diff := cmp.Diff(slices.Sorted(slices.Values(tt.uris)), row.Values["request_uri"]); diff != "" {
					t.Errorf("%s: report request_uri (-want +got):\n%s", row.Rule, diff)
				}
			}
			if rows == 0 {
				t.Fatal("no report rows")
			}

			code, out, stderr = runCLI(t, "", "replay", p)
			if code != exitOK {
				t.Fatalf("replay: exit %d: %s", code, stderr)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var f detect.Finding
				if err := json.Unmarshal([]byte(line), &f); err != nil {
					t.Fatalf("finding %q: %v", line, err)
				}
				for _, v := range f.Values["request_uri"] {
					long := !slices.Contains(tt.uris, v)
					if len(v) > detect.StoredValueLen || !utf8.ValidString(v) || long != strings.HasSuffix(v, "…") {
						t.Errorf("%s: request_uri %q: %d bytes, valid UTF-8 %v; want at most %d, valid, ending in … only when cut",
							f.Rule, v, len(v), utf8.ValidString(v), detect.StoredValueLen)
					}
				}
			}
		})
	}
}
