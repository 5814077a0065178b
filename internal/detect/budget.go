package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anonwatch/anonwatch/internal/rules"
)

// BudgetKey returns the state key of the notification budget of rule on
// cluster for findings of severity sev, and DigestKey that of the digest
// that sums up what the budget held back. Each severity has a budget and a
// digest of its own, so that no number of findings at one severity holds
// back one at another, or crowds it out of a digest's sample. "~" cannot
// start an address, so neither meets a group's key.
func BudgetKey(rule, cluster string, sev rules.Severity) string {
	return clusterKey(rule, "~budget", cluster, sev)
}

// DigestKey: see BudgetKey.
func DigestKey(rule, cluster string, sev rules.Severity) string {
	return clusterKey(rule, "~digest", cluster, sev)
}

func clusterKey(rule, kind, cluster string, sev rules.Severity) string {
	h := sha256.Sum256([]byte(kind + "\x00" + cluster))
	return rule + "#" + kind + "-" + sev.String() + "#" + hex.EncodeToString(h[:8])
}

// DefaultHoldWorkers bounds the held findings merged into digests at once
// (Config.HoldWorkers).
const DefaultHoldWorkers = 8

// spend decides whether a granted finding goes out on its own: a critical
// one, a rise above what was sent for its group in its period, and any
// finding of a rule without a budget always do; the others draw on their
// rule's budget for the cluster at their severity.
func (d *Detector) spend(ctx context.Context, du *due, g Grant, cluster string) (bool, error) {
	r := d.byID[du.finding.Rule]
	c := du.claim
	if r == nil || r.Budget.Count == 0 || c.Severity >= rules.Critical || g.Sent != 0 && c.Severity > g.Sent {
		return true, nil
	}
	period := PeriodStart(du.at, r.Budget.Period)
	ok, err := d.state.Spend(ctx, Draw{
		Key:       BudgetKey(r.ID, cluster, c.Severity),
		Period:    period,
		PeriodEnd: period.Add(r.Budget.Period),
		Limit:     r.Budget.Count,
		FindingID: du.finding.ID,
	})
	if err != nil {
		return false, fmt.Errorf("spend budget of %s for finding %s: %w", r.ID, du.finding.ID, err)
	}
	return ok, nil
}

// digestOf identifies one digest: a rule's budget period on a cluster, at
// one severity.
type digestOf struct {
	rule   *rules.Rule
	period time.Time
	sev    rules.Severity
}

// hold rolls findings the budget refused into their digests. Each held
// finding is merged into its digest's state once, under its own ID as the
// batch, so the digest counts it once however often and in whatever
// batches it is held. A digest goes out each time its held count reaches
// a power of ten. Only then are the held findings marked sent: until a
// digest that counts them is published, a retry of the batch holds them
// again, and so publishes the digest.
func (d *Detector) hold(ctx context.Context, held []due, b batchInfo, res *Result) []error {
	var (
		mu   sync.Mutex
		errs []error
		of   = make([]digestOf, len(held))
		wins = make([]*Window, len(held)) // nil where the merge failed
	)
	d.parallel(len(held), func(i int) {
		du := &held[i]
		r := d.byID[du.finding.Rule]
		a := heldAggregate(r, du, b)
		ws, err := d.state.Apply(ctx, "held:"+du.finding.ID, []Aggregate{a})
		if err == nil {
			// On record, though not sent: the digest only
			// samples its sources.
			f := du.finding
			d.log.InfoContext(ctx, "finding held for the digest", "finding_id", f.ID, "rule", f.Rule,
				"severity", f.Severity, "cluster", f.ClusterName, "src_ip", f.SrcIP, "src_net", f.SrcNet,
				"count", f.Count, "sweep", f.Sweep)
			if d.held != nil {
				d.held(ctx, f)
			}
		}
		of[i] = digestOf{r, a.Buckets[0].Start, du.claim.Severity}
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, fmt.Errorf("hold finding %s for the digest: %w", du.finding.ID, err))
			return
		}
		wins[i] = &ws[0]
	})
	// Digests go out in the order of their first held finding, whichever
	// merge finished first, so that a batch publishes the same digests in
	// the same order every time; each with the fullest window read.
	last := map[digestOf]*Window{}
	var order []digestOf
	for i, w := range wins {
		switch k := of[i]; {
		case w == nil:
		case last[k] == nil:
			order = append(order, k)
			last[k] = w
		case digestCount(w) > digestCount(last[k]):
			last[k] = w
		}
	}
	failed := map[digestOf]bool{}
	for _, k := range order {
		if err := d.sendDigest(ctx, k, last[k], b, res); err != nil {
			errs = append(errs, err)
			failed[k] = true
		}
	}
	d.parallel(len(held), func(i int) {
		if wins[i] == nil || failed[of[i]] {
			return
		}
		c := held[i].claim
		c.Held = true
		err := d.state.MarkSent(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("mark held finding %s: %w", held[i].finding.ID, err))
			return
		}
		res.Held++
	})
	return errs
}

