package statetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// PropertyRules are the rules the property test runs: a count threshold
// with a count and a per-request escalation, a distinct threshold with a
// distinct escalation, a long window (3h, counted in 3-minute buckets:
// detect.BucketWidthFor), and a per-cluster rule with a one-minute window;
// windows of 1m to 3h and suppression periods of 10m to 1h, so a
// generated scenario of a few hours crosses many windows and periods. burst
// and paths have tight notification budgets, so that findings are held
// back and rolled into digests in every case that has a few, burst's over
// 3h so that its digests pass 10 held.
const PropertyRules = `
rules:
  - id: burst
    title: Burst
    severity: low
    match: anonymous
    group_by: [src_ip, cluster_name]
    collect: [path, code]
    threshold: {count: 3, window: 5m}
    suppress: 10m
    budget: {count: 1, period: 3h}
    escalate:
      - {severity: medium, count: 6}
      - {severity: high, when: "code >= 200 && code <= 299", reason: a request was allowed}
  - id: paths
    title: Paths
    severity: medium
    match: anonymous && verb != "create"
    group_by: [src_ip, cluster_name]
    collect: [path]
    threshold: {distinct: {path: 3}, window: 10m}
    suppress: 30m
    budget: {count: 1, period: 1h}
    escalate:
      - {severity: high, distinct: {path: 5}}
  - id: slow
    title: Slow
    severity: low
    match: anonymous && verb == "get"
    group_by: [src_ip, cluster_name]
    collect: [path]
    threshold: {count: 8, window: 3h}
    suppress: 1h
    escalate:
      - {severity: medium, count: 16}
  - id: write
    title: Write
    severity: high
    match: anonymous && verb == "create"
    group_by: [cluster_name]
    collect: [src_ip]
    threshold: {count: 1, window: 1m}
    suppress: 1h
    escalate:
      - {severity: critical, when: "code == 201", reason: a write succeeded}
`

// PropertyConfig sizes a property run.
type PropertyConfig struct {
	Cases   int    // generated scenarios
	Seed    uint64 // the run's seed; case i uses (Seed, i)
	Workers int    // concurrent Process calls
	// Events bounds the audit events of one scenario.
	Events int
	// Faults is the probability that a State or Publisher call fails,
	// half the time before it takes effect and half after (a lost
	// acknowledgement). A delivery that fails is delivered again until it
	// succeeds, as Lambda retries it (and, past its retries, as a replay
	// from the dead-letter queue does).
	Faults float64
	// Backfill splits each case at a random time: the function is
	// delivered only the events from then on (detect.Config.MarkLive);
	// then a backfill replays all of them, cut into batches of its own,
	// into the same state (detect.Config.Fence, cwlogs.Batch.Gathered).
	// The outcome must be the oracle's still: nothing counted twice or
	// missed, no finding sent twice. The State must be a LiveMarks.
	Backfill bool
	// Ingest, with Backfill, models how CloudWatch Logs gets the records
	// rather than cutting them at one time: nil keeps the plain cut.
	Ingest *Ingest
}

// Ingest models the shipping of the records to CloudWatch Logs for a
// backfill case: each API server's stream ships a record once written
// (its stageTimestamp), after a delay of its own, and the function,
// subscribed at the case's cut, is delivered the records shipped from
// then on.
type Ingest struct {
	// Lag bounds each stream's shipping delay, drawn per stream.
	Lag time.Duration
	// StageTime dates each log event by its record's stageTimestamp;
	// otherwise by its requestReceivedTimestamp, as the fixtures do.
	StageTime bool
	// Lines makes the backfill read the records without their log event
	// times, as from JSON lines.
	Lines bool
}

// Property checks the detector over the State that newState returns against
// a one-event-at-a-time oracle. Each case generates audit events (real
// audit.k8s.io/v1 lines) from a few addresses over a few hours, cuts them
// into batches of random size (per stream in time order, shuffled, or mixed
// across streams), delivers the batches in random order from
// cfg.Workers goroutines at once, and delivers some twice (a Lambda retry).
// Then, for every rule, group and suppression period:
//
//   - a finding was published iff the oracle, processing the events one at
//     a time in event-time order, has one;
//   - the highest severity published equals the oracle's;
//   - no severity was published twice;
//
// where a finding a budget held back counts as published; and, per rule
// and budget period, no more findings spent the budget than it allows,
// the digest counts each held finding once, and the digest of the highest
// power of ten reached was published;
//
// and every stored bucket's count, first and last equal the oracle's.
func Property(t *testing.T, newState func(t *testing.T, now func() time.Time) detect.State, cfg PropertyConfig) {
	set, err := rules.Load("property.yaml", []byte(PropertyRules))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Events < 1 {
		cfg.Events = 60
	}
	clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	st := newState(t, clock.Now)
	var periods, published, batches int
	for i := range cfg.Cases {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		sc := generate(rng, fmt.Sprintf("prop-%d-%d", cfg.Seed, i), cfg.Events, cfg.Backfill)
		n, pub, msg := runCase(set, st, sc, cfg, rng.Uint64())
		if msg != "" {
			t.Fatalf("case %d (seed %d): %s\n%s", i, cfg.Seed, msg, sc.describe())
		}
		periods, published, batches = periods+n, published+pub, batches+len(sc.batches)
	}
	t.Logf("property: %d batches delivered; the oracle's findings cover %d (rule, group, period); %d findings published; the largest digest reported %d held", batches, periods, published, digestHeld.Load())
	if cfg.Cases >= 10 && periods == 0 {
		t.Fatal("property: no case produced a finding: the generator tests nothing")
	}
	if cfg.Cases >= 100 && digestHeld.Load() < 10 {
		t.Errorf("property: no digest reported 10 or more held findings: the budgets are not tested past their first steps")
	}
}

