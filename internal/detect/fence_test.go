package detect_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// fenceRules finds every anonymous request, one finding per address.
const fenceRules = `
rules:
  - id: any
    title: Any
    severity: low
    requires_any: [system:anonymous]
    match: anonymous
    group_by: [src_ip]
    threshold: {count: 1, window: 1m}
    suppress: 10m
`

// fenceFrom is the fence a backfill into st uses, as replay --table's.
func fenceFrom(st detect.LiveMarks) func(context.Context, string, string) (time.Time, error) {
	return func(ctx context.Context, cluster, stream string) (time.Time, error) {
		marks, err := st.LiveSince(ctx, cluster)
		return detect.FenceOf(marks, stream), err
	}
}

// TestFenceStreamsShippedApart: CloudWatch Logs delivers to a subscription
// the events ingested after it began, and each API server's stream is
// shipped at a delay of its own. Stream a ships in 0.1 s, stream b in 2 s;
// the function is subscribed at 10:00:00.500. Stream a's request at
// 10:00:00.000 was ingested at .100, before the subscription: the function
// never sees it. Stream b's request at 09:59:59.000 is ingested at
// 10:00:01.000 and delivered: the function's mark is 09:59:59.000. The
// backfill left stream a's request to the function too when the mark was
// one per cluster, and nobody counted it; marks per stream fence a by a's
// own, which the function never set: the backfill counts it.
func TestFenceStreamsShippedApart(t *testing.T) {
	ctx := context.Background()
	set, err := rules.Load("fence.yaml", []byte(fenceRules))
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(time.Now, memstate.DefaultLease)
	pub := &recorder{}
	fn, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub, MarkLive: true})
	if err != nil {
		t.Fatal(err)
	}
	fill, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub, Fence: fenceFrom(st)})
	if err != nil {
		t.Fatal(err)
	}
	at := func(hms string) int64 {
		ts, _ := time.Parse(time.RFC3339Nano, "2026-11-28T"+hms+"Z")
		return ts.UnixMilli()
	}
	a := batchOf("kube-apiserver-audit-a", 1, req{at: "10:00:00", src: "203.0.113.1", verb: "get", uri: "/a", code: 403})
	a.Events[0].Timestamp = at("10:00:00.000")
	b := batchOf("kube-apiserver-audit-b", 2, req{at: "09:59:59", src: "203.0.113.2", verb: "get", uri: "/b", code: 403})
	b.Events[0].Timestamp = at("09:59:59.000")

	// The subscription delivers b's request only.
	if _, err := fn.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The backfill reads both streams from the export: batches of its
	// own, ids of its own.
	for _, g := range []*cwlogs.Batch{a, b} {
		g := *g
		g.Gathered = true
		g.Events = slices.Clone(g.Events)
		for i := range g.Events {
			g.Events[i].ID = "export-" + g.Events[i].ID
		}
		if _, err := fill.Process(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	var srcs []string
	for _, f := range pub.got {
		srcs = append(srcs, f.SrcIP)
	}
	slices.Sort(srcs)
	if want := []string{"203.0.113.1", "203.0.113.2"}; !slices.Equal(srcs, want) {
		t.Errorf("findings from %v, want %v: a request neither the function nor the backfill counted", srcs, want)
	}
}

// TestFenceDeadLetteredDelivery: docs/backfill.md says the mark settles
// once each stream has delivered. A stream's first delivery that fails
// past Lambda's retries goes to the dead-letter queue while its next one
// is applied and marks the cluster; a backfill run then counts the first
// delivery's events, and the dead-letter replay, never fenced, counts
// them again: six requests make a finding that needs seven.
func TestFenceDeadLetteredDelivery(t *testing.T) {
	if os.Getenv("ANONWATCH_KNOWN_BUGS") == "" {
		t.Skip("known: the mark moves earlier when a dead-lettered delivery is replayed after the backfill (ANONWATCH_KNOWN_BUGS=1 runs it)")
	}
	ctx := context.Background()
	set, err := rules.Load("fence.yaml", []byte(`
rules:
  - id: seven
    title: Seven
    severity: low
    match: anonymous
    group_by: [src_ip]
    threshold: {count: 7, window: 5m}
    suppress: 10m
`))
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(time.Now, memstate.DefaultLease)
	pub := &recorder{}
	fn, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub, MarkLive: true})
	if err != nil {
		t.Fatal(err)
	}
	fill, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub, Fence: fenceFrom(st)})
	if err != nil {
		t.Fatal(err)
	}
	stamped := func(first int, at string) *cwlogs.Batch {
		b := batchOf("kube-apiserver-audit-a", first, refused(at, "203.0.113.9", 3)...)
		t0, _ := time.Parse(time.RFC3339, "2026-11-28T"+at+"Z")
		for i := range b.Events {
			b.Events[i].Timestamp = t0.Add(time.Duration(i) * time.Second).UnixMilli()
		}
		return b
	}
	first, next := stamped(1, "10:00:01"), stamped(10, "10:00:20")
	// first is dead-lettered; next is applied.
	if _, err := fn.Process(ctx, next); err != nil {
		t.Fatal(err)
	}
	// The backfill of the export, which holds both.
	for _, b := range []*cwlogs.Batch{first, next} {
		g := *b
		g.Gathered = true
		g.Events = slices.Clone(g.Events)
		for i := range g.Events {
			g.Events[i].ID = "export-" + g.Events[i].ID
		}
		if _, err := fill.Process(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	// The dead-letter queue is replayed.
	if _, err := fn.Process(ctx, first); err != nil {
		t.Fatal(err)
	}
	for _, f := range pub.got {
		t.Errorf("finding of %d requests from %s: there were 6", f.Count, f.SrcIP)
	}
}

// TestFencedCountsWhatTheFunctionCounts: Result.Fenced, which replay's
// summary reports as the events left to the function, counts the events
// the function counts from its mark on, whether the backfill reads them
// with CloudWatch's times (an export) or without (JSON lines): a line no
// rule can match is filtered, and a RequestReceived record skipped, in
// either.
func TestFencedCountsWhatTheFunctionCounts(t *testing.T) {
	ctx := context.Background()
	set, err := rules.Load("fence.yaml", []byte(fenceRules))
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(time.Now, memstate.DefaultLease)
	mark := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	if err := st.MarkLive(ctx, "demo", "kube-apiserver-audit-a", mark); err != nil {
		t.Fatal(err)
	}
	fill, err := detect.New(detect.Config{Rules: set, State: st, Publisher: &recorder{}, Fence: fenceFrom(st)})
	if err != nil {
		t.Fatal(err)
	}
	b := batchOf("kube-apiserver-audit-a", 1, req{at: "10:00:00", src: "203.0.113.1", verb: "get", uri: "/a", code: 403})
	other := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"alice"},"sourceIPs":["10.0.0.1"],"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-28T10:00:01.000000Z","stageTimestamp":"2026-11-28T10:00:01.000000Z"}`)
	received := []byte(strings.Replace(string(b.Events[0].Message), `"stage":"ResponseComplete"`, `"stage":"RequestReceived"`, 1))
	b.Events = append(b.Events, cwlogs.LogEvent{ID: "other", Message: other}, cwlogs.LogEvent{ID: "received", Message: received})
	b.Gathered = true
	results := map[string]detect.Result{}
	for _, stamped := range []bool{true, false} {
		g := *b
		g.Events = slices.Clone(b.Events)
		for i := range g.Events {
			if stamped {
				g.Events[i].Timestamp = mark.Add(time.Hour).UnixMilli()
			}
			g.Events[i].ID = fmt.Sprint(stamped, i)
		}
		res, err := fill.Process(ctx, &g)
		if err != nil {
			t.Fatal(err)
		}
		results[fmt.Sprint(stamped)] = res
	}
	for k, res := range results {
		if res.Fenced != 1 || res.Filtered != 1 || res.Skipped[detect.SkipStage] != 1 {
			t.Errorf("with CloudWatch times %s: fenced %d, filtered %d, skipped %v; want 1, 1, %s 1", k, res.Fenced, res.Filtered, res.Skipped, detect.SkipStage)
		}
	}
}

// TestMarkLiveOnlyDeliveries: a detector that marks (the function, or
// replay --table applying a dead-lettered delivery as the function would)
// marks the cluster live from a delivery's events, never from a gathered
// batch's: a backfill's history is not the function's.
func TestMarkLiveOnlyDeliveries(t *testing.T) {
	ctx := context.Background()
	set, err := rules.Load("fence.yaml", []byte(fenceRules))
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(time.Now, memstate.DefaultLease)
	d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: &recorder{}, MarkLive: true, Fence: fenceFrom(st)})
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(b *cwlogs.Batch, at time.Time) *cwlogs.Batch {
		for i := range b.Events {
			b.Events[i].Timestamp = at.UnixMilli()
		}
		return b
	}
	old := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	gathered := stamp(batchOf("kube-apiserver-audit-a", 1, req{at: "10:00:00", src: "203.0.113.1", verb: "get", uri: "/a", code: 403}), old)
	gathered.Gathered = true
	if _, err := d.Process(ctx, gathered); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.LiveSince(ctx, "demo"); len(got) != 0 {
		t.Errorf("a gathered batch marked demo live from %v", got)
	}
	live := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	if _, err := d.Process(ctx, stamp(batchOf("kube-apiserver-audit-a", 2, req{at: "10:00:00", src: "203.0.113.1", verb: "get", uri: "/b", code: 403}), live)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.LiveSince(ctx, "demo"); len(got) != 1 || !got["kube-apiserver-audit-a"].Equal(live) {
		t.Errorf("after a delivery, demo is live from %v; want %v", got, live)
	}
}
