package perf

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/handler"
	"github.com/anonwatch/anonwatch/internal/jsonlpub"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// unfilteredBatch is the events in one delivery without a filter pattern,
// in the cost model of docs/performance.md: 10 million events a day from
// two API server log streams, each delivered every 5 s, is 289 a delivery.
const unfilteredBatch = 289

// BenchmarkInvocation measures the CPU time of one invocation's handling,
// from the Lambda event's bytes (unmarshalled as the runtime does) to the
// handler's return, with in-memory state and a publisher that discards,
// so that no network time is in it, for the two deliveries the cost model
// prices:
//   - unfiltered: a delivery without a subscription filter pattern, the
//     cluster's traffic with 0.1% anonymous requests;
//   - filtered: a delivery behind the default filter pattern, usually one
//     anonymous request.
//
// Every iteration handles the same batch, so after the first its findings
// are due but suppressed, as for most deliveries during an ongoing scan:
// the figure leaves out rendering and publishing. Lambda gives a 128 MB
// function 128/1769 of a vCPU, so an invocation's billed CPU time is about
// 14 times ns/op (docs/performance.md).
func BenchmarkInvocation(b *testing.B) {
	for _, c := range []struct {
		name  string
		lines [][]byte
	}{
		{"unfiltered", synth.Lines(unfilteredBatch, 0.001, 11, start, 17*time.Millisecond)},
		{"filtered", [][]byte{synth.Probe{At: start, SrcIP: "198.51.100.7", UserAgent: "Go-http-client/1.1", URI: "/api/v1/namespaces/kube-system/secrets"}.Line()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ev, err := cwlogs.Encode(synth.Batch(c.lines, logGroup, logStream, 1))
			if err != nil {
				b.Fatal(err)
			}
			set, err := rules.Default()
			if err != nil {
				b.Fatal(err)
			}
			d, err := detect.New(detect.Config{Rules: set, State: memstate.New(time.Now, 0), Publisher: jsonlpub.New(io.Discard)})
			if err != nil {
				b.Fatal(err)
			}
			rec := &recorder{p: d}
			h := &handler.Handler{
				Processor: rec,
				Log:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
				Metrics:   io.Discard,
				Limits:    cwlogs.DefaultLimits,
				Keep:      d.Keep,
				Now:       time.Now,
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var in events.CloudwatchLogsEvent
				if err := json.Unmarshal(ev, &in); err != nil {
					b.Fatal(err)
				}
				if err := h.Handle(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if rec.res.Events != len(c.lines) {
				b.Fatalf("%d events handled, want %d", rec.res.Events, len(c.lines))
			}
			b.ReportMetric(float64(rec.res.Parsed), "parsed/op")
			b.ReportMetric(float64(rec.res.Aggregates), "aggs/op")
			b.ReportMetric(float64(rec.res.Published), "published/op")
			b.ReportMetric(float64(len(ev)), "event-bytes")
		})
	}
}
