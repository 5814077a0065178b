package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// batchIDs reads src as the input name would be read and returns the ids
// of its batches.
func batchIDs(t *testing.T, name, src string) []string {
	t.Helper()
	rd := &reader{cluster: "local", lim: cwlogs.DefaultLimits, maxLine: audit.DefaultMaxSize}
	var ids []string
	err := rd.each(name, strings.NewReader(src), func(b *cwlogs.Batch) error {
		if b.LogStream != name {
			t.Errorf("log stream %q, want the input name %q", b.LogStream, name)
		}
		ids = append(ids, detect.BatchID(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestReplayBatchIDs checks that a replayed file's batch ids follow its
// content, not its name and line numbers: two runs of `replay --table` on
// different files of the same name must not take the second for a batch
// the first already merged, and the same file replayed again must.
func TestReplayBatchIDs(t *testing.T) {
	const (
		a = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.1"]}`
		b = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"b","stage":"ResponseComplete","requestURI":"/apis","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.2"]}`
	)
	tests := []struct {
		name          string
		first, second string
		same          bool
	}{
		{"same content", a + "\n" + b + "\n", a + "\n" + b + "\n", true},
		{"same content, blank lines between", a + "\n" + b + "\n", "\n" + a + "\n\n" + b, true},
		{"other content, same line count", a + "\n", b + "\n", false},
		{"a line more", a + "\n", a + "\n" + b + "\n", false},
		{"lines reordered", a + "\n" + b + "\n", b + "\n" + a + "\n", false},
		{"pretty-printed document", "{\n  \"kind\": \"Event\",\n  \"auditID\": \"a\"\n}\n", "{\n  \"kind\": \"Event\",\n  \"auditID\": \"b\"\n}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := batchIDs(t, "audit.jsonl", tt.first)
			second := batchIDs(t, "audit.jsonl", tt.second)
			if len(first) == 0 || len(second) == 0 {
				t.Fatalf("no batches: %q, %q", first, second)
			}
			if got := cmp.Equal(first, second); got != tt.same {
				t.Errorf("batch ids %q and %q: equal %v, want %v", first, second, got, tt.same)
			}
		})
	}
}

// TestReplayRepeatedLine checks that a line repeated in one file is counted
// once and the repeat as duplicate_id, since its id is its content's.
func TestReplayRepeatedLine(t *testing.T) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["203.0.113.1"],"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-11-28T10:30:00Z","stageTimestamp":"2026-11-28T10:30:00Z"}`
	code, _, stderr := runCLI(t, line+"\n"+line+"\n", "replay", "--report", "-")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"2 events", "1 parsed", "1 skipped (duplicate_id 1)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}
