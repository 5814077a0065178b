package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/enrich"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// FindingValuesCap bounds the values per field a finding lists.
const FindingValuesCap = 20

// Config holds what a Detector needs.
type Config struct {
	Rules     *rules.Set
	State     State
	Publisher Publisher
	// Logger receives skipped-line warnings and a line for each finding
	// a budget held back; nil discards them.
	Logger *slog.Logger
	// MaxLine bounds one audit line; 0 means audit.DefaultMaxSize.
	MaxLine int
	// MaxGroups bounds the groups one rule tracks one by one in a batch;
	// the requests of the groups beyond it are counted together in the
	// rule's sweep group (Group.Sweep). 0 means DefaultMaxGroups; a
	// negative value means no bound, for whole-input reports.
	MaxGroups int
	// HoldWorkers bounds the findings a batch's budgets held that are
	// merged into their digests at once; 0 means DefaultHoldWorkers. A
	// digest samples the sources of the findings merged first, so with
	// more than one it may sample others from one run to the next; 1
	// merges them in order, for a replay that must give the same output
	// every time.
	HoldWorkers int
	// Held, when set, is also called with each finding a notification
	// budget held back, once it counts in its digest: a retried batch may
	// call it again for the same finding, and it may be called from
	// several goroutines at once.
	Held func(context.Context, *Finding)
	// MarkLive makes Commit record, per cluster, the earliest log event
	// time of the deliveries it applied (LiveMarks), for a backfill into
	// the same state to leave them alone; a gathered batch
	// (cwlogs.Batch.Gathered) marks nothing. The function sets it, and
	// replay --table, which applies a dead-lettered delivery as the
	// function would; State must then be a LiveMarks.
	MarkLive bool
	// Fence, when set, returns the time from which the live function has
	// counted cluster's log events (LiveMarks.LiveSince; zero: none yet).
	// The events of a gathered batch (cwlogs.Batch.Gathered) from then
	// on are left out and counted in Result.Fenced, so that a backfill
	// into the function's table counts no event twice. A delivery is
	// never fenced: its batch id is the function's, so state already
	// counts it once.
	Fence func(ctx context.Context, cluster, stream string) (time.Time, error)
	// Qualify keeps apart the clusters of one name in different accounts
	// or regions (cwlogs.Batch.Owner and Region), as an organization's
	// detector must: their state keys, finding ids, budgets and live marks
	// then carry the account and region (Group.Account, Group.Region;
	// ClusterRef). A rule that does not group by cluster is kept per
	// account and region too: a member account, which writes its own log
	// groups as it likes, cannot count into or suppress another's
	// findings. Without it, as in a single-account deployment, which
	// only ever sees its own clusters, keys are those of the cluster name
	// alone, as they always were. Findings name the account and region
	// whenever the batch does, either way.
	Qualify bool
}

// DefaultMaxGroups bounds the work a batch costs. Each group costs state
// calls (a Query, an UpdateItem per minute it touched) and may be a
// finding (a claim, a publish, a mark-sent); a delivery from 15,000
// addresses would otherwise mean over 100,000 calls and hundreds of MB.
// 200 groups for each of the default rules stay within a few MB and, at
// about 10 ms a call, well within the function's timeout; a delivery,
// seconds of one API server's log, rarely holds that many anonymous
// sources unless a sweep is under way, and that is what the sweep group
// then reports.
const DefaultMaxGroups = 200

// Detector runs the pipeline. It is safe for concurrent use if its State
// and Publisher are.
type Detector struct {
	rules       *rules.Set
	byID        map[string]*rules.Rule
	state       State
	pub         Publisher
	log         *slog.Logger
	maxLine     int
	maxGroups   int
	held        func(context.Context, *Finding)
	holdWorkers int
	fence       func(context.Context, string, string) (time.Time, error)
	qualify     bool
	live        LiveMarks // nil unless Config.MarkLive

	mu     sync.Mutex
	marked map[string]int64 // per cluster and stream, the earliest mark recorded, Unix ms
}

