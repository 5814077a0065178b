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
	// Logger receives skipped-line warnings; nil discards them.
	Logger *slog.Logger
	// MaxLine bounds one audit line; 0 means audit.DefaultMaxSize.
	MaxLine int
	// MaxGroups bounds the groups one rule tracks one by one in a batch;
	// the requests of the groups beyond it are counted together in the
	// rule's sweep group (Group.Sweep). 0 means DefaultMaxGroups; a
	// negative value means no bound, for whole-input reports.
	MaxGroups int
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
	rules     *rules.Set
	byID      map[string]*rules.Rule
	state     State
	pub       Publisher
	log       *slog.Logger
	maxLine   int
	maxGroups int
}

// New returns a Detector for cfg.
func New(cfg Config) (*Detector, error) {
	if cfg.Rules == nil {
		return nil, errors.New("detect: no rules")
	}
	d := &Detector{
		rules:     cfg.Rules,
		byID:      make(map[string]*rules.Rule),
		state:     cfg.State,
		pub:       cfg.Publisher,
		log:       cfg.Logger,
		maxLine:   cfg.MaxLine,
		maxGroups: cfg.MaxGroups,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.maxGroups == 0 {
		d.maxGroups = DefaultMaxGroups
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
// again.
func (d *Detector) Process(ctx context.Context, b *cwlogs.Batch) (Result, error) {
	aggs, res := d.aggregate(ctx, b)
	if len(aggs) == 0 {
		return res, nil
	}
	wins, err := d.state.Apply(ctx, res.Batch, aggs)
	if err != nil {
		return res, fmt.Errorf("apply batch %s: %w", res.Batch, err)
	}
	var errs []error
	for i := range aggs {
		f, c, ok := d.evaluate(&aggs[i], &wins[i], res.Batch, b.LogGroup)
		if !ok {
			continue
		}
		res.Due++
		granted, err := d.state.Claim(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("claim %s: %w", c.Key, err))
			continue
		}
		if !granted {
			res.Suppressed++
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
	lo := at.Add(-window + BucketWidth)
	s := windowStats{distinct: map[string]map[string]struct{}{}, saturated: map[string]bool{}}
	for i := range w.Buckets {
		bk := &w.Buckets[i]
		if bk.Start.Before(lo) || bk.Start.After(at) || bk.Count == 0 {
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
	return s
}

func (s *windowStats) meets(count int64, field rules.Field, n int) bool {
	if count > 0 {
		return s.count >= count
	}
	return field != "" && len(s.distinct[string(field)]) >= n
}

// evaluate decides whether the group's window crosses the rule's threshold
// at any bucket this batch touched, and if so builds the finding at the
// newest such bucket.
func (d *Detector) evaluate(a *Aggregate, w *Window, batch, logGroup string) (*Finding, Claim, bool) {
	r := d.byID[a.Rule]
	if r == nil {
		return nil, Claim{}, false
	}
	th := r.Threshold
	var s windowStats
	var at time.Time
	found := false
	for i := len(a.Buckets) - 1; i >= 0 && !found; i-- {
		s = stats(w, a.Buckets[i].Start, th.Window)
		if s.meets(th.Count, th.Distinct, th.DistinctN) {
			at, found = a.Buckets[i].Last, true
		}
	}
	if !found {
		return nil, Claim{}, false
	}
	sev := r.Severity
	var why []string
	for i, e := range r.Escalate {
		var hit bool
		var reason string
		switch {
		case e.When != "":
			hit = s.marks&(1<<uint(i)) != 0
			reason = "a request matched " + e.When
		default:
			hit = s.meets(e.Count, e.Distinct, e.DistinctN)
			if e.Count > 0 {
				reason = fmt.Sprintf("%d or more requests", e.Count)
			} else {
				reason = fmt.Sprintf("%d or more distinct %s values", e.DistinctN, e.Distinct)
			}
		}
		if e.Reason != "" {
			reason = e.Reason
		}
		if hit && e.Severity > sev {
			sev = e.Severity
			why = append(why, reason)
		} else if hit && e.Severity == sev && sev != r.Severity {
			why = append(why, reason)
		}
	}
	f := d.finding(r, a, w, &s, at, sev, why)
	f.LogGroup = logGroup
	id := sha256.Sum256([]byte(batch + "\x00" + a.Key + "\x00" + sev.String()))
	f.ID = hex.EncodeToString(id[:12])
	c := Claim{
		Key:           a.Key,
		FindingID:     f.ID,
		Batch:         batch,
		Severity:      sev,
		At:            at,
		SuppressUntil: at.Add(r.Suppress),
	}
	return f, c, true
}

func (d *Detector) finding(r *rules.Rule, a *Aggregate, w *Window, s *windowStats, at time.Time, sev rules.Severity, why []string) *Finding {
	f := &Finding{
		Rule:        r.ID,
		Title:       r.Title,
		Description: r.Description,
		Severity:    sev.String(),
		MITRE:       r.MITRE,
		ClusterName: a.Group.ClusterName,
		SrcIP:       a.Group.SrcIP,
		User:        a.Group.User,
		Groups:      a.Group.Groups,
		UserAgent:   a.Group.UserAgent,
		Sweep:       a.Group.Sweep,
		Count:       s.count,
		Window:      formatDuration(r.Threshold.Window),
		FirstSeen:   s.first,
		LastSeen:    s.last,
	}
	if f.SrcIP != "" {
		f.IPClass = enrich.IPClass(f.SrcIP)
	}
	// Display values over the window that ends at the evaluated bucket.
	lo := at.Truncate(BucketWidth).Add(-r.Threshold.Window + BucketWidth)
	vals := map[string][]string{}
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
	}
	if ff := vals[forwardedForField]; len(ff) > 0 {
		f.ForwardedFor = ff
		delete(vals, forwardedForField)
	}
	if len(vals) > 0 {
		f.Values = vals
	}
	uas := vals[string(rules.FieldUserAgent)]
	if f.UserAgent != "" {
		uas = []string{f.UserAgent}
	}
	classes := make([]string, 0, len(uas))
	for _, ua := range uas {
		classes = append(classes, enrich.UAClass(ua))
	}
	if len(classes) > 0 {
		f.UAClass = enrich.MostSuspicious(classes...)
	}
	for fld, set := range s.distinct {
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
