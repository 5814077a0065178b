package detect

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/jsonscan"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// forwardedForField is collected for every rule: findings show the client's
// unverified address claims next to the address that counts.
const forwardedForField = "forwarded_for"

// noUserAgentField marks, among a bucket's values, that some request the
// rule collects user agents of sent none: real audit lines often have no
// userAgent, and the finding's ua_class must then say "none" rather than
// be missing. It is never shown as a value.
const noUserAgentField = "no_user_agent"

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
// table item is readable; the hash covers every group value. A sweep's key
// has "*" where the address goes, which no address can spell.
func GroupKey(rule string, g *Group) string {
	sc := Scope{g.Account, g.Region}
	if g.Sweep {
		h := sha256.Sum256([]byte("sweep\x00" + g.ClusterName + sc.suffix()))
		return rule + "#*#" + hex.EncodeToString(h[:8])
	}
	return groupKey(rule, g.SrcIP, g.SrcNet, g.ClusterName, sc, g.User, strings.Join(g.Groups, ","), g.UserAgent)
}

func groupKey(rule, src, net, cluster string, sc Scope, user, groups, agent string) string {
	h := sha256.New()
	for _, s := range []string{src, cluster, user, groups, agent} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if !sc.IsZero() {
		// Only another account's or region's cluster hashes it, so the
		// keys of a single-account deployment stay what they were.
		h.Write([]byte("scope" + sc.suffix()))
	}
	lead := src
	if net != "" {
		// Only network groups hash it, so the keys of the groups stored
		// before src_net existed stay what they were.
		h.Write([]byte("net\x00" + net))
		if lead == "" {
			lead = net
		}
	}
	return rule + "#" + lead + "#" + hex.EncodeToString(h.Sum(nil)[:8])
}

// requestField is the distinct set, internal to a bucket, of the
// long-running requests it counts. Such a request is audited twice, at
// ResponseStarted and at ResponseComplete, hours apart and in different
// deliveries or none; counting the identities of its records as a set,
// which state merges by union, counts it once whichever records arrive, in
// whatever order and batches. A bucket's requests are its Count plus the
// size of this set (Bucket.Requests). The set saturates at DistinctCap, so
// past 128 long-running requests a minute from one group the count is a
// lower bound, far above any threshold.
const requestField = "request"

