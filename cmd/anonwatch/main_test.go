package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func TestReplayEvents(t *testing.T) {
	code, out, stderr := runCLI(t, "", "replay", "../../events")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	golden(t, "replay-events.golden", out)
	for _, want := range []string{"8 files", "(1 control)", "(2 damaged: cut, too large or not JSON, salvaged)", "not_audit 1"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}

func TestReplayReport(t *testing.T) {
	code, out, stderr := runCLI(t, "", "replay", "--report", "../../events")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	golden(t, "report-events.golden", out)
}

// TestEventsUpToDate proves the checked-in events/*.json are what
// `make events` generates from events/src.
func TestEventsUpToDate(t *testing.T) {
	srcs, err := filepath.Glob("../../events/src/*.jsonl")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no event sources: %v", err)
	}
	check := func(t *testing.T, want string, args ...string) {
		t.Helper()
		stdin := ""
		if src := args[len(args)-1]; src != "-" {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			stdin = string(b)
			args[len(args)-1] = "-"
		}
		code, got, stderr := runCLI(t, stdin, append([]string{"envelope", "--log-group", "/aws/eks/demo/cluster"}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		w, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(w) {
			t.Errorf("%s differs from what `make events` generates; run make events", want)
		}
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".jsonl")
		t.Run(name, func(t *testing.T) { check(t, "../../events/"+name+".json", src) })
	}
	t.Run("control-message", func(t *testing.T) { check(t, "../../events/control-message.json", "--control", "-") })
}

// TestInputFormats feeds the same audit lines in every format replay
// accepts; each must give the same findings.
func TestInputFormats(t *testing.T) {
	lines, err := os.ReadFile("../../events/src/cluster-scan-masscan.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	b, err := envelopeBatch(bytes.NewReader(lines), "/aws/eks/local/cluster", "s", false)
	if err != nil {
		t.Fatal(err)
	}
	envelope, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := cwlogs.EncodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	gz := func(p []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(p)
		zw.Close()
		return buf.Bytes()
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"lines.jsonl":         lines,
		"lines.jsonl.gz":      gz(lines),
		"envelope.json":       envelope,
		"envelope.json.gz":    gz(envelope),
		"payload.json":        payload,
		"payload-pretty.json": indent(t, payload),
	}
	var want string
	for _, name := range []string{"lines.jsonl", "lines.jsonl.gz", "envelope.json", "envelope.json.gz", "payload.json", "payload-pretty.json"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		// The JSON-lines input has no log group or owner: name the
		// cluster and account so all formats agree.
		code, out, stderr := runCLI(t, "", "replay", "--cluster", "local", "--account", b.Owner, p)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		if out == "" {
			t.Fatalf("%s: no findings", name)
		}
		if want == "" {
			want = normalizeIDs(out)
			continue
		}
		if diff := cmp.Diff(want, normalizeIDs(out)); diff != "" {
			t.Errorf("%s findings differ from lines.jsonl (-want +got):\n%s", name, diff)
		}
	}
	// The same input from stdin.
	code, out, _ := runCLI(t, string(lines), "replay", "--account", b.Owner, "-")
	if code != exitOK || normalizeIDs(out) != want {
		t.Errorf("stdin: exit %d, findings differ", code)
	}
}

func indent(t *testing.T, p []byte) []byte {
	var buf bytes.Buffer
	if err := jsonIndent(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// normalizeIDs drops what legitimately differs between input formats: the
// finding id and log group follow the batch identity.
func normalizeIDs(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return "unparseable output: " + line
		}
		delete(m, "finding_id")
		delete(m, "log_group")
		norm, _ := json.Marshal(m)
		b.Write(norm)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - id: x\n    title: t\n    severity: low\n    match: verbb == 1\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no command", nil, exitUsage, "usage"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"replay without files", []string{"replay"}, exitUsage, "usage"},
		{"missing file", []string{"replay", filepath.Join(dir, "nope.json")}, exitUsage, "no such file"},
		{"bad rule file", []string{"replay", "--rules", bad, "../../events"}, exitUsage, `rule "x"`},
		{"no workers", []string{"replay", "--workers", "0", "../../events"}, exitUsage, "--workers must be between 1 and 256"},
		{"rules check bad", []string{"rules", "check", bad}, exitUsage, `rule "x"`},
		{"rules check default", []string{"rules", "check", "../../internal/rules/default.yaml"}, exitOK, ""},
		{"rules list", []string{"rules", "list"}, exitOK, ""},
		{"envelope without group", []string{"envelope", "-"}, exitUsage, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if tt.msg != "" && !strings.Contains(stderr, tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr)
			}
		})
	}
}

func jsonIndent(buf *bytes.Buffer, p []byte) error { return json.Indent(buf, p, "", "  ") }

// TestMaxPayload replays a delivery larger than the bound it is given: the
// function's bound refuses it, as the function did, and --max-payload
// raised past it reads it, as when replaying the dead-letter queue.
func TestMaxPayload(t *testing.T) {
	var lines [][]byte
	for i := range 1400 {
		lines = append(lines, synth.Probe{
			At:        time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
			SrcIP:     "198.51.100.9",
			UserAgent: "zgrab/0.x",
			URI:       fmt.Sprintf("/api/v1/namespaces/ns-%d/secrets", i%40),
		}.Line())
	}
	b := synth.Batch(lines, "/aws/eks/big/cluster", "s", 1)
	env, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := cwlogs.EncodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) < 1<<20 || len(payload) > 2<<20 {
		t.Fatalf("payload is %d bytes, want between 1 and 2 MiB", len(payload))
	}
	p := filepath.Join(t.TempDir(), "dead-letter.json")
	if err := os.WriteFile(p, env, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		max      string
		want     int
		findings bool
		msg      string
	}{
		// Lines past the bound are cut and reported, not the delivery
		// refused: the function's own behaviour.
		{"1", exitOK, true, "damaged: cut, too large or not JSON, salvaged"},
		{"2", exitOK, true, ""},
		{"0", exitUsage, false, "--max-payload must be"},
	}
	for _, tt := range tests {
		t.Run(tt.max, func(t *testing.T) {
			code, out, stderr := runCLI(t, "", "replay", "--max-payload", tt.max, p)
			if code != tt.want || (out != "") != tt.findings {
				t.Errorf("exit %d with findings %v, want %d, %v; stderr:\n%s", code, out != "", tt.want, tt.findings, stderr)
			}
			if !strings.Contains(stderr, tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr)
			}
			if damaged := strings.Contains(stderr, "damaged"); damaged != (tt.max == "1") {
				t.Errorf("--max-payload %s: damaged lines reported %v:\n%s", tt.max, damaged, stderr)
			}
		})
	}
}