// New returns a Detector for cfg.
func New(cfg Config) (*Detector, error) {
	if cfg.Rules == nil {
		return nil, errors.New("detect: no rules")
	}
	d := &Detector{
		rules:       cfg.Rules,
		byID:        make(map[string]*rules.Rule),
		state:       cfg.State,
		pub:         cfg.Publisher,
		log:         cfg.Logger,
		maxLine:     cfg.MaxLine,
		maxGroups:   cfg.MaxGroups,
		held:        cfg.Held,
		holdWorkers: cfg.HoldWorkers,
		fence:       cfg.Fence,
		qualify:     cfg.Qualify,
	}
	if cfg.MarkLive {
		lm, ok := cfg.State.(LiveMarks)
		if !ok {
			return nil, errors.New("detect: MarkLive needs a State that keeps live marks")
		}
		d.live, d.marked = lm, make(map[string]int64)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.maxGroups == 0 {
		d.maxGroups = DefaultMaxGroups
	}
	if d.holdWorkers <= 0 {
		d.holdWorkers = DefaultHoldWorkers
	}
	if d.maxLine <= 0 {
		d.maxLine = audit.DefaultMaxSize
	}
	for _, r := range cfg.Rules.Rules() {
		d.byID[r.ID] = r
	}
	return d, nil
}

// Process runs one batch through the pipeline: aggregate, apply to state,
// and publish each finding that is due and not suppressed. An error from
// State or Publisher is returned after the other findings were attempted,
// so that a retry of the whole batch (Lambda's) completes the work: state
// is applied at most once per batch and a finding already sent is not sent
// again. It is Prepare, then Commit.
func (d *Detector) Process(ctx context.Context, b *cwlogs.Batch) (Result, error) {
	return d.Commit(ctx, d.Prepare(ctx, b))
}

// Prepared is a batch that Prepare read and aggregated, for Commit.
type Prepared struct {
	aggs     []Aggregate
	res      Result
	info     batchInfo
	stream   string
	first    int64 // aggregateBatch's markFrom
	gathered bool  // cwlogs.Batch.Gathered: not the function's to mark
	err      error // Prepare's, returned by Commit
}

// Prepare is the part of Process that needs neither State nor Publisher:
// it reads, parses and matches every line of b and aggregates the batch.
// Batches may be prepared concurrently and committed one at a time, in
// the order they are to be applied, as `anonwatch replay` does. The
// Result's EvalErrors counts the rule set's errors while b was prepared,
// those of batches prepared at the same time included.
func (d *Detector) Prepare(ctx context.Context, b *cwlogs.Batch) *Prepared {
	var until time.Time
	scope := d.scopeOf(b)
	ref := ClusterRef(b.Cluster, scope)
	if d.fence != nil && b.Gathered && b.MessageType != cwlogs.ControlMessage {
		var err error
		if until, err = d.fence(ctx, ref, b.LogStream); err != nil {
			return &Prepared{err: fmt.Errorf("read where the function began counting cluster %s, stream %s: %w", ref, b.LogStream, err), res: Result{Batch: BatchID(b), Cluster: b.Cluster, Events: len(b.Events)}}
		}
	}
	aggs, res, markFrom := d.aggregateBatch(ctx, b, false, until)
	return &Prepared{aggs: aggs, res: res, info: batchInfo{id: res.Batch, cluster: b.Cluster, logGroup: b.LogGroup, scope: scope, shown: Scope{b.Owner, b.Region}}, stream: b.LogStream, first: markFrom, gathered: b.Gathered}
}

// scopeOf returns the scope b's clusters are kept apart by: its account
// and region with Config.Qualify, none without.
func (d *Detector) scopeOf(b *cwlogs.Batch) Scope {
	if !d.qualify {
		return Scope{}
	}
	return Scope{b.Owner, b.Region}
}

// ClusterRef names cluster in scope where a printable name is needed (a
// live mark, a log line): the cluster name alone for the zero scope, else
// "name@account/region". No cluster or log group name holds "@".
func ClusterRef(cluster string, scope Scope) string {
	if scope.IsZero() {
		return cluster
	}
	return cluster + "@" + scope.Account + "/" + scope.Region
}

// markLive records first as the live mark of cluster's stream unless an
// earlier one was recorded from this process: after a stream's first
// delivery, marking costs nothing but a comparison.
func (d *Detector) markLive(ctx context.Context, cluster, stream string, first int64) error {
	k := cluster + "\x00" + stream
	d.mu.Lock()
	m, ok := d.marked[k]
	d.mu.Unlock()
	if first <= 0 || ok && m <= first {
		return nil
	}
	if err := d.live.MarkLive(ctx, cluster, stream, time.UnixMilli(first).UTC()); err != nil {
		return fmt.Errorf("mark cluster %s stream %s live from %s: %w", cluster, stream, time.UnixMilli(first).UTC().Format(time.RFC3339Nano), err)
	}
	d.mu.Lock()
	if m, ok := d.marked[k]; !ok || first < m {
		d.marked[k] = first
	}
	d.mu.Unlock()
	return nil
}

// Commit is the rest of Process for a prepared batch: it applies p's
// aggregates to state and publishes the findings due.
func (d *Detector) Commit(ctx context.Context, p *Prepared) (Result, error) {
	aggs, res := p.aggs, p.res
	if p.err != nil {
		return res, p.err
	}
	var wins []Window
	if len(aggs) > 0 {
		var err error
		if wins, err = d.state.Apply(ctx, res.Batch, aggs); err != nil {
			return res, fmt.Errorf("apply batch %s: %w", res.Batch, err)
		}
	}
	// Once its buckets are in: a backfill then leaves the batch's events
	// alone, whether or not they made any. A gathered batch is a
	// backfill's own history, which marks nothing.
	if d.live != nil && !res.Control && !p.gathered {
		if err := d.markLive(ctx, p.info.ref(), p.stream, p.first); err != nil {
			return res, err
		}
	}
	if len(aggs) == 0 {
		return res, nil
	}
	var dues []due
	for i := range aggs {
		dues = append(dues, d.evaluate(&aggs[i], &wins[i], &p.info)...)
	}
	// The most severe first: when a budget runs out in this batch, the
	// findings it holds back are the least severe.
	slices.SortStableFunc(dues, func(x, y due) int { return int(y.claim.Severity) - int(x.claim.Severity) })
	var (
		errs []error
		held []due
	)
	for _, du := range dues {
		res.Due++
		c := du.claim
		g, err := d.state.Claim(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("claim %s: %w", c.Key, err))
			continue
		}
		if !g.OK {
			res.Suppressed++
			continue
		}
		du.finding = du.build()
		f := du.finding
		if ok, err := d.spend(ctx, &du, g, p.info.ref()); err != nil {
			errs = append(errs, err)
			continue
		} else if !ok {
			held = append(held, du)
			continue
		}
		if err := d.pub.Publish(ctx, f); err != nil {
			errs = append(errs, err) // the publisher names the finding and topic
			continue
		}
		if err := d.state.MarkSent(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("mark finding %s sent: %w", f.ID, err))
			continue
		}
		res.Published++
	}
	if len(held) > 0 {
		errs = append(errs, d.hold(ctx, held, p.info, &res)...)
	}
	return res, errors.Join(errs...)
}