// scenario is one generated case.
type scenario struct {
	cluster string
	events  []genEvent // in generation order; times are not sorted
	batches [][]int    // indices into events, one slice per batch
	streams []string
}

type genEvent struct {
	// req numbers the request this record is of: a long-running request
	// (a watch) has a ResponseStarted record, a ResponseComplete record,
	// or both, each an event of its own.
	req    int
	stage  string
	done   time.Time // stageTimestamp
	at     time.Time
	src    string
	verb   string
	path   string
	code   int
	stream int
	line   []byte
}

func (sc *scenario) describe() string {
	var b strings.Builder
	order := make([]int, len(sc.events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return sc.events[x].at.Compare(sc.events[y].at) })
	fmt.Fprintf(&b, "events by time (%d):\n", len(sc.events))
	for _, i := range order {
		e := sc.events[i]
		fmt.Fprintf(&b, "  #%d %s %s %s %s %d %s of request %d\n", i, e.at.Format("15:04:05.000"), e.src, e.verb, e.path, e.code, e.stage, e.req)
	}
	fmt.Fprintf(&b, "batches in delivery order: %v\n", sc.batches)
	return b.String()
}

var (
	propSources = []string{"203.0.113.7", "198.51.100.23", "2001:db8::44", "192.0.2.9"}
	propPaths   = []string{"/api/v1/pods", "/api/v1/secrets", "/apis", "/version", "/api/v1/namespaces/default/pods", "/.env", "/metrics"}
)

// generate makes a scenario: bursts of requests from a few addresses over
// up to three hours, written by up to three API server streams.
func generate(rng *rand.Rand, cluster string, maxEvents int, perStream bool) *scenario {
	sc := &scenario{cluster: cluster}
	nStreams := 1 + rng.IntN(3)
	for s := range nStreams {
		sc.streams = append(sc.streams, fmt.Sprintf("kube-apiserver-audit-%d", s))
	}
	srcs := propSources[:1+rng.IntN(len(propSources))]
	n := 1 + rng.IntN(maxEvents)
	span := time.Duration(5+rng.IntN(180)) * time.Minute
	// Start anywhere in an hour, so windows and periods meet every edge.
	base := T0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
	var bursts []time.Time
	for range 1 + rng.IntN(6) {
		bursts = append(bursts, base.Add(time.Duration(rng.Int64N(int64(span)))))
	}
	for i := range n {
		// Most requests near a burst, some anywhere: thresholds are
		// crossed, missed and crossed again across window edges.
		at := base.Add(time.Duration(rng.Int64N(int64(span))))
		if rng.IntN(4) > 0 {
			at = bursts[rng.IntN(len(bursts))].Add(time.Duration(rng.Int64N(int64(4 * time.Minute))))
		}
		at = at.Truncate(time.Millisecond)
		e := genEvent{
			at:     at,
			src:    srcs[rng.IntN(len(srcs))],
			verb:   []string{"get", "list", "list", "watch", "create"}[rng.IntN(5)],
			path:   propPaths[rng.IntN(len(propPaths))],
			code:   403,
			stream: rng.IntN(nStreams),
		}
		switch r := rng.IntN(20); {
		case r == 0 && e.verb == "create":
			e.code = 201
		case r == 1:
			e.code = 200
		case r == 2:
			e.code = 404
		}
		e.req, e.stage, e.done = i, audit.StageResponseComplete, at
		id := fmt.Sprintf("%s-%d", cluster, i)
		if e.verb != "watch" {
			e.line = auditLine(id, &e)
			sc.events = append(sc.events, e)
			continue
		}
		// A watch: its ResponseStarted record, at the time its response
		// began, and its ResponseComplete, when the client hung up, in
		// any delivery; one of them may be missing.
		started, complete := e, e
		started.stage = audit.StageResponseStarted
		started.line = auditLine(id, &started)
		complete.done = at.Add(time.Duration(rng.Int64N(int64(3 * time.Hour)))).Truncate(time.Millisecond)
		complete.stream = rng.IntN(nStreams)
		complete.line = auditLine(id, &complete)
		switch rng.IntN(5) {
		case 0:
			sc.events = append(sc.events, started)
		case 1:
			sc.events = append(sc.events, complete)
		default:
			sc.events = append(sc.events, started, complete)
		}
	}
	sc.batches = cut(rng, sc, perStream)
	return sc
}

