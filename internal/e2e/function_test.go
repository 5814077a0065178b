//go:build integration

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// invoke sends event to the function and waits until the emulator has
// written the invocation's REPORT line, so that the function's log lines
// for it are in Output.
func invoke(t testing.TB, fn *rie.Instance, event []byte) *rie.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := emu.Invoke(ctx, fn, event)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// invokeOK invokes and requires the handler to have succeeded: HTTP 200
// and the body null (the handler returns only an error).
func invokeOK(t testing.TB, fn *rie.Instance, event []byte) *rie.Response {
	t.Helper()
	resp := invoke(t, fn, event)
	if resp.Status != http.StatusOK || string(resp.Body) != "null" {
		t.Fatalf("invoke %s: HTTP %d %s, want 200 null", resp.RequestID, resp.Status, resp.Body)
	}
	return resp
}

// logLines returns the function's JSON log lines for one request, in
// order, decoded (see emu.LogLines).
func logLines(t testing.TB, fn *rie.Instance, requestID string) []map[string]any {
	t.Helper()
	return emu.LogLines(fn.Output(), requestID)
}

// emulatorLine matches what the emulator itself writes: its log lines
// ("29 Nov 2026 10:09:05,017 [INFO] (rapid) ...") and the START, END and
// REPORT lines of each invocation.
var emulatorLine = regexp.MustCompile(`^(\d{2} \w{3} \d{4} [\d:,]+ \[\w+\] \(rapid\) |(START|END|REPORT) RequestId: )`)

// functionOutput returns the lines of out that the function wrote, in
// order: everything that is not the emulator's own.
func functionOutput(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l != "" && !emulatorLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return lines
}

// summary returns the invocation's "batch processed" line, failing the
// test unless the request logged exactly one, and no error. (Skipped log
// events add a warning each.)
func summary(t testing.TB, fn *rie.Instance, requestID string) map[string]any {
	t.Helper()
	var found []map[string]any
	lines := logLines(t, fn, requestID)
	for _, l := range lines {
		if l["level"] == "ERROR" {
			t.Errorf("request %s logged an error: %v", requestID, l)
		}
		if l["message"] == "batch processed" {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("request %s logged %d \"batch processed\" lines, want one: %v", requestID, len(found), lines)
	}
	return found[0]
}

// outcome is what a test compares a finding by: derived by hand from the
// sample's audit events and the default rules, and read back from what a
// subscriber received.
type outcome struct {
	Rule     string
	SrcIP    string
	Severity string
	Count    int64
}

func outcomeOf(f *detect.Finding) outcome {
	return outcome{Rule: f.Rule, SrcIP: f.SrcIP, Severity: f.Severity, Count: f.Count}
}

func sortOutcomes(o []outcome) []outcome {
	sort.Slice(o, func(i, j int) bool {
		if o[i].Rule != o[j].Rule {
			return o[i].Rule < o[j].Rule
		}
		return o[i].SrcIP < o[j].SrcIP
	})
	return o
}

// replay runs `anonwatch replay` on a sample: the same pipeline with the
// in-memory state and a JSON-lines publisher instead of DynamoDB and SNS,
// in the function's region (emu.AWSEnv), which a subscription event does
// not name.
func replay(t testing.TB, sample string) []detect.Finding {
	t.Helper()
	cmd := exec.Command(cliPath, "replay", "--region", "us-east-1", filepath.Join(repoRoot, "events", sample))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("anonwatch replay %s: %v\n%s", sample, err, stderr.String())
	}
	out, err := emu.ReadFindings(&stdout)
	if err != nil {
		t.Fatalf("anonwatch replay %s: %v", sample, err)
	}
	return out
}