// windowStats is a window's content evaluated at one bucket.
type windowStats struct {
	count     int64
	first     time.Time
	last      time.Time
	distinct  map[string]map[string]struct{}
	saturated map[string]bool
	marks     uint64
}

// stats sums the buckets of w with Start in (at-window, at].
func stats(w *Window, at time.Time, window time.Duration) windowStats {
	lo := at.Add(-WindowSpan(window))
	s := windowStats{distinct: map[string]map[string]struct{}{}, saturated: map[string]bool{}}
	for i := range w.Buckets {
		bk := &w.Buckets[i]
		if bk.Start.Before(lo) || bk.Start.After(at) || bk.Requests() == 0 {
			continue
		}
		s.count += bk.Count
		if s.first.IsZero() || bk.First.Before(s.first) {
			s.first = bk.First
		}
		if bk.Last.After(s.last) {
			s.last = bk.Last
		}
		for f, hs := range bk.Distinct {
			set := s.distinct[f]
			if set == nil {
				set = make(map[string]struct{}, len(hs))
				s.distinct[f] = set
			}
			for _, h := range hs {
				set[h] = struct{}{}
			}
		}
		for _, f := range bk.Saturated {
			s.saturated[f] = true
		}
		for _, m := range bk.Marks {
			s.marks |= 1 << uint(m)
		}
	}
	// Long-running requests are counted by identity.
	s.count += int64(len(s.distinct[requestField]))
	return s
}

