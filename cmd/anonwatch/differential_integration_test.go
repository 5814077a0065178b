//go:build integration

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/synth"
)

// useDynalite points the SDK at the test's DynamoDB emulator.
func useDynalite(t *testing.T) {
	t.Helper()
	ep := os.Getenv("ANONWATCH_TEST_DYNAMODB")
	if ep == "" {
		t.Fatal("ANONWATCH_TEST_DYNAMODB is not set: run the integration tests with scripts/test.sh (make test)")
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ep)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// scenario writes a four-hour generated audit log as JSON-lines files of
// 400 lines, so replay sees many batches that cross windows, thresholds,
// suppression periods and escalations. Scripted attacks are mixed into
// background traffic.
func scenario(t *testing.T) string {
	t.Helper()
	start := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	g := synth.New(7, start, 2*time.Second, synth.Mix{Anonymous: 0.03, RequestReceived: 0.01})
	type line struct {
		at time.Time
		b  []byte
	}
	var lines []line
	for i := 0; i < 4*3600/2; i++ {
		lines = append(lines, line{start.Add(time.Duration(i) * 2 * time.Second), g.Next()})
	}
	probe := func(at time.Time, ip, ua, uri string, xff ...string) {
		lines = append(lines, line{at, synth.Probe{At: at, SrcIP: ip, UserAgent: ua, URI: uri, ForwardedFor: xff}.Line()})
	}
	// A slow scan that crosses the 403-burst threshold only in its second
	// half hour, an enumeration that escalates later, a spoofing client,
	// and an allowed secret read two hours in.
	for i := 0; i < 14; i++ {
		probe(start.Add(time.Duration(i)*4*time.Minute), "198.51.100.71", "python-requests/2.32.3", "/api/v1/namespaces")
	}
	paths := []string{"/", "/api", "/apis", "/api/v1/pods", "/api/v1/secrets", "/api/v1/nodes", "/metrics", "/openapi/v2", "/api/v1/configmaps", "/apis/apps/v1/deployments"}
	for i, p := range paths {
		probe(start.Add(90*time.Minute+time.Duration(i)*20*time.Second), "203.0.113.201", "masscan/1.3", p)
		probe(start.Add(200*time.Minute+time.Duration(i)*20*time.Second), "203.0.113.201", "Mozilla/5.0 zgrab/0.x", p)
	}
	for i := 0; i < 3; i++ {
		probe(start.Add(150*time.Minute+time.Duration(i)*time.Minute), "192.0.2.77", "curl/8.5.0", "/api/v1/pods?limit=500", "198.51.100.1")
	}
	lines = append(lines, line{start.Add(130 * time.Minute), synth.Probe{
		At: start.Add(130 * time.Minute), SrcIP: "192.0.2.88", UserAgent: "Go-http-client/1.1",
		URI: "/api/v1/namespaces/kube-system/secrets/db-password", Verb: "get", Code: 200,
	}.Line()})
	// Audit logs arrive in time order; keep the scripted lines in place.
	sortLines := func() {
		for i := 1; i < len(lines); i++ {
			for j := i; j > 0 && lines[j].at.Before(lines[j-1].at); j-- {
				lines[j], lines[j-1] = lines[j-1], lines[j]
			}
		}
	}
	sortLines()
	dir := t.TempDir()
	for n := 0; n*400 < len(lines); n++ {
		var buf bytes.Buffer
		for _, l := range lines[n*400 : min(len(lines), (n+1)*400)] {
			buf.Write(l.b)
			buf.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%03d.jsonl", n)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDifferentialMemoryVersusDynamoDB runs the same input through replay
// with the in-memory state and with a DynamoDB table (dynalite): the
// findings must be identical, byte for byte.
func TestDifferentialMemoryVersusDynamoDB(t *testing.T) {
	useDynalite(t)
	inputs := map[string][]string{
		"events":   {"../../events"},
		"scenario": {scenario(t)},
	}
	for name, args := range inputs {
		t.Run(name, func(t *testing.T) {
			code, mem, stderr := runCLI(t, "", append([]string{"replay"}, args...)...)
			if code != exitOK {
				t.Fatalf("memory replay: exit %d: %s", code, stderr)
			}
			table := fmt.Sprintf("diff-%s-%d", name, time.Now().UnixNano())
			if code, _, stderr := runCLI(t, "", "table", "create", table); code != exitOK {
				t.Fatalf("table create: exit %d: %s", code, stderr)
			}
			code, dyn, stderr := runCLI(t, "", append([]string{"replay", "--table", table}, args...)...)
			if code != exitOK {
				t.Fatalf("table replay: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "DynamoDB calls") {
				t.Errorf("summary does not count DynamoDB calls: %s", stderr)
			}
			if n := strings.Count(mem, "\n"); n < 5 {
				t.Fatalf("only %d findings from memory replay; the comparison would prove little", n)
			}
			if diff := cmp.Diff(mem, dyn); diff != "" {
				t.Errorf("findings differ (-memory +dynamodb):\n%s", diff)
			}
			t.Logf("%d identical findings; %s", strings.Count(mem, "\n"), strings.TrimSpace(stderr[strings.LastIndex(stderr, "anonwatch replay:"):]))
		})
	}
}
