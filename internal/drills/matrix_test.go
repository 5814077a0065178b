//go:build integration

package drills

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/faultproxy"
	"github.com/anonwatch/anonwatch/internal/snspub"
)

// matrixEvent is the matrix's representative event: three findings, so an
// invocation makes every kind of call (Query, bucket merges, claims,
// publishes, mark-sents) more than once.
const matrixEvent = "cluster-scan-masscan.json"

// matrixFindings is what matrixEvent delivers on a fresh table with the
// default rules, worked out by hand from events/src/cluster-scan-masscan.jsonl
// and internal/rules/default.yaml: twelve anonymous requests from
// 198.51.100.23 to twelve paths, ten of them refused.
var matrixFindings = []outcome{
	{Rule: "anonymous-enumeration", SrcIP: "198.51.100.23", Severity: "medium", Count: 12},
	{Rule: "eks-cluster-scan", SrcIP: "198.51.100.23", Severity: "medium", Count: 12},
	{Rule: "unauthenticated-403-burst", SrcIP: "198.51.100.23", Severity: "medium", Count: 10},
}

// matrixWorkers bounds the cells run at once. Most of a cell's time is
// spent waiting (SDK backoff, attempt timeouts), so more cells than cores
// run at once; restart cells run one at a time besides, since they share
// the emulator they kill.
const matrixWorkers = 8

// cell is one entry of the matrix: a fault of kind at the pos-th request to
// svc in the first invocation, once or persistent. The zero cell is the
// fault-free baseline.
type cell struct {
	kind       faultKind
	svc        service
	pos        int
	persistent bool
}

func (c cell) variant() string {
	if c.persistent {
		return "persistent"
	}
	return "once"
}

func (c cell) String() string {
	return fmt.Sprintf("%s/%s/%s-%d", c.kind.flagName(), c.variant(), c.svc, c.pos)
}

// cellResult is what one cell did.
type cellResult struct {
	cell
	err         error // the drill itself failed (setup, reading results)
	hit         call  // the call at the fault's position
	attempts    int   // requests the proxy saw for it
	invocations int
	failures    []string // how the failed invocations failed
	lastOK      bool
	calls       map[service][]call
	items       []item
	findings    []detect.Finding // every delivery, duplicates included
	took        time.Duration
}

// rig runs cells.
type rig struct {
	event         []byte
	restartDynamo *emu.Server // killed by restart cells, one at a time
	restartSNS    *emu.Server
	topo          emu.Topology // restartSNS's topic and queue
}

