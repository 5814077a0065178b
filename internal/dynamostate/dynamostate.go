// Package dynamostate keeps detect's rolling state in one DynamoDB table.
//
// It implements detect.State with the same results as memstate (the
// detect/statetest suite checks both), using only UpdateItem and Query, so
// that it also runs against dynalite, which lacks transactions.
//
// # Table
//
// One table with string keys pk (partition) and sk (sort), billed on demand,
// with TTL on TTLAttribute (epoch seconds). Two kinds of item share it:
//
// A bucket item holds one BucketWidth of one aggregate key, or one shard of
// it:
//
//	pk          S   the Aggregate.Key (opaque, printable)
//	sk          S   "b#" + Start as 2006-01-02T15:04:05Z + "#" + shard (000, 001, …)
//	count       N   events merged
//	first, last S   RFC 3339 event times (first of the first batch, last of the latest)
//	batches     SS  BatchIDLen-character hashes of the batches merged into this shard
//	marks       NS  escalation indices
//	saturated   SS  fields a batch reported saturated
//	d:<field>   SS  distinct-value hashes of field
//	v:<field>   SS  display values of field
//	offered     N   display values offered by the merged batches
//	e:<field>   SS  evidence values of field (detect.Bucket.Evidence)
//	eoffered    N   evidence values offered by the merged batches
//	truncated   BOOL  some display values were dropped
//	expires_at  N   TTL: max(Start + window, now) + TTLMargin
//
// A notify item holds the claim and the last sent finding of one key:
//
//	pk                 S  the Claim.Key
//	sk                 S  "n#" + the period's start
//	suppress_until_ns  N  last sent finding's SuppressUntil, Unix nanoseconds (event time)
//	severity           N  its rules.Severity
//	held_severity      N  the highest severity held for a digest instead of sent (detect.Claim.Held)
//	finding_id         S  its FindingID
//	sent_batch         S  the batch that sent it
//	claim_batch        S  batch holding the pending claim (absent: none)
//	claim_finding      S  the FindingID it claimed
//	claim_until_ns     N  the claim's lease end, Unix nanoseconds (wall clock)
//	expires_at         N  TTL: max(SuppressUntil, now + lease) + TTLMargin
//
// A budget item holds the findings that took the places of one notification
// budget (detect.Draw) in one period:
//
//	pk          S   the Draw.Key
//	sk          S   "g#" + the period's start
//	places      SS  the FindingIDs granted, at most Draw.Limit (rules.MaxBudget, 1,000 IDs: 25 KB)
//	expires_at  N   TTL: max(period end, now) + TTLMargin
//
// A live-mark item holds where the function began counting one log stream
// of one cluster (detect.LiveMarks; see live.go): pk "live#" + cluster, sk
// "s#" + stream, since_ms.
//
// # Idempotency and bounded items
//
// Each (batch, key, bucket) merge is one UpdateItem that ADDs counts and sets
// and records the batch's hash in batches, under a condition that the hash is
// not yet there. A failed condition is never returned as an error: the bucket
// is read again and the merge either turns out to be done or is retried
// against what is now stored. A shard takes at most BatchesPerItem batches;
// once full it is never written again and the next batch opens the next
// shard. Because every shard but the newest is frozen, the conditions on the
// newest (set sizes below what the caps leave, offered values below what the
// budget leaves) decide the caps exactly as if the bucket were one item, and
// a batch found in any shard is not merged again.
//
// An item's size is bounded whatever the events: the batches set by
// BatchesPerItem × BatchIDLen bytes (2 KiB); each d:<field> set by
// 2 × DistinctCap − 1 hashes of at most memstate.MaxHashLen bytes (8 KB; a
// set below the cap accepts one more batch of up to DistinctCap); the v: sets
// together by BucketValuesBudget − 1 + BucketValuesCap × (collected fields)
// values of at most StoredValueLen bytes, and the e: sets likewise by
// EvidenceBudget; the key by memstate.MaxKeyLen.
// Only the number of fields, which comes from the rules and not from the
// attacker, changes the bound: a rule that counts distinct values of at most
// 3 fields and collects at most 8 keeps every item under 90 KB (2 + 1 +
// 3 × 8.2 + 2 × 119 × 0.256 KB); a rule using all twelve fields for both could
// reach about 185 KB, still far below DynamoDB's 400 KB item limit, so no
// write ever fails for size. Time filtering is done by the Query's sort-key
// range, never by TTL.
package dynamostate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultLease is how long a granted claim keeps other batches from claiming
// the same key. It matches Lambda's maximum timeout, so a claim outlives the
// invocation that made it however that invocation ends.
const DefaultLease = 15 * time.Minute

// TTLAttribute names the item attribute that holds the expiry time in epoch
// seconds; the table's TTL setting must name it.
const TTLAttribute = "expires_at"

