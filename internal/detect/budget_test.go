package detect_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/evasion"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// budgetRun runs the default rules over memstate one delivery at a time,
// recording what is published and what the budgets hold.
type budgetRun struct {
	t    *testing.T
	d    *detect.Detector
	st   *memstate.State
	pub  *recorder
	held []*detect.Finding
	n    int
}

func newBudgetRun(t *testing.T) *budgetRun { return newBudgetRunWith(t, 1) }

// newBudgetRunWith is newBudgetRun with Config.HoldWorkers.
func newBudgetRunWith(t *testing.T, holdWorkers int) *budgetRun {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	r := &budgetRun{t: t, pub: &recorder{}}
	var mu sync.Mutex
	r.st = memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease)
	r.d, err = detect.New(detect.Config{Rules: set, State: r.st, Publisher: r.pub, HoldWorkers: holdWorkers,
		Held: func(_ context.Context, f *detect.Finding) { mu.Lock(); r.held = append(r.held, f); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *budgetRun) deliver(reqs ...evasion.Request) detect.Result {
	b := &cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: evasion.LogGroup, LogStream: evasion.Stream, Cluster: evasion.Cluster}
	for _, q := range reqs {
		r.n++
		l := q.Line()
		b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprint(r.n), Timestamp: q.At.UnixMilli(), Message: l, Size: len(l)})
	}
	res, err := r.d.Process(context.Background(), b)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func podList(at time.Time, ip string, code int) evasion.Request {
	dec := "forbid"
	if code < 300 {
		dec = "allow"
	}
	return evasion.Request{At: at, Stage: "ResponseComplete", URI: "/api/v1/namespaces/default/pods", Verb: "list",
		Anonymous: true, SourceIPs: []string{ip}, Resource: "pods", Namespace: "default", Code: code, Decision: dec,
		UserAgent: "curl/8"}
}

func (r *budgetRun) dump() {
	for _, f := range r.pub.got {
		r.t.Logf("published: rule=%s sev=%s digest=%v src=%s values[src_ip]=%v | %s", f.Rule, f.Severity, f.Digest != nil, f.SrcIP, f.Values["src_ip"], f.Summary)
	}
}

// TestBudgetKeepsSeveritiesApart: 25 refused anonymous pod lists from 25
// addresses spend eks-pod-scan's medium budget; a successful list (high)
// from a new address then still goes out on its own, since each severity
// has a budget of its own.
func TestBudgetKeepsSeveritiesApart(t *testing.T) {
	r := newBudgetRun(t)
	for i := range 25 {
		r.deliver(podList(evasion.T0.Add(time.Duration(i)*time.Second), fmt.Sprintf("203.0.113.%d", 10+i), 403))
	}
	before := len(r.pub.got)
	reader := "198.51.100.200"
	r.deliver(podList(evasion.T0.Add(2*time.Minute), reader, 200))
	var alone []string
	for _, f := range r.pub.got[before:] {
		if f.Digest == nil && f.SrcIP == reader {
			alone = append(alone, f.Rule+" "+f.Severity)
		}
	}
	slices.Sort(alone)
	want := []string{"anonymous-request-allowed high", "eks-pod-scan high"}
	if !slices.Equal(alone, want) {
		r.dump()
		t.Errorf("findings of %s on their own: %v, want %v", reader, alone, want)
	}
}

// TestBudgetRisesOnlyAboveSent: 40 addresses of a /64 send 1 request each
// (low; 5 go out, 35 are held), then 9 more each (medium). The 5 that went
// out rise to medium on their own; the 35 held are no rise, so they draw
// on the medium budget: at most twice the budget goes out at medium.
func TestBudgetRisesOnlyAboveSent(t *testing.T) {
	r := newBudgetRun(t)
	const n = 40
	addr := func(i int) string { return fmt.Sprintf("2001:db8:7:1::%x", i+1) }
	var first, second []evasion.Request
	for i := range n {
		first = append(first, evasion.Request{At: evasion.T0.Add(time.Duration(i) * time.Second), Stage: "ResponseComplete", URI: "/version",
			Verb: "get", Anonymous: true, SourceIPs: []string{addr(i)}, Code: 403, Decision: "forbid"})
		for j := range 9 {
			second = append(second, evasion.Request{At: evasion.T0.Add(time.Minute + time.Duration(i*9+j)*100*time.Millisecond), Stage: "ResponseComplete",
				URI: "/version", Verb: "get", Anonymous: true, SourceIPs: []string{addr(i)}, Code: 403, Decision: "forbid"})
		}
	}
	r.deliver(first...)
	mid := len(r.pub.got)
	r.deliver(second...)
	medium := 0
	for _, f := range r.pub.got[mid:] {
		if f.Digest == nil && f.Rule == "eks-cluster-scan" && f.Severity == "medium" {
			medium++
		}
	}
	if medium != 10 {
		r.dump()
		t.Errorf("%d eks-cluster-scan findings at medium on their own, want 10: the 5 sent at low rising, and the medium budget of 5", medium)
	}
}

// TestDigestSteps: 104 refused pod lists from 104 addresses, one delivery
// each: 99 held per rule. Digests go out at 1, 2, 5, 10, 20 and 50 held,
// so the last one reports at least two fifths of what was held.
func TestDigestSteps(t *testing.T) {
	r := newBudgetRun(t)
	for i := range 104 {
		r.deliver(podList(evasion.T0.Add(time.Duration(i)*time.Second), fmt.Sprintf("203.0.%d.%d", 113+i/200, 10+i%200), 403))
	}
	steps := map[string][]int64{}
	for _, f := range r.pub.got {
		if f.Digest != nil {
			steps[f.Rule] = append(steps[f.Rule], f.Digest.Held)
		}
	}
	want := []int64{1, 2, 5, 10, 20, 50}
	for _, rule := range []string{"eks-pod-scan", "eks-cluster-scan"} {
		if !slices.Equal(steps[rule], want) {
			t.Errorf("%s: digests reported %v held, want %v", rule, steps[rule], want)
		}
	}
	if len(r.held) != 2*99 {
		t.Errorf("%d findings held, want 99 for each of the two rules", len(r.held))
	}
}

// TestDigestsSameEveryTime: one delivery of refused pod lists from 80
// addresses holds most of their findings, and its digests sample the
// sources of the held findings merged first. With HoldWorkers 1 they are
// merged in order, so every run publishes the same digests.
func TestDigestsSameEveryTime(t *testing.T) {
	publish := func() []*detect.Finding {
		r := newBudgetRunWith(t, 1)
		var reqs []evasion.Request
		for i := range 80 {
			reqs = append(reqs, podList(evasion.T0.Add(time.Duration(i)*time.Second), fmt.Sprintf("203.0.113.%d", 10+i), 403))
		}
		r.deliver(reqs...)
		return r.pub.got
	}
	want := publish()
	if !slices.ContainsFunc(want, func(f *detect.Finding) bool { return f.Digest != nil }) {
		t.Fatal("no digest published: the test would compare nothing")
	}
	for range 5 {
		if diff := cmp.Diff(want, publish()); diff != "" {
			t.Fatalf("another run published other findings (-first +again):\n%s", diff)
		}
	}
}
