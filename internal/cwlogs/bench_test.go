package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

const benchEvents = 10_000

// benchEnvelope returns awslogs.data for 10,000 synthetic lines, 5%
// anonymous, and the payload's decompressed size: about 21 MB, 1.3 MB of
// gzip. That is more than one asynchronous invocation carries (1 MB), so it
// measures throughput rather than one realistic batch.
func benchEnvelope(b *testing.B) (string, int64) {
	b.Helper()
	lines := synth.Lines(benchEvents, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	batch := synth.Batch(lines, "/aws/eks/bench/cluster", "kube-apiserver-audit-0", 1)
	payload, err := cwlogs.EncodePayload(batch)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(payload)
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), int64(len(payload))
}

func reportEvents(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFloor is the least any decoder must do: base64 decode and gunzip
// to io.Discard.
func BenchmarkFloor(b *testing.B) {
	data, size := benchEnvelope(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		gz, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, benchEvents)
}

func BenchmarkDecodeData(b *testing.B) {
	data, size := benchEnvelope(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		batch, err := cwlogs.DecodeData(data, cwlogs.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		if len(batch.Events) != benchEvents {
			b.Fatalf("got %d events, want %d", len(batch.Events), benchEvents)
		}
	}
	reportEvents(b, benchEvents)
}

// BenchmarkAWSLambdaGoParse is aws-lambda-go's own decoder, which DecodeData
// replaces, on the same envelope. It has no size bound.
func BenchmarkAWSLambdaGoParse(b *testing.B) {
	data, size := benchEnvelope(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d, err := events.CloudwatchLogsRawData{Data: data}.Parse()
		if err != nil {
			b.Fatal(err)
		}
		if len(d.LogEvents) != benchEvents {
			b.Fatalf("got %d events, want %d", len(d.LogEvents), benchEvents)
		}
	}
	reportEvents(b, benchEvents)
}

// BenchmarkDecodeDataKeep is DecodeDataKeep with a pre-filter that keeps
// the anonymous lines, as the function's does: most lines are dropped
// unescaped.
func BenchmarkDecodeDataKeep(b *testing.B) {
	data, size := benchEnvelope(b)
	anonymous := []byte("system:anonymous")
	keep := func(escaped []byte) bool { return bytes.Contains(escaped, anonymous) }
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		batch, err := cwlogs.DecodeDataKeep(data, cwlogs.DefaultLimits, keep)
		if err != nil {
			b.Fatal(err)
		}
		if len(batch.Events) != benchEvents {
			b.Fatalf("got %d events, want %d", len(batch.Events), benchEvents)
		}
	}
	reportEvents(b, benchEvents)
}