// sliding is the content of a window that slides over a group's buckets in
// order: what a threshold or escalation decides by, kept up to date as
// buckets enter and leave, so evaluating every bucket of a long window costs
// each bucket twice rather than once per window it belongs to.
type sliding struct {
	count    int64
	distinct map[string]map[string]int // field → hash → buckets holding it
	marks    [rules.MaxEscalations]int // escalation index → buckets with the mark
}

func (s *sliding) add(b *Bucket, sign int) {
	s.count += int64(sign) * b.Count
	for f, hs := range b.Distinct {
		set := s.distinct[f]
		if set == nil {
			set = make(map[string]int, len(hs))
			s.distinct[f] = set
		}
		for _, h := range hs {
			if set[h] += sign; set[h] == 0 {
				delete(set, h)
			}
		}
	}
	for _, m := range b.Marks {
		if m >= 0 && m < len(s.marks) {
			s.marks[m] += sign
		}
	}
}

func (s *sliding) meets(count int64, field rules.Field, n int) bool {
	if count > 0 {
		return s.count+int64(len(s.distinct[requestField])) >= count
	}
	return field != "" && len(s.distinct[string(field)]) >= n
}

// severity returns the severity of a window that meets r's threshold and
// the reasons it rose above r's base severity. For a sweep (the requests of
// many sources counted together) a count or distinct escalation is told in
// its own words, of the sources together, not in the rule's, which speak of
// one source.
func severity(r *rules.Rule, sweep bool, meets func(count int64, field rules.Field, n int) bool, marked func(i int) bool) (rules.Severity, []string) {
	sev := r.Severity
	var why []string
	for i, e := range r.Escalate {
		var hit bool
		var reason string
		switch {
		case e.When != "":
			hit = marked(i)
			reason = "a request matched " + e.When
		default:
			hit = meets(e.Count, e.Distinct, e.DistinctN)
			if e.Count > 0 {
				reason = fmt.Sprintf("%d or more requests", e.Count)
			} else {
				reason = fmt.Sprintf("%d or more distinct %s values", e.DistinctN, e.Distinct)
			}
		}
		switch {
		case sweep && e.When == "":
			reason += " from these sources together"
		case e.Reason != "":
			reason = e.Reason
		}
		if hit && e.Severity > sev {
			sev = e.Severity
			why = append(why, reason)
		} else if hit && e.Severity == sev && sev != r.Severity {
			why = append(why, reason)
		}
	}
	return sev, why
}

// due is a finding that a window crossed its rule's threshold, with the
// claim to publish it.
type due struct {
	// finding is built once the claim is granted: most findings due
	// during an ongoing scan are suppressed, and a finding costs more to
	// build than its claim.
	finding *Finding
	build   func() *Finding
	claim   Claim
	at      time.Time // the start of the window's last bucket
}

