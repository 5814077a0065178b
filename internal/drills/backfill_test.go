//go:build integration

package drills

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// backfillStart is when the backfill drill's history begins.
var backfillStart = time.Date(2026, 2, 9, 8, 0, 0, 0, time.UTC)

// backfillHistory is an hour of anonymous requests from two API server
// streams: a slow scan from one address (a path every 50 s), a burst of
// refused probes from a second, a public-info reader, and an allowed
// secret read by the scanner in the middle; each line in time order with
// its stream. Only the whole hour crosses some thresholds, so a backfill
// that misses or repeats either side of where the function began shows.
func backfillHistory() (lines [][]byte, streams []int) {
	add := func(stream int, p synth.Probe) {
		lines = append(lines, p.Line())
		streams = append(streams, stream)
	}
	for i := range 72 {
		add(i%2, synth.Probe{At: backfillStart.Add(time.Duration(i) * 50 * time.Second), SrcIP: "198.51.100.77", UserAgent: "python-requests/2.31",
			URI: fmt.Sprintf("/api/v1/namespaces/team-%02d/pods", i)})
		if i == 36 {
			add(1, synth.Probe{At: backfillStart.Add(time.Duration(i)*50*time.Second + time.Second), SrcIP: "198.51.100.77", UserAgent: "python-requests/2.31",
				URI: "/api/v1/namespaces/payments/secrets/stripe-live-key", Code: 200})
		}
		if i%9 == 0 {
			add(0, synth.Probe{At: backfillStart.Add(time.Duration(i)*50*time.Second + 2*time.Second), SrcIP: "10.0.3.4", UserAgent: "kube-probe/1.30", URI: "/readyz"})
		}
	}
	for i := range 14 {
		add(1, synth.Probe{At: backfillStart.Add(29*time.Minute + time.Duration(i)*7*time.Second), SrcIP: "203.0.113.45", UserAgent: "zgrab/0.x",
			URI: []string{"/.env", "/api/v1/secrets", "/apis", "/version", "/api/v1/pods", "/metrics", "/debug/pprof/"}[i%7]})
	}
	order := make([]int, len(lines))
	for i := range order {
		order[i] = i
	}
	at := func(l []byte) string {
		return regexp.MustCompile(`"stageTimestamp":"([^"]+)"`).FindStringSubmatch(string(l))[1]
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(at(lines[a]), at(lines[b])) })
	var ls [][]byte
	var ss []int
	for _, i := range order {
		ls, ss = append(ls, lines[i]), append(ss, streams[i])
	}
	return ls, ss
}

// backfillStreams are the API server streams of the history.
var backfillStreams = []string{"kube-apiserver-audit-1b2c3d4e5f60718293a4b5c6d7e8f901", "kube-apiserver-audit-9f8e7d6c5b4a39281706f5e4d3c2b1a0"}