// cut groups the events into batches: per stream in time order with random
// cuts (what CloudWatch delivers), sometimes shuffled within a batch, and
// sometimes mixed across streams (what a replay of exported files gives).
// The batches are then shuffled, and some are delivered twice.
func cut(rng *rand.Rand, sc *scenario, perStream bool) [][]int {
	var batches [][]int
	// A backfill case delivers the function only what CloudWatch would:
	// one stream per delivery, which the live marks are kept by.
	if mix := rng.IntN(4) == 0; mix && !perStream {
		idx := rng.Perm(len(sc.events))
		for len(idx) > 0 {
			k := 1 + rng.IntN(len(idx))
			batches = append(batches, idx[:k])
			idx = idx[k:]
		}
	} else {
		for s := range sc.streams {
			var idx []int
			for i, e := range sc.events {
				if e.stream == s {
					idx = append(idx, i)
				}
			}
			slices.SortStableFunc(idx, func(x, y int) int { return sc.events[x].at.Compare(sc.events[y].at) })
			for len(idx) > 0 {
				k := 1 + rng.IntN(min(len(idx), 1+rng.IntN(20)))
				b := slices.Clone(idx[:k])
				if rng.IntN(3) == 0 {
					rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
				}
				batches = append(batches, b)
				idx = idx[k:]
			}
		}
	}
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	for i := range batches {
		if rng.IntN(6) == 0 {
			j := i + rng.IntN(len(batches)-i)
			batches = slices.Insert(batches, j, batches[i])
		}
	}
	return batches
}

func auditLine(id string, e *genEvent) []byte {
	resource := "pods"
	switch {
	case strings.Contains(e.path, "secrets"):
		resource = "secrets"
	case !strings.HasPrefix(e.path, "/api/v1/"):
		resource = ""
	}
	obj := ""
	if resource != "" {
		obj = fmt.Sprintf(`"objectRef":{"resource":%q,"apiVersion":"v1"},`, resource)
	}
	status, reason := "Failure", "Forbidden"
	if e.code < 300 {
		status, reason = "Success", ""
	}
	ts := e.at.UTC().Format("2006-01-02T15:04:05.000000Z")
	done := e.done.UTC().Format("2006-01-02T15:04:05.000000Z")
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":%q,"requestURI":%q,"verb":%q,"user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":[%q],"userAgent":"scanner/1.0",%s"responseStatus":{"metadata":{},"code":%d,"status":%q,"reason":%q},"requestReceivedTimestamp":%q,"stageTimestamp":%q}`,
		id, e.stage, e.path, e.verb, e.src, obj, e.code, status, reason, ts, done)
}

// periodKey names one rule, group and suppression period.
type periodKey struct {
	key    string
	period time.Time
}

// oracle processes the events one at a time in event-time order and
// returns the highest severity each (key, period) has a finding at, and
// each key's per-minute counts with their first and last event times.
func oracle(set *rules.Set, sc *scenario) (map[periodKey]rules.Severity, map[string]map[time.Time]detect.Bucket, error) {
	type matched struct {
		bucket time.Time
		marks  []int
		values map[rules.Field]string
	}
	order := make([]int, len(sc.events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return sc.events[x].at.Compare(sc.events[y].at) })
	seen := map[string][]matched{}
	counted := map[int]bool{} // requests already counted, by genEvent.req
	want := map[periodKey]rules.Severity{}
	buckets := map[string]map[time.Time]detect.Bucket{}
	for _, i := range order {
		// A request is counted once, at whichever of its records
		// comes first.
		if counted[sc.events[i].req] {
			continue
		}
		counted[sc.events[i].req] = true
		ev, err := audit.Parse(sc.events[i].line, audit.DefaultMaxSize)
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: %v", i, err)
		}
		at := ev.RequestReceived.UTC()
		set.Match(&ev, sc.cluster, func(r *rules.Rule, marks []int) {
			bucket := at.Truncate(detect.BucketWidthFor(r.Threshold.Window))
			var g detect.Group
			for _, f := range r.GroupBy {
				switch f {
				case rules.FieldSrcIP:
					g.SrcIP = ev.SrcIP()
				case rules.FieldClusterName:
					g.ClusterName = sc.cluster
				}
			}
			key := detect.GroupKey(r.ID, &g)
			m := matched{bucket: bucket, marks: slices.Clone(marks), values: map[rules.Field]string{}}
			for _, f := range r.DistinctFields() {
				m.values[f] = f.Value(&ev, sc.cluster)
			}
			seen[key] = append(seen[key], m)

			bs := buckets[key]
			if bs == nil {
				bs = map[time.Time]detect.Bucket{}
				buckets[key] = bs
			}
			b, ok := bs[bucket]
			if !ok {
				b = detect.Bucket{Start: bucket, First: at, Last: at}
			}
			b.Count++
			if at.Before(b.First) {
				b.First = at
			}
			if at.After(b.Last) {
				b.Last = at
			}
			bs[bucket] = b

			// The window ending at this request's minute, as far as the
			// requests so far go.
			lo := bucket.Add(-detect.WindowSpan(r.Threshold.Window))
			var count int64
			distinct := map[rules.Field]map[string]bool{}
			marked := map[int]bool{}
			for _, p := range seen[key] {
				if p.bucket.Before(lo) || p.bucket.After(bucket) {
					continue
				}
				count++
				for f, v := range p.values {
					if distinct[f] == nil {
						distinct[f] = map[string]bool{}
					}
					distinct[f][v] = true
				}
				for _, mk := range p.marks {
					marked[mk] = true
				}
			}
			meets := func(c int64, f rules.Field, n int) bool {
				if c > 0 {
					return count >= c
				}
				return f != "" && len(distinct[f]) >= n
			}
			th := r.Threshold
			if !meets(th.Count, th.Distinct, th.DistinctN) {
				return
			}
			sev := r.Severity
			for j, e := range r.Escalate {
				hit := marked[j]
				if e.When == "" {
					hit = meets(e.Count, e.Distinct, e.DistinctN)
				}
				if hit {
					sev = max(sev, e.Severity)
				}
			}
			pk := periodKey{key, detect.PeriodStart(bucket, r.Suppress)}
			want[pk] = max(want[pk], sev)
		})
	}
	return want, buckets, nil
}