// run runs one cell: a fresh table, topic and queue, fresh proxies and a
// fresh function; it invokes the event and, while the invocation fails,
// invokes it again, up to Lambda's retries, the fault gone after the first.
func (g *rig) run(ctx context.Context, c cell, name string) (res cellResult) {
	res.cell = c
	began := time.Now()
	defer func() { res.took = time.Since(began) }()

	dyn, snsSrv := sharedDynamo, sharedSNS
	if c.kind == restart && c.svc == dynamoDB {
		dyn = g.restartDynamo
	}
	if c.kind == restart && c.svc == sns {
		snsSrv = g.restartSNS
	}
	if res.err = emu.CreateTable(ctx, dyn.URL(), name); res.err != nil {
		return res
	}
	var topic string
	var q emu.Queue
	if snsSrv == g.restartSNS {
		topic, q = emu.ConfigTopic(g.topo.Topic), snsSrv.ConfigQueue(g.topo.Queue)
		if _, res.err = emu.Receive(ctx, q); res.err != nil { // left by an earlier cell: none
			return res
		}
	} else if topic, q, res.err = createTopicAndQueue(ctx, snsSrv.URL(), name); res.err != nil {
		return res
	}

	pd := faultproxy.New(dyn.URL())
	defer pd.Close()
	ps := faultproxy.New(snsSrv.URL())
	defer ps.Close()
	ps.SetProtocol(faultproxy.AWSQuery)
	inj := map[service]*injector{dynamoDB: {svc: dynamoDB}, sns: {svc: sns}}
	var (
		drainMu sync.Mutex // the rule drains while the proxy serves
		drained []emu.Message
	)
	if c.pos > 0 {
		in := inj[c.svc]
		in.kind, in.pos, in.persistent = c.kind, int64(c.pos), c.persistent
		in.stallFor = settings.Timeout + time.Minute // longer than any invocation: the proxy's Close ends it
		in.srv = dyn
		if c.svc == sns {
			in.srv = snsSrv
			// goaws loses queued messages when killed: read them first,
			// as a subscriber would have.
			in.beforeKill = func() {
				msgs, err := emu.Receive(ctx, q)
				drainMu.Lock()
				drained = append(drained, msgs...)
				drainMu.Unlock()
				if err != nil {
					in.restartErr = err
				}
			}
		}
	}
	pd.SetRule(inj[dynamoDB].rule)
	ps.SetRule(inj[sns].rule)

	env := functionEnv(pd.URL(), ps.URL(), name, topic)
	fn, err := rie.Start(ctx, rie.Config{Emulator: emulatorBin, Dir: functionDir, Env: env})
	if err != nil {
		res.err = err
		return res
	}
	defer func() { fn.Stop() }()
	for attempt := 1; attempt <= 1+settings.MaxRetryAttempts; attempt++ {
		iv, err := invoke(ctx, fn, g.event)
		if err != nil {
			res.err = fmt.Errorf("%w; emulator output:\n%s", err, tail(fn.Output(), 4000))
			return res
		}
		res.invocations++
		if attempt == 1 && c.pos > 0 {
			if res.err = inj[c.svc].Recover(); res.err != nil {
				return res
			}
		}
		if iv.OK() {
			res.lastOK = true
			break
		}
		res.failures = append(res.failures, describeFailure(iv))
		if iv.TimedOut {
			// Lambda does not reuse an environment whose invocation
			// timed out.
			fn.Stop()
			fresh, err := rie.Start(ctx, rie.Config{Emulator: emulatorBin, Dir: functionDir, Env: env})
			if err != nil {
				res.err = err
				return res
			}
			fn = fresh
		}
	}
	if c.pos > 0 {
		res.hit, res.attempts = inj[c.svc].Hit()
	}
	res.calls = map[service][]call{dynamoDB: inj[dynamoDB].Calls(), sns: inj[sns].Calls()}
	if res.items, res.err = scan(ctx, dyn.URL(), name); res.err != nil {
		return res
	}
	msgs, err := emu.Receive(ctx, q)
	if err != nil {
		res.err = err
		return res
	}
	drainMu.Lock()
	msgs = append(drained, msgs...)
	drainMu.Unlock()
	res.findings, res.err = decodeFindings(msgs)
	return res
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// describeFailure says how an invocation failed, for the matrix.
func describeFailure(iv *invocation) string {
	switch {
	case iv.TimedOut:
		return "timed out"
	case iv.Err.Type != "":
		return iv.Err.Type + ": " + iv.Err.Message
	}
	return fmt.Sprintf("HTTP %d %.200s", iv.Resp.Status, iv.Resp.Body)
}

// TestFaultMatrix injects each kind of fault at each position among one
// invocation's HTTP calls to DynamoDB and to SNS, once (which the SDK's
// retries absorb) and persistently (every SDK attempt of that call fails,
// so the invocation fails and is invoked again, as Lambda retries it), and
// checks that the table ends exactly as after a fault-free run and that
// every finding is delivered once, or, where the README's duplicate window
// applies, as often as that window says, always with the same finding_id.
//
// The faults: 500 and throttling answers; a connection dropped before the
// request reaches the emulator; a stall past the SDK's per-attempt timeout;
// the emulator killed when the request arrives and started again (on the
// same port; dynalite keeps its tables on disk, goaws recreates the topic
// and queue from its configuration but loses queued messages, which the
// drill reads first); and a response lost after the emulator applied the
// request.
func TestFaultMatrix(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kinds := selectedKinds(t)
	g := &rig{event: emu.ReadEvent(t, repoRoot, matrixEvent), topo: emu.Topology{Topic: "anonwatch-findings", Queue: "findings"}}

	base := g.run(ctx, cell{}, uniqueName(t, "baseline"))
	if base.err != nil || !base.lastOK || base.invocations != 1 {
		t.Fatalf("fault-free run: %v; %d invocations, last ok %v: %v", base.err, base.invocations, base.lastOK, base.failures)
	}
	if diff := cmp.Diff(matrixFindings, outcomes(base.findings)); diff != "" {
		t.Fatalf("fault-free run delivered (-want +got):\n%s", diff)
	}
	byID := map[string]detect.Finding{}
	for _, f := range base.findings {
		byID[f.ID] = f
	}
	if len(byID) != len(base.findings) {
		t.Fatalf("fault-free run delivered a finding twice: %v", outcomes(base.findings))
	}
	n := map[service]int{dynamoDB: len(base.calls[dynamoDB]), sns: len(base.calls[sns])}
	t.Logf("fault-free run: %d DynamoDB calls %v, %d SNS calls %v", n[dynamoDB], base.calls[dynamoDB], n[sns], base.calls[sns])

	var cells []cell
	for _, k := range kinds {
		for _, svc := range []service{dynamoDB, sns} {
			for pos := 1; pos <= n[svc]; pos++ {
				for _, p := range []bool{false, true} {
					cells = append(cells, cell{kind: k, svc: svc, pos: pos, persistent: p})
				}
			}
		}
	}
	g.restartDynamo = privateDynalite(t)
	g.restartSNS = privateGoaws(t, g.topo)
	results := runCells(ctx, t, g, cells)

	for _, r := range results {
		t.Run(r.cell.String(), func(t *testing.T) {
			checkCell(t, r, base, byID)
		})
	}
	table := matrixTable(results, byID)
	t.Logf("fault matrix, %d cells in %v:\n%s", len(results), time.Since(began).Round(time.Second), table)
	out := filepath.Join(t.TempDir(), "matrix.md")
	if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := updateDoc(table); err != nil {
			t.Fatal(err)
		}
	}
}

