package jsonlpub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

// loadFindings reads testdata/findings.json. The findings are synthetic;
// f-create-0002 restates, as a finding, the event in falcosecurity/falco @
// 7cac45e test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json
// (Apache-2.0): system:anonymous creating namespace foo, allowed.
func loadFindings(t *testing.T) []*detect.Finding {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*detect.Finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestPublishGolden(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf)
	for _, f := range loadFindings(t) {
		if err := p.Publish(context.Background(), f); err != nil {
			t.Fatalf("Publish(%s): %v", f.ID, err)
		}
	}
	golden := filepath.Join("testdata", "findings.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
	}
}

func TestPublishOneLineRoundTrip(t *testing.T) {
	for _, f := range loadFindings(t) {
		t.Run(f.ID, func(t *testing.T) {
			var buf bytes.Buffer
			if err := New(&buf).Publish(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
				t.Fatalf("output is not exactly one newline-terminated line: %q", got)
			}
			// Attacker text must not break the line for a reader that
			// splits on Unicode line separators either.
			if strings.ContainsAny(got, "\r\u2028\u2029") {
				t.Errorf("output holds a raw line separator: %q", got)
			}
			var back detect.Finding
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f, &back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPublishIsPrintableASCII: replay output is read on terminals, so an
// attacker's escape sequences and bidi controls must arrive escaped.
func TestPublishIsPrintableASCII(t *testing.T) {
	f := &detect.Finding{ID: "x", UserAgent: "<script>&\x1b[2J\u202etxt.exe\u2028"}
	var buf bytes.Buffer
	if err := New(&buf).Publish(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	for i, c := range []byte(line) {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("byte %d of the line is %#x, not printable ASCII: %q", i, c, line)
		}
	}
	var got detect.Finding
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	if got.UserAgent != f.UserAgent {
		t.Errorf("user agent decodes to %q, want %q", got.UserAgent, f.UserAgent)
	}
}

func TestPublishMatchesRender(t *testing.T) {
	for _, f := range loadFindings(t) {
		t.Run(f.ID, func(t *testing.T) {
			var buf bytes.Buffer
			if err := New(&buf).Publish(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			r, err := render.JSON(f)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(r, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("jsonlpub and render.JSON disagree (-render +jsonlpub):\n%s", diff)
			}
		})
	}
}

// writeRecorder records every Write call separately, so the test can see
// whether a line was split across calls.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestPublishConcurrent(t *testing.T) {
	const workers, each = 8, 50
	fs := loadFindings(t)
	w := &writeRecorder{}
	p := New(w)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				errs <- p.Publish(context.Background(), fs[(i+j)%len(fs)])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := len(w.writes), workers*each; got != want {
		t.Fatalf("%d writes, want %d", got, want)
	}
	for _, s := range w.writes {
		var f detect.Finding
		if strings.Count(s, "\n") != 1 || json.Unmarshal([]byte(s), &f) != nil {
			t.Fatalf("write is not one whole JSON line: %q", s)
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestPublishWriteError(t *testing.T) {
	sentinel := errors.New("broken pipe")
	err := New(failingWriter{sentinel}).Publish(context.Background(), &detect.Finding{ID: "f-1"})
	if !errors.Is(err, sentinel) {
		t.Fatalf("Publish() error = %v, want it to wrap %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), "f-1") {
		t.Errorf("Publish() error = %q, want the finding id in it", err)
	}
}