// errFault is an injected failure.
var errFault = errors.New("injected fault")

// flaky decides, with probability p, that a call fails.
type flaky struct {
	mu  sync.Mutex
	rng *rand.Rand
	p   float64
}

// fail reports whether the call fails, and if so whether after it took
// effect.
func (f *flaky) fail() (fail, after bool) {
	if f.p == 0 {
		return false, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < f.p, f.rng.IntN(2) == 0
}

// flakyState fails State calls, before or after they take effect.
type flakyState struct {
	detect.State
	f *flaky
	// attempted records the merges of held findings into digests tried,
	// by batch: a fault after the merge took effect leaves one counted
	// that a retry may never hold again (it became a higher finding).
	mu        sync.Mutex
	attempted map[string]int
}

func (s *flakyState) Apply(ctx context.Context, batch string, aggs []detect.Aggregate) ([]detect.Window, error) {
	if strings.HasPrefix(batch, "held:") {
		s.mu.Lock()
		s.attempted[aggs[0].Key+" "+aggs[0].Buckets[0].Start.Format(time.RFC3339)+" "+batch]++
		s.mu.Unlock()
	}
	fail, after := s.f.fail()
	if fail && !after {
		return nil, errFault
	}
	w, err := s.State.Apply(ctx, batch, aggs)
	if fail && err == nil {
		return nil, errFault
	}
	return w, err
}

func (s *flakyState) Claim(ctx context.Context, c detect.Claim) (detect.Grant, error) {
	fail, after := s.f.fail()
	if fail && !after {
		return detect.Grant{}, errFault
	}
	g, err := s.State.Claim(ctx, c)
	if fail && err == nil {
		return detect.Grant{}, errFault
	}
	return g, err
}

func (s *flakyState) Spend(ctx context.Context, d detect.Draw) (bool, error) {
	fail, after := s.f.fail()
	if fail && !after {
		return false, errFault
	}
	ok, err := s.State.Spend(ctx, d)
	if fail && err == nil {
		return false, errFault
	}
	return ok, err
}

func (s *flakyState) MarkSent(ctx context.Context, c detect.Claim) error {
	fail, after := s.f.fail()
	if fail && !after {
		return errFault
	}
	err := s.State.MarkSent(ctx, c)
	if fail && err == nil {
		return errFault
	}
	return err
}

// flakyPublisher fails publishes, before or after delivering.
type flakyPublisher struct {
	detect.Publisher
	f *flaky
}

func (p *flakyPublisher) Publish(ctx context.Context, f *detect.Finding) error {
	fail, after := p.f.fail()
	if fail && !after {
		return errFault
	}
	err := p.Publisher.Publish(ctx, f)
	if fail && err == nil {
		return errFault
	}
	return err
}

// collector records published findings.
type collector struct {
	mu  sync.Mutex
	got []*detect.Finding
}

func (c *collector) Publish(_ context.Context, f *detect.Finding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, f)
	return nil
}