// TestBackfillDrill deploys the function part-way through an hour of
// history, then backfills the hour from its CloudWatch Logs export into the
// function's table with anonwatch replay --table --topic, as docs/backfill.md
// says. The table must hold the counts a replay of the whole hour into an
// empty table leaves, the function's events must not be counted again,
// every finding must come out once, and the old ones printed, not
// published. A second backfill of the same export changes nothing.
func TestBackfillDrill(t *testing.T) {
	lines, streams := backfillHistory()
	// The export, as CloudWatch Logs writes it: one folder per stream,
	// gzipped "<timestamp> <message>" lines.
	export := filepath.Join(t.TempDir(), "export", "3f2e1d0c-b9a8-4765-8432-10fedcba9876")
	var batches [2]cwlogs.Batch
	for s, name := range backfillStreams {
		batches[s] = synth.Batch(nil, drillLogGroup, name, 1)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		for i, l := range lines {
			if streams[i] != s {
				continue
			}
			b := synth.Batch([][]byte{l}, drillLogGroup, name, i+1)
			batches[s].Events = append(batches[s].Events, b.Events[0])
			fmt.Fprintf(zw, "%s %s\n", time.UnixMilli(b.Events[0].Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"), l)
		}
		zw.Close()
		if err := os.MkdirAll(filepath.Join(export, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(export, name, "000000.gz"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The function is deployed 23 minutes in: the subscription delivers
	// what comes after, each stream every 5 s of its events.
	deployed := backfillStart.Add(23 * time.Minute)
	table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
	topic, q := newTopicAndQueue(t, sharedSNS.URL())
	fn := startFunction(t, functionEnv(sharedDynamo.URL(), sharedSNS.URL(), table, topic))
	live := 0
	firstLive := map[string]int64{} // per stream: the marks the function leaves
	for _, b := range batches {
		var cur cwlogs.Batch
		flush := func() {
			if len(cur.Events) == 0 {
				return
			}
			ev, err := cwlogs.Encode(cur)
			if err != nil {
				t.Fatal(err)
			}
			if iv := mustInvoke(t, fn, ev); !iv.OK() {
				t.Fatalf("delivery: HTTP %d %s", iv.Resp.Status, iv.Resp.Body)
			}
			cur.Events = nil
		}
		cur = b
		cur.Events = nil
		for _, e := range b.Events {
			if e.Timestamp < deployed.UnixMilli() {
				continue
			}
			if len(cur.Events) > 0 && e.Timestamp-cur.Events[0].Timestamp >= 5000 {
				flush()
			}
			cur.Events = append(cur.Events, e)
			live++
			if f, ok := firstLive[b.LogStream]; !ok || e.Timestamp < f {
				firstLive[b.LogStream] = e.Timestamp
			}
		}
		flush()
	}
	liveFindings := delivered(t, emu.MustReceive(t, q))
	if live == 0 || live == len(lines) {
		t.Fatalf("%d of %d events delivered live: the drill splits nothing", live, len(lines))
	}

	// The backfill, into the function's table, and a replay of the whole
	// hour into an empty one to compare with.
	files, err := filepath.Glob(filepath.Join(filepath.Dir(export), "*", "*", "*.gz"))
	if err != nil || len(files) != len(backfillStreams) {
		t.Fatalf("export files %v (%v)", files, err)
	}
	backfill := func(args ...string) (int, []detect.Finding, string) {
		return replayCLI(t, append(append(args, "--cluster", "drill"), files...)...)
	}
	code, printed, summary := backfill("--table", table, "--topic", topic)
	if code != 0 {
		t.Fatalf("anonwatch replay --table: exit %d: %s", code, summary)
	}
	t.Logf("backfill: %s", summary)
	marks := slices.Sorted(maps.Values(firstLive))
	if want := fmt.Sprintf("%d events left to the function, which counts drill's 2 log streams from %s to %s", live,
		time.UnixMilli(marks[0]).UTC().Format(time.RFC3339Nano), time.UnixMilli(marks[len(marks)-1]).UTC().Format(time.RFC3339Nano)); !strings.Contains(summary, want) {
		t.Errorf("summary %q does not say %q", summary, want)
	}
	published := delivered(t, emu.MustReceive(t, q))
	if len(published) != 0 {
		t.Errorf("the backfill published %d findings: every one is older than its suppression period, so it prints them", len(published))
	}
	ref := emu.NewTable(t, sharedDynamo.URL(), "drill-")
	if code, _, s := backfill("--table", ref); code != 0 {
		t.Fatalf("anonwatch replay into an empty table: exit %d: %s", code, s)
	}
	_, want, _ := backfill()

	got := scanTable(t, sharedDynamo.URL(), table)
	if diff := cmp.Diff(bucketCounts(scanTable(t, sharedDynamo.URL(), ref)), bucketCounts(got)); diff != "" {
		t.Errorf("the function's table after the backfill differs from one replay of the whole hour (-replay +backfilled):\n%s", diff)
	}
	all := append(slices.Clone(liveFindings), printed...)
	seen := map[string]bool{}
	for _, f := range all {
		if seen[f.ID] {
			t.Errorf("finding %s (%s, %s) came out twice", f.ID, f.Rule, f.SrcIP)
		}
		seen[f.ID] = true
	}
	if diff := cmp.Diff(highest(t, want), highest(t, all)); diff != "" {
		t.Errorf("highest severity per rule and source (-one replay of the hour +function and backfill):\n%s", diff)
	}
	if len(printed) == 0 || len(liveFindings) == 0 {
		t.Errorf("%d findings from the function, %d from the backfill: the drill should need both", len(liveFindings), len(printed))
	}

	// Once more: the same batches, already merged; the findings, sent.
	code, again, summary := backfill("--table", table, "--topic", topic)
	if code != 0 || len(again) != 0 {
		t.Errorf("second backfill: exit %d, %d findings printed: %s", code, len(again), summary)
	}
	if n := len(emu.MustReceive(t, q)); n != 0 {
		t.Errorf("second backfill published %d findings", n)
	}
	if diff := cmp.Diff(bucketCounts(got), bucketCounts(scanTable(t, sharedDynamo.URL(), table))); diff != "" {
		t.Errorf("second backfill changed the counts (-first +second):\n%s", diff)
	}
}

// replayCLI runs anonwatch replay with args against the shared emulators
// and returns its exit status, the findings it printed and its summary.
func replayCLI(t *testing.T, args ...string) (int, []detect.Finding, string) {
	t.Helper()
	cmd := exec.Command(cliPath, append([]string{"replay"}, args...)...)
	cmd.Env = append(emu.AWSEnv(), "AWS_ENDPOINT_URL_DYNAMODB="+sharedDynamo.URL(), "AWS_ENDPOINT_URL_SNS="+sharedSNS.URL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	fs, err := emu.ReadFindings(&stdout)
	if err != nil {
		t.Fatalf("anonwatch replay output: %v", err)
	}
	return code, fs, strings.TrimSpace(stderr.String())
}

// highest returns the highest severity of fs per rule and source.
func highest(t *testing.T, fs []detect.Finding) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range fs {
		k := f.Rule + " " + f.SrcIP + " " + f.SrcNet + " " + strconv.FormatBool(f.Sweep)
		sev, err := rules.ParseSeverity(f.Severity)
		if err != nil {
			t.Fatal(err)
		}
		if cur, ok := out[k]; ok {
			if c, _ := rules.ParseSeverity(cur); c >= sev {
				continue
			}
		}
		out[k] = f.Severity
	}
	return out
}
