package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// maxMergeAttempts bounds the writes one bucket merge tries. Each failed
// condition means another writer crossed a threshold this merge relied on
// (a cap, the budget, a full shard) or applied this very batch, and each such
// crossing happens once per shard, so a handful of attempts is plenty.
const maxMergeAttempts = 8

// Apply merges each aggregate's buckets into the table unless this batch
// already merged them, then returns each aggregate's window, read after the
// merges. Per aggregate it issues one UpdateItem per bucket, written before
// anything is read: the usual bucket (one shard, below its caps) needs no
// read, and a write whose condition fails learns why from the item
// DynamoDB returns with the failure, or reads the bucket. Then one
// strongly consistent Query (paginated) reads the window, so of two
// invocations writing to one window concurrently the later reader sees
// both. Aggregates run concurrently on up to WithWorkers workers. When it
// fails part-way, calling it again with the same batch completes the merge
// without repeating any part of it.
func (s *State) Apply(ctx context.Context, batch string, aggs []detect.Aggregate) ([]detect.Window, error) {
	norm, err := memstate.Normalize(batch, aggs)
	if err != nil {
		return nil, err
	}
	out := make([]detect.Window, len(norm))
	if len(norm) == 0 {
		return out, nil
	}
	bid := batchHash(batch)
	err = s.forEach(ctx, len(norm), func(ctx context.Context, i int) error {
		w, err := s.applyOne(ctx, bid, norm[i])
		out[i] = w
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forEach runs fn for 0..n-1 on at most s.workers goroutines and returns
// the first error, cancelling the calls still to start.
func (s *State) forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(s.workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() {
						first = err
						cancel()
					})
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func (s *State) applyOne(ctx context.Context, bid string, a detect.Aggregate) (detect.Window, error) {
	w := detect.Window{Key: a.Key}
	if len(a.Buckets) == 0 {
		return w, nil
	}
	for _, b := range a.Buckets {
		if err := s.mergeBucket(ctx, bid, a, b); err != nil {
			return w, err
		}
	}
	from, to := memstate.WindowRange(a)
	byStart, err := s.readShards(ctx, a.Key, from.Unix(), to.Unix())
	if err != nil {
		return w, err
	}
	starts := make([]int64, 0, len(byStart))
	for u := range byStart {
		starts = append(starts, u)
	}
	slices.Sort(starts)
	for _, u := range starts {
		w.Buckets = append(w.Buckets, merged(byStart[u]))
	}
	return w, nil
}

// readShards returns the shards of key's buckets with Start in [from, to]
// (Unix seconds), by Start, each ascending by shard index.
func (s *State) readShards(ctx context.Context, key string, from, to int64) (map[int64][]shard, error) {
	lo, hi := skRange(unixTime(from), unixTime(to))
	in := &dynamodb.QueryInput{
		KeyConditionExpression: aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK,
			"#sk": attrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": attrS(key),
			":lo": attrS(lo),
			":hi": attrS(hi),
		},
		ConsistentRead: aws.Bool(true),
	}
	byStart := make(map[int64][]shard)
	for {
		out, err := s.query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query %s for %q: %w", s.table, key, err)
		}
		for _, item := range out.Items {
			sh, err := decodeShard(item)
			if err != nil {
				return nil, fmt.Errorf("table %s key %q: %w", s.table, key, err)
			}
			u := sh.start.Unix()
			byStart[u] = append(byStart[u], sh)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	for u, shards := range byStart {
		slices.SortFunc(shards, func(a, b shard) int { return a.index - b.index })
		s.facts.learnShards(key, unixTime(u), shards, s.perItem, s.now())
	}
	return byStart, nil
}

// mergeBucket merges b into its bucket unless the batch is already in one
// of the bucket's shards. The first write is blind: to the first shard, on
// the conditions that hold for a bucket of one shard below its caps whose
// times b does not widen. When a condition fails, the bucket's shards are
// learnt (from the item DynamoDB returns with the failure, or a read) and
// the write is made again to what is stored.
func (s *State) mergeBucket(ctx context.Context, bid string, a detect.Aggregate, b detect.Bucket) error {
	var shards []shard
	known := false
	for attempt := 1; ; attempt++ {
		if slices.ContainsFunc(shards, func(sh shard) bool { return sh.batches[bid] }) {
			return nil
		}
		var f *facts
		if !known {
			f = s.facts.get(a.Key, b.Start, s.now())
			if f != nil && f.sharded {
				// Learn the shards instead of writing blind into the
				// first, which is full.
				var err error
				if shards, err = s.readBucket(ctx, a.Key, b.Start); err != nil {
					return err
				}
				known = true
				continue
			}
		}
		_, err := s.update(ctx, s.bucketUpdate(bid, a, b, shards, known, f))
		if err == nil {
			s.facts.learnWrite(a.Key, b, s.now())
			return nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return fmt.Errorf("update %s key %q bucket %s: %w", s.table, a.Key, b.Start.Format(skTimeFmt), err)
		}
		if attempt == maxMergeAttempts {
			return fmt.Errorf("update %s key %q bucket %s: condition still failing after %d attempts", s.table, a.Key, b.Start.Format(skTimeFmt), attempt)
		}
		// Learn why the condition failed: a cap or the values budget was
		// reached, the shard is full, b is earlier or later than what is
		// stored, or an SDK retry of a write that had already succeeded,
		// which the batch hash now shows. DynamoDB returns the item with
		// the failure; a shard below BatchesPerItem is the newest, so with
		// the frozen shards already known it completes the picture without
		// a read. (dynalite returns none.)
		if len(failed.Item) > 0 {
			if sh, err := decodeShard(failed.Item); err == nil && len(sh.batches) < s.perItem && len(shards) >= sh.index {
				shards, known = withShard(shards, sh), true
				s.facts.learnShards(a.Key, b.Start, shards, s.perItem, s.now())
				continue
			}
		}
		if shards, err = s.readBucket(ctx, a.Key, b.Start); err != nil {
			return err
		}
		known = true
	}
}

// readBucket returns the shards of key's bucket at start, ascending.
func (s *State) readBucket(ctx context.Context, key string, start time.Time) ([]shard, error) {
	byStart, err := s.readShards(ctx, key, start.Unix(), start.Unix())
	if err != nil {
		return nil, err
	}
	return byStart[start.Unix()], nil
}

func withShard(shards []shard, sh shard) []shard {
	out := slices.Clone(shards)
	for i := range out {
		if out[i].index == sh.index {
			out[i] = sh
			return out
		}
	}
	out = append(out, sh)
	slices.SortFunc(out, func(a, b shard) int { return a.index - b.index })
	return out
}

// bucketUpdate builds the UpdateItem that merges b as bid into the newest
// shard of the bucket, or into a new shard when the newest is full. Every
// decision taken from the shards as read is either monotone (a set at its
// cap, a spent budget, a batch already recorded stay so) or guarded by a
// condition on the one shard that can still change, so the write applies
// exactly what the same merge would apply to the current state, or fails.
//
// Without the shards (known false), what is known of the bucket (kn, which
// may be nil) leaves out what cannot apply: values once the budget is
// spent, hashes of a set at its cap, and the conditions on first and last
// when they already lie beyond b's.
func (s *State) bucketUpdate(bid string, a detect.Aggregate, b detect.Bucket, shards []shard, known bool, kn *facts) *dynamodb.UpdateItemInput {
	if kn == nil {
		kn = &facts{}
	}
	target := shard{index: 0}
	frozen := shards
	if len(shards) > 0 {
		top := shards[len(shards)-1]
		if len(top.batches) < s.perItem {
			target, frozen = top, shards[:len(shards)-1]
		} else {
			target = shard{index: top.index + 1}
		}
	}
	e := newExpr()
	var sets, adds, conds []string

	bids := e.name(attrBatches)
	adds = append(adds, bids+" "+e.value(attrSS([]string{bid})))
	conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR (size(%s) < %s AND NOT contains(%s, %s)))",
		bids, bids, e.value(attrNum(s.perItem)), bids, e.value(attrS(bid))))
	adds = append(adds, e.name(attrCount)+" "+e.value(attrNum(b.Count)))
	// first and last are the min and max of what was merged, and an update
	// expression has neither: unless the target's times are known, the write
	// keeps first and sets last on condition that b does not widen them the
	// other way (the usual, in-order case); once known, it sets each only
	// where b widens it, on condition that nobody widened it further.
	// Names and values only for what the expression uses: DynamoDB rejects
	// an unused placeholder.
	timeClause := func(attr string, t time.Time) (string, string) { return e.name(attr), e.value(attrS(formatTime(t))) }
	switch {
	case !known && !kn.firstAtMost.IsZero() && !b.First.Before(kn.firstAtMost):
		// Stored first is at or before b's: keep it (set only if the
		// item is gone, say expired).
		first, v := timeClause(attrFirst, b.First)
		sets = append(sets, fmt.Sprintf("%s = if_not_exists(%s, %s)", first, first, v))
	case !known || !target.hasFirst:
		first, v := timeClause(attrFirst, b.First)
		sets = append(sets, fmt.Sprintf("%s = if_not_exists(%s, %s)", first, first, v))
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s <= %s)", first, first, v))
	case b.First.Before(target.first):
		first, v := timeClause(attrFirst, b.First)
		sets = append(sets, first+" = "+v)
		conds = append(conds, widenCond(e, first, ">", v, target.firstRaw))
	}
	switch {
	case !known && !kn.lastAtLeast.IsZero() && !b.Last.After(kn.lastAtLeast):
		last, l := timeClause(attrLast, b.Last)
		sets = append(sets, fmt.Sprintf("%s = if_not_exists(%s, %s)", last, last, l))
	case !known || target.last.IsZero():
		last, l := timeClause(attrLast, b.Last)
		sets = append(sets, last+" = "+l)
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s <= %s)", last, last, l))
	case b.Last.After(target.last):
		last, l := timeClause(attrLast, b.Last)
		sets = append(sets, last+" = "+l)
		conds = append(conds, widenCond(e, last, "<", l, target.lastRaw))
	}
	sets = append(sets, e.name(TTLAttribute)+" = "+e.value(attrN(expiry(b.Start.Add(a.Window), s.now()))))
	if len(b.Marks) > 0 {
		marks := make([]string, len(b.Marks))
		for i, m := range b.Marks {
			marks[i] = fmt.Sprint(m)
		}
		adds = append(adds, e.name(attrMarks)+" "+e.value(&types.AttributeValueMemberNS{Value: marks}))
	}
	if len(b.Saturated) > 0 {
		adds = append(adds, e.name(attrSaturated)+" "+e.value(attrSS(b.Saturated)))
	}

	for _, f := range fields(b.Distinct) {
		frozenSet := make(map[string]bool)
		for _, sh := range frozen {
			for _, h := range sh.distinct[f] {
				frozenSet[h] = true
			}
		}
		have := maps2set(frozenSet, target.distinct[f])
		if len(have) >= detect.DistinctCap || kn.saturated[f] {
			continue // stays at or over the cap: the batch's hashes are dropped
		}
		// Only hashes no shard holds are added, so the newest shard's set
		// is disjoint from the frozen ones and its size alone tells whether
		// the bucket's set is still below the cap.
		var fresh []string
		for _, h := range b.Distinct[f] {
			if !have[h] {
				fresh = append(fresh, h)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		d := e.name(prefixDistinct + f)
		adds = append(adds, d+" "+e.value(attrSS(fresh)))
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR size(%s) < %s)",
			d, d, e.value(attrNum(detect.DistinctCap-len(frozenSet)))))
	}

	// Display values and evidence: each added while what was offered
	// before stays under its budget.
	truncated := b.ValuesTruncated
	for _, vk := range []valueKind{
		{b.Values, attrOffered, prefixValues, detect.BucketValuesBudget, kn.spent,
			func(sh *shard) (int64, map[string][]string) { return sh.offered, sh.values }},
		{b.Evidence, attrEvOffered, prefixEvidence, detect.EvidenceBudget, false,
			func(sh *shard) (int64, map[string][]string) { return sh.evOffered, sh.evidence }},
	} {
		a, c, refused := vk.clause(e, shards, frozen, &target)
		adds, conds = append(adds, a...), append(conds, c...)
		truncated = truncated || refused
	}
	if truncated {
		sets = append(sets, e.name(attrTruncated)+" = "+e.value(&types.AttributeValueMemberBOOL{Value: true}))
	}

	return &dynamodb.UpdateItemInput{
		Key:                       itemKey(a.Key, bucketSK(b.Start, target.index)),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ") + " ADD " + strings.Join(adds, ", ")),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		// Why a condition failed, without a read (DynamoDB; not dynalite).
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// valueKind is one kind of display value a bucket keeps under a budget:
// Values, or Evidence.
type valueKind struct {
	vals     map[string][]string
	offered  string // the attribute counting the values offered
	prefix   string // the attributes holding them, one set per field
	budget   int
	spent    bool // known spent from an earlier read
	fromItem func(*shard) (int64, map[string][]string)
}

// clause returns what merging vk's values into target adds and the
// conditions it needs, or that the budget refuses them.
func (vk valueKind) clause(e *expr, shards, frozen []shard, target *shard) (adds, conds []string, refused bool) {
	offered := 0
	for _, vs := range vk.vals {
		offered += len(vs)
	}
	if offered == 0 {
		return nil, nil, false
	}
	var frozenOffered int64
	for i := range frozen {
		n, _ := vk.fromItem(&frozen[i])
		frozenOffered += n
	}
	targetOffered, _ := vk.fromItem(target)
	o := e.name(vk.offered)
	if frozenOffered+targetOffered < int64(vk.budget) && !vk.spent {
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s < %s)",
			o, o, e.value(attrNum(int64(vk.budget)-frozenOffered))))
		for _, f := range fields(vk.vals) {
			have := make(map[string]bool)
			for i := range shards {
				_, vs := vk.fromItem(&shards[i])
				for _, v := range vs[f] {
					have[v] = true
				}
			}
			var fresh []string
			for _, v := range vk.vals[f] {
				if !have[v] {
					fresh = append(fresh, v)
				}
			}
			if len(fresh) > 0 {
				adds = append(adds, e.name(vk.prefix+f)+" "+e.value(attrSS(fresh)))
			}
		}
	} else {
		refused = true
	}
	adds = append(adds, o+" "+e.value(attrNum(offered)))
	return adds, conds, refused
}

// widenCond is the condition for moving a stored time to v: that it is
// still beyond v (op), or, for a string an earlier release stored in a form
// that does not order as a time, that it is still exactly raw.
func widenCond(e *expr, name, op, v, raw string) string {
	if ordered(raw) {
		return fmt.Sprintf("%s %s %s", name, op, v)
	}
	return fmt.Sprintf("%s = %s", name, e.value(attrS(raw)))
}

func fields(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func maps2set(base map[string]bool, more []string) map[string]bool {
	out := make(map[string]bool, len(base)+len(more))
	for k := range base {
		out[k] = true
	}
	for _, k := range more {
		out[k] = true
	}
	return out
}