// TTLMargin is how long an item is kept after it stops mattering in event
// time. It covers late log delivery; a batch delivered later than this may
// find its buckets already deleted and be counted afresh.
const TTLMargin = 24 * time.Hour

// BatchesPerItem is the default number of batch hashes one bucket shard
// takes before the next shard opens. CloudWatch Logs delivers a busy stream
// every few seconds, so one key's minute rarely sees more than a few dozen
// batches; 128 keeps most buckets in one item and the set at 2 KiB.
const BatchesPerItem = 128

// BatchIDLen is the length of a stored batch hash: 96 bits of SHA-256 in
// unpadded base64url, so a collision between two batches of one bucket is
// never expected.
const BatchIDLen = 16

// DefaultWorkers bounds the groups an Apply works on at once.
const DefaultWorkers = 16

// API is the part of the DynamoDB client that State uses.
type API interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// State is a detect.State kept in DynamoDB. It is safe for concurrent use.
type State struct {
	api     API
	table   string
	now     func() time.Time
	lease   time.Duration
	workers int
	perItem int
	measure bool
	facts   factCache

	calls    atomic.Int64
	capMu    sync.Mutex
	capRead  float64
	capWrite float64
}

var _ detect.State = (*State)(nil)

// Option configures a State.
type Option func(*State)

// WithLease sets the claim lease (default DefaultLease).
func WithLease(d time.Duration) Option {
	return func(s *State) {
		if d > 0 {
			s.lease = d
		}
	}
}

// WithWorkers bounds the groups one Apply works on at once (default
// DefaultWorkers).
func WithWorkers(n int) Option {
	return func(s *State) {
		if n > 0 {
			s.workers = n
		}
	}
}

// WithBatchesPerItem sets how many batches a bucket shard takes before the
// next one opens (default BatchesPerItem). Tests lower it to exercise
// sharding; a table must always be used with one value.
func WithBatchesPerItem(n int) Option {
	return func(s *State) {
		if n > 0 {
			s.perItem = n
		}
	}
}

// WithConsumedCapacity asks DynamoDB to report consumed capacity on every
// call, for ConsumedCapacity.
func WithConsumedCapacity() Option {
	return func(s *State) { s.measure = true }
}

// New returns a State on table. now is the wall clock; it times claim
// leases and TTLs and is never compared with event time.
func New(client API, table string, now func() time.Time, opts ...Option) *State {
	s := &State{
		api:     client,
		table:   table,
		now:     now,
		lease:   DefaultLease,
		workers: DefaultWorkers,
		perItem: BatchesPerItem,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Calls returns the number of DynamoDB operations issued so far. Each Query
// page counts once; the SDK's retries of one operation do not count.
func (s *State) Calls() int64 { return s.calls.Load() }

// ConsumedCapacity returns the capacity units DynamoDB reported so far, read
// and write together. It stays 0 unless WithConsumedCapacity was given.
// Conditional writes that fail also consume capacity on DynamoDB, but their
// errors carry no figure, so they are not counted.
func (s *State) ConsumedCapacity() float64 {
	r, w := s.ConsumedReadWrite()
	return r + w
}

// ConsumedReadWrite returns ConsumedCapacity split into read units (Query)
// and write units (UpdateItem), which DynamoDB prices differently.
func (s *State) ConsumedReadWrite() (read, write float64) {
	s.capMu.Lock()
	defer s.capMu.Unlock()
	return s.capRead, s.capWrite
}

func (s *State) capacityMode() types.ReturnConsumedCapacity {
	if s.measure {
		return types.ReturnConsumedCapacityTotal
	}
	return ""
}

func (s *State) addCapacity(c *types.ConsumedCapacity, write bool) {
	if c == nil || c.CapacityUnits == nil {
		return
	}
	s.capMu.Lock()
	defer s.capMu.Unlock()
	if write {
		s.capWrite += *c.CapacityUnits
	} else {
		s.capRead += *c.CapacityUnits
	}
}

func (s *State) query(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = s.capacityMode()
	s.calls.Add(1)
	out, err := s.api.Query(ctx, in)
	if err == nil {
		s.addCapacity(out.ConsumedCapacity, false)
	}
	return out, err
}

func (s *State) update(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = s.capacityMode()
	s.calls.Add(1)
	out, err := s.api.UpdateItem(ctx, in)
	if err == nil {
		s.addCapacity(out.ConsumedCapacity, true)
	}
	return out, err
}

// expiry returns the TTL value for an item that matters until the later of
// eventEnd and wallEnd. Taking the later one keeps items of replayed or late
// logs, whose event time is long past, for TTLMargin after they were written.
func expiry(eventEnd, wallEnd time.Time) string {
	end := eventEnd
	if wallEnd.After(end) {
		end = wallEnd
	}
	return fmt.Sprint(end.Add(TTLMargin).Unix())
}
