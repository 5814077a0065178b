package handler

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// batches records every batch processed, and fails those of failGroup.
type batches struct {
	got       []cwlogs.Batch
	failGroup string
}

func (p *batches) Process(_ context.Context, b *cwlogs.Batch) (detect.Result, error) {
	p.got = append(p.got, *b)
	if b.LogGroup == p.failGroup {
		return detect.Result{}, errors.New("state: throttled")
	}
	return detect.Result{Cluster: b.Cluster, Events: len(b.Events)}, nil
}

// record is a Kinesis record of a destination's stream: a gzipped
// payload from logGroup in account and region.
func record(t *testing.T, seq, logGroup, account, region string) events.KinesisEventRecord {
	t.Helper()
	p, err := cwlogs.EncodePayload(cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: account, LogGroup: logGroup, LogStream: "kube-apiserver-audit-1",
		Events: []cwlogs.LogEvent{{ID: "e" + seq, Timestamp: 1764403200000, Message: []byte(`{"kind":"Event"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(p)
	zw.Close()
	return raw(seq, region, gz.Bytes())
}

func raw(seq, region string, data []byte) events.KinesisEventRecord {
	return events.KinesisEventRecord{AwsRegion: region, EventID: "shardId-000000000000:" + seq, EventSource: "aws:kinesis",
		Kinesis: events.KinesisRecord{Data: data, PartitionKey: "pk", SequenceNumber: seq}}
}

func TestHandleKinesis(t *testing.T) {
	tests := []struct {
		name      string
		recs      func(t *testing.T) []events.KinesisEventRecord
		failGroup string
		// processed: "account/region log group" of each batch processed
		processed []string
		failures  []string
		log       string // a message the log must hold
		poison    int
	}{
		{
			name: "two accounts, two regions",
			recs: func(t *testing.T) []events.KinesisEventRecord {
				return []events.KinesisEventRecord{record(t, "1", "/aws/eks/prod/cluster", "111111111111", "eu-west-1"), record(t, "2", "/aws/eks/prod/cluster", "222222222222", "us-east-1")}
			},
			processed: []string{"111111111111/eu-west-1 /aws/eks/prod/cluster", "222222222222/us-east-1 /aws/eks/prod/cluster"},
			failures:  []string{},
		},
		{
			name: "a poison record does not hold the shard back",
			recs: func(t *testing.T) []events.KinesisEventRecord {
				return []events.KinesisEventRecord{record(t, "1", "/aws/eks/a/cluster", "1", "r"), raw("2", "r", []byte("not gzip")), record(t, "3", "/aws/eks/b/cluster", "1", "r")}
			},
			processed: []string{"1/r /aws/eks/a/cluster", "1/r /aws/eks/b/cluster"},
			failures:  []string{},
			log:       "poison record skipped",
			poison:    1,
		},
		{
			name: "a failed record is retried with every later one",
			recs: func(t *testing.T) []events.KinesisEventRecord {
				return []events.KinesisEventRecord{record(t, "1", "/aws/eks/a/cluster", "1", "r"), record(t, "2", "/aws/eks/b/cluster", "1", "r"), record(t, "3", "/aws/eks/c/cluster", "1", "r")}
			},
			failGroup: "/aws/eks/b/cluster",
			processed: []string{"1/r /aws/eks/a/cluster", "1/r /aws/eks/b/cluster"},
			failures:  []string{"2"},
			log:       "record failed",
		},
		{
			name: "not an EKS cluster's log group",
			recs: func(t *testing.T) []events.KinesisEventRecord {
				return []events.KinesisEventRecord{record(t, "1", "/aws/lambda/anonwatch-detector", "1", "r"), record(t, "2", "/aws/eks/a/cluster", "1", "r")}
			},
			processed: []string{"1/r /aws/eks/a/cluster"},
			failures:  []string{},
			log:       "log group ignored",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &batches{failGroup: tt.failGroup}
			var logs, metrics bytes.Buffer
			h := newHandler(&fakeProcessor{calls: new(int64)}, &logs, &metrics)
			h.Processor, h.EKSOnly = p, true
			resp, err := h.Invoke(context.Background(), Event{Records: tt.recs(t)})
			if err != nil {
				t.Fatal(err)
			}
			var got, failures []string
			for _, b := range p.got {
				got = append(got, b.Owner+"/"+b.Region+" "+b.LogGroup)
			}
			for _, f := range resp.BatchItemFailures {
				failures = append(failures, f.ItemIdentifier)
			}
			if failures == nil {
				failures = []string{}
			}
			if diff := cmp.Diff(tt.processed, got); diff != "" {
				t.Errorf("batches processed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.failures, failures); diff != "" {
				t.Errorf("batch item failures (-want +got):\n%s", diff)
			}
			if tt.log != "" && !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log does not say %q:\n%s", tt.log, logs.String())
			}
			if n := strings.Count(metrics.String(), `"PoisonRecords":1`); n != tt.poison {
				t.Errorf("%d poison records in the metrics, want %d", n, tt.poison)
			}
			// The response is what the event source mapping reads.
			js, _ := json.Marshal(resp)
			if !strings.HasPrefix(string(js), `{"batchItemFailures":[`) {
				t.Errorf("response %s", js)
			}
		})
	}
}

func TestInvokeShapes(t *testing.T) {
	var calls int64
	p := &fakeProcessor{calls: &calls}
	var logs, metrics bytes.Buffer
	h := newHandler(p, &logs, &metrics)
	h.Region = "eu-west-1"
	b := cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: "111111111111", LogGroup: "/aws/eks/demo/cluster", LogStream: "s",
		Events: []cwlogs.LogEvent{{ID: "1", Timestamp: 1, Message: []byte("{}")}}}
	resp, err := h.Invoke(context.Background(), Event{AWSLogs: envelope(t, b).AWSLogs})
	if err != nil || resp != nil {
		t.Fatalf("subscription event: %v, %v; want a null response", resp, err)
	}
	if p.got == nil || p.got.Region != "eu-west-1" || p.got.Owner != "111111111111" {
		t.Errorf("batch %+v: want the function's region and the payload's owner", p.got)
	}
	var env *EnvelopeError
	if _, err := h.Invoke(context.Background(), Event{}); !errors.As(err, &env) {
		t.Errorf("empty event: %v, want an EnvelopeError", err)
	}
}

// TestMemberAccountMetricCardinality: each record's EMF document has the
// dimension Cluster, the name of the log group's cluster. In an
// organization that name is a member account's to choose: it may create
// up to a million log groups a region, /aws/eks/<anything>/cluster, and
// each name delivered makes 14 custom metrics in the central account
// ("Each different value found for a dimension is treated as a separate
// metric and accrues charges as a separate custom metric", CloudWatch
// Logs API reference, MetricTransformation). docs/scale.md prices them at
// $4.20 per cluster name a month: one delivery an hour from each of 10,000
// invented names costs the central account thousands of dollars a month,
// the member next to nothing.
func TestMemberAccountMetricCardinality(t *testing.T) {
	if os.Getenv("ANONWATCH_KNOWN_BUGS") == "" {
		t.Skip("known: a member account names the Cluster dimension of the central detector's metrics (ANONWATCH_KNOWN_BUGS=1 runs it)")
	}
	var recs []events.KinesisEventRecord
	for i := range 50 {
		recs = append(recs, record(t, fmt.Sprint(i+1), fmt.Sprintf("/aws/eks/invented-%03d/cluster", i), "666666666666", "eu-west-1"))
	}
	var logs, metrics bytes.Buffer
	h := newHandler(&fakeProcessor{calls: new(int64)}, &logs, &metrics)
	h.Processor, h.EKSOnly = &batches{}, true
	if _, err := h.Invoke(context.Background(), Event{Records: recs}); err != nil {
		t.Fatal(err)
	}
	dims := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(metrics.String()), "\n") {
		var doc struct{ Cluster string }
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		dims[doc.Cluster] = true
	}
	if len(dims) > 1 {
		t.Errorf("one member account's deliveries made %d values of the Cluster dimension, %d custom metrics", len(dims), 14*len(dims))
	}
}
