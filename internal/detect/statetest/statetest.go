// Package statetest is the conformance suite for detect.State. Every
// implementation (memstate, dynamostate) runs Run, so they agree on the
// contract below call for call; the expected Windows are spelled out here,
// not computed by a second implementation.
//
// The contract, for Apply(ctx, batch, aggs):
//
//   - For each aggregate a and bucket b in a.Buckets, b is merged into the
//     stored bucket (a.Key, b.Start) at most once per (batch, a.Key,
//     b.Start), however often Apply runs with that batch, including after an
//     earlier call failed part-way.
//   - Merge: Count adds; First is the earliest and Last the latest of the
//     merged batches' (whatever their order); Marks and Saturated are unions;
//     Distinct[f] is a union, unless the stored set
//     already holds DistinctCap or more elements, in which case the batch's
//     elements are dropped (the field is then reported Saturated, as is any
//     field whose stored set holds DistinctCap or more); Values[f] is a union
//     while fewer than BucketValuesBudget values were offered to the bucket
//     by earlier batches (counting refused ones), otherwise a batch that
//     offers values has them dropped and sets ValuesTruncated, which stays
//     set. A batch's own ValuesTruncated also sets it.
//   - Input is normalized first (memstate.Normalize): keys unique within a
//     call, Window ≥ BucketWidth, Starts aligned and strictly ascending;
//     values clipped to StoredValueLen, at most BucketValuesCap per field.
//   - It returns one Window per aggregate, in order, holding every stored
//     bucket of a.Key whose Start lies in [a.Buckets[0].Start − span,
//     a.Buckets[last].Start + span] (span = detect.WindowSpan(a.Window)),
//     ascending, read after the merge: of two concurrent calls, the one
//     that returns last sees the other's buckets. Sets are sorted; empty
//     maps and slices are nil.
//
// Claims are per (Key, Period). Claim(c) is granted iff no finding of
// c.Severity or higher was marked sent for (c.Key, c.Period), and (no claim
// is pending there, or it is c.Batch's, or its lease has expired: now ≥
// granted-at + lease by the wall clock, or its severity is lower than
// c.Severity). A grant records a pending claim for c.Batch at c.Severity
// with a fresh lease. MarkSent(c) raises the sent severity of (c.Key,
// c.Period) to c.Severity if it is lower, never lowers it, and releases the
// pending claim only if it is c.Batch's.
package statetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/google/go-cmp/cmp"
)

// Lease is the claim lease the State under test must use; both
// implementations default to it.
const Lease = 15 * time.Minute

// T0 is the event time the suite's buckets start from.
var T0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable wall clock for tests. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run checks that newState's States satisfy the detect.State contract.
// newState is called once per subtest and must return an empty State that
// reads the wall clock from now and uses Lease. Subtests run in parallel.
func Run(t *testing.T, newState func(t *testing.T, now func() time.Time) detect.State) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st detect.State, clock *Clock)
	}{
		{"Merge", testMerge},
		{"WindowPerAggregateInOrder", testOrder},
		{"ReapplySameBatch", testReapply},
		{"ReapplyAfterPartialFailure", testPartial},
		{"WindowBounds", testWindowBounds},
		{"RollOverThreeWindows", testRollOver},
		{"DistinctSaturation", testDistinct},
		{"ValuesBudget", testValuesBudget},
		{"EvidenceOutlivesTheValuesBudget", testEvidenceBudget},
		{"Normalize", testNormalize},
		{"Invalid", testInvalid},
		{"Empty", testEmpty},
		{"ResultsDoNotAlias", testAliasing},
		{"ConcurrentApply", testConcurrentApply},
		{"ConcurrentAdjacentMinutesSeeEachOther", testConcurrentAdjacent},
		{"ClaimRace", testClaimRace},
		{"ClaimSameBatchAgain", testClaimSameBatch},
		{"HigherOvertakesPendingClaim", testHigherOvertakesPending},
		{"LateLowerMarkSentKeepsHigher", testLateLowerMarkSentKeepsHigher},
		{"MarkSentSuppresses", testMarkSent},
		{"PeriodsAreEventTime", testPeriodsAreEventTime},
		{"LeaseExpiry", testLease},
		{"MarkSentKeepsOtherBatchClaim", testMarkSentOtherClaim},
		{"InvalidClaim", testInvalidClaim},
		{"ClaimReportsNothingSent", testClaimNothingSent},
		{"SpendIsExactUnderConcurrency", testSpendRace},
		{"SpendIsIdempotentPerFinding", testSpendAgain},
		{"InvalidDraw", testInvalidDraw},
		{"LiveMarkKeepsTheEarliest", testLiveMarks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			tc.fn(t, newState(t, clock.Now), clock)
		})
	}
}

// minute returns the Start of the bucket m minutes after T0.
func minute(m int) time.Time { return T0.Add(time.Duration(m) * time.Minute) }

// bkt is a bucket at minute m with count events between second 1 and 59.
func bkt(m int, count int64) detect.Bucket {
	return detect.Bucket{
		Start: minute(m),
		Count: count,
		First: minute(m).Add(time.Second),
		Last:  minute(m).Add(59 * time.Second),
	}
}

func agg(key string, window time.Duration, buckets ...detect.Bucket) detect.Aggregate {
	return detect.Aggregate{Key: key, Window: window, Buckets: buckets}
}