// parallel runs fn for 0..n-1 on at most d.holdWorkers goroutines.
func (d *Detector) parallel(n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(d.holdWorkers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// sendDigest publishes the digest of k that its window w calls for, unless
// it was sent already.
func (d *Detector) sendDigest(ctx context.Context, k digestOf, w *Window, b batchInfo, res *Result) error {
	f, c := d.digest(k, w, b)
	if f == nil {
		return nil
	}
	g, err := d.state.Claim(ctx, c)
	if err != nil {
		return fmt.Errorf("claim digest %s: %w", c.Key, err)
	}
	if !g.OK {
		return nil
	}
	if err := d.pub.Publish(ctx, f); err != nil {
		return err
	}
	if err := d.state.MarkSent(ctx, c); err != nil {
		return fmt.Errorf("mark digest %s sent: %w", f.ID, err)
	}
	res.Published++
	res.Digests++
	return nil
}

// batchInfo is what Commit needs of the batch.
type batchInfo struct {
	id, cluster, logGroup string
	scope                 Scope // the clusters are kept apart by (Detector.scopeOf)
	shown                 Scope // findings name: the batch's owner and region
}

// ref is ClusterRef of the batch's cluster.
func (b *batchInfo) ref() string { return ClusterRef(b.cluster, b.scope) }

// heldAggregate is what one held finding adds to its digest: one request
// (the finding) in the bucket at the budget period's start, and its
// sources and networks (the rule's) counted and sampled.
func heldAggregate(r *rules.Rule, du *due, b batchInfo) Aggregate {
	f := du.finding
	period := PeriodStart(du.at, r.Budget.Period)
	bk := Bucket{Start: period, Count: 1, First: period, Last: period}
	addrs := []string{f.SrcIP}
	if f.SrcIP == "" {
		addrs = f.Values[string(rules.FieldSrcIP)] // a sweep's or a network's sample
	}
	nets := []string{f.SrcNet}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		bk.add(string(rules.FieldSrcIP), a)
		nets = append(nets, r.Network.Of(a))
	}
	for _, n := range nets {
		if n != "" {
			bk.add(string(rules.FieldSrcNet), n)
		}
	}
	return Aggregate{
		Rule:      r.ID,
		Key:       DigestKey(r.ID, b.ref(), du.claim.Severity),
		Group:     Group{ClusterName: b.cluster, Account: b.scope.Account, Region: b.scope.Region},
		Window:    r.Budget.Period,
		Count:     1,
		FirstSeen: period,
		LastSeen:  period,
		Buckets:   []Bucket{bk},
	}
}

// add counts v in field's distinct set and sample, once.
func (b *Bucket) add(field, v string) {
	if b.Distinct == nil {
		b.Distinct, b.Values = map[string][]string{}, map[string][]string{}
	}
	h := DistinctHash(v)
	if slices.Contains(b.Distinct[field], h) {
		return
	}
	b.Distinct[field] = append(b.Distinct[field], h)
	if len(b.Values[field]) < BucketValuesCap {
		b.Values[field] = append(b.Values[field], displayValue(v, StoredValueLen))
	}
}

func digestCount(w *Window) int64 {
	var n int64
	for i := range w.Buckets {
		n += w.Buckets[i].Count
	}
	return n
}

// digestLevel is the step of 1, 2, 5, 10, 20, 50, … that a digest of n
// held findings has reached: a digest goes out at each, so the last one
// sent reports at least two fifths of what was held.
func digestLevel(n int64) int64 {
	var l int64
	for p := int64(1); p <= n; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if p*m <= n {
				l = p * m
			}
		}
	}
	return l
}

