package detect_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

const benchBatch = 10_000

// benchLimits admit the 10,000-event benchmark envelopes, which inflate past
// what one real delivery holds; the benchmark measures throughput.
var benchLimits = cwlogs.Limits{MaxDecompressed: 256 << 20}

// benchData returns awslogs.data for 10,000 synthetic events with the given
// anonymous share.
func benchData(b *testing.B, anon float64) string {
	b.Helper()
	g := synth.New(1, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), 50*time.Millisecond, synth.Mix{Anonymous: anon, RequestReceived: 0.01})
	lines := make([][]byte, benchBatch)
	for i := range lines {
		lines[i] = g.Next()
	}
	batch := synth.Batch(lines, "/aws/eks/bench/cluster", "kube-apiserver-audit-0", 1)
	env, err := cwlogs.Encode(batch)
	if err != nil {
		b.Fatal(err)
	}
	var ev events.CloudwatchLogsEvent
	if err := json.Unmarshal(env, &ev); err != nil {
		b.Fatal(err)
	}
	return ev.AWSLogs.Data
}

func perEvent(b *testing.B) {
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op") // events/s is the figure; per-op time is per batch
}

// BenchmarkPipeline measures the detector's per-batch work as the function
// does it (decode with the rules' pre-filter applied to escaped messages,
// parse, rules, aggregation; no state or publishing) side by side with the floor
// (base64 and gunzip alone, which no decoder can beat) and the naive
// implementation (aws-lambda-go's events.Parse, then encoding/json of every
// message into a full audit struct), for two traffic mixes: 5% anonymous, as
// without a subscription filter, and 100%, as behind the default filter
// pattern. scripts/bench.sh prints the ratios.
func BenchmarkPipeline(b *testing.B) {
	for _, mix := range []struct {
		name string
		anon float64
	}{{"anon5", 0.05}, {"anon100", 1}} {
		data := benchData(b, mix.anon)
		b.Run(mix.name+"/floor", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				raw, err := base64.StdEncoding.DecodeString(data)
				if err != nil {
					b.Fatal(err)
				}
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b)
		})
		b.Run(mix.name+"/naive", func(b *testing.B) {
			b.ReportAllocs()
			ev := events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{Data: data}}
			for range b.N {
				p, err := ev.AWSLogs.Parse()
				if err != nil {
					b.Fatal(err)
				}
				for _, le := range p.LogEvents {
					var e synth.NaiveEvent
					// Lines that fail to decode are skipped, as the
					// detector skips them.
					_ = json.Unmarshal([]byte(le.Message), &e)
				}
			}
			perEvent(b)
		})
		b.Run(mix.name+"/pipeline", func(b *testing.B) {
			set, err := rules.Default()
			if err != nil {
				b.Fatal(err)
			}
			d, err := detect.New(detect.Config{Rules: set})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var matched int
			for range b.N {
				batch, err := cwlogs.DecodeDataKeep(data, benchLimits, d.Keep)
				if err != nil {
					b.Fatal(err)
				}
				_, res := d.Aggregate(&batch)
				matched = res.Matched
			}
			if matched == 0 {
				b.Fatal("no rule matched: the benchmark would measure nothing")
			}
			perEvent(b)
		})
	}
}