func apply(t *testing.T, st detect.State, batch string, aggs ...detect.Aggregate) []detect.Window {
	t.Helper()
	got, err := st.Apply(context.Background(), batch, aggs)
	if err != nil {
		t.Fatalf("Apply(%q): %v", batch, err)
	}
	if len(got) != len(aggs) {
		t.Fatalf("Apply(%q) returned %d windows for %d aggregates", batch, len(got), len(aggs))
	}
	return got
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func hashes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

func testMerge(t *testing.T, st detect.State, _ *Clock) {
	b1 := bkt(0, 3)
	b1.First, b1.Last = minute(0).Add(10*time.Second), minute(0).Add(20*time.Second)
	b1.Distinct = map[string][]string{"path": {"h2", "h1"}}
	b1.Marks = []int{0}
	b1.Values = map[string][]string{"path": {"/b", "/a"}}

	b2 := bkt(0, 2)
	b2.First, b2.Last = minute(0).Add(5*time.Second), minute(0).Add(15*time.Second)
	b2.Distinct = map[string][]string{"path": {"h3", "h2"}, "user_agent": {"u1"}}
	b2.Marks = []int{2, 0}
	b2.Saturated = []string{"verb"}
	b2.Values = map[string][]string{"path": {"/c", "/b"}, "user_agent": {""}}
	b2.ValuesTruncated = true

	const key = "probe#203.0.113.7"
	w := 10 * time.Minute
	tests := []struct {
		batch string
		agg   detect.Aggregate
		want  []detect.Bucket
	}{
		{
			batch: "batch-1",
			agg:   agg(key, w, b1),
			want: []detect.Bucket{{
				Start: minute(0), Count: 3,
				First: minute(0).Add(10 * time.Second), Last: minute(0).Add(20 * time.Second),
				Distinct: map[string][]string{"path": {"h1", "h2"}},
				Marks:    []int{0},
				Values:   map[string][]string{"path": {"/a", "/b"}},
			}},
		},
		{
			// First is the earliest (b2's, delivered second) and Last the
			// latest (b1's, delivered first): min and max, not arrival order.
			batch: "batch-2",
			agg:   agg(key, w, b2, bkt(1, 4)),
			want: []detect.Bucket{
				{
					Start: minute(0), Count: 5,
					First: minute(0).Add(5 * time.Second), Last: minute(0).Add(20 * time.Second),
					Distinct:        map[string][]string{"path": {"h1", "h2", "h3"}, "user_agent": {"u1"}},
					Saturated:       []string{"verb"},
					Marks:           []int{0, 2},
					Values:          map[string][]string{"path": {"/a", "/b", "/c"}, "user_agent": {""}},
					ValuesTruncated: true,
				},
				bkt(1, 4),
			},
		},
		{
			// A later batch that only touches minute 1 still sees minute 0.
			batch: "batch-3",
			agg:   agg(key, w, bkt(1, 1)),
			want: []detect.Bucket{
				{
					Start: minute(0), Count: 5,
					First: minute(0).Add(5 * time.Second), Last: minute(0).Add(20 * time.Second),
					Distinct:        map[string][]string{"path": {"h1", "h2", "h3"}, "user_agent": {"u1"}},
					Saturated:       []string{"verb"},
					Marks:           []int{0, 2},
					Values:          map[string][]string{"path": {"/a", "/b", "/c"}, "user_agent": {""}},
					ValuesTruncated: true,
				},
				bkt(1, 5),
			},
		},
	}
	for _, tc := range tests {
		got := apply(t, st, tc.batch, tc.agg)
		diff(t, "window after "+tc.batch, got[0], detect.Window{Key: key, Buckets: tc.want})
	}
}

func testOrder(t *testing.T, st detect.State, _ *Clock) {
	w := 5 * time.Minute
	aggs := []detect.Aggregate{
		agg("k#c", w, bkt(0, 1)),
		agg("k#a", w, bkt(0, 2), bkt(2, 3)),
		agg("k#b", w, bkt(1, 4)),
	}
	got := apply(t, st, "batch-1", aggs...)
	want := []detect.Window{
		{Key: "k#c", Buckets: []detect.Bucket{bkt(0, 1)}},
		{Key: "k#a", Buckets: []detect.Bucket{bkt(0, 2), bkt(2, 3)}},
		{Key: "k#b", Buckets: []detect.Bucket{bkt(1, 4)}},
	}
	diff(t, "windows", got, want)
}

func testReapply(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	b := bkt(0, 7)
	b.Distinct = map[string][]string{"path": {"h1"}}
	b.Values = map[string][]string{"path": {"/x"}}
	first := apply(t, st, "batch-1", agg(key, w, b, bkt(1, 2)))
	again := apply(t, st, "batch-1", agg(key, w, b, bkt(1, 2)))
	diff(t, "window after the same batch twice", again, first)

	// The batch id alone decides: different content under the same id is
	// not merged either.
	changed := b
	changed.Count = 100
	changed.Distinct = map[string][]string{"path": {"h9"}}
	again = apply(t, st, "batch-1", agg(key, w, changed, bkt(1, 50)))
	diff(t, "window after the same batch id with other content", again, first)

	got := apply(t, st, "batch-2", agg(key, w, bkt(1, 1)))
	want := detect.Window{Key: key, Buckets: []detect.Bucket{first[0].Buckets[0], bkt(1, 3)}}
	diff(t, "window after a new batch", got[0], want)
}

// testPartial replays what a failed Apply can leave behind: some (key,
// bucket) merges done, others not. Merging is idempotent per (batch, key,
// start), so applying a subset first must give the same result as one
// complete call.
func testPartial(t *testing.T, st detect.State, _ *Clock) {
	w := 5 * time.Minute
	full := []detect.Aggregate{
		agg("k#1", w, bkt(0, 1), bkt(1, 2), bkt(2, 3)),
		agg("k#2", w, bkt(1, 10)),
		agg("k#3", w, bkt(2, 100)),
	}
	apply(t, st, "earlier", agg("k#1", w, bkt(0, 1000)))
	// The failed attempt merged k#1's minute 1 and k#3, nothing else.
	apply(t, st, "batch", agg("k#1", w, bkt(1, 2)), agg("k#3", w, bkt(2, 100)))
	got := apply(t, st, "batch", full...)
	again := apply(t, st, "batch", full...)
	want := []detect.Window{
		{Key: "k#1", Buckets: []detect.Bucket{bkt(0, 1001), bkt(1, 2), bkt(2, 3)}},
		{Key: "k#2", Buckets: []detect.Bucket{bkt(1, 10)}},
		{Key: "k#3", Buckets: []detect.Bucket{bkt(2, 100)}},
	}
	// bkt(0, 1001) keeps the earlier batch's First and takes batch's Last,
	// which are equal here because bkt fixes them per minute.
	diff(t, "windows after the retry", got, want)
	diff(t, "windows after a second retry", again, want)
}

func testWindowBounds(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	// Store minutes 0..12, one batch each.
	for m := 0; m <= 12; m++ {
		apply(t, st, fmt.Sprintf("fill-%d", m), agg(key, w, bkt(m, int64(m+1))))
	}
	span := func(from, to int, extra map[int]int64) []detect.Bucket {
		var out []detect.Bucket
		for m := from; m <= to; m++ {
			out = append(out, bkt(m, int64(m+1)+extra[m]))
		}
		return out
	}
	tests := []struct {
		name string
		agg  detect.Aggregate
		want []detect.Bucket
	}{
		{"one bucket: every 5-minute window holding it, to 4 minutes later", agg(key, w, bkt(6, 1)), span(2, 10, map[int]int64{6: 1})},
		{"two buckets: from the window of the first to the window after the last", agg(key, w, bkt(4, 1), bkt(6, 1)), span(0, 10, map[int]int64{4: 1, 6: 2})},
		{"window of one bucket", agg(key, time.Minute, bkt(3, 1)), span(3, 3, map[int]int64{3: 1})},
		{"window not a multiple of the bucket width", agg(key, 150*time.Second, bkt(9, 1)), span(8, 10, map[int]int64{9: 1})},
		{"window reaching before and after every stored bucket", agg(key, time.Hour, bkt(2, 1)), span(0, 12, map[int]int64{2: 1, 3: 1, 4: 1, 6: 2, 9: 1})},
	}
	for i, tc := range tests {
		got := apply(t, st, fmt.Sprintf("probe-%d", i), tc.agg)
		diff(t, tc.name, got[0], detect.Window{Key: key, Buckets: tc.want})
	}
	other := apply(t, st, "other", agg("k-other", w, bkt(10, 1)))
	diff(t, "another key sees only its own buckets", other[0], detect.Window{Key: "k-other", Buckets: []detect.Bucket{bkt(10, 1)}})
}

func testRollOver(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	// Fifteen minutes, one batch per minute with count m+1: each returned
	// window holds exactly the last five minutes.
	for m := 0; m < 15; m++ {
		got := apply(t, st, fmt.Sprintf("batch-%d", m), agg(key, w, bkt(m, int64(m+1))))
		var want []detect.Bucket
		for i := max(0, m-4); i <= m; i++ {
			want = append(want, bkt(i, int64(i+1)))
		}
		diff(t, fmt.Sprintf("window at minute %d", m), got[0], detect.Window{Key: key, Buckets: want})
	}
}

func testDistinct(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	withDistinct := func(m int, sets map[string][]string) detect.Bucket {
		b := bkt(m, 1)
		b.Distinct = sets
		return b
	}
	steps := []struct {
		name          string
		add           map[string][]string
		wantLen       map[string]int
		wantSaturated []string
	}{
		{"127 stored", map[string][]string{"path": hashes("a", 127)}, map[string]int{"path": 127}, nil},
		{"127 < cap: one new is added, reaching the cap", map[string][]string{"path": {"b0000"}}, map[string]int{"path": 128}, []string{"path"}},
		{"at the cap: new ones are dropped; another field still grows", map[string][]string{"path": {"c0000", "c0001"}, "user_agent": {"u1", "u2"}}, map[string]int{"path": 128, "user_agent": 2}, []string{"path"}},
	}
	for i, s := range steps {
		got := apply(t, st, fmt.Sprintf("batch-%d", i), agg(key, w, withDistinct(0, s.add)))
		b := got[0].Buckets[0]
		gotLen := make(map[string]int)
		for f, hs := range b.Distinct {
			gotLen[f] = len(hs)
		}
		diff(t, s.name+": set sizes", gotLen, s.wantLen)
		diff(t, s.name+": saturated", b.Saturated, s.wantSaturated)
	}

	// Below the cap a whole batch is added, so a set can pass the cap by up
	// to one batch: 100 stored + 100 new = 200.
	apply(t, st, "big-1", agg(key, w, withDistinct(1, map[string][]string{"path": hashes("x", 100)})))
	got := apply(t, st, "big-2", agg(key, w, withDistinct(1, map[string][]string{"path": hashes("y", 100)})))
	b := got[0].Buckets[1]
	want := append(hashes("x", 100), hashes("y", 100)...)
	diff(t, "set passing the cap by one batch", b.Distinct["path"], want)
	diff(t, "saturated after passing the cap", b.Saturated, []string{"path"})
	got = apply(t, st, "big-3", agg(key, w, withDistinct(1, map[string][]string{"path": {"z"}})))
	diff(t, "set over the cap takes nothing more", got[0].Buckets[1].Distinct["path"], want)
}

func testValuesBudget(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	withValues := func(vals map[string][]string) detect.Bucket {
		b := bkt(0, 1)
		b.Values = vals
		return b
	}
	steps := []struct {
		name          string
		add           map[string][]string
		wantPaths     int
		wantUA        int
		wantTruncated bool
	}{
		{"20 offered", map[string][]string{"path": hashes("/p", 10), "user_agent": hashes("ua", 10)}, 10, 10, false},
		{"20 before: 19 more accepted", map[string][]string{"path": hashes("/q", 10), "user_agent": hashes("ub", 9)}, 20, 19, false},
		{"39 before: 1 more accepted, reaching the budget", map[string][]string{"path": {"/r"}}, 21, 19, false},
		{"batch offering nothing changes nothing", nil, 21, 19, false},
		{"40 before: refused and truncated", map[string][]string{"path": {"/late"}, "user_agent": {"late"}}, 21, 19, true},
		{"truncated stays set", nil, 21, 19, true},
	}
	for i, s := range steps {
		got := apply(t, st, fmt.Sprintf("batch-%d", i), agg(key, w, withValues(s.add)))
		b := got[0].Buckets[0]
		if len(b.Values["path"]) != s.wantPaths || len(b.Values["user_agent"]) != s.wantUA || b.ValuesTruncated != s.wantTruncated {
			t.Errorf("%s: got %d paths, %d user agents, truncated %v; want %d, %d, %v",
				s.name, len(b.Values["path"]), len(b.Values["user_agent"]), b.ValuesTruncated, s.wantPaths, s.wantUA, s.wantTruncated)
		}
		if b.Count != int64(i+1) {
			t.Errorf("%s: count %d, want %d", s.name, b.Count, i+1)
		}
	}
}

func testNormalize(t *testing.T, st detect.State, _ *Clock) {
	w := 5 * time.Minute
	long := strings.Repeat("é", 200) // 400 bytes
	b := bkt(0, 1)
	b.Start = b.Start.In(time.FixedZone("UTC+2", 2*60*60))
	b.Values = map[string][]string{
		"path":       append(hashes("/v", 12), "/v0000"),
		"user_agent": {long, "bad\xffutf8"},
	}
	b.Distinct = map[string][]string{"path": append(hashes("h", 130), strings.Repeat("a", 100))}
	b.Marks = []int{3, 1, 3}
	got := apply(t, st, "batch", agg("k", w, b))

	wantDistinct := append([]string{strings.Repeat("a", memstate.MaxHashLen)}, hashes("h", 127)...)
	want := bkt(0, 1)
	want.Values = map[string][]string{
		"path":       hashes("/v", 10),
		"user_agent": {"bad\uFFFDutf8", strings.Repeat("é", 128)},
	}
	want.ValuesTruncated = true
	want.Distinct = map[string][]string{"path": wantDistinct}
	want.Saturated = []string{"path"}
	want.Marks = []int{1, 3}
	diff(t, "normalized bucket", got[0], detect.Window{Key: "k", Buckets: []detect.Bucket{want}})
}

func testInvalid(t *testing.T, st detect.State, _ *Clock) {
	w := 5 * time.Minute
	unaligned := bkt(0, 1)
	unaligned.Start = unaligned.Start.Add(time.Second)
	negative := bkt(0, -1)
	badField := bkt(0, 1)
	badField.Values = map[string][]string{"": {"x"}}
	tests := []struct {
		name  string
		batch string
		aggs  []detect.Aggregate
	}{
		{"empty batch id", "", []detect.Aggregate{agg("k", w, bkt(0, 1))}},
		{"empty key", "b", []detect.Aggregate{agg("", w, bkt(0, 1))}},
		{"key too long", "b", []detect.Aggregate{agg(strings.Repeat("k", 1025), w, bkt(0, 1))}},
		{"duplicate key", "b", []detect.Aggregate{agg("k", w, bkt(0, 1)), agg("k", w, bkt(1, 1))}},
		{"window shorter than a bucket", "b", []detect.Aggregate{agg("k", 30*time.Second, bkt(0, 1))}},
		{"start not aligned", "b", []detect.Aggregate{agg("k", w, unaligned)}},
		{"buckets out of order", "b", []detect.Aggregate{agg("k", w, bkt(1, 1), bkt(0, 1))}},
		{"duplicate bucket", "b", []detect.Aggregate{agg("k", w, bkt(0, 1), bkt(0, 1))}},
		{"negative count", "b", []detect.Aggregate{agg("k", w, negative)}},
		{"empty field name", "b", []detect.Aggregate{agg("k", w, badField)}},
	}
	for _, tc := range tests {
		// A valid aggregate first: a rejected call must merge nothing.
		aggs := append([]detect.Aggregate{agg("valid", w, bkt(0, 1))}, tc.aggs...)
		if _, err := st.Apply(context.Background(), tc.batch, aggs); err == nil {
			t.Errorf("%s: Apply succeeded, want an error", tc.name)
		}
	}
	got := apply(t, st, "check", agg("valid", w, bkt(0, 1)))
	diff(t, "state after rejected calls", got[0], detect.Window{Key: "valid", Buckets: []detect.Bucket{bkt(0, 1)}})
}

func testEmpty(t *testing.T, st detect.State, _ *Clock) {
	got := apply(t, st, "batch")
	if len(got) != 0 {
		t.Errorf("Apply with no aggregates returned %d windows", len(got))
	}
	got = apply(t, st, "batch", agg("k", time.Minute))
	diff(t, "aggregate without buckets", got, []detect.Window{{Key: "k"}})
}

func testAliasing(t *testing.T, st detect.State, _ *Clock) {
	w := 5 * time.Minute
	b := bkt(0, 1)
	b.Distinct = map[string][]string{"path": {"h1"}}
	b.Values = map[string][]string{"path": {"/a"}}
	b.Marks = []int{1}
	in := agg("k", w, b)
	got := apply(t, st, "batch-1", in)
	// Scribble over the input and the output; state must not change.
	in.Buckets[0].Distinct["path"][0] = "zzz"
	in.Buckets[0].Values["path"] = append(in.Buckets[0].Values["path"], "/zzz")
	got[0].Buckets[0].Distinct["path"][0] = "yyy"
	got[0].Buckets[0].Values["other"] = []string{"x"}
	got[0].Buckets[0].Marks[0] = 9
	again := apply(t, st, "batch-2", agg("k", w, bkt(0, 1)))
	want := bkt(0, 2)
	want.Distinct = map[string][]string{"path": {"h1"}}
	want.Values = map[string][]string{"path": {"/a"}}
	want.Marks = []int{1}
	diff(t, "window after mutating earlier input and output", again[0], detect.Window{Key: "k", Buckets: []detect.Bucket{want}})
}

func testConcurrentApply(t *testing.T, st detect.State, _ *Clock) {
	const workers, batches = 8, 4
	w := 10 * time.Minute
	keys := []string{"k#1", "k#2", "k#3"}
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches*2)
	for g := range workers {
		wg.Go(func() {
			for i := range batches {
				// Overlapping: every batch touches every key, and each batch
				// is applied twice, by two different goroutines.
				batch := fmt.Sprintf("batch-%d", (g/2)*batches+i)
				var aggs []detect.Aggregate
				for _, k := range keys {
					aggs = append(aggs, agg(k, w, bkt(i%3, 1), bkt(3, 2)))
				}
				if _, err := st.Apply(context.Background(), batch, aggs); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Apply: %v", err)
	}
	// workers/2 distinct sources of batches × batches each.
	distinct := int64(workers / 2 * batches)
	for _, k := range keys {
		got := apply(t, st, "read", agg(k, w, bkt(9, 0)))
		var total, at3 int64
		for _, b := range got[0].Buckets {
			total += b.Count
			if b.Start.Equal(minute(3)) {
				at3 = b.Count
			}
		}
		if want := distinct * 3; total != want {
			t.Errorf("%s: total count %d, want %d", k, total, want)
		}
		if want := distinct * 2; at3 != want {
			t.Errorf("%s: minute 3 count %d, want %d", k, at3, want)
		}
	}
}

// P0 is the suppression period of the claim tests; P1 the next one.
var (
	P0 = T0
	P1 = T0.Add(time.Hour)
)

// testConcurrentAdjacent: two writers to adjacent minutes of one window,
// at the same moment. Whatever the interleaving, the one whose Apply reads
// last must see both buckets, or a window that crosses a threshold only
// with both would fire in neither.
func testConcurrentAdjacent(t *testing.T, st detect.State, _ *Clock) {
	const rounds = 40
	w := 10 * time.Minute
	for r := range rounds {
		key := fmt.Sprintf("adjacent#%d", r)
		var wg sync.WaitGroup
		got := make([][]detect.Window, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				got[i], errs[i] = st.Apply(context.Background(), fmt.Sprintf("b%d", i), []detect.Aggregate{agg(key, w, bkt(i, 1))})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		if len(got[0][0].Buckets) < 2 && len(got[1][0].Buckets) < 2 {
			t.Fatalf("round %d: neither writer saw both minutes: %d and %d buckets", r, len(got[0][0].Buckets), len(got[1][0].Buckets))
		}
	}
}

func claim(key, batch string, sev rules.Severity, period time.Time) detect.Claim {
	return detect.Claim{
		Key:       key,
		Period:    period,
		PeriodEnd: period.Add(time.Hour),
		FindingID: fmt.Sprintf("f-%s-%s", batch, sev),
		Batch:     batch,
		Severity:  sev,
	}
}

type claimStep struct {
	name    string
	advance time.Duration // wall clock, before the call
	c       detect.Claim
	mark    bool // MarkSent instead of Claim
	want    bool
	// sent, when set, is the Grant.Sent a granted claim must report.
	sent rules.Severity
}

func runClaims(t *testing.T, st detect.State, clock *Clock, steps []claimStep) {
	t.Helper()
	ctx := context.Background()
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.mark {
			if err := st.MarkSent(ctx, s.c); err != nil {
				t.Fatalf("%s: MarkSent: %v", s.name, err)
			}
			continue
		}
		got, err := st.Claim(ctx, s.c)
		if err != nil {
			t.Fatalf("%s: Claim: %v", s.name, err)
		}
		if got.OK != s.want {
			t.Errorf("%s: Claim = %v, want %v", s.name, got.OK, s.want)
		}
		if s.sent != 0 && got.OK && got.Sent != s.sent {
			t.Errorf("%s: Claim reports %v sent before, want %v", s.name, got.Sent, s.sent)
		}
	}
}

func testClaimRace(t *testing.T, st detect.State, _ *Clock) {
	const contenders = 8
	for round := range 5 {
		key := fmt.Sprintf("k#%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for g := range contenders {
			batch := fmt.Sprintf("batch-%d", g)
			wg.Go(func() {
				g, err := st.Claim(context.Background(), claim(key, batch, rules.Medium, P0))
				if err != nil {
					t.Errorf("Claim: %v", err)
				}
				if g.OK {
					mu.Lock()
					winners = append(winners, batch)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("round %d: %d of %d concurrent claims granted (%v), want exactly 1", round, len(winners), contenders, winners)
		}
	}
}

func testClaimSameBatch(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "first claim", c: claim("k", "A", rules.Medium, P0), want: true},
		{name: "same batch again (a retried batch whose publish failed)", advance: time.Minute, c: claim("k", "A", rules.Medium, P0), want: true},
		{name: "other batch, same severity, while A's claim is live", c: claim("k", "B", rules.Medium, P0), want: false},
		{name: "other batch, lower severity, while A's claim is live", c: claim("k", "B", rules.Low, P0), want: false},
		{name: "other key is independent", c: claim("k2", "B", rules.Medium, P0), want: true},
		{name: "other period is independent", c: claim("k", "B", rules.Medium, P1), want: true},
	})
}

// testHigherOvertakesPending: a pending claim of a lower severity must not
// swallow a higher one (stream A claims a medium pod scan, stream B sees a
// pod list that succeeded).
func testHigherOvertakesPending(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "A claims medium", c: claim("k", "A", rules.Medium, P0), want: true},
		{name: "B claims high over A's pending medium", c: claim("k", "B", rules.High, P0), want: true},
		{name: "C's high is held back by B's pending high", c: claim("k", "C", rules.High, P0), want: false},
		{name: "C's critical overtakes B's high", c: claim("k", "C", rules.Critical, P0), want: true},
		{name: "A's retry is refused: a higher claim is pending", c: claim("k", "A", rules.Medium, P0), want: false},
		{name: "A marks its medium sent", c: claim("k", "A", rules.Medium, P0), mark: true},
		{name: "B marks its high sent", c: claim("k", "B", rules.High, P0), mark: true},
		{name: "D's high: sent already", c: claim("k", "D", rules.High, P0), want: false},
		{name: "C marks its critical sent", c: claim("k", "C", rules.Critical, P0), mark: true},
		{name: "D's critical: sent already", c: claim("k", "D", rules.Critical, P0), want: false},
	})
}

