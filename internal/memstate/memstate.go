// Package memstate keeps detect's rolling state in memory, for replay and
// unit tests.
//
// It is the reference implementation of the detect.State contract; the
// conformance suite in detect/statetest checks it, and dynamostate must return
// the same Windows for the same sequence of calls. Nothing is ever evicted, so
// memory grows with the number of (key, minute) buckets a run touches.
package memstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// DefaultLease is how long a granted claim keeps other batches from claiming
// the same key. It matches Lambda's maximum timeout, so a claim outlives the
// invocation that made it however that invocation ends.
const DefaultLease = 15 * time.Minute

// Limits on what Apply accepts. detect stays well inside them; they exist so
// that a bug upstream cannot grow state without bound. dynamostate applies
// the same limits, so both implementations reject and clip alike.
const (
	// MaxKeyLen bounds an Aggregate.Key in bytes.
	MaxKeyLen = 1024
	// MaxFieldLen bounds a field name in Distinct, Values or Saturated.
	MaxFieldLen = 64
	// MaxHashLen bounds one element of a Distinct set; longer ones are cut.
	MaxHashLen = 32
)

// State is an in-memory detect.State. It is safe for concurrent use.
type State struct {
	now   func() time.Time
	lease time.Duration

	mu      sync.Mutex
	series  map[string]*series // key → its buckets
	notices map[noticeKey]*notice
	budgets map[noticeKey]map[string]bool   // findings holding a budget's places
	live    map[string]map[string]time.Time // per cluster and stream, detect.LiveMarks
}

var (
	_ detect.State     = (*State)(nil)
	_ detect.LiveMarks = (*State)(nil)
)

// MarkLive lowers the live mark of cluster's stream to at
// (detect.LiveMarks).
func (s *State) MarkLive(_ context.Context, cluster, stream string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[cluster] == nil {
		s.live[cluster] = map[string]time.Time{}
	}
	if m, ok := s.live[cluster][stream]; !ok || at.Before(m) {
		s.live[cluster][stream] = at.UTC()
	}
	return nil
}

// LiveSince returns the live marks of cluster's streams (detect.LiveMarks).
func (s *State) LiveSince(_ context.Context, cluster string) (map[string]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.live[cluster]))
	for k, v := range s.live[cluster] {
		out[k] = v
	}
	return out, nil
}

// series is one key's stored buckets, ascending by start, so that a window
// is found by two binary searches, not by visiting every bucket the key
// ever had.
type series struct {
	starts  []int64 // Unix seconds
	buckets []*bucket
}

// bucket is one stored bucket. Its sets are kept sorted and free of
// duplicates as batches merge into it, so that reading a window copies
// them rather than sorting them again: a merge costs what the batch
// brought and a read what it returns, however often the bucket is read.
type bucket struct {
	start       time.Time
	count       int64
	first, last time.Time
	batches     map[string]bool
	marks       []int
	distinct    map[string][]string
	// saturated names the fields saturated by a batch and those whose
	// Distinct set reached detect.DistinctCap.
	saturated []string
	values    map[string][]string
	offered   int // values offered by all applied batches
	evidence  map[string][]string
	evOffered int // evidence values offered by all applied batches
	truncated bool
}

// notice is the notification state of one (key, suppression period).
type notice struct {
	severity  int // highest severity sent; 0: none
	held      int // highest severity held for a digest; 0: none
	findingID string

	claimBatch    string // "" when no claim is pending
	claimSeverity int
	claimUntil    time.Time
}

type noticeKey struct {
	key    string
	period int64 // Unix seconds
}

// New returns an empty State that reads the wall clock from now, which only
// times claim leases, and holds each granted claim for lease (DefaultLease
// when lease ≤ 0).
func New(now func() time.Time, lease time.Duration) *State {
	if lease <= 0 {
		lease = DefaultLease
	}
	return &State{
		now:     now,
		lease:   lease,
		series:  make(map[string]*series),
		notices: make(map[noticeKey]*notice),
		budgets: make(map[noticeKey]map[string]bool),
		live:    make(map[string]map[string]time.Time),
	}
}

