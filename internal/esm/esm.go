// Package esm reads a Kinesis stream the way Lambda's event source mapping
// does, so that the organization deployment (a CloudWatch Logs destination
// writing to a stream, the detector consuming it) runs on a laptop and in
// the end-to-end tests, against kinesalite and the Lambda Runtime Interface
// Emulator.
//
// Per shard, from the oldest record (TRIM_HORIZON), it invokes the function
// with batches of up to BatchSize records as a Kinesis event, one batch at
// a time, and moves the shard's checkpoint only after a batch succeeded.
// With ReportBatchItemFailures, as the deployed mapping has:
//
//   - a response naming no failed record: the whole batch succeeded;
//   - a response naming some: the checkpoint moves up to the one with the
//     lowest sequence number, and the batch is read again from it (a
//     retry);
//   - a function error, or a response naming a record not in the batch:
//     the whole batch is retried.
//
// After MaxRetries retries of a batch, OnFailure gets it and the shard
// moves past it, as an on-failure destination does. Shards are read at
// once, each on its own goroutine: nothing orders records across shards.
package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// API is the part of the Kinesis client the mapping uses.
type API interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Invoker invokes the function with an event and returns its response. A
// function error (the handler failed, timed out or crashed) is an error.
type Invoker interface {
	Invoke(ctx context.Context, event []byte) ([]byte, error)
}

// Config is a mapping's configuration: the deployed one's, as far as a
// local run needs it.
type Config struct {
	Stream    string // the stream's name
	StreamARN string // put in each record's eventSourceARN
	Region    string // put in each record's awsRegion
	// BatchSize bounds the records of one invocation (default 100).
	BatchSize int
	// MaxRetries bounds the retries of one batch (default 3).
	MaxRetries int
	// OnFailure, when set, gets each batch given up on.
	OnFailure func(shard string, batch []types.Record, err error)
}

// Stats is what Drain did.
type Stats struct {
	Invocations int // function calls
	Retries     int // of them, batches read again
	Records     int // records delivered, retries included
	Checkpoint  map[string]string
	GivenUp     int // batches passed to OnFailure
}

// Mapping is one event source mapping.
type Mapping struct {
	api API
	fn  Invoker
	cfg Config

	mu         sync.Mutex
	checkpoint map[string]string // shard → last sequence number done
}

// New returns a mapping of cfg.Stream to fn.
func New(api API, fn Invoker, cfg Config) *Mapping {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	return &Mapping{api: api, fn: fn, cfg: cfg, checkpoint: map[string]string{}}
}

// Drain delivers every record the stream holds past the checkpoints, shard
// by shard at once, and returns when each shard is caught up.
func (m *Mapping) Drain(ctx context.Context) (Stats, error) {
	shards, err := m.shards(ctx)
	if err != nil {
		return Stats{}, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total = Stats{Checkpoint: map[string]string{}}
		errs  []error
	)
	for _, id := range shards {
		wg.Go(func() {
			st, err := m.drainShard(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			total.Invocations += st.Invocations
			total.Retries += st.Retries
			total.Records += st.Records
			total.GivenUp += st.GivenUp
			if err != nil {
				errs = append(errs, fmt.Errorf("shard %s: %w", id, err))
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	for k, v := range m.checkpoint {
		total.Checkpoint[k] = v
	}
	m.mu.Unlock()
	return total, errors.Join(errs...)
}

func (m *Mapping) shards(ctx context.Context) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(m.cfg.Stream)}
	for {
		out, err := m.api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", m.cfg.Stream, err)
		}
		for _, s := range out.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	sort.Strings(ids)
	return ids, nil
}

// drainShard reads shard from after its checkpoint to its end.
func (m *Mapping) drainShard(ctx context.Context, shard string) (Stats, error) {
	var st Stats
	for {
		recs, err := m.read(ctx, shard)
		if err != nil {
			return st, err
		}
		if len(recs) == 0 {
			return st, nil
		}
		batch := recs[:min(len(recs), m.cfg.BatchSize)]
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				st.Retries++
			}
			st.Invocations++
			st.Records += len(batch)
			done, err := m.invoke(ctx, shard, batch)
			if done > 0 {
				m.setCheckpoint(shard, aws.ToString(batch[done-1].SequenceNumber))
				batch = batch[done:]
			}
			if err == nil && len(batch) == 0 {
				break
			}
			if err == nil {
				err = errors.New("records reported failed")
			}
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			if attempt >= m.cfg.MaxRetries {
				st.GivenUp++
				if m.cfg.OnFailure != nil {
					m.cfg.OnFailure(shard, batch, err)
				}
				m.setCheckpoint(shard, aws.ToString(batch[len(batch)-1].SequenceNumber))
				break
			}
		}
	}
}

// read returns the shard's records after its checkpoint, up to one
// GetRecords call's worth.
func (m *Mapping) read(ctx context.Context, shard string) ([]types.Record, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(m.cfg.Stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
	if cp := m.getCheckpoint(shard); cp != "" {
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(cp)
	}
	it, err := m.api.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard iterator: %w", err)
	}
	out, err := m.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(int32(min(m.cfg.BatchSize, 10000)))})
	if err != nil {
		return nil, fmt.Errorf("get records: %w", err)
	}
	return out.Records, nil
}

// invoke calls the function with batch and returns how many of its leading
// records are done, and an error when the rest must be retried.
func (m *Mapping) invoke(ctx context.Context, shard string, batch []types.Record) (int, error) {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(batch))}
	for i, r := range batch {
		seq := aws.ToString(r.SequenceNumber)
		arrived := time.Now()
		if r.ApproximateArrivalTimestamp != nil {
			arrived = *r.ApproximateArrivalTimestamp
		}
		ev.Records[i] = events.KinesisEventRecord{
			AwsRegion:      m.cfg.Region,
			EventID:        shard + ":" + seq,
			EventName:      "aws:kinesis:record",
			EventSource:    "aws:kinesis",
			EventSourceArn: m.cfg.StreamARN,
			EventVersion:   "1.0",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrived},
				Data:                        r.Data,
				PartitionKey:                aws.ToString(r.PartitionKey),
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	resp, err := m.fn.Invoke(ctx, body)
	if err != nil {
		return 0, err
	}
	return done(batch, resp)
}

// done reads a ReportBatchItemFailures response: the records before the
// lowest failed sequence number are done. An empty or null response, or an
// empty list, means all of them.
func done(batch []types.Record, resp []byte) (int, error) {
	var r events.KinesisEventResponse
	if len(resp) > 0 && string(resp) != "null" {
		if err := json.Unmarshal(resp, &r); err != nil {
			return 0, fmt.Errorf("response %.200q: %w", resp, err)
		}
	}
	if len(r.BatchItemFailures) == 0 {
		return len(batch), nil
	}
	lowest := len(batch)
	for _, f := range r.BatchItemFailures {
		i := indexOf(batch, f.ItemIdentifier)
		if i < 0 {
			return 0, fmt.Errorf("response names record %q, which is not in the batch", f.ItemIdentifier)
		}
		lowest = min(lowest, i)
	}
	return lowest, fmt.Errorf("record %s failed", aws.ToString(batch[lowest].SequenceNumber))
}

func indexOf(batch []types.Record, seq string) int {
	for i, r := range batch {
		if aws.ToString(r.SequenceNumber) == seq {
			return i
		}
	}
	return -1
}

func (m *Mapping) getCheckpoint(shard string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoint[shard]
}

func (m *Mapping) setCheckpoint(shard, seq string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkpoint[shard] = seq
}