// testLateLowerMarkSentKeepsHigher: a lower finding marked sent after a
// higher one must not lower what the period recorded, or a later finding of
// the higher severity would be sent again.
func testLateLowerMarkSentKeepsHigher(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "A claims medium", c: claim("k", "A", rules.Medium, P0), want: true},
		{name: "B claims high", c: claim("k", "B", rules.High, P0), want: true},
		{name: "B marks high sent", c: claim("k", "B", rules.High, P0), mark: true},
		{name: "A marks medium sent, late", c: claim("k", "A", rules.Medium, P0), mark: true},
		{name: "C's high stays suppressed", c: claim("k", "C", rules.High, P0), want: false},
		{name: "C's medium stays suppressed", c: claim("k", "C", rules.Medium, P0), want: false},
		{name: "no claim is pending: C's critical goes", c: claim("k", "C", rules.Critical, P0), want: true},
	})
}

func testMarkSent(t *testing.T, st detect.State, clock *Clock) {
	sent := claim("k", "A", rules.Medium, P0)
	runClaims(t, st, clock, []claimStep{
		{name: "claim", c: sent, want: true},
		{name: "mark sent", c: sent, mark: true},
		{name: "same batch again: no re-send", c: sent, want: false},
		{name: "other batch, same severity, same period", c: claim("k", "B", rules.Medium, P0), want: false},
		{name: "other batch, lower severity", c: claim("k", "B", rules.Low, P0), want: false},
		{name: "escalation to a higher severity: a rise above medium", c: claim("k", "B", rules.High, P0), want: true, sent: rules.Medium},
		{name: "escalation marked sent", c: claim("k", "B", rules.High, P0), mark: true},
		{name: "High now suppressed too", c: claim("k", "C", rules.High, P0), want: false},
		{name: "Critical escalates again, above high", c: claim("k", "C", rules.Critical, P0), want: true, sent: rules.High},
		{name: "the next period starts afresh", c: claim("k", "D", rules.Low, P1), want: true},
	})
}

