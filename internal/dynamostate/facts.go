package dynamostate

import (
	"sync"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
)

// maxFacts bounds the buckets a State remembers facts of; past it the
// memory starts afresh. A warm function sees a few hundred buckets a
// minute at most.
const maxFacts = 20000

// facts are what a State has read or written of one bucket that can only
// stay true whatever other writers do: the values budget is spent, a
// distinct set is at its cap, the stored first is at or before a time and
// the stored last at or after one. The first write of a later batch into
// the bucket is formed with them, so the usual batch of a busy minute does
// not fail a condition and write again. Only buckets of one shard are
// described; a sharded bucket is read.
type facts struct {
	learnt      time.Time // wall clock; older facts may describe an expired item
	sharded     bool
	spent       bool
	saturated   map[string]bool
	firstAtMost time.Time
	lastAtLeast time.Time
}

type factKey struct {
	key   string
	start int64
}

type factCache struct {
	mu sync.Mutex
	m  map[factKey]*facts
}

// factsTTL is how long facts are used: well inside TTLMargin, so they never
// describe an item that expired and was written afresh since.
const factsTTL = time.Hour

// get returns a copy of what is known of the bucket at wall time now, or
// nil.
func (c *factCache) get(key string, start, now time.Time) *facts {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[factKey{key, start.Unix()}]
	if f == nil || now.Sub(f.learnt) > factsTTL {
		return nil
	}
	cp := *f
	return &cp
}

// entry returns the bucket's facts to add to at wall time now; facts too
// old to use are dropped first.
func (c *factCache) entry(key string, start, now time.Time) *facts {
	if c.m == nil || len(c.m) >= maxFacts {
		c.m = make(map[factKey]*facts)
	}
	k := factKey{key, start.Unix()}
	f := c.m[k]
	if f == nil || now.Sub(f.learnt) > factsTTL {
		f = &facts{}
		c.m[k] = f
	}
	// Facts learnt now hold now, and the older ones still hold (they are
	// monotone); the entry lives on from the oldest.
	if f.learnt.IsZero() {
		f.learnt = now
	}
	return f
}

// learnShards records what the shards of a bucket, as read, say.
func (c *factCache) learnShards(key string, start time.Time, shards []shard, perItem int, now time.Time) {
	if len(shards) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.entry(key, start, now)
	if len(shards) > 1 || len(shards[0].batches) >= perItem {
		f.sharded = true
		return
	}
	sh := shards[0]
	if sh.offered >= detect.BucketValuesBudget {
		f.spent = true
	}
	for field, hs := range sh.distinct {
		if len(hs) >= detect.DistinctCap {
			if f.saturated == nil {
				f.saturated = make(map[string]bool)
			}
			f.saturated[field] = true
		}
	}
	if sh.hasFirst {
		f.widen(sh.first, sh.last)
	}
}

// learnWrite records that a write of b into the bucket succeeded: the
// stored first is now at or before b.First and the last at or after b.Last.
func (c *factCache) learnWrite(key string, b detect.Bucket, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry(key, b.Start, now).widen(b.First, b.Last)
}

func (f *facts) widen(first, last time.Time) {
	if f.firstAtMost.IsZero() || first.Before(f.firstAtMost) {
		f.firstAtMost = first
	}
	if last.After(f.lastAtLeast) {
		f.lastAtLeast = last
	}
}