// requestIdentity names the request ev is a record of, from what both its
// records carry: the time the API server received it and the connection's
// address, which the client cannot choose, and the rest of the request
// line. auditID alone would not do: the client can set it (Audit-ID). It
// returns "" for a request that is not long-running. The identity is a
// digest, computed once per event: a padded URI must not be copied once
// per rule the event matches.
func requestIdentity(ev *audit.Event) string {
	if !ev.LongRunning() {
		return ""
	}
	h := sha256.New()
	var buf [512]byte
	for _, s := range []string{
		ev.RequestReceived.UTC().Format(time.RFC3339Nano), ev.SrcIP(), ev.AuditID,
		ev.User.Username, ev.Verb, ev.RequestURI,
	} {
		h.Write(binary.BigEndian.AppendUint64(buf[:0], uint64(len(s))))
		// In pieces through a buffer of our own: []byte(s) would copy a
		// 1 MB URI whole, and a delivery of them doubles the peak heap.
		for len(s) > 0 {
			n := copy(buf[:], s)
			h.Write(buf[:n])
			s = s[n:]
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
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
	scope   Scope
	max     int // groups a rule opens per batch; <= 0: no bound
	groups  map[groupID]*aggBuilder
	open    map[*rules.Rule]int
	// over counts, per rule past max, the requests of each group that got
	// no builder, to rank the groups once the batch has been read.
	over map[*rules.Rule]map[groupID]int64
	// escalated holds, per group some request of which met one of its
	// rule's per-request escalations, the highest such severity: choose
	// tracks those groups one by one before any merely busy one.
	escalated map[groupID]rules.Severity
	// chosen, in the second pass, holds the groups an overflowing rule
	// tracks one by one; the rule's other requests go to its sweep.
	chosen map[*rules.Rule]map[groupID]bool
	swept  map[*rules.Rule]int // groups each rule's sweep holds
	sweeps map[*rules.Rule]*aggBuilder
	// report keeps Aggregate.Values, whole, for a report; without it (the
	// function) only the buckets' display values are kept, cut.
	report bool
	// request is the identity (requestIdentity) of the event being added,
	// set once per event by setEvent; "" unless it is long-running.
	request string
}

// setEvent prepares for adding ev to the rules it matches.
func (a *aggregator) setEvent(ev *audit.Event) { a.request = requestIdentity(ev) }

func newAggregator(cluster string, scope Scope, max int, report bool) *aggregator {
	return &aggregator{
		cluster: cluster,
		scope:   scope,
		max:     max,
		report:  report,
		groups:  make(map[groupID]*aggBuilder),
		open:    make(map[*rules.Rule]int),
	}
}

// groupID finds a batch's aggregate without hashing: the state key
// (GroupKey, a SHA-256) is computed once per group, not once per request.
type groupID struct {
	rule                                   *rules.Rule
	src, net, cluster, user, groups, agent string
	// scope is the batch's (Detector.scopeOf) whatever the rule groups
	// by: in an organization, a rule that does not group by cluster must
	// not let one member account's log lines, which it writes as it
	// likes, count into or suppress another account's findings.
	scope Scope
}

func groupIDOf(r *rules.Rule, ev *audit.Event, cluster string, scope Scope) groupID {
	id := groupID{rule: r, scope: scope}
	for _, f := range r.GroupBy {
		switch f {
		case rules.FieldSrcIP:
			id.src = ev.SrcIP()
		case rules.FieldSrcNet:
			id.net = r.Value(f, ev, cluster)
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

// key is GroupKey of the group id stands for.
func (id groupID) key() string {
	return groupKey(id.rule.ID, id.src, id.net, id.cluster, id.scope, id.user, id.groups, id.agent)
}

type aggBuilder struct {
	agg  Aggregate
	rule *rules.Rule
	// requests holds the identities of the long-running requests counted,
	// so that a batch holding both records of one counts it once.
	requests map[string]struct{}
	distinct []rules.Field // fields a threshold or escalation counts
	collect  []rules.Field
	values   map[string]*valueSet // whole values for a report; nil otherwise
	buckets  map[int64]*bucketBuilder
}

type bucketBuilder struct {
	b        Bucket
	distinct map[string]*distinctSet
	marks    uint64 // bit i: escalation i
	values   map[string]*valueSet
	// escalating holds the values of the requests that met one of the
	// rule's per-request escalations (an allowed secret read): they are
	// the evidence for the severity, and go first, however many other
	// requests' values would sort before them.
	escalating map[string]*valueSet
}

func newBuilder(r *rules.Rule, g Group, report bool) *aggBuilder {
	ab := &aggBuilder{
		agg:      Aggregate{Rule: r.ID, Key: GroupKey(r.ID, &g), Group: g, Window: r.Threshold.Window},
		rule:     r,
		distinct: r.DistinctFields(),
		collect:  r.Collect,
		buckets:  make(map[int64]*bucketBuilder),
	}
	if report {
		ab.values = make(map[string]*valueSet)
	}
	if g.Sweep {
		// A sweep counts and shows its addresses.
		if !slices.Contains(ab.distinct, rules.FieldSrcIP) {
			ab.distinct = append(slices.Clone(ab.distinct), rules.FieldSrcIP)
		}
		if !slices.Contains(ab.collect, rules.FieldSrcIP) {
			ab.collect = append(slices.Clone(ab.collect), rules.FieldSrcIP)
		}
	}
	return ab
}

// add adds ev to the group of r it belongs to. Once r has opened max groups
// in the batch, a request of a new group is only counted, and choose
// decides which groups r tracks.
func (a *aggregator) add(r *rules.Rule, marks []int, ev *audit.Event) {
	id := groupIDOf(r, ev, a.cluster, a.scope)
	for _, m := range marks {
		if m >= 0 && m < len(r.Escalate) && r.Escalate[m].Severity > a.escalated[id] {
			if a.escalated == nil {
				a.escalated = make(map[groupID]rules.Severity)
			}
			a.escalated[id] = r.Escalate[m].Severity
		}
	}
	ab := a.groups[id]
	if ab == nil {
		if a.max > 0 && a.open[r] >= a.max {
			if a.over == nil {
				a.over = make(map[*rules.Rule]map[groupID]int64)
			}
			if a.over[r] == nil {
				a.over[r] = make(map[groupID]int64)
			}
			a.over[r][id]++
			return
		}
		a.open[r]++
		ab = newBuilder(r, id.group(ev), a.report)
		a.groups[id] = ab
	}
	ab.add(ev, marks, a.cluster, a.request)
}

// overflowed reports whether some rule met more groups than max, so the
// batch needs a second pass (choose, then readd).
func (a *aggregator) overflowed() bool { return len(a.over) > 0 }

// choose picks, for each rule that overflowed, the groups to track one by
// one: every group with a request that met a per-request escalation to
// critical, even past max, so that no crowd of busier sources can push an
// allowed secret read into the sweep; then, up to max, those with a lower
// escalation, highest first, and those with the most requests in the batch
// (ties by key, so a retried batch picks the same). It drops every builder
// of that rule, for readd to rebuild.
func (a *aggregator) choose() {
	type cand struct {
		id  groupID
		sev rules.Severity
		n   int64
		key string
	}
	a.chosen = make(map[*rules.Rule]map[groupID]bool, len(a.over))
	a.sweeps = make(map[*rules.Rule]*aggBuilder, len(a.over))
	a.swept = make(map[*rules.Rule]int, len(a.over))
	for r, counts := range a.over {
		cs := make([]cand, 0, len(counts)+a.open[r])
		for id, n := range counts {
			cs = append(cs, cand{id, a.escalated[id], n, id.key()})
		}
		for id, ab := range a.groups {
			if id.rule == r {
				cs = append(cs, cand{id, a.escalated[id], ab.agg.Count, ab.agg.Key})
				delete(a.groups, id)
			}
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].sev != cs[j].sev {
				return cs[i].sev > cs[j].sev
			}
			if cs[i].n != cs[j].n {
				return cs[i].n > cs[j].n
			}
			return cs[i].key < cs[j].key
		})
		// Every group with a request that escalated to critical is
		// tracked, past max if need be: its evidence must not go to the
		// sweep however many busier sources surround it. In the default
		// rules only what the API server let through escalates to
		// critical (an allowed secret read, an open exec session, a cut
		// RBAC write by someone allowed to write RBAC), so a crowd of them
		// is itself the emergency, not a cost an anonymous client can
		// choose; lower escalations (a cut line is high) go first within
		// max, but no further.
		n := a.max
		for n < len(cs) && cs[n].sev >= rules.Critical {
			n++
		}
		keep := make(map[groupID]bool, n)
		for _, c := range cs[:n] {
			keep[c.id] = true
		}
		a.chosen[r] = keep
		a.swept[r] = len(cs) - n
	}
	a.over = nil
}

// readd is add for the second pass: only the rules that overflowed take
// ev, into a chosen group or into the rule's sweep.
func (a *aggregator) readd(r *rules.Rule, marks []int, ev *audit.Event) {
	keep, ok := a.chosen[r]
	if !ok {
		return
	}
	id := groupIDOf(r, ev, a.cluster, a.scope)
	var ab *aggBuilder
	if keep[id] {
		if ab = a.groups[id]; ab == nil {
			ab = newBuilder(r, id.group(ev), a.report)
			a.groups[id] = ab
		}
	} else if ab = a.sweeps[r]; ab == nil {
		ab = newBuilder(r, Group{ClusterName: a.cluster, Account: a.scope.Account, Region: a.scope.Region, Sweep: true}, a.report)
		ab.agg.Sources = a.swept[r]
		a.sweeps[r] = ab
	}
	ab.add(ev, marks, a.cluster, a.request)
}

// add adds ev to the group; request is its identity if it is long-running.
func (ab *aggBuilder) add(ev *audit.Event, marks []int, cluster, request string) {
	t := ev.RequestReceived.UTC()
	ag := &ab.agg
	if request != "" {
		if _, dup := ab.requests[request]; !dup {
			if ab.requests == nil {
				ab.requests = make(map[string]struct{})
			}
			ab.requests[request] = struct{}{}
			ag.Count++
		}
	} else {
		ag.Count++
	}
	if ag.FirstSeen.IsZero() || t.Before(ag.FirstSeen) {
		ag.FirstSeen = t
	}
	if t.After(ag.LastSeen) {
		ag.LastSeen = t
	}
	start := t.Truncate(BucketWidthFor(ag.Window))
	bb := ab.buckets[start.Unix()]
	if bb == nil {
		bb = &bucketBuilder{
			b:        Bucket{Start: start, First: t, Last: t},
			distinct: make(map[string]*distinctSet),
			values:   make(map[string]*valueSet),
		}
		ab.buckets[start.Unix()] = bb
	}
	if request == "" {
		bb.b.Count++
	} else {
		bb.distinctSet(requestField).add(request)
	}
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
		bb.distinctSet(string(f)).add(ab.rule.Value(f, ev, cluster))
	}
	for _, f := range ab.collect {
		v := ab.rule.Value(f, ev, cluster)
		if v == "" {
			// A damaged line may have lost its agent: unknown, not none.
			if f == rules.FieldUserAgent && ev.Damage == "" {
				addValue(bb.values, noUserAgentField, "true", BucketValuesCap)
			}
			continue
		}
		// A report shows whole values, so two long request URIs that
		// differ only past the display cut stay two.
		if ab.values != nil {
			addValue(ab.values, string(f), v, ReportValuesCap)
		}
		// Display values are cut here, not only when stored: a batch
		// of 1 MB request URIs must not keep 1 MB per value in memory.
		dv := displayValue(v, StoredValueLen)
		if len(marks) > 0 {
			if bb.escalating == nil {
				bb.escalating = make(map[string]*valueSet)
			}
			addValue(bb.escalating, string(f), dv, BucketValuesCap)
		}
		addValue(bb.values, string(f), dv, BucketValuesCap)
	}
	for _, v := range ev.ForwardedFor() {
		if v = strings.TrimSpace(v); v != "" {
			addValue(bb.values, forwardedForField, displayValue(v, StoredValueLen), BucketValuesCap)
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
	g := Group{SrcIP: id.src, SrcNet: id.net, ClusterName: id.cluster, Account: id.scope.Account, Region: id.scope.Region, User: id.user, UserAgent: id.agent}
	if id.groups != "" {
		g.Groups = append([]string(nil), ev.User.Groups...)
		sort.Strings(g.Groups)
	}
	return g
}

// aggregates returns the batch's aggregates sorted by key.
func (a *aggregator) aggregates() []Aggregate {
	byKey := make(map[string]*aggBuilder, len(a.groups)+len(a.sweeps))
	for _, ab := range a.groups {
		byKey[ab.agg.Key] = ab
	}
	for _, ab := range a.sweeps {
		byKey[ab.agg.Key] = ab
	}
	out := make([]Aggregate, 0, len(byKey))
	for _, key := range sortedKeys(byKey) {
		ab := byKey[key]
		ag := ab.agg
		if ab.values != nil {
			ag.Values = make(map[string][]string, len(ab.values))
			for f, s := range ab.values {
				ag.Values[f] = s.vals
				ag.ValuesTruncated = ag.ValuesTruncated || s.truncated
			}
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

func (bb *bucketBuilder) distinctSet(field string) *distinctSet {
	s := bb.distinct[field]
	if s == nil {
		s = &distinctSet{}
		bb.distinct[field] = s
	}
	return s
}

func (bb *bucketBuilder) bucket() Bucket {
	b := bb.b
	if len(bb.distinct) > 0 {
		b.Distinct = make(map[string][]string, len(bb.distinct))
		for f, set := range bb.distinct {
			b.Distinct[f] = set.sorted()
			if set.saturated() {
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
			vals := s.vals
			// The escalating requests' values first, then the others
			// in order, to the cap: each stays sorted within its part.
			if e := bb.escalating[f]; e != nil && len(e.vals) > 0 {
				vals = slices.Clone(e.vals)
				for _, v := range s.vals {
					if len(vals) >= BucketValuesCap {
						break
					}
					if !slices.Contains(e.vals, v) {
						vals = append(vals, v)
					}
				}
			}
			b.Values[f] = vals
			// bucket() used to drop this: a finding whose values were
			// cut said nothing of it.
			b.ValuesTruncated = b.ValuesTruncated || s.truncated
		}
	}
	for f, e := range bb.escalating {
		if len(e.vals) == 0 {
			continue
		}
		if b.Evidence == nil {
			b.Evidence = make(map[string][]string, len(bb.escalating))
		}
		b.Evidence[f] = slices.Clone(e.vals)
		b.ValuesTruncated = b.ValuesTruncated || e.truncated
	}
	return b
}

// damagedLog keys the log lines about damaged audit lines in a batch's
// log limit, beside the skip reasons.
const damagedLog = "damaged"

// suspectLen is the length from which a line that no rule's pre-filter
// string occurs in is still checked for damage. Lines are cut at a size
// bound (1 MB by CloudWatch Logs, 256 KB by CloudWatch's agent and, its
// best-practices guide says, by EKS), never at a few kilobytes, so a
// shorter line is whole or was never an audit event; a longer one must be
// whole JSON, or it is salvaged. Checking it costs one scan of it, and
// most audit lines are far shorter.
const suspectLen = 16 << 10

// readResult says how read dealt with a line that yields no event.
type readResult struct {
	filtered bool   // no rule can match it: never parsed
	skip     string // the Result.Skipped reason
	err      error  // what was wrong, for the log
}

// read turns a log event into the audit event the rules see. A whole line
// that holds a pre-filter string is parsed; a line that cannot be parsed
// whole (cut, too large, not JSON: SkipTruncated, SkipTooLarge,
// SkipMalformed), or that the decoder cut to keep its delivery in bounds
// (le.Cut), is salvaged (audit.Salvage) if what survived shows an audit
// event, or it comes from an audit log stream; its Damage then says what
// happened; so is every line the decoder cut, whatever is left of it.
// Anything else is filtered or skipped. read is deterministic,
// so both passes over a batch see the same events.
func (d *Detector) read(le *cwlogs.LogEvent, stream string) (audit.Event, readResult) {
	if le.Dropped {
		return audit.Event{}, readResult{filtered: true}
	}
	msg := le.Message
	size := le.Size
	if size < len(msg) {
		size = len(msg) // a Batch built by hand, not by cwlogs
	}
	var damage string
	var err error
	switch {
	case le.Cut:
		damage = DamageOverBound
		err = fmt.Errorf("line of %d bytes cut to %d by the decoder's bound on a delivery", size, len(msg))
	case d.rules.Prefilter(msg):
		var ev audit.Event
		if ev, err = audit.Parse(msg, d.maxLine); err == nil {
			if !ev.Counted() {
				return audit.Event{}, readResult{skip: SkipStage}
			}
			if !eventTime(&ev, le) {
				return audit.Event{}, readResult{skip: SkipBadTime, err: badTimeError(&ev, le)}
			}
			ev.LineSize = size
			return ev, readResult{}
		}
		if damage = skipReason(err); damage == SkipNotAudit {
			return audit.Event{}, readResult{skip: damage, err: err}
		}
	default:
		if damage = suspect(msg, d.maxLine); damage == "" {
			return audit.Event{}, readResult{filtered: true}
		}
	}
	ev, ok := audit.Salvage(msg)
	if !ok && !le.Cut && !strings.HasPrefix(stream, auditStreamPrefix) {
		// Not an audit event, as far as it shows: a component's own log
		// line in the same log group.
		return audit.Event{}, readResult{skip: damage, err: err}
	}
	// A record counted at another stage of its request is skipped, as a
	// whole one is: the other record carries the same padding. A line cut
	// before its stage (a padded auditID) is counted.
	if ev.Stage != "" && !ev.Counted() {
		return audit.Event{}, readResult{skip: SkipStage}
	}
	ev.Damage, ev.LineSize = damage, size
	if !eventTime(&ev, le) {
		return audit.Event{}, readResult{skip: SkipBadTime, err: badTimeError(&ev, le)}
	}
	return ev, readResult{err: err}
}

// suspect returns the damage of a line no pre-filter string occurs in, or
// "" when it is whole: CloudWatch's agent's mark, a length over the
// parser's bound, or, from suspectLen up, not being whole JSON.
func suspect(msg []byte, maxLine int) string {
	switch {
	case audit.MarkedTruncated(msg):
		return DamageTruncated
	case len(msg) > maxLine:
		return DamageTooLarge
	case len(msg) >= suspectLen && !wholeJSON(msg):
		return DamageMalformed
	}
	return ""
}

func wholeJSON(b []byte) bool {
	i := jsonscan.SkipSpace(b, 0)
	end, ok := jsonscan.SkipValue(b, i, 0)
	return ok && jsonscan.SkipSpace(b, end) == len(b)
}

// Keep is the pre-filter for cwlogs.DecodeDataKeep: a line is kept when a
// rule's pre-filter string occurs in it, or when it may be damaged (marked
// cut, or long enough that read checks it). It sees the line JSON-escaped,
// which changes neither the pre-filter strings nor the mark, and only
// lengthens the line.
func (d *Detector) Keep(escaped []byte) bool {
	if d.rules.Prefilter(escaped) || len(escaped) >= suspectLen {
		return true
	}
	return audit.MarkedTruncated(escaped)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
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
// no state, so `anonwatch replay --report` uses it directly, and it is the
// only way to get Aggregate.Values: the whole collected values a report
// shows, which Process does not keep.
func (d *Detector) Aggregate(b *cwlogs.Batch) ([]Aggregate, Result) {
	return d.AggregateContext(context.Background(), b)
}

// AggregateContext is Aggregate with the context its log lines are
// written with.
func (d *Detector) AggregateContext(ctx context.Context, b *cwlogs.Batch) ([]Aggregate, Result) {
	aggs, res, _ := d.aggregateBatch(ctx, b, true, time.Time{})
	return aggs, res
}

// aggregateBatch is Aggregate; report keeps Aggregate.Values. Process
// (through Prepare) does without them: the function keeps only the
// buckets' display values, cut to StoredValueLen, so a delivery of long
// request URIs costs it little memory. ctx carries the request id into its
// log lines. Unless until is zero, the events from until on are left out
// (Config.Fence).
//
// markFrom is the earliest log event time, Unix ms, of the events the
// batch counted, long-running ones aside: what Config.MarkLive records.
// The mark must not be later than any event the function counted, or a
// backfill counts it again; it need not be earlier than what it counted,
// and the later it is, the less a backfill leaves out of what was shipped
// before the subscription began.
func (d *Detector) aggregateBatch(ctx context.Context, b *cwlogs.Batch, report bool, until time.Time) (aggs []Aggregate, res Result, markFrom int64) {
	res = Result{Batch: BatchID(b), Cluster: b.Cluster, Events: len(b.Events)}
	if b.MessageType == cwlogs.ControlMessage {
		res.Control = true
		return nil, res, 0
	}
	agg := newAggregator(b.Cluster, d.scopeOf(b), d.maxGroups, report)
	var matched []int // events some rule matched, for a second pass
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
	// One event for the whole batch: the rules see it by pointer, so it
	// lives on the heap, and a variable per line would be an allocation
	// per line, lines no rule can match included. Nothing keeps the
	// pointer past the line.
	var ev audit.Event
	for i := range b.Events {
		le := &b.Events[i]
		if _, dup := seen[le.ID]; dup {
			skip(SkipDuplicate, le.ID, nil)
			continue
		}
		seen[le.ID] = struct{}{}
		var r readResult
		ev, r = d.read(le, b.LogStream)
		switch {
		case r.filtered:
			res.Filtered++
			continue
		case r.skip != "":
			skip(r.skip, le.ID, r.err)
			continue
		case until.IsZero():
		case ev.LongRunning():
			// Counted by its request's identity, a set that merges
			// once whoever counts it (requestIdentity): never fenced.
			// Its log time is the request's own if CloudWatch's is,
			// hours before its record was shipped, so the mark
			// ignores it too (markFrom).
		case le.Timestamp > 0 && le.Timestamp >= until.UnixMilli(),
			// No log event time (JSON lines, extracted messages): the
			// time the API server wrote the record stands for it.
			le.Timestamp <= 0 && !written(&ev).Before(until):
			// Fenced after filtering and skipping, as the function
			// would have: Fenced counts what the function counts,
			// whatever the backfill's format.
			res.Fenced++
			continue
		}
		if ev.Damage != "" {
			res.Damaged++
			if logged[damagedLog] < skipLogLimit {
				logged[damagedLog]++
				d.log.WarnContext(ctx, "damaged audit line", "damage", ev.Damage, "bytes", ev.LineSize,
					"event_id", le.ID, "log_stream", b.LogStream, "audit_id", displayValue(ev.AuditID, 64),
					"src_ip", ev.SrcIP(), "error", errString(r.err))
			}
		}
		res.Parsed++
		n := res.Matched
		agg.setEvent(&ev)
		d.rules.Match(&ev, b.Cluster, func(r *rules.Rule, marks []int) {
			res.Matched++
			agg.add(r, marks, &ev)
		})
		if res.Matched > n {
			matched = append(matched, i)
			if le.Timestamp > 0 && !ev.LongRunning() && (markFrom == 0 || le.Timestamp < markFrom) {
				markFrom = le.Timestamp
			}
		}
	}
	if agg.overflowed() {
		d.regroup(ctx, b, agg, matched)
	}
	res.EvalErrors = d.rules.EvalErrors() - evalBefore
	out := agg.aggregates()
	res.Aggregates = len(out)
	if n := res.SkippedTotal() - res.Skipped[SkipStage]; n > skipLogLimit {
		d.log.InfoContext(ctx, "skipped log events", slog.Int("count", n), slog.Any("by_reason", res.Skipped))
	}
	return out, res, markFrom
}

// The event times the detector accepts: [minEventTime, endEventTime).
var (
	minEventTime = time.Unix(0, 0).UTC()
	endEventTime = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ValidEventTime reports whether the detector counts a request at t: from
// 1970-01-01T00:00:00Z up to, not including, 9000-01-01T00:00:00Z. Audit
// timestamps outside that span parse (year 0 and 9999 among them), but are
// no request's real time, and the state cannot hold every time derived from
// them (a window before, a suppression period and a TTL after, within the
// years 1 to 9999 an RFC 3339 time can spell).
func ValidEventTime(t time.Time) bool {
	return !t.Before(minEventTime) && t.Before(endEventTime)
}

// eventTime settles ev.RequestReceived, the time ev is counted at, and
// reports false when ev has no usable time. The first of these that
// ValidEventTime accepts wins: requestReceivedTimestamp, stageTimestamp
// (the parser falls back to it only when the first is missing or
// unreadable; a time outside the span is as useless), and CloudWatch's
// ingestion time, the best stand-in: without a time a request would have no
// window. Both passes over a batch (aggregate and regroup) use it, so they
// count each request at the same time.
func eventTime(ev *audit.Event, le *cwlogs.LogEvent) bool {
	switch {
	case ValidEventTime(ev.RequestReceived):
	case ValidEventTime(ev.StageTimestamp):
		ev.RequestReceived = ev.StageTimestamp
	default:
		t := time.UnixMilli(le.Timestamp).UTC()
		if !ValidEventTime(t) {
			return false
		}
		ev.RequestReceived = t
	}
	return true
}

// written returns when the API server wrote ev's record, as near as ev
// tells: its stage time, else the time eventTime settled on.
func written(ev *audit.Event) time.Time {
	if ValidEventTime(ev.StageTimestamp) {
		return ev.StageTimestamp
	}
	return ev.RequestReceived
}

// badTimeError says, for the log, why eventTime refused ev.
func badTimeError(ev *audit.Event, le *cwlogs.LogEvent) error {
	return fmt.Errorf("requestReceivedTimestamp %s, stageTimestamp %s and ingestion time %s: none from %s until %s",
		ev.RequestReceived.Format(time.RFC3339Nano), ev.StageTimestamp.Format(time.RFC3339Nano),
		time.UnixMilli(le.Timestamp).UTC().Format(time.RFC3339Nano),
		minEventTime.Format(time.RFC3339), endEventTime.Format(time.RFC3339))
}

// regroup is the second pass over a batch in which some rule met more than
// MaxGroups groups: it parses the matched lines again and sends each
// overflowing rule's requests to the groups choose kept or to the rule's
// sweep. Two passes cost a batch that overflows twice the parsing of its
// matched lines, and keep memory to MaxGroups builders per rule however
// many sources the batch holds; the usual batch never gets here.
func (d *Detector) regroup(ctx context.Context, b *cwlogs.Batch, agg *aggregator, matched []int) {
	agg.choose()
	var ev audit.Event // one for the batch, as in aggregateBatch
	for _, i := range matched {
		le := &b.Events[i]
		var r readResult
		ev, r = d.read(le, b.LogStream)
		if r.filtered || r.skip != "" {
			continue // it was read in the first pass; read is deterministic
		}
		agg.setEvent(&ev)
		d.rules.Match(&ev, b.Cluster, func(r *rules.Rule, marks []int) {
			agg.readd(r, marks, &ev)
		})
	}
	for r := range agg.chosen {
		sw := agg.sweeps[r]
		d.log.WarnContext(ctx, "sources beyond the per-rule cap counted together",
			slog.String("rule", r.ID), slog.Int("max_groups", d.maxGroups),
			slog.Int64("requests", sw.agg.Count), slog.String("log_stream", b.LogStream))
	}
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