func testPeriodsAreEventTime(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "claim", c: claim("k", "A", rules.High, P0), want: true},
		{name: "mark sent", c: claim("k", "A", rules.High, P0), mark: true},
		{name: "same period", c: claim("k", "B", rules.High, P0), want: false},
		{name: "next period, lower severity", c: claim("k", "B", rules.Low, P1), want: true},
		// Event time only: a wall clock far past the period changes nothing.
		{name: "wall clock a year on, same period", advance: 365 * 24 * time.Hour, c: claim("k", "C", rules.High, P0), want: false},
	})
}

func testLease(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "A claims", c: claim("k", "A", rules.Medium, P0), want: true},
		{name: "B just before A's lease ends", advance: Lease - time.Nanosecond, c: claim("k", "B", rules.Medium, P0), want: false},
		{name: "B when A's lease ends", advance: time.Nanosecond, c: claim("k", "B", rules.Medium, P0), want: true},
		{name: "A again: B holds the claim now", c: claim("k", "A", rules.Medium, P0), want: false},
		{name: "B renews its lease", advance: 10 * time.Minute, c: claim("k", "B", rules.Medium, P0), want: true},
		{name: "A after B's first lease would have ended", advance: 10 * time.Minute, c: claim("k", "A", rules.Medium, P0), want: false},
		{name: "A after B's renewed lease ended", advance: 5 * time.Minute, c: claim("k", "A", rules.Medium, P0), want: true},
	})
}

