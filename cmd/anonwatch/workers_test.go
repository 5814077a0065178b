package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// writeMixedInputs writes an audit log of two hours, scanned from 40
// addresses, as files in every format replay reads, in time order, with
// damaged lines in some: a folder whose replay depends on the order its
// batches reach state, and logs warnings. It returns the folder.
func writeMixedInputs(t *testing.T) string {
	t.Helper()
	var scanners []string
	for i := range 40 {
		scanners = append(scanners, fmt.Sprintf("203.0.113.%d", 10+i))
	}
	g := synth.New(17, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), 1500*time.Millisecond,
		synth.Mix{Anonymous: 0.4, RequestReceived: 0.01, ScannerIPs: scanners})
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	jsonl := func(lines [][]byte) []byte { return append(bytes.Join(lines, []byte("\n")), '\n') }
	const group = "/aws/eks/demo/cluster"
	events := func(lines [][]byte, first int) []byte {
		var out []byte
		for i, n := 0, 0; i < len(lines); i, n = i+200, n+1 {
			stream := fmt.Sprintf("kube-apiserver-audit-%d", n%2)
			ev, err := cwlogs.Encode(synth.Batch(lines[i:min(i+200, len(lines))], group, stream, first+i))
			if err != nil {
				t.Fatal(err)
			}
			out = append(append(out, ev...), '\n')
		}
		return out
	}
	damage := func(lines [][]byte) {
		for i := 3; i < len(lines); i += 97 {
			if bytes.Contains(lines[i], []byte("system:anonymous")) {
				lines[i] = append(bytes.Clone(lines[i][:len(lines[i])/2]), "[Truncated...]"...)
			}
		}
		lines[10] = lines[10][:len(lines[10])-3] // cut, unmarked
	}
	dir := t.TempDir()
	for i := range 8 {
		lines := make([][]byte, 600)
		for j := range lines {
			lines[j] = g.Next()
		}
		var name string
		var body []byte
		switch i {
		case 0, 7:
			name, body = "lines.jsonl", jsonl(lines)
		case 1:
			name, body = "lines.jsonl.gz", gz(jsonl(lines))
		case 2:
			name, body = "events.json", events(lines, i*1000)
		case 3:
			p, err := cwlogs.EncodePayload(synth.Batch(lines, group, "kube-apiserver-audit-0", i*1000))
			if err != nil {
				t.Fatal(err)
			}
			name, body = "payload.json", p
		case 4:
			name, body = "events.json.gz", gz(events(lines, i*1000))
		case 5:
			damage(lines)
			name, body = "damaged.jsonl", jsonl(lines)
		case 6:
			damage(lines)
			name, body = "damaged-events.json", events(lines, i*1000)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s", i, name)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runTimes are what differs between two runs of the same replay: the
// time of each log line and the duration the summary ends with.
var runTimes = regexp.MustCompile(`(?m)^time=\S+ |\(\d+(\.\d+)?m?s\)$`)

// TestReplayWorkers checks that a replay's output (findings, their order,
// the report's rows, the log and the summary) is the same with one worker,
// which reads, prepares and commits each batch in turn, as with several,
// which read inputs and prepare batches at once.
func TestReplayWorkers(t *testing.T) {
	dir := writeMixedInputs(t)
	broken := t.TempDir()
	for _, e := range must(os.ReadDir(dir)) {
		body := must(os.ReadFile(filepath.Join(dir, e.Name())))
		if strings.HasPrefix(e.Name(), "06-") {
			body = body[:len(body)/2] // a document cut short, after warnings
		}
		if err := os.WriteFile(filepath.Join(broken, e.Name()), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"findings", []string{"replay", "--cluster", "demo", dir}, exitOK},
		{"slack", []string{"replay", "--cluster", "demo", "--format", "slack", dir}, exitOK},
		{"report", []string{"replay", "--cluster", "demo", "--report", dir}, exitOK},
		{"a file cut short", []string{"replay", "--cluster", "demo", broken}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(workers int) (string, string) {
				args := append([]string{tt.args[0], "--workers", fmt.Sprint(workers)}, tt.args[1:]...)
				code, out, stderr := runCLI(t, "", args...)
				if code != tt.code {
					t.Fatalf("--workers %d: exit %d, want %d; stderr:\n%s", workers, code, tt.code, stderr)
				}
				return out, runTimes.ReplaceAllString(stderr, "")
			}
			wantOut, wantErr := run(1)
			if strings.Count(wantOut, "\n") < 10 {
				t.Fatalf("%d lines of output: the test would compare little:\n%s", strings.Count(wantOut, "\n"), wantOut)
			}
			if !strings.Contains(wantErr, "level=WARN") {
				t.Fatalf("no warning logged: the test would not compare the log's order:\n%s", wantErr)
			}
			for _, workers := range []int{2, 3, 8} {
				out, stderr := run(workers)
				if diff := cmp.Diff(wantOut, out); diff != "" {
					t.Errorf("--workers %d: output mismatch (-1 worker +%d):\n%s", workers, workers, diff)
				}
				if diff := cmp.Diff(wantErr, stderr); diff != "" {
					t.Errorf("--workers %d: stderr mismatch (-1 worker +%d):\n%s", workers, workers, diff)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