// runCase delivers sc's batches to a detector over st and compares the
// outcome with the oracle. It returns the number of (key, period) the
// oracle has findings for, the findings published, and what disagreed
// ("" when nothing did).
func runCase(set *rules.Set, st detect.State, sc *scenario, pc PropertyConfig, seed uint64) (periods, published int, problem string) {
	workers, faults, backfill := pc.Workers, pc.Faults, pc.Backfill
	want, wantBuckets, err := oracle(set, sc)
	if err != nil {
		return 0, 0, err.Error()
	}
	periods = len(want)
	pub := &collector{}
	defer func() { published = len(pub.got) }()
	fl := &flaky{rng: rand.New(rand.NewPCG(seed, 0)), p: faults}
	var heldMu sync.Mutex
	held := map[string]*detect.Finding{} // by ID: a retry may hold one again
	fst := &flakyState{State: st, f: fl, attempted: map[string]int{}}
	cfg := detect.Config{
		Rules: set, State: fst, Publisher: &flakyPublisher{pub, fl},
		Held: func(_ context.Context, f *detect.Finding) {
			heldMu.Lock()
			held[f.ID] = f
			heldMu.Unlock()
		},
		MarkLive: backfill,
	}
	det, err := detect.New(cfg)
	if err != nil {
		return periods, 0, err.Error()
	}
	var (
		fence  time.Time
		filler *detect.Detector
		model  *liveModel
	)
	if backfill {
		// The function starts at some event's time, or before or after
		// them all.
		rng := rand.New(rand.NewPCG(seed, 1))
		fence = sc.events[rng.IntN(len(sc.events))].at
		switch rng.IntN(8) {
		case 0:
			fence = T0.Add(-time.Hour)
		case 1:
			fence = T0.Add(24 * time.Hour)
		}
		model = newLiveModel(rng, sc, fence, pc.Ingest)
		cfg.MarkLive = false
		cfg.Fence = func(ctx context.Context, cluster, stream string) (time.Time, error) {
			marks, err := fst.LiveSince(ctx, cluster)
			return detect.FenceOf(marks, stream), err
		}
		if filler, err = detect.New(cfg); err != nil {
			return periods, 0, err.Error()
		}
	}
	batches := make([]*cwlogs.Batch, len(sc.batches))
	for bi, idx := range sc.batches {
		b := &cwlogs.Batch{
			MessageType: cwlogs.DataMessage,
			LogGroup:    "/aws/eks/" + sc.cluster + "/cluster",
			LogStream:   sc.streams[sc.events[idx[0]].stream],
			Cluster:     sc.cluster,
		}
		for _, i := range idx {
			e := &sc.events[i]
			ts := e.at
			if backfill {
				if !model.delivered(e) {
					continue // before the function began
				}
				ts = model.logTime(e)
			}
			b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprintf("%s-%d", sc.cluster, i), Timestamp: ts.UnixMilli(), Message: e.line})
		}
		batches[bi] = b
	}
	// A batch delivered twice is a Lambda retry: the second delivery starts
	// after the first has ended, as Lambda's retries do; other batches run
	// concurrently with both.
	type delivery struct {
		b     *cwlogs.Batch
		after chan struct{} // closed when the previous delivery ended; nil for the first
		done  chan struct{}
	}
	prev := map[*cwlogs.Batch]chan struct{}{}
	var plan []delivery
	for bi := range sc.batches {
		b := batches[bi]
		// sc.batches repeats a slice for a retry; find its first copy.
		for bj := range bi {
			if &sc.batches[bj][0] == &sc.batches[bi][0] {
				b = batches[bj]
				break
			}
		}
		d := delivery{b: b, done: make(chan struct{})}
		d.after = prev[b] // nil for the first delivery
		prev[b] = d.done
		plan = append(plan, d)
	}
	work := make(chan delivery)
	errs := make(chan error, len(plan))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range work {
				if d.after != nil {
					<-d.after
				}
				var err error
				for range 100 {
					if _, err = det.Process(context.Background(), d.b); err == nil {
						break
					}
				}
				if err != nil {
					errs <- err
				}
				close(d.done)
			}
		})
	}
	for _, d := range plan {
		work <- d
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		return periods, 0, "Process: " + err.Error()
	}
	if backfill {
		if msg := runBackfill(filler, fst, sc, model, seed); msg != "" {
			return periods, 0, msg
		}
	}

	got := map[periodKey][]rules.Severity{}
	ids := map[string]string{} // (key, period, severity) → finding_id
	var problems []string
	type budgetKey struct {
		rule   string
		period time.Time
		sev    rules.Severity
	}
	var (
		digests    = map[budgetKey][]*detect.Finding{}
		individual []*detect.Finding
		all        []*detect.Finding
	)
	seen := map[string]bool{}
	for _, f := range pub.got {
		if seen[f.ID] {
			continue // a retry delivered it again, with the same ID
		}
		seen[f.ID] = true
		if f.Digest != nil {
			sev, _ := rules.ParseSeverity(f.Severity)
			bk := budgetKey{f.Rule, f.Digest.PeriodStart, sev}
			digests[bk] = append(digests[bk], f)
			continue
		}
		individual = append(individual, f)
	}
	all = append(all, individual...)
	for _, id := range slices.Sorted(maps.Keys(held)) {
		all = append(all, held[id])
	}
	for _, f := range all {
		r := set.Rule(f.Rule)
		if r == nil {
			return periods, 0, "finding of unknown rule " + f.Rule
		}
		g := detect.Group{SrcIP: f.SrcIP, ClusterName: f.ClusterName}
		sev, err := rules.ParseSeverity(f.Severity)
		if err != nil {
			return periods, 0, err.Error()
		}
		end := f.LastSeen.Truncate(detect.BucketWidthFor(r.Threshold.Window))
		pk := periodKey{detect.GroupKey(f.Rule, &g), detect.PeriodStart(end, r.Suppress)}
		// The same finding twice (a lost acknowledgement, retried) keeps
		// its id; two ids for one (key, period, severity) are two findings.
		id := fmt.Sprintf("%s %s %v", pk.key, pk.period.Format(time.RFC3339), sev)
		if prev, ok := ids[id]; ok {
			if prev != f.ID {
				problems = append(problems, fmt.Sprintf("%s: two findings, ids %s and %s", id, prev, f.ID))
			}
			continue
		}
		ids[id] = f.ID
		got[pk] = append(got[pk], sev)
		// A finding counts at most what the window ending at its last
		// request holds once every event has arrived.
		var full int64
		for start, b := range wantBuckets[pk.key] {
			if !start.After(end) && !start.Before(end.Add(-detect.WindowSpan(r.Threshold.Window))) {
				full += b.Count
			}
		}
		if f.Count < 1 || f.Count > full {
			problems = append(problems, fmt.Sprintf("%s: count %d, the complete window holds %d", id, f.Count, full))
		}
	}
	for pk, sevs := range got {
		if slices.Max(sevs) != want[pk] {
			problems = append(problems, fmt.Sprintf("%s period %s: published %v, oracle's highest %v", pk.key, pk.period.Format("15:04"), sevs, want[pk]))
		}
		sorted := slices.Clone(sevs)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(sevs) {
			problems = append(problems, fmt.Sprintf("%s period %s: a severity published twice: %v", pk.key, pk.period.Format("15:04"), sevs))
		}
	}
	for pk, sev := range want {
		if got[pk] == nil {
			problems = append(problems, fmt.Sprintf("%s period %s: no finding, oracle has %v", pk.key, pk.period.Format("15:04"), sev))
		}
	}

	// Budgets: a finding spent a place of its severity if it went out on
	// its own, is not critical, and nothing lower went out on its own for
	// its group and period (so it was no rise; a held finding is no rise
	// base). Some rises may have spent a place too, so this undercounts
	// the places taken, and must stay within the limit.
	// locate returns f's rule, severity, last bucket and (group, period).
	locate := func(f *detect.Finding) (*rules.Rule, rules.Severity, time.Time, periodKey) {
		r := set.Rule(f.Rule)
		sev, _ := rules.ParseSeverity(f.Severity)
		end := f.LastSeen.Truncate(detect.BucketWidthFor(r.Threshold.Window))
		g := detect.Group{SrcIP: f.SrcIP, ClusterName: f.ClusterName}
		return r, sev, end, periodKey{detect.GroupKey(f.Rule, &g), detect.PeriodStart(end, r.Suppress)}
	}
	sentSevs := map[periodKey][]rules.Severity{}
	for _, f := range individual {
		_, sev, _, pk := locate(f)
		sentSevs[pk] = append(sentSevs[pk], sev)
	}
	// heldBy counts the held findings of each digest; reportable, those
	// whose group was not sent or held at a higher severity in its period
	// (a retry may hold a finding, fail, and then find its group risen):
	// the digest must report at least those.
	heldBy, reportable := map[budgetKey]int64{}, map[budgetKey]int64{}
	for _, f := range held {
		r, sev, end, pk := locate(f)
		bk := budgetKey{f.Rule, detect.PeriodStart(end, r.Budget.Period), sev}
		heldBy[bk]++
		if slices.Max(got[pk]) <= sev {
			reportable[bk]++
		}
	}
	spent := map[budgetKey]int{}
	for _, f := range individual {
		r, sev, end, pk := locate(f)
		if r.Budget.Count == 0 || sev >= rules.Critical || slices.Min(sentSevs[pk]) < sev {
			continue
		}
		bk := budgetKey{f.Rule, detect.PeriodStart(end, r.Budget.Period), sev}
		if spent[bk]++; spent[bk] > r.Budget.Count {
			problems = append(problems, fmt.Sprintf("budget %s %s: %d findings went out on their own, the budget allows %d", bk.rule+"/"+bk.sev.String(), bk.period.Format("15:04"), spent[bk], r.Budget.Count))
		}
	}
	// Digests: each holds every held finding once, and the digest of the
	// highest power of ten reached went out, reporting no more than were
	// held.
	var dkeys []budgetKey
	for bk := range heldBy {
		dkeys = append(dkeys, bk)
	}
	for bk := range digests {
		if _, ok := heldBy[bk]; !ok {
			dkeys = append(dkeys, bk)
		}
	}
	if len(dkeys) > 0 {
		daggs := make([]detect.Aggregate, len(dkeys))
		for i, bk := range dkeys {
			r := set.Rule(bk.rule)
			daggs[i] = detect.Aggregate{Key: detect.DigestKey(bk.rule, sc.cluster, bk.sev), Window: r.Budget.Period,
				Buckets: []detect.Bucket{{Start: bk.period, First: bk.period, Last: bk.period}}}
		}
		// One probe per key: a batch may not name a key twice.
		for i := range daggs {
			wins, err := st.Apply(context.Background(), fmt.Sprintf("digest-probe-%s-%d", sc.cluster, i), daggs[i:i+1])
			if err != nil {
				return periods, 0, "digest probe: " + err.Error()
			}
			var n int64
			for _, b := range wins[0].Buckets {
				if b.Start.Equal(dkeys[i].period) {
					n += b.Count
				}
			}
			bk := dkeys[i]
			var tried int64
			prefix := daggs[i].Key + " " + bk.period.Format(time.RFC3339) + " "
			for k := range fst.attempted {
				if strings.HasPrefix(k, prefix) {
					tried++
				}
			}
			if n < heldBy[bk] || n > tried {
				problems = append(problems, fmt.Sprintf("digest %s %s: counts %d held findings; %d were held, %d tried", bk.rule+"/"+bk.sev.String(), bk.period.Format("15:04"), n, heldBy[bk], tried))
			}
			var top int64
			for _, f := range digests[bk] {
				if f.Digest.Held > n {
					problems = append(problems, fmt.Sprintf("digest %s %s: reports %d held, it counts %d", bk.rule+"/"+bk.sev.String(), bk.period.Format("15:04"), f.Digest.Held, n))
				}
				top = max(top, f.Digest.Held)
			}
			if lvl := level(reportable[bk]); top < lvl {
				problems = append(problems, fmt.Sprintf("digest %s %s: %d held (%d not risen), the last digest published reports %d, want at least %d", bk.rule+"/"+bk.sev.String(), bk.period.Format("15:04"), heldBy[bk], reportable[bk], top, lvl))
			}
			for old := digestHeld.Load(); top > old && !digestHeld.CompareAndSwap(old, top); old = digestHeld.Load() {
			}
		}
	}

	// Counts, first and last per stored bucket: read every key's buckets
	// through a probe one minute after the last event, whose window reaches
	// back over the whole scenario.
	var last time.Time
	for _, e := range sc.events {
		if e.at.After(last) {
			last = e.at
		}
	}
	probe := last.Truncate(detect.BucketWidth).Add(detect.BucketWidth)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range wantBuckets {
			if !yield(k) {
				return
			}
		}
	})
	var aggs []detect.Aggregate
	for _, k := range keys {
		aggs = append(aggs, detect.Aggregate{Key: k, Window: 24 * time.Hour, Buckets: []detect.Bucket{{Start: probe, First: probe, Last: probe}}})
	}
	wins, err := st.Apply(context.Background(), "probe-"+sc.cluster, aggs)
	if err != nil {
		return periods, 0, "probe: " + err.Error()
	}
	for i, k := range keys {
		var stored []detect.Bucket
		for _, b := range wins[i].Buckets {
			if !b.Start.Equal(probe) {
				stored = append(stored, detect.Bucket{Start: b.Start, Count: b.Requests(), First: b.First, Last: b.Last})
			}
		}
		expect := make([]detect.Bucket, 0, len(wantBuckets[k]))
		for _, b := range wantBuckets[k] {
			expect = append(expect, b)
		}
		slices.SortFunc(expect, func(x, y detect.Bucket) int { return x.Start.Compare(y.Start) })
		if !slices.EqualFunc(stored, expect, func(x, y detect.Bucket) bool {
			return x.Start.Equal(y.Start) && x.Count == y.Count && x.First.Equal(y.First) && x.Last.Equal(y.Last)
		}) {
			problems = append(problems, fmt.Sprintf("%s: stored buckets %v, oracle %v", k, brief(stored), brief(expect)))
		}
	}
	if len(problems) == 0 {
		return periods, 0, ""
	}
	slices.Sort(problems)
	return periods, 0, fmt.Sprintf("%d findings published; %d problems:\n  %s", len(pub.got), len(problems), strings.Join(problems, "\n  "))
}