func testMarkSentOtherClaim(t *testing.T, st detect.State, clock *Clock) {
	runClaims(t, st, clock, []claimStep{
		{name: "A claims", c: claim("k", "A", rules.High, P0), want: true},
		{name: "A's lease ends; B claims", advance: Lease, c: claim("k", "B", rules.High, P0), want: true},
		// A's publish went out after all; its MarkSent records the finding
		// but must not release B's claim.
		{name: "A marks sent late", c: claim("k", "A", rules.Medium, P0), mark: true},
		{name: "C's high is held back by B's live claim", c: claim("k", "C", rules.High, P0), want: false},
		{name: "B marks sent", c: claim("k", "B", rules.High, P0), mark: true},
		{name: "C's high is suppressed once B sent it", c: claim("k", "C", rules.High, P0), want: false},
		{name: "MarkSent without a claim records the finding", c: claim("k3", "D", rules.Medium, P0), mark: true},
		{name: "and suppresses", c: claim("k3", "E", rules.Medium, P0), want: false},
	})
}

func testInvalidClaim(t *testing.T, st detect.State, _ *Clock) {
	ctx := context.Background()
	for _, c := range []detect.Claim{
		claim("", "A", rules.Medium, P0),
		claim("k", "", rules.Medium, P0),
		claim("k", "A", 0, P0),
		{Key: "k", Batch: "A", Severity: rules.Low, Period: P0, PeriodEnd: P0},
	} {
		if _, err := st.Claim(ctx, c); err == nil {
			t.Errorf("Claim(key %q, batch %q) succeeded, want an error", c.Key, c.Batch)
		}
		if err := st.MarkSent(ctx, c); err == nil {
			t.Errorf("MarkSent(key %q, batch %q) succeeded, want an error", c.Key, c.Batch)
		}
	}
}