// Apply merges each aggregate's buckets into state unless this batch already
// merged them, then returns each aggregate's window. See detect.State and the
// statetest suite for the exact merge rules.
func (s *State) Apply(ctx context.Context, batch string, aggs []detect.Aggregate) ([]detect.Window, error) {
	norm, err := Normalize(batch, aggs)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]detect.Window, len(norm))
	for i, a := range norm {
		sr := s.series[a.Key]
		if sr == nil {
			sr = &series{}
			s.series[a.Key] = sr
		}
		for _, b := range a.Buckets {
			sr.at(b).merge(batch, b)
		}
		out[i] = sr.window(a)
	}
	return out, nil
}

// at returns the bucket that starts at b.Start, adding it if there is none.
func (sr *series) at(b detect.Bucket) *bucket {
	u := b.Start.Unix()
	i, found := slices.BinarySearch(sr.starts, u)
	if found {
		return sr.buckets[i]
	}
	bk := &bucket{
		start:   b.Start,
		first:   b.First,
		last:    b.Last,
		batches: make(map[string]bool),
	}
	sr.starts = slices.Insert(sr.starts, i, u)
	sr.buckets = slices.Insert(sr.buckets, i, bk)
	return bk
}

// merge adds b, from batch, to bk unless batch was merged into it before.
// b is normalized: its sets sorted and free of duplicates.
func (bk *bucket) merge(batch string, b detect.Bucket) {
	if bk.batches[batch] {
		return
	}
	bk.batches[batch] = true
	bk.count += b.Count
	if b.First.Before(bk.first) {
		bk.first = b.First
	}
	if b.Last.After(bk.last) {
		bk.last = b.Last
	}
	bk.marks = union(bk.marks, b.Marks)
	bk.saturated = union(bk.saturated, b.Saturated)
	for f, hs := range b.Distinct {
		set := bk.distinct[f]
		if len(set) >= detect.DistinctCap {
			bk.saturated = union(bk.saturated, []string{f})
			continue
		}
		if bk.distinct == nil {
			bk.distinct = make(map[string][]string)
		}
		set = union(set, hs)
		bk.distinct[f] = set
		if len(set) >= detect.DistinctCap {
			bk.saturated = union(bk.saturated, []string{f})
		}
	}
	bk.offered = mergeValues(&bk.values, b.Values, bk.offered, detect.BucketValuesBudget, &bk.truncated)
	bk.evOffered = mergeValues(&bk.evidence, b.Evidence, bk.evOffered, detect.EvidenceBudget, &bk.truncated)
	if b.ValuesTruncated {
		bk.truncated = true
	}
}