// digestHeld is the most held findings a published digest reported, over
// the run: the property must reach digests past their first steps.
var digestHeld atomic.Int64

// level is the highest of 1, 2, 5, 10, 20, 50, … at most n, 0 for none.
func level(n int64) int64 {
	l := int64(0)
	for p := int64(1); p <= n; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if p*m <= n {
				l = p * m
			}
		}
	}
	return l
}

func brief(bs []detect.Bucket) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s×%d[%s–%s]", b.Start.Format("15:04"), b.Count, b.First.Format("05.000"), b.Last.Format("05.000"))
	}
	return strings.Join(parts, " ")
}

// PropertyEnv returns cfg with Cases and Seed taken from the environment
// when set: ANONWATCH_PROPERTY_CASES and ANONWATCH_PROPERTY_SEED ("random"
// for a seed from the clock), which `make soak` uses for longer runs. The
// seed is logged so a failure can be replayed.
func PropertyEnv(t *testing.T, cfg PropertyConfig) PropertyConfig {
	if v := os.Getenv("ANONWATCH_PROPERTY_CASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ANONWATCH_PROPERTY_CASES=%q: want a positive number", v)
		}
		cfg.Cases = n
	}
	switch v := os.Getenv("ANONWATCH_PROPERTY_SEED"); v {
	case "":
	case "random":
		cfg.Seed = uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ANONWATCH_PROPERTY_SEED=%q: want a number or random", v)
		}
		cfg.Seed = n
	}
	t.Logf("property: %d cases, seed %d, %d workers", cfg.Cases, cfg.Seed, cfg.Workers)
	return cfg
}