func testClaimNothingSent(t *testing.T, st detect.State, _ *Clock) {
	g, err := st.Claim(context.Background(), claim("k", "A", rules.High, P0))
	if err != nil || !g.OK || g.Sent != 0 {
		t.Errorf("first Claim = %+v, %v; want granted with nothing sent", g, err)
	}
}

func draw(key, finding string, limit int, period time.Time) detect.Draw {
	return detect.Draw{Key: key, Period: period, PeriodEnd: period.Add(time.Hour), Limit: limit, FindingID: finding}
}

// testSpendRace: many findings race for a budget's places from separate
// goroutines (separate invocations); exactly Limit get one, each once.
func testSpendRace(t *testing.T, st detect.State, _ *Clock) {
	const limit, contenders = 5, 24
	for round := range 3 {
		key := fmt.Sprintf("budget#%d", round)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			granted []string
		)
		for g := range contenders {
			id := fmt.Sprintf("finding-%02d", g)
			wg.Go(func() {
				ok, err := st.Spend(context.Background(), draw(key, id, limit, P0))
				if err != nil {
					t.Errorf("Spend: %v", err)
				}
				if ok {
					mu.Lock()
					granted = append(granted, id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(granted) != limit {
			t.Errorf("round %d: %d of %d concurrent draws granted, want exactly %d", round, len(granted), contenders, limit)
		}
		// The winners keep their places and the losers stay out, whoever
		// asks again.
		for g := range contenders {
			id := fmt.Sprintf("finding-%02d", g)
			ok, err := st.Spend(context.Background(), draw(key, id, limit, P0))
			if err != nil {
				t.Fatalf("Spend again: %v", err)
			}
			if want := slices.Contains(granted, id); ok != want {
				t.Errorf("round %d: %s asking again: %v, want %v", round, id, ok, want)
			}
		}
	}
}

func testSpendAgain(t *testing.T, st detect.State, _ *Clock) {
	ctx := context.Background()
	steps := []struct {
		d    detect.Draw
		want bool
	}{
		{draw("b", "f1", 2, P0), true},
		{draw("b", "f1", 2, P0), true}, // a retried batch: the same place
		{draw("b", "f2", 2, P0), true},
		{draw("b", "f3", 2, P0), false}, // full
		{draw("b", "f2", 2, P0), true},
		{draw("b", "f3", 2, P1), true},  // the next period starts afresh
		{draw("b2", "f3", 2, P0), true}, // another budget
	}
	for i, s := range steps {
		ok, err := st.Spend(ctx, s.d)
		if err != nil {
			t.Fatalf("step %d: Spend: %v", i, err)
		}
		if ok != s.want {
			t.Errorf("step %d: Spend(%s, %s, %v) = %v, want %v", i, s.d.Key, s.d.FindingID, s.d.Period, ok, s.want)
		}
	}
}

func testInvalidDraw(t *testing.T, st detect.State, _ *Clock) {
	for _, d := range []detect.Draw{
		draw("", "f", 1, P0),
		draw("k", "", 1, P0),
		draw("k", "f", 0, P0),
		draw("k", "f", rules.MaxBudget+1, P0),
		{Key: "k", FindingID: "f", Limit: 1, Period: P0, PeriodEnd: P0},
	} {
		if _, err := st.Spend(context.Background(), d); err == nil {
			t.Errorf("Spend(%+v) succeeded, want an error", d)
		}
	}
}

// testEvidenceBudget: once decoys spent the values budget, a later batch's
// evidence (the values of requests that raised the severity) is still
// kept, under a budget of its own.
func testEvidenceBudget(t *testing.T, st detect.State, _ *Clock) {
	const key = "k"
	w := 5 * time.Minute
	b := bkt(0, 4)
	b.Values = map[string][]string{"request_uri": hashes("/decoy", 10)}
	for i := range 4 { // 40 decoys: the values budget is spent
		b.Values["request_uri"] = hashes(fmt.Sprintf("/decoy%d-", i), 10)
		apply(t, st, fmt.Sprintf("decoys-%d", i), agg(key, w, b))
	}
	secret := bkt(0, 1)
	secret.Values = map[string][]string{"request_uri": {"/api/v1/namespaces/kube-system/secrets/token"}}
	secret.Evidence = map[string][]string{"request_uri": {"/api/v1/namespaces/kube-system/secrets/token"}}
	got := apply(t, st, "secret", agg(key, w, secret))[0].Buckets[0]
	if !slices.Contains(got.Evidence["request_uri"], "/api/v1/namespaces/kube-system/secrets/token") {
		t.Errorf("evidence %v after 40 decoys, want the secret read", got.Evidence)
	}
	if slices.Contains(got.Values["request_uri"], "/api/v1/namespaces/kube-system/secrets/token") || !got.ValuesTruncated {
		t.Errorf("values %v truncated %v: want the spent budget to refuse the secret's value and say so", got.Values["request_uri"], got.ValuesTruncated)
	}
	// Evidence has a budget of its own: 40 offered, then refused.
	for i := range 4 {
		ev := bkt(0, 1)
		ev.Evidence = map[string][]string{"request_uri": hashes(fmt.Sprintf("/ev%d-", i), 10)}
		apply(t, st, fmt.Sprintf("evidence-%d", i), agg(key, w, ev))
	}
	got = apply(t, st, "nothing", agg(key, w, bkt(0, 1)))[0].Buckets[0]
	// Offered before each: 1, 11, 21, 31, all below the budget.
	if n := len(got.Evidence["request_uri"]); n != 1+4*10 {
		t.Errorf("%d evidence values, want 41: each batch came below the budget of %d offered", n, detect.EvidenceBudget)
	}
	late := bkt(0, 1)
	late.Evidence = map[string][]string{"request_uri": {"/late"}}
	got = apply(t, st, "late", agg(key, w, late))[0].Buckets[0]
	if slices.Contains(got.Evidence["request_uri"], "/late") {
		t.Errorf("evidence took a value past its budget of %d offered", detect.EvidenceBudget)
	}
}

// testLiveMarks: a stream's mark only moves earlier, whatever order
// concurrent marks arrive in; streams and clusters do not share one.
func testLiveMarks(t *testing.T, st detect.State, _ *Clock) {
	lm, ok := st.(detect.LiveMarks)
	if !ok {
		t.Skip("the State keeps no live marks")
	}
	ctx := context.Background()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := lm.LiveSince(ctx, "prod"); err != nil || len(got) != 0 {
		t.Fatalf("LiveSince before any mark = %v, %v; want none", got, err)
	}
	const a, b = "kube-apiserver-audit-a", "kube-apiserver-audit-b"
	var wg sync.WaitGroup
	for _, m := range []int{7, 3, 9, 5, 4} {
		for _, stream := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at := base.Add(time.Duration(m)*time.Minute + 123*time.Millisecond)
				if stream == b {
					at = at.Add(30 * time.Second)
				}
				if err := lm.MarkLive(ctx, "prod", stream, at); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if err := lm.MarkLive(ctx, "staging", a, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for cluster, want := range map[string]map[string]time.Time{
		"prod":    {a: base.Add(3*time.Minute + 123*time.Millisecond), b: base.Add(3*time.Minute + 30*time.Second + 123*time.Millisecond)},
		"staging": {a: base.Add(time.Hour)},
		"dev":     {},
	} {
		got, err := lm.LiveSince(ctx, cluster)
		if err != nil || len(got) != len(want) {
			t.Errorf("LiveSince(%s) = %v, %v; want %v", cluster, got, err, want)
			continue
		}
		for s, w := range want {
			if !got[s].Equal(w) {
				t.Errorf("LiveSince(%s)[%s] = %v; want %v", cluster, s, got[s], w)
			}
		}
	}
}