// digest builds the digest finding of k from its window, and the claim to
// publish it: one per step reached, so the same digest is never sent
// twice.
func (d *Detector) digest(k digestOf, w *Window, b batchInfo) (*Finding, Claim) {
	r := k.rule
	held := digestCount(w)
	level := digestLevel(held)
	if level == 0 {
		return nil, Claim{}
	}
	sev := k.sev
	var bk Bucket
	for i := range w.Buckets {
		if w.Buckets[i].Start.Equal(k.period) {
			bk = w.Buckets[i]
		}
	}
	key := DigestKey(r.ID, b.ref(), sev)
	f := ruleFinding(r, sev, b.cluster, b.shown)
	f.LogGroup = b.logGroup
	f.Count = held
	f.Window = formatDuration(r.Budget.Period)
	f.FirstSeen, f.LastSeen = k.period, k.period.Add(r.Budget.Period)
	f.Digest = &Digest{
		Held: held, Budget: r.Budget.Count,
		PeriodStart: k.period, PeriodEnd: k.period.Add(r.Budget.Period),
	}
	for _, fld := range []string{string(rules.FieldSrcIP), string(rules.FieldSrcNet)} {
		if n := len(bk.Distinct[fld]); n > 0 {
			if f.Distinct == nil {
				f.Distinct = map[string]int{}
			}
			f.Distinct[fld] = n
		}
		if slices.Contains(bk.Saturated, fld) {
			f.DistinctSaturated = append(f.DistinctSaturated, fld)
		}
		if vs := bk.Values[fld]; len(vs) > 0 {
			if f.Values == nil {
				f.Values = map[string][]string{}
			}
			f.Values[fld] = vs
		}
	}
	f.ValuesTruncated = bk.ValuesTruncated || len(f.Values[string(rules.FieldSrcIP)]) < f.Distinct[string(rules.FieldSrcIP)]
	f.Summary = digestSummary(r, f)
	id := sha256.Sum256([]byte(key + "\x00" + k.period.Format(time.RFC3339) + "\x00" + fmt.Sprint(level) + "\x00" + sev.String()))
	f.ID = hex.EncodeToString(id[:12])
	return f, Claim{
		Key:       fmt.Sprintf("%s#%d", key, level),
		Period:    k.period,
		PeriodEnd: k.period.Add(r.Budget.Period),
		FindingID: f.ID,
		// Every batch that reaches a digest step claims it in the
		// step's name, not its own: a claim held by a batch whose retry
		// never comes back to the digest (its held findings became
		// another's finding) would otherwise block the step for a lease,
		// and the batches that marked their findings held meanwhile would
		// be reported nowhere. So a claim is refused only once the step
		// was sent. The price: two invocations that reach the same step
		// at the same moment may both send its digest, with the same ID.
		Batch:    fmt.Sprintf("digest:%s#%d@%s", key, level, k.period.Format(time.RFC3339)),
		Severity: sev,
	}
}

// digestSummary speaks of the held findings' sources together.
func digestSummary(r *rules.Rule, f *Finding) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Digest of %s: %d more %s on cluster %s in the %s from %s UTC, past the budget of %d sent one by one",
		r.Title, f.Digest.Held, plural(f.Digest.Held, "finding", "findings"), f.ClusterName,
		formatDuration(r.Budget.Period), f.Digest.PeriodStart.Format("2006-01-02 15:04"), f.Digest.Budget)
	count := func(fld, one, many string) string {
		n := f.Distinct[fld]
		at := ""
		if slices.Contains(f.DistinctSaturated, fld) {
			at = "at least "
		}
		return fmt.Sprintf("%s%d %s", at, n, plural(int64(n), one, many))
	}
	if f.Distinct[string(rules.FieldSrcIP)] > 0 {
		fmt.Fprintf(&s, "; from %s in %s", count(string(rules.FieldSrcIP), "address", "addresses"), count(string(rules.FieldSrcNet), "network", "networks"))
	}
	fmt.Fprintf(&s, "; all %s", f.Severity)
	return s.String()
}
