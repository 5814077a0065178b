package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// forwardedForField is collected for every rule: findings show the client's
// unverified address claims next to the address that counts.
const forwardedForField = "forwarded_for"

// skipLogLimit bounds the log lines written per skip reason and batch, so a
// batch of garbage costs a few lines of log, not one per event.
const skipLogLimit = 5

// BatchID identifies a batch for idempotency. It is derived from what
// CloudWatch Logs guarantees (the log group, the stream and the log event
// ids), never from audit content a client can choose, such as auditID.
func BatchID(b *cwlogs.Batch) string {
	h := sha256.New()
	h.Write([]byte(b.LogGroup))
	h.Write([]byte{0})
	h.Write([]byte(b.LogStream))
	for i := range b.Events {
		h.Write([]byte{0})
		h.Write([]byte(b.Events[i].ID))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// GroupKey returns the state key of (rule, group). The address leads so a
// table item is readable; the hash covers every group value.
func GroupKey(rule string, g *Group) string {
	h := sha256.New()
	for _, s := range []string{g.SrcIP, g.ClusterName, g.User, strings.Join(g.Groups, ","), g.UserAgent} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return rule + "#" + g.SrcIP + "#" + hex.EncodeToString(h.Sum(nil)[:8])
}

// DistinctHash maps a value to the short digest that distinct sets hold. A
// cryptographic hash, so an attacker cannot craft colliding paths to hide
// from a distinct-count threshold.
func DistinctHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

// aggregator builds the aggregates of one batch.
type aggregator struct {
	cluster string
	groups  map[groupID]*aggBuilder
}

// groupID finds a batch's aggregate without hashing: the state key
// (GroupKey, a SHA-256) is computed once per group, not once per request.
type groupID struct {
	rule                              *rules.Rule
	src, cluster, user, groups, agent string
}

func groupIDOf(r *rules.Rule, ev *audit.Event, cluster string) groupID {
	id := groupID{rule: r}
	for _, f := range r.GroupBy {
		switch f {
		case rules.FieldSrcIP:
			id.src = ev.SrcIP()
		case rules.FieldClusterName:
			id.cluster = cluster
		case rules.FieldUser:
			id.user = ev.User.Username
		case rules.FieldGroups:
			id.groups = rules.FieldGroups.Value(ev, cluster)
		case rules.FieldUserAgent:
			id.agent = ev.UserAgent
		}
	}
	return id
}

type aggBuilder struct {
	agg      Aggregate
	rule     *rules.Rule
	distinct []rules.Field // fields a threshold or escalation counts
	values   map[string]*valueSet
	buckets  map[int64]*bucketBuilder
}

type bucketBuilder struct {
	b Bucket
	// distinct holds raw values; bucket() hashes each once.
	distinct map[string]map[string]struct{}
	marks    uint64 // bit i: escalation i
	values   map[string]*valueSet
}

func (a *aggregator) add(r *rules.Rule, marks []int, ev *audit.Event) {
	id := groupIDOf(r, ev, a.cluster)
	ab := a.groups[id]
	if ab == nil {
		g := id.group(ev)
		key := GroupKey(r.ID, &g)
		ab = &aggBuilder{
			agg:      Aggregate{Rule: r.ID, Key: key, Group: g, Window: r.Threshold.Window},
			rule:     r,
			distinct: r.DistinctFields(),
			values:   make(map[string]*valueSet),
			buckets:  make(map[int64]*bucketBuilder),
		}
		a.groups[id] = ab
	}
	t := ev.RequestReceived.UTC()
	ag := &ab.agg
	ag.Count++
	if ag.FirstSeen.IsZero() || t.Before(ag.FirstSeen) {
		ag.FirstSeen = t
	}
	if t.After(ag.LastSeen) {
		ag.LastSeen = t
	}
	start := t.Truncate(BucketWidth)
	bb := ab.buckets[start.Unix()]
	if bb == nil {
		bb = &bucketBuilder{
			b:        Bucket{Start: start, First: t, Last: t},
			distinct: make(map[string]map[string]struct{}),
			values:   make(map[string]*valueSet),
		}
		ab.buckets[start.Unix()] = bb
	}
	bb.b.Count++
	if t.Before(bb.b.First) {
		bb.b.First = t
	}
	if t.After(bb.b.Last) {
		bb.b.Last = t
	}
	for _, m := range marks {
		bb.marks |= 1 << uint(m)
	}
	for _, f := range ab.distinct {
		set := bb.distinct[string(f)]
		if set == nil {
			set = make(map[string]struct{})
			bb.distinct[string(f)] = set
		}
		if len(set) >= DistinctCap {
			continue
		}
		set[f.Value(ev, a.cluster)] = struct{}{}
	}
	for _, f := range r.Collect {
		v := f.Value(ev, a.cluster)
		if v == "" {
			continue
		}
		addValue(ab.values, string(f), v, ReportValuesCap)
		addValue(bb.values, string(f), truncateUTF8(v, StoredValueLen), BucketValuesCap)
	}
	for _, v := range ev.ForwardedFor() {
		if v = strings.TrimSpace(v); v != "" {
			addValue(bb.values, forwardedForField, truncateUTF8(v, StoredValueLen), BucketValuesCap)
		}
	}
}

func addValue(m map[string]*valueSet, field, v string, max int) {
	s := m[field]
	if s == nil {
		s = &valueSet{max: max}
		m[field] = s
	}
	s.add(v)
}

// group returns the Group that id stands for. The groups list is taken from
// ev (sorted), not split from id's joined form, since a group name may hold
// a comma.
func (id groupID) group(ev *audit.Event) Group {
	g := Group{SrcIP: id.src, ClusterName: id.cluster, User: id.user, UserAgent: id.agent}
	if id.groups != "" {
		g.Groups = append([]string(nil), ev.User.Groups...)
		sort.Strings(g.Groups)
	}
	return g
}

// aggregates returns the batch's aggregates sorted by key.
func (a *aggregator) aggregates() []Aggregate {
	byKey := make(map[string]*aggBuilder, len(a.groups))
	for _, ab := range a.groups {
		byKey[ab.agg.Key] = ab
	}
	out := make([]Aggregate, 0, len(a.groups))
	for _, key := range sortedKeys(byKey) {
		ab := byKey[key]
		ag := ab.agg
		ag.Values = make(map[string][]string, len(ab.values))
		for f, s := range ab.values {
			ag.Values[f] = s.vals
			ag.ValuesTruncated = ag.ValuesTruncated || s.truncated
		}
		starts := make([]int64, 0, len(ab.buckets))
		for s := range ab.buckets {
			starts = append(starts, s)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		for _, s := range starts {
			ag.Buckets = append(ag.Buckets, ab.buckets[s].bucket())
		}
		out = append(out, ag)
	}
	return out
}

func (bb *bucketBuilder) bucket() Bucket {
	b := bb.b
	if len(bb.distinct) > 0 {
		b.Distinct = make(map[string][]string, len(bb.distinct))
		for f, set := range bb.distinct {
			hs := make([]string, 0, len(set))
			for v := range set {
				hs = append(hs, DistinctHash(v))
			}
			sort.Strings(hs)
			b.Distinct[f] = hs
			if len(hs) >= DistinctCap {
				b.Saturated = append(b.Saturated, f)
			}
		}
		sort.Strings(b.Saturated)
	}
	for i := 0; i < 64; i++ {
		if bb.marks&(1<<uint(i)) != 0 {
			b.Marks = append(b.Marks, i)
		}
	}
	if len(bb.values) > 0 {
		b.Values = make(map[string][]string, len(bb.values))
		for f, s := range bb.values {
			b.Values[f] = s.vals
		}
	}
	return b
}

// skipReason maps a parse error to its Result.Skipped reason.
func skipReason(err error) string {
	switch {
	case errors.Is(err, audit.ErrTruncated):
		return SkipTruncated
	case errors.Is(err, audit.ErrTooLarge):
		return SkipTooLarge
	case errors.Is(err, audit.ErrNotAudit):
		return SkipNotAudit
	default:
		return SkipMalformed
	}
}

// Aggregate parses and matches every line of b and returns the batch's
// aggregates, sorted by key, with the counts of what it skipped. It touches
// no state, so `anonwatch replay --report` uses it directly.
func (d *Detector) Aggregate(b *cwlogs.Batch) ([]Aggregate, Result) {
	return d.aggregate(context.Background(), b)
}

// aggregate is Aggregate; ctx carries the request id into its log lines.
func (d *Detector) aggregate(ctx context.Context, b *cwlogs.Batch) ([]Aggregate, Result) {
	res := Result{Batch: BatchID(b), Cluster: b.Cluster, Events: len(b.Events)}
	if b.MessageType == cwlogs.ControlMessage {
		res.Control = true
		return nil, res
	}
	agg := aggregator{cluster: b.Cluster, groups: make(map[groupID]*aggBuilder)}
	seen := make(map[string]struct{}, len(b.Events))
	logged := make(map[string]int)
	skip := func(reason, id string, err error) {
		if res.Skipped == nil {
			res.Skipped = make(map[string]int)
		}
		res.Skipped[reason]++
		if logged[reason] < skipLogLimit && reason != SkipStage {
			logged[reason]++
			attrs := []any{"reason", reason, "event_id", id, "log_stream", b.LogStream}
			if err != nil {
				attrs = append(attrs, "error", err.Error())
			}
			d.log.WarnContext(ctx, "skipped log event", attrs...)
		}
	}
	evalBefore := d.rules.EvalErrors()
	for i := range b.Events {
		le := &b.Events[i]
		if _, dup := seen[le.ID]; dup {
			skip(SkipDuplicate, le.ID, nil)
			continue
		}
		seen[le.ID] = struct{}{}
		if le.Dropped || !d.rules.Prefilter(le.Message) {
			res.Filtered++
			continue
		}
		ev, err := audit.Parse(le.Message, d.maxLine)
		if err != nil {
			skip(skipReason(err), le.ID, err)
			continue
		}
		if !ev.Final() {
			skip(SkipStage, le.ID, nil)
			continue
		}
		if ev.RequestReceived.IsZero() {
			// Without a time a request has no window; CloudWatch's own
			// ingestion time is the best stand-in.
			ev.RequestReceived = time.UnixMilli(le.Timestamp).UTC()
		}
		res.Parsed++
		d.rules.Match(&ev, b.Cluster, func(r *rules.Rule, marks []int) {
			res.Matched++
			agg.add(r, marks, &ev)
		})
	}
	res.EvalErrors = d.rules.EvalErrors() - evalBefore
	out := agg.aggregates()
	res.Aggregates = len(out)
	if n := res.SkippedTotal() - res.Skipped[SkipStage]; n > skipLogLimit {
		d.log.InfoContext(ctx, "skipped log events", slog.Int("count", n), slog.Any("by_reason", res.Skipped))
	}
	return out, res
}

// Merge adds o, an aggregate of the same (rule, group) from another batch,
// to a: counts add, times widen, and values merge keeping the
// ReportValuesCap smallest per field. Buckets are not merged; Merge serves
// whole-input reports, which ignore windows.
func (a *Aggregate) Merge(o *Aggregate) {
	a.Count += o.Count
	if a.FirstSeen.IsZero() || o.FirstSeen.Before(a.FirstSeen) {
		a.FirstSeen = o.FirstSeen
	}
	if o.LastSeen.After(a.LastSeen) {
		a.LastSeen = o.LastSeen
	}
	a.Buckets = nil
	if a.Values == nil {
		a.Values = make(map[string][]string, len(o.Values))
	}
	a.ValuesTruncated = a.ValuesTruncated || o.ValuesTruncated
	for f, vs := range o.Values {
		merged, dropped := mergeSorted(a.Values[f], vs, ReportValuesCap)
		a.Values[f] = merged
		a.ValuesTruncated = a.ValuesTruncated || dropped
	}
}