// runBackfill replays every event of sc through filler after the function
// has been delivered those from fence on: in batches of its own, with ids
// of its own (an export's are not CloudWatch's), in random order, some
// retried, as anonwatch replay --table does. It first checks the mark the
// function left.
func runBackfill(filler *detect.Detector, st *flakyState, sc *scenario, model *liveModel, seed uint64) string {
	ctx := context.Background()
	// The function marks each stream from the earliest event it counted,
	// watches aside (every generated event is anonymous, so counted).
	first := map[string]time.Time{}
	for i := range sc.events {
		e := &sc.events[i]
		s := sc.streams[e.stream]
		if t := model.logTime(e); model.delivered(e) && e.verb != "watch" && (first[s].IsZero() || t.Before(first[s])) {
			first[s] = t
		}
	}
	for range 100 {
		got, err := st.LiveSince(ctx, sc.cluster)
		if err != nil {
			continue
		}
		if !maps.EqualFunc(got, first, time.Time.Equal) {
			return fmt.Sprintf("live marks %v after the function's deliveries, want each stream's earliest event %v", got, first)
		}
		break
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	idx := rng.Perm(len(sc.events))
	for len(idx) > 0 {
		k := 1 + rng.IntN(min(len(idx), 1+rng.IntN(30)))
		b := &cwlogs.Batch{
			MessageType: cwlogs.DataMessage,
			LogGroup:    "/aws/eks/" + sc.cluster + "/cluster",
			LogStream:   sc.streams[sc.events[idx[0]].stream],
			Cluster:     sc.cluster,
			Gathered:    true,
		}
		// An archive names each event's stream, and replay batches them
		// by it; JSON lines are named by their file, here one per
		// stream named after it (replay drops the extension).
		var take, rest []int
		for _, i := range idx {
			if len(take) < k && sc.events[i].stream == sc.events[idx[0]].stream {
				take = append(take, i)
			} else {
				rest = append(rest, i)
			}
		}
		for _, i := range take {
			e := &sc.events[i]
			le := cwlogs.LogEvent{ID: fmt.Sprintf("backfill-%s-%d", sc.cluster, i), Timestamp: model.logTime(e).UnixMilli(), Message: e.line}
			if model.lines {
				le.Timestamp = 0
			}
			b.Events = append(b.Events, le)
		}
		idx = rest
		for range 1 + rng.IntN(2) { // some batches twice
			var err error
			for range 100 {
				if _, err = filler.Process(ctx, b); err == nil {
					break
				}
			}
			if err != nil {
				return "backfill Process: " + err.Error()
			}
		}
	}
	return ""
}

// MarkLive and LiveSince pass on to the State's, failing as the rest.
func (s *flakyState) MarkLive(ctx context.Context, cluster, stream string, at time.Time) error {
	fail, after := s.f.fail()
	if fail && !after {
		return errFault
	}
	err := s.State.(detect.LiveMarks).MarkLive(ctx, cluster, stream, at)
	if fail && err == nil {
		return errFault
	}
	return err
}

func (s *flakyState) LiveSince(ctx context.Context, cluster string) (map[string]time.Time, error) {
	if fail, _ := s.f.fail(); fail {
		return nil, errFault
	}
	return s.State.(detect.LiveMarks).LiveSince(ctx, cluster)
}

// liveModel says which records the function was delivered in a backfill
// case, and with which log event times.
type liveModel struct {
	since     time.Time       // the function's subscription began
	lag       []time.Duration // per stream; nil: the plain cut at since
	stageTime bool
	lines     bool
}

func newLiveModel(rng *rand.Rand, sc *scenario, since time.Time, in *Ingest) *liveModel {
	m := &liveModel{since: since}
	if in == nil {
		return m
	}
	m.stageTime, m.lines = in.StageTime, in.Lines
	m.lag = make([]time.Duration, len(sc.streams))
	for s := range m.lag {
		if in.Lag > 0 {
			m.lag[s] = time.Duration(rng.Int64N(int64(in.Lag))).Truncate(time.Millisecond)
		}
	}
	return m
}

// logTime is e's CloudWatch log event time.
func (m *liveModel) logTime(e *genEvent) time.Time {
	if m.stageTime {
		return e.done
	}
	return e.at
}

// delivered reports whether the function was delivered e.
func (m *liveModel) delivered(e *genEvent) bool {
	if m.lag == nil {
		return !e.at.Before(m.since)
	}
	return !e.done.Add(m.lag[e.stream]).Before(m.since)
}