// faultsFlag narrows the matrix to some kinds of fault, to reproduce a row.
var faultsFlag = flag.String("faults", "", "comma-separated fault kinds for TestFaultMatrix (default all): "+kindNames())

func kindNames() string {
	var names []string
	for _, k := range faultKinds {
		names = append(names, k.flagName())
	}
	return strings.Join(names, ",")
}

func selectedKinds(t *testing.T) []faultKind {
	if *faultsFlag == "" {
		return faultKinds
	}
	var ks []faultKind
	for _, name := range strings.Split(*faultsFlag, ",") {
		i := slices.IndexFunc(faultKinds, func(k faultKind) bool { return k.flagName() == name })
		if i < 0 {
			t.Fatalf("-faults: unknown kind %q (known: %s)", name, kindNames())
		}
		ks = append(ks, faultKinds[i])
	}
	return ks
}

// runCells runs the cells: restart cells of each service one after the
// other, the rest on matrixWorkers workers, longest first.
func runCells(ctx context.Context, t *testing.T, g *rig, cells []cell) []cellResult {
	results := make([]cellResult, len(cells))
	var lanes [3][]int // 0: pool, 1: DynamoDB restarts, 2: SNS restarts
	for i, c := range cells {
		switch {
		case c.kind == restart && c.svc == dynamoDB:
			lanes[1] = append(lanes[1], i)
		case c.kind == restart:
			lanes[2] = append(lanes[2], i)
		default:
			lanes[0] = append(lanes[0], i)
		}
	}
	sort.SliceStable(lanes[0], func(a, b int) bool { return cost(cells[lanes[0][a]]) > cost(cells[lanes[0][b]]) })
	runOne := func(i int) {
		results[i] = g.run(ctx, cells[i], uniqueName(t, cells[i].String()))
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range matrixWorkers {
		wg.Go(func() {
			for i := range work {
				runOne(i)
			}
		})
	}
	for _, lane := range lanes[1:] {
		wg.Go(func() {
			for _, i := range lane {
				runOne(i)
			}
		})
	}
	for _, i := range lanes[0] {
		work <- i
	}
	close(work)
	wg.Wait()
	return results
}

// cost orders cells by how long they wait: persistent stalls wait for
// every attempt's timeout.
func cost(c cell) int {
	n := 0
	switch c.kind {
	case stall:
		n = 10
	case throttling:
		n = 5
	}
	if c.persistent {
		n *= 3
	}
	return n
}

// expectedCopies returns how often each finding must be delivered in r's
// cell: once, except in the duplicate window.
//
//   - A response lost on a Publish: SNS delivered, the SDK saw an error and
//     published again. Once: two copies. Persistent: every one of the SDK's
//     attempts delivers, the invocation fails, and the retried invocation
//     publishes once more, since nothing was marked sent.
//   - A persistent fault on a mark-sent that does not reach the table (any
//     kind but a lost response): the finding was published, the
//     invocation fails, and the retry's claim by the same batch is granted
//     again, so it is published again: two copies. A lost response on a
//     mark-sent reached the table, so the retry finds the finding sent.
func expectedCopies(r *cellResult, byID map[string]detect.Finding) map[string]int {
	want := map[string]int{}
	for id := range byID {
		want[id] = 1
	}
	switch {
	case r.kind == responseLost && r.hit.Op == "Publish" && !r.persistent:
		want[r.hit.Finding] = 2
	case r.kind == responseLost && r.hit.Op == "Publish":
		want[r.hit.Finding] = snspub.MaxAttempts + 1
	case r.kind != responseLost && r.persistent && r.hit.Op == "mark-sent":
		want[r.hit.Finding] = 2
	}
	return want
}

func checkCell(t *testing.T, r cellResult, base cellResult, byID map[string]detect.Finding) {
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.hit.Op == "" {
		t.Fatalf("no request reached position %d", r.pos)
	}
	wantInvocations := 1
	if r.persistent {
		wantInvocations = 2
	}
	if !r.lastOK || r.invocations != wantInvocations {
		t.Errorf("%d invocations, the last one succeeded: %v; want %d, the last one succeeding (failures: %q)", r.invocations, r.lastOK, wantInvocations, r.failures)
	}
	// Once, the SDK's second attempt succeeds; persistent, it uses all
	// its attempts. (When an emulator is down, every call in flight
	// fails, and the first to give up cancels the rest of an Apply.)
	wantAttempts := 2
	if r.persistent {
		wantAttempts = dynamostate.MaxAttempts
		if r.svc == sns {
			wantAttempts = snspub.MaxAttempts
		}
	}
	if r.attempts != wantAttempts && !(r.kind == restart && r.persistent) {
		t.Errorf("the SDK made %d attempts of the %s call at position %d, want %d", r.attempts, r.hit.Op, r.pos, wantAttempts)
	}
	if diff := cmp.Diff(base.items, r.items); diff != "" {
		t.Errorf("table differs from the fault-free run's (-fault-free +got):\n%s", diff)
	}
	copies := map[string]int{}
	for _, f := range r.findings {
		copies[f.ID]++
		if diff := cmp.Diff(byID[f.ID], f); diff != "" {
			t.Errorf("delivered finding %s differs from the fault-free run's (-fault-free +got):\n%s", f.ID, diff)
		}
	}
	if diff := cmp.Diff(expectedCopies(&r, byID), copies); diff != "" {
		t.Errorf("deliveries per finding_id (-want +got), the fault hit %s %s:\n%s", r.hit.Op, r.hit.Finding, diff)
	}
}

// outcomeOf names a cell's outcome for the matrix.
func outcomeOf(r *cellResult, byID map[string]detect.Finding) string {
	if r.err != nil || !r.lastOK {
		return "FAILED"
	}
	var dups []string
	copies := map[string]int{}
	for _, f := range r.findings {
		copies[f.ID]++
	}
	for id, n := range copies {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", byID[id].Rule, n))
		}
	}
	slices.Sort(dups)
	switch {
	case len(dups) > 0:
		return "duplicate window: " + strings.Join(dups, ", ")
	case r.invocations > 1:
		return "retried-ok"
	}
	return "clean"
}

