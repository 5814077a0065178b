package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// fakeProcessor returns a fixed result, and counts calls to the adapters'
// counters the way real ones would move.
type fakeProcessor struct {
	res   detect.Result
	err   error
	got   *cwlogs.Batch
	calls *int64
}

func (f *fakeProcessor) Process(_ context.Context, b *cwlogs.Batch) (detect.Result, error) {
	f.got = b
	*f.calls += 7
	return f.res, f.err
}

func envelope(t *testing.T, b cwlogs.Batch) events.CloudwatchLogsEvent {
	t.Helper()
	raw, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.CloudwatchLogsEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func newHandler(p *fakeProcessor, logs, metrics *bytes.Buffer) *Handler {
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return &Handler{
		Processor:     p,
		Log:           slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:       metrics,
		Now:           func() time.Time { clock = clock.Add(5 * time.Millisecond); return clock },
		DynamoDBCalls: func() int64 { return *p.calls },
	}
}

func TestHandleSummaryAndMetrics(t *testing.T) {
	var calls int64 = 100
	p := &fakeProcessor{calls: &calls, res: detect.Result{
		Batch: "b1", Cluster: "demo", Events: 10, Filtered: 4, Parsed: 5,
		Skipped: map[string]int{detect.SkipMalformed: 1}, Matched: 3, Due: 2, Published: 1, Suppressed: 1,
	}}
	var logs, metrics bytes.Buffer
	h := newHandler(p, &logs, &metrics)
	b := cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: "/aws/eks/demo/cluster", LogStream: "s",
		Events: []cwlogs.LogEvent{{ID: "1", Timestamp: 1, Message: []byte("{}")}}}
	if err := h.Handle(context.Background(), envelope(t, b)); err != nil {
		t.Fatal(err)
	}
	if p.got == nil || p.got.Cluster != "demo" || len(p.got.Events) != 1 {
		t.Fatalf("processor got %+v", p.got)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("summary is not one JSON line: %v\n%s", err, logs.String())
	}
	for k, want := range map[string]any{
		"msg": "batch processed", "cluster": "demo", "events": 10.0, "filtered": 4.0, "skipped": 1.0,
		"matched": 3.0, "findings_published": 1.0, "findings_suppressed": 1.0, "dynamodb_calls": 7.0,
		"skipped_by_reason": map[string]any{"malformed": 1.0},
	} {
		if diff := cmp.Diff(want, line[k]); diff != "" {
			t.Errorf("summary %s (-want +got):\n%s", k, diff)
		}
	}
	var emf map[string]any
	if err := json.Unmarshal(metrics.Bytes(), &emf); err != nil {
		t.Fatalf("metrics line: %v\n%s", err, metrics.String())
	}
	aws := emf["_aws"].(map[string]any)
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if diff := cmp.Diff([]any{[]any{"Cluster"}}, cw["Dimensions"]); diff != "" {
		t.Errorf("dimensions (-want +got):\n%s", diff)
	}
	if cw["Namespace"] != MetricsNamespace || emf["Cluster"] != "demo" {
		t.Errorf("namespace %v, cluster %v", cw["Namespace"], emf["Cluster"])
	}
	// Every declared metric has its value in the document.
	for _, m := range cw["Metrics"].([]any) {
		name := m.(map[string]any)["Name"].(string)
		if _, ok := emf[name].(float64); !ok {
			t.Errorf("metric %s declared but has no numeric value", name)
		}
	}
	if emf["FindingsPublished"] != 1.0 || emf["DynamoDBCalls"] != 7.0 || emf["Failures"] != 0.0 {
		t.Errorf("values: published %v, dynamodb %v, failures %v", emf["FindingsPublished"], emf["DynamoDBCalls"], emf["Failures"])
	}
}

func TestHandleErrors(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		procErr  error
		wantType any
	}{
		{name: "base64 garbage", data: "!!!not base64!!!", wantType: &EnvelopeError{}},
		{name: "processor fails", procErr: errors.New("dynamodb: throttled"), wantType: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int64
			p := &fakeProcessor{calls: &calls, err: tt.procErr}
			var logs, metrics bytes.Buffer
			h := newHandler(p, &logs, &metrics)
			ev := envelope(t, cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: "/aws/eks/demo/cluster"})
			if tt.data != "" {
				ev.AWSLogs.Data = tt.data
			}
			err := h.Handle(context.Background(), ev)
			if err == nil {
				t.Fatal("no error")
			}
			var ee *EnvelopeError
			var be *BatchError
			isEnv, isBatch := errors.As(err, &ee), errors.As(err, &be)
			if isEnv != (tt.wantType != nil) || isBatch == isEnv {
				t.Errorf("error %v: EnvelopeError %v, BatchError %v; want exactly one, EnvelopeError %v", err, isEnv, isBatch, tt.wantType != nil)
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("want exactly one error log line, got %d:\n%s", n, logs.String())
			}
			if !strings.Contains(metrics.String(), `"Failures":1`) {
				t.Errorf("metrics do not count the failure: %s", metrics.String())
			}
		})
	}
}