// evaluate finds the findings the group's windows hold after the batch a
// was applied. It evaluates the window ending at every stored bucket that a
// bucket of a can belong to (each bucket of a and the stored buckets up to
// one window after it), since a batch delivered late can complete a window
// that ends at a later, already stored bucket. Per suppression period it
// keeps the window of the highest severity (the earliest of those), which
// is the finding in-order processing would have sent last in that period.
// The result is ordered by period.
func (d *Detector) evaluate(a *Aggregate, w *Window, b *batchInfo) []due {
	r := d.byID[a.Rule]
	if r == nil || len(a.Buckets) == 0 {
		return nil
	}
	th := r.Threshold
	span := WindowSpan(th.Window)
	type best struct {
		end int // index in w.Buckets
		sev rules.Severity
		why []string
	}
	var (
		byPeriod = map[int64]*best{}
		periods  []int64
		sl       = sliding{distinct: map[string]map[string]int{}}
		lo       = 0 // first bucket in the sliding window
		next     = 0 // next bucket of a that a window end may belong to
	)
	for i := range w.Buckets {
		end := &w.Buckets[i]
		sl.add(end, 1)
		for ; w.Buckets[lo].Start.Add(span).Before(end.Start); lo++ {
			sl.add(&w.Buckets[lo], -1)
		}
		// Is end in [m, m+span] for some bucket m of a?
		for next < len(a.Buckets) && a.Buckets[next].Start.Add(span).Before(end.Start) {
			next++
		}
		if next == len(a.Buckets) || a.Buckets[next].Start.After(end.Start) || end.Requests() == 0 {
			continue
		}
		if !sl.meets(th.Count, th.Distinct, th.DistinctN) {
			continue
		}
		sev, why := severity(r, a.Group.Sweep, sl.meets, func(i int) bool { return i < len(sl.marks) && sl.marks[i] > 0 })
		p := PeriodStart(end.Start, r.Suppress).Unix()
		if cur := byPeriod[p]; cur == nil {
			byPeriod[p] = &best{i, sev, why}
			periods = append(periods, p)
		} else if sev > cur.sev {
			*cur = best{i, sev, why}
		}
	}
	out := make([]due, 0, len(periods))
	for _, p := range periods {
		bst := byPeriod[p]
		at := w.Buckets[bst.end].Start
		period := time.Unix(p, 0).UTC()
		sum := sha256.Sum256([]byte(a.Key + "\x00" + period.Format(time.RFC3339) + "\x00" + bst.sev.String()))
		id := hex.EncodeToString(sum[:12])
		build := func() *Finding {
			s := stats(w, at, th.Window)
			f := d.finding(r, a, w, &s, at, bst.sev, bst.why, b.shown)
			f.LogGroup = b.logGroup
			f.ID = id
			return f
		}
		out = append(out, due{build: build, at: at, claim: Claim{
			Key:       a.Key,
			Period:    period,
			PeriodEnd: period.Add(r.Suppress),
			FindingID: id,
			Batch:     b.id,
			Severity:  bst.sev,
		}})
	}
	return out
}

// ruleFinding starts a finding of r at sev on cluster, in the account and
// region of shown: what every finding of the rule says.
func ruleFinding(r *rules.Rule, sev rules.Severity, cluster string, shown Scope) *Finding {
	return &Finding{
		Rule:        r.ID,
		Title:       r.Title,
		Description: r.Description,
		Severity:    sev.String(),
		MITRE:       r.MITRE,
		ClusterName: cluster,
		Account:     shown.Account,
		Region:      shown.Region,
	}
}

