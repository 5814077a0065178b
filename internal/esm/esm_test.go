package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
)

// stream is an in-memory stream: shard → records, sequence numbers 1, 2, …
type stream map[string][]string

func (s stream) ListShards(_ context.Context, _ *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	out := &kinesis.ListShardsOutput{}
	for id := range s {
		out.Shards = append(out.Shards, types.Shard{ShardId: aws.String(id)})
	}
	return out, nil
}

func (s stream) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	from := 0
	if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
		from, _ = strconv.Atoi(aws.ToString(in.StartingSequenceNumber))
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s|%d", aws.ToString(in.ShardId), from))}, nil
}

func (s stream) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	shard, pos, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	from, _ := strconv.Atoi(pos)
	out := &kinesis.GetRecordsOutput{}
	for i := from; i < len(s[shard]) && len(out.Records) < int(aws.ToInt32(in.Limit)); i++ {
		out.Records = append(out.Records, types.Record{Data: []byte(s[shard][i]), PartitionKey: aws.String("k"), SequenceNumber: aws.String(strconv.Itoa(i + 1))})
	}
	return out, nil
}

// function fails the records whose data it is told to, the first times it
// sees them, and records what it was given.
type function struct {
	mu      sync.Mutex
	failFor map[string]int // data → attempts that fail
	crash   map[string]int // data → attempts that fail the whole invocation
	got     []string       // data, in the order delivered, retries included
}

func (f *function) Invoke(_ context.Context, event []byte) ([]byte, error) {
	var ev events.KinesisEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for _, r := range ev.Records {
		d := string(r.Kinesis.Data)
		if f.crash[d] > 0 {
			f.crash[d]--
			return nil, errors.New("Runtime.ExitError")
		}
	}
	for _, r := range ev.Records {
		d := string(r.Kinesis.Data)
		f.got = append(f.got, d)
		if f.failFor[d] > 0 {
			f.failFor[d]--
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
			break
		}
	}
	return json.Marshal(resp)
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name    string
		failFor map[string]int
		crash   map[string]int
		retries int
		got     []string // shard a's records delivered, in order
		givenUp int
		gaveUp  []string // the records given up
		invoked int
		checkpt string
	}{
		{name: "all succeed", got: []string{"a1", "a2", "a3", "a4", "a5"}, invoked: 3, checkpt: "5"},
		{name: "a failed record is read again with the rest, not those before it", failFor: map[string]int{"a2": 1},
			got: []string{"a1", "a2", "a2", "a3", "a4", "a5"}, invoked: 4, checkpt: "5"},
		{name: "a function error retries the whole batch", crash: map[string]int{"a4": 1},
			got: []string{"a1", "a2", "a3", "a4", "a5"}, invoked: 4, checkpt: "5"},
		// As Lambda does: the rest of the batch from the failed record
		// goes to the on-failure destination with it.
		{name: "past its retries the rest of a batch is given up", failFor: map[string]int{"a3": 9}, retries: 2,
			got: []string{"a1", "a2", "a3", "a3", "a3", "a5"}, givenUp: 1, gaveUp: []string{"a3", "a4"}, invoked: 5, checkpt: "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stream{"shardId-a": {"a1", "a2", "a3", "a4", "a5"}, "shardId-b": {"b1"}}
			fn := &function{failFor: tt.failFor, crash: tt.crash}
			if fn.failFor == nil {
				fn.failFor = map[string]int{}
			}
			if fn.crash == nil {
				fn.crash = map[string]int{}
			}
			var gaveUp []string
			var mu sync.Mutex
			m := New(s, fn, Config{Stream: "s", BatchSize: 2, MaxRetries: tt.retries, OnFailure: func(shard string, batch []types.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range batch {
					gaveUp = append(gaveUp, string(r.Data))
				}
			}})
			st, err := m.Drain(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var gotA []string
			for _, d := range fn.got {
				if strings.HasPrefix(d, "a") {
					gotA = append(gotA, d)
				}
			}
			if diff := cmp.Diff(tt.got, gotA); diff != "" {
				t.Errorf("shard a's deliveries (-want +got):\n%s", diff)
			}
			if st.GivenUp != tt.givenUp || !cmp.Equal(gaveUp, tt.gaveUp) {
				t.Errorf("given up %d (%v), want %d", st.GivenUp, gaveUp, tt.givenUp)
			}
			if st.Invocations != tt.invoked+1 { // and shard b's one
				t.Errorf("%d invocations, want %d", st.Invocations, tt.invoked+1)
			}
			if st.Checkpoint["shardId-a"] != tt.checkpt || st.Checkpoint["shardId-b"] != "1" {
				t.Errorf("checkpoints %v", st.Checkpoint)
			}
			// Drained: nothing more to deliver.
			again, err := m.Drain(context.Background())
			if err != nil || again.Invocations != 0 {
				t.Errorf("second drain: %+v, %v", again, err)
			}
		})
	}
}

func TestDoneRejectsForeignRecord(t *testing.T) {
	batch := []types.Record{{SequenceNumber: aws.String("7")}}
	if _, err := done(batch, []byte(`{"batchItemFailures":[{"itemIdentifier":"8"}]}`)); err == nil {
		t.Error("a response naming a record not in the batch was taken as done")
	}
	if n, err := done(batch, []byte("null")); n != 1 || err != nil {
		t.Errorf("null response: %d, %v", n, err)
	}
}