// union returns the sorted union of a and b, both sorted and free of
// duplicates. It returns a itself when b adds nothing to it, and otherwise
// a new slice, so that a slice once stored is never written to again.
func union[T cmp.Ordered](a, b []T) []T {
	if subset(b, a) {
		return a
	}
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// subset reports whether every element of b is in a, both sorted.
func subset[T cmp.Ordered](b, a []T) bool {
	i := 0
	for _, x := range b {
		for i < len(a) && a[i] < x {
			i++
		}
		if i == len(a) || a[i] != x {
			return false
		}
	}
	return true
}

// mergeValues adds a batch's values to a bucket's sets while fewer than
// budget were offered before, and returns the values offered now; a
// refusal sets truncated.
func mergeValues(sets *map[string][]string, add map[string][]string, offered, budget int, truncated *bool) int {
	n := 0
	for _, vs := range add {
		n += len(vs)
	}
	if n == 0 {
		return offered
	}
	if offered >= budget {
		*truncated = true
		return offered + n
	}
	if *sets == nil {
		*sets = make(map[string][]string, len(add))
	}
	for f, vs := range add {
		(*sets)[f] = union((*sets)[f], vs)
	}
	return offered + n
}

// window returns the stored buckets that a's window covers.
func (sr *series) window(a detect.Aggregate) detect.Window {
	w := detect.Window{Key: a.Key}
	if len(a.Buckets) == 0 {
		return w
	}
	from, to := WindowRange(a)
	lo, _ := slices.BinarySearch(sr.starts, from.Unix())
	hi, found := slices.BinarySearch(sr.starts, to.Unix())
	if found {
		hi++
	}
	if lo < hi {
		w.Buckets = make([]detect.Bucket, hi-lo)
		for i, bk := range sr.buckets[lo:hi] {
			w.Buckets[i] = bk.export()
		}
	}
	return w
}

// export returns bk as a Window holds it, sharing nothing with bk: its sets
// are copied into one slice, which the returned sets are cut from, each
// with no room to grow into its neighbour.
func (bk *bucket) export() detect.Bucket {
	b := detect.Bucket{
		Start:           bk.start,
		Count:           bk.count,
		First:           bk.first,
		Last:            bk.last,
		ValuesTruncated: bk.truncated,
		Marks:           slices.Clone(bk.marks),
	}
	n := len(bk.saturated)
	for _, sets := range []map[string][]string{bk.distinct, bk.values, bk.evidence} {
		for _, set := range sets {
			n += len(set)
		}
	}
	if n == 0 {
		return b
	}
	buf := make([]string, 0, n)
	cut := func(set []string) []string {
		if len(set) == 0 {
			return nil
		}
		start := len(buf)
		buf = append(buf, set...)
		return buf[start:len(buf):len(buf)]
	}
	b.Saturated = cut(bk.saturated)
	copySets := func(sets map[string][]string) map[string][]string {
		var out map[string][]string
		for f, set := range sets {
			if len(set) == 0 {
				continue
			}
			if out == nil {
				out = make(map[string][]string, len(sets))
			}
			out[f] = cut(set)
		}
		return out
	}
	b.Distinct = copySets(bk.distinct)
	b.Values = copySets(bk.values)
	b.Evidence = copySets(bk.evidence)
	return b
}

// ExportSets fills b's Distinct, Values and Saturated from a bucket's sets
// as both states return them: each non-empty set sorted (the map nil when
// none is), and Saturated listing, sorted, the fields in saturated and
// those whose Distinct set holds detect.DistinctCap hashes. dynamostate
// exports the sets it merges from shards with this function, and memstate
// keeps its sets in the same form as it merges them, so both states return
// the same Bucket. It does not modify its arguments.
func ExportSets(b *detect.Bucket, distinct, values map[string]map[string]bool, saturated map[string]bool) {
	sat := make(map[string]bool, len(saturated))
	maps.Copy(sat, saturated)
	b.Distinct = SortedSets(distinct)
	for f, hs := range b.Distinct {
		if len(hs) >= detect.DistinctCap {
			sat[f] = true
		}
	}
	b.Saturated = slices.Sorted(maps.Keys(sat))
	b.Values = SortedSets(values)
}

// SortedSets returns the non-empty sets in sets as sorted slices, or nil
// when there are none. dynamostate exports the evidence it merges with it.
func SortedSets(sets map[string]map[string]bool) map[string][]string {
	var out map[string][]string
	for f, set := range sets {
		if len(set) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string][]string)
		}
		out[f] = slices.Sorted(maps.Keys(set))
	}
	return out
}