// matrixTable renders the results as a Markdown table.
func matrixTable(results []cellResult, byID map[string]detect.Finding) string {
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i].cell, results[j].cell
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.persistent != b.persistent {
			return !a.persistent
		}
		if a.svc != b.svc {
			return a.svc == dynamoDB
		}
		return a.pos < b.pos
	})
	var b strings.Builder
	b.WriteString("| fault | variant | position | call hit | SDK attempts | invocations | outcome | seconds |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i := range results {
		r := &results[i]
		what := r.hit.Op
		if f, ok := byID[r.hit.Finding]; ok {
			what += " (" + f.Rule + ")"
		}
		inv := fmt.Sprint(r.invocations)
		if len(r.failures) > 0 {
			inv += " (first: " + shortFailure(r.failures[0]) + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s #%d | %s | %d | %s | %s | %.1f |\n",
			r.kind, r.variant(), r.svc, r.pos, what, r.attempts, inv, outcomeOf(r, byID), r.took.Seconds())
	}
	return b.String()
}

// shortFailure keeps the part of a failure that names its cause.
func shortFailure(s string) string {
	switch {
	case s == "timed out":
		return s
	case strings.Contains(s, "exceeded maximum number of attempts"):
		return "retries exhausted"
	case strings.Contains(s, "context deadline exceeded"):
		return "deadline"
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		return s[:i]
	}
	return s
}

// matrixBegin and matrixEnd mark the generated table in
// docs/reliability.md.
const (
	matrixBegin = "<!-- fault matrix: begin; regenerate with scripts/drills.sh -run TestFaultMatrix -args -update -->"
	matrixEnd   = "<!-- fault matrix: end -->"
)

// updateDoc replaces the table between the markers in docs/reliability.md.
func updateDoc(table string) error {
	path := filepath.Join(repoRoot, "docs", "reliability.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(doc)
	i, j := strings.Index(s, matrixBegin), strings.Index(s, matrixEnd)
	if i < 0 || j < i {
		return errors.New(path + ": no fault matrix markers")
	}
	s = s[:i+len(matrixBegin)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