func (d *Detector) finding(r *rules.Rule, a *Aggregate, w *Window, s *windowStats, at time.Time, sev rules.Severity, why []string, shown Scope) *Finding {
	f := ruleFinding(r, sev, a.Group.ClusterName, shown)
	f.SrcIP, f.SrcNet = a.Group.SrcIP, a.Group.SrcNet
	f.User, f.Groups, f.UserAgent = a.Group.User, a.Group.Groups, a.Group.UserAgent
	f.Sweep = a.Group.Sweep
	f.Count = s.count
	f.Window = formatDuration(r.Threshold.Window)
	f.FirstSeen, f.LastSeen = s.first, s.last
	switch {
	case f.SrcIP != "":
		f.IPClass = enrich.IPClass(f.SrcIP)
	case f.SrcNet != "":
		f.IPClass = enrich.IPClass(strings.SplitN(f.SrcNet, "/", 2)[0])
	}
	// Display values over the window that ends at the evaluated bucket.
	lo := at.Add(-WindowSpan(r.Threshold.Window)) // at is a bucket's start
	vals, evidence := map[string][]string{}, map[string][]string{}
	for i := range w.Buckets {
		bk := &w.Buckets[i]
		if bk.Start.Before(lo) || bk.Start.After(at) {
			continue
		}
		f.ValuesTruncated = f.ValuesTruncated || bk.ValuesTruncated
		for k, vs := range bk.Values {
			var dropped bool
			vals[k], dropped = mergeSorted(vals[k], vs, FindingValuesCap)
			f.ValuesTruncated = f.ValuesTruncated || dropped
		}
		for k, vs := range bk.Evidence {
			var dropped bool
			evidence[k], dropped = mergeSorted(evidence[k], vs, FindingValuesCap)
			f.ValuesTruncated = f.ValuesTruncated || dropped
		}
	}
	// The requests that raised the severity come first and stay, however
	// many others sort before them.
	for k, ev := range evidence {
		rest := vals[k]
		vals[k] = slices.Clone(ev)
		for _, v := range rest {
			if len(vals[k]) >= max(FindingValuesCap, len(ev)) {
				f.ValuesTruncated = true
				break
			}
			if !slices.Contains(ev, v) {
				vals[k] = append(vals[k], v)
			}
		}
		if k != forwardedForField && k != noUserAgentField {
			if f.Evidence == nil {
				f.Evidence = map[string][]string{}
			}
			f.Evidence[k] = ev
		}
	}
	if ff := vals[forwardedForField]; len(ff) > 0 {
		f.ForwardedFor = ff
		delete(vals, forwardedForField)
	}
	_, noAgent := vals[noUserAgentField]
	delete(vals, noUserAgentField)
	if len(vals) > 0 {
		f.Values = vals
	}
	uas := vals[string(rules.FieldUserAgent)]
	if f.UserAgent != "" {
		uas, noAgent = []string{f.UserAgent}, false
	}
	classes := make([]string, 0, len(uas)+1)
	for _, ua := range uas {
		classes = append(classes, enrich.UAClass(ua))
	}
	if noAgent {
		classes = append(classes, enrich.UANone)
	}
	if len(classes) > 0 {
		f.UAClass = enrich.MostSuspicious(classes...)
	}
	for fld, set := range s.distinct {
		if fld == requestField {
			continue // part of the count
		}
		if f.Distinct == nil {
			f.Distinct = map[string]int{}
		}
		f.Distinct[fld] = len(set)
		if s.saturated[fld] {
			f.DistinctSaturated = append(f.DistinctSaturated, fld)
		}
	}
	if a.Group.Sweep && a.Sources > f.Distinct[string(rules.FieldSrcIP)] {
		// The batch alone held more addresses than the window's sets
		// keep: a better lower bound.
		if f.Distinct == nil {
			f.Distinct = map[string]int{}
		}
		f.Distinct[string(rules.FieldSrcIP)] = a.Sources
		if !slices.Contains(f.DistinctSaturated, string(rules.FieldSrcIP)) {
			f.DistinctSaturated = append(f.DistinctSaturated, string(rules.FieldSrcIP))
		}
	}
	slices.Sort(f.DistinctSaturated)
	f.Summary = summary(r, f, why)
	return f
}

// summary says in one line why the finding fired. It names only values the
// attacker cannot choose: the rule, counts, the address and the cluster.
func summary(r *rules.Rule, f *Finding, why []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", r.Title, f.Count, plural(f.Count, "request", "requests"))
	if f.Sweep {
		n, atLeast := f.SweepAddresses()
		at := ""
		if atLeast {
			at = "at least "
		}
		fmt.Fprintf(&b, " from %s%d %s, a sweep from more sources than are counted one by one", at, n, plural(int64(n), "address", "addresses"))
	} else if f.SrcIP != "" {
		fmt.Fprintf(&b, " from %s (%s)", f.SrcIP, f.IPClass)
	} else if f.SrcNet != "" {
		if n, ok := f.Distinct[string(rules.FieldSrcIP)]; ok {
			at := ""
			if slices.Contains(f.DistinctSaturated, string(rules.FieldSrcIP)) {
				at = "at least "
			}
			fmt.Fprintf(&b, " from %s%d %s", at, n, plural(int64(n), "address", "addresses"))
		}
		fmt.Fprintf(&b, " in network %s (%s)", f.SrcNet, f.IPClass)
	} else if f.User != "" {
		fmt.Fprintf(&b, " by %s", f.User)
	}
	if f.ClusterName != "" {
		fmt.Fprintf(&b, " on cluster %s", f.ClusterName)
	}
	fmt.Fprintf(&b, " within %s", f.Window)
	th := r.Threshold
	switch {
	case th.Count > 1:
		fmt.Fprintf(&b, " (threshold %d)", th.Count)
	case th.Count == 1:
		// Every such request is a finding; a threshold adds nothing.
	default:
		fmt.Fprintf(&b, " with %d distinct %s values (threshold %d)", f.Distinct[string(th.Distinct)], th.Distinct, th.DistinctN)
	}
	if len(why) > 0 {
		fmt.Fprintf(&b, "; %s because %s", f.Severity, strings.Join(why, " and "))
	}
	return b.String()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// formatDuration prints whole hours and minutes as "1h" or "30m" rather
// than Go's "1h0m0s".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