// Claim grants c unless a finding of c.Severity or higher was sent for
// (c.Key, c.Period) or another batch holds a live claim there of c.Severity
// or higher; see detect.State.
func (s *State) Claim(ctx context.Context, c detect.Claim) (detect.Grant, error) {
	if err := CheckClaim(c); err != nil {
		return detect.Grant{}, err
	}
	if err := ctx.Err(); err != nil {
		return detect.Grant{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.noticeFor(c)
	sev := int(c.Severity)
	g := detect.Grant{Sent: rules.Severity(n.severity)}
	free := n.claimBatch == "" || n.claimBatch == c.Batch || !now.Before(n.claimUntil) || n.claimSeverity < sev
	if n.severity >= sev || n.held >= sev || !free {
		return g, nil
	}
	n.claimBatch = c.Batch
	n.claimSeverity = sev
	n.claimUntil = now.Add(s.lease)
	g.OK = true
	return g, nil
}

// Spend grants d if its finding holds a place in the budget or one is
// free; see detect.State.
func (s *State) Spend(ctx context.Context, d detect.Draw) (bool, error) {
	if err := CheckDraw(d); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := noticeKey{d.Key, d.Period.Unix()}
	held := s.budgets[k]
	if held == nil {
		held = make(map[string]bool)
		s.budgets[k] = held
	}
	if held[d.FindingID] {
		return true, nil
	}
	if len(held) >= d.Limit {
		return false, nil
	}
	held[d.FindingID] = true
	return true, nil
}

// CheckDraw checks d against the limits Spend enforces. dynamostate checks
// with this same function.
func CheckDraw(d detect.Draw) error {
	switch {
	case d.Key == "" || len(d.Key) > MaxKeyLen:
		return fmt.Errorf("budget key %.64q: length %d not in [1, %d]", d.Key, len(d.Key), MaxKeyLen)
	case d.FindingID == "" || len(d.FindingID) > MaxKeyLen:
		return fmt.Errorf("budget %q: finding id length %d not in [1, %d]", d.Key, len(d.FindingID), MaxKeyLen)
	case d.Limit < 1 || d.Limit > rules.MaxBudget:
		return fmt.Errorf("budget %q: limit %d not in [1, %d]", d.Key, d.Limit, rules.MaxBudget)
	case !d.PeriodEnd.After(d.Period):
		return fmt.Errorf("budget %q: period end %v not after its start %v", d.Key, d.PeriodEnd, d.Period)
	case d.Period.Year() < 1 || d.PeriodEnd.Year() > 9999:
		return fmt.Errorf("budget %q: period %v outside years 1 to 9999", d.Key, d.Period)
	}
	return nil
}

// MarkSent records c as sent for (c.Key, c.Period), keeping the higher of
// the recorded severity and c's, and releases c.Batch's claim, if it still
// holds one.
func (s *State) MarkSent(ctx context.Context, c detect.Claim) error {
	if err := CheckClaim(c); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.noticeFor(c)
	switch sev := int(c.Severity); {
	case c.Held:
		n.held = max(n.held, sev)
	case sev > n.severity:
		n.severity = sev
		n.findingID = c.FindingID
	}
	if n.claimBatch == c.Batch {
		n.claimBatch = ""
		n.claimSeverity = 0
		n.claimUntil = time.Time{}
	}
	return nil
}

// noticeFor returns the notice of c's key and period, creating it; s.mu
// must be held.
func (s *State) noticeFor(c detect.Claim) *notice {
	k := noticeKey{c.Key, c.Period.Unix()}
	n := s.notices[k]
	if n == nil {
		n = &notice{}
		s.notices[k] = n
	}
	return n
}

// CheckClaim checks c against the limits Claim and MarkSent enforce: a key
// of 1 to MaxKeyLen bytes and a batch id. dynamostate checks with this same
// function, so both states refuse the same claims.
func CheckClaim(c detect.Claim) error {
	switch {
	case c.Key == "" || len(c.Key) > MaxKeyLen:
		return fmt.Errorf("claim key %.64q: length %d not in [1, %d]", c.Key, len(c.Key), MaxKeyLen)
	case c.Batch == "":
		return fmt.Errorf("claim on %q: empty batch id", c.Key)
	case c.Severity < rules.Low || c.Severity > rules.Critical:
		return fmt.Errorf("claim on %q: severity %d out of range", c.Key, c.Severity)
	case !c.PeriodEnd.After(c.Period):
		return fmt.Errorf("claim on %q: period end %v not after its start %v", c.Key, c.PeriodEnd, c.Period)
	case c.Period.Year() < 1 || c.PeriodEnd.Year() > 9999:
		return fmt.Errorf("claim on %q: period %v outside years 1 to 9999", c.Key, c.Period)
	}
	return nil
}

// WindowRange returns the first and last bucket Start that a's Window
// covers: from the first bucket of the window that ends with a's first
// bucket to the last bucket of the window that starts with a's last bucket,
// so every window that holds one of a's buckets lies inside. a must have
// buckets.
func WindowRange(a detect.Aggregate) (from, to time.Time) {
	span := detect.WindowSpan(a.Window)
	from = a.Buckets[0].Start.Add(-span)
	return from, a.Buckets[len(a.Buckets)-1].Start.Add(span)
}

// Normalize checks aggs against the limits Apply enforces and returns a
// canonical copy: times in UTC, sets deduplicated and sorted, display values
// made valid UTF-8 and cut to detect.StoredValueLen, Distinct elements cut to
// MaxHashLen, at most detect.BucketValuesCap values per field (dropping
// some sets ValuesTruncated) and detect.DistinctCap elements per Distinct
// field (dropping some adds the field to Saturated). detect already keeps
// inside these limits, so for its aggregates the copy is equal to the input.
// dynamostate normalizes with this same function, so both states clip alike.
func Normalize(batch string, aggs []detect.Aggregate) ([]detect.Aggregate, error) {
	if batch == "" {
		return nil, errors.New("empty batch id")
	}
	out := make([]detect.Aggregate, len(aggs))
	keys := make(map[string]bool, len(aggs))
	for i, a := range aggs {
		if a.Key == "" || len(a.Key) > MaxKeyLen {
			return nil, fmt.Errorf("aggregate %d: key %.64q: length %d not in [1, %d]", i, a.Key, len(a.Key), MaxKeyLen)
		}
		if keys[a.Key] {
			return nil, fmt.Errorf("aggregate %d: key %q appears twice in one batch", i, a.Key)
		}
		keys[a.Key] = true
		if a.Window < detect.BucketWidth {
			return nil, fmt.Errorf("aggregate %q: window %v shorter than one bucket (%v)", a.Key, a.Window, detect.BucketWidth)
		}
		n := a
		n.Buckets = make([]detect.Bucket, len(a.Buckets))
		for j, b := range a.Buckets {
			nb, err := normalizeBucket(b)
			if err != nil {
				return nil, fmt.Errorf("aggregate %q bucket %d: %w", a.Key, j, err)
			}
			if j > 0 && !nb.Start.After(n.Buckets[j-1].Start) {
				return nil, fmt.Errorf("aggregate %q: bucket %d starts at %v, not after %v", a.Key, j, nb.Start, n.Buckets[j-1].Start)
			}
			n.Buckets[j] = nb
		}
		out[i] = n
	}
	return out, nil
}

// normalizeValues clips display values and keeps the smallest
// BucketValuesCap per field, setting truncated when it drops some.
func normalizeValues(in map[string][]string, truncated *bool) (map[string][]string, error) {
	var out map[string][]string
	for f, vs := range in {
		if err := checkField(f); err != nil {
			return nil, err
		}
		set := make(map[string]bool, len(vs))
		for _, v := range vs {
			set[Clip(v, detect.StoredValueLen)] = true
		}
		if len(set) == 0 {
			continue
		}
		vs := slices.Sorted(maps.Keys(set))
		if len(vs) > detect.BucketValuesCap {
			vs = vs[:detect.BucketValuesCap]
			*truncated = true
		}
		if out == nil {
			out = make(map[string][]string)
		}
		out[f] = vs
	}
	return out, nil
}

func normalizeBucket(b detect.Bucket) (detect.Bucket, error) {
	for _, t := range []time.Time{b.Start, b.First, b.Last} {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return b, fmt.Errorf("time %v outside years 1 to 9999", t)
		}
	}
	if !b.Start.Equal(b.Start.Truncate(detect.BucketWidth)) {
		return b, fmt.Errorf("start %v not a multiple of %v", b.Start, detect.BucketWidth)
	}
	if b.Count < 0 {
		return b, fmt.Errorf("negative count %d", b.Count)
	}
	n := detect.Bucket{
		Start:           b.Start.UTC(),
		Count:           b.Count,
		First:           b.First.UTC(),
		Last:            b.Last.UTC(),
		ValuesTruncated: b.ValuesTruncated,
	}
	sat := make(map[string]bool)
	for _, f := range b.Saturated {
		if err := checkField(f); err != nil {
			return b, err
		}
		sat[f] = true
	}
	for f, hs := range b.Distinct {
		if err := checkField(f); err != nil {
			return b, err
		}
		set := make(map[string]bool, len(hs))
		for _, h := range hs {
			set[Clip(h, MaxHashLen)] = true
		}
		if len(set) == 0 {
			continue
		}
		hs := slices.Sorted(maps.Keys(set))
		if len(hs) > detect.DistinctCap {
			hs = hs[:detect.DistinctCap]
			sat[f] = true
		}
		if n.Distinct == nil {
			n.Distinct = make(map[string][]string)
		}
		n.Distinct[f] = hs
	}
	n.Saturated = slices.Sorted(maps.Keys(sat))
	var err error
	if n.Values, err = normalizeValues(b.Values, &n.ValuesTruncated); err != nil {
		return b, err
	}
	if n.Evidence, err = normalizeValues(b.Evidence, &n.ValuesTruncated); err != nil {
		return b, err
	}
	marks := make(map[int]bool, len(b.Marks))
	for _, m := range b.Marks {
		marks[m] = true
	}
	n.Marks = slices.Sorted(maps.Keys(marks))
	return n, nil
}

func checkField(f string) error {
	if f == "" || len(f) > MaxFieldLen || !utf8.ValidString(f) {
		return fmt.Errorf("field name %.80q: want 1 to %d bytes of UTF-8", f, MaxFieldLen)
	}
	return nil
}

// Clip makes s valid UTF-8 and cuts it to at most n bytes without splitting
// a character, because DynamoDB rejects invalid UTF-8 and both states must
// store the same string.
func Clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
