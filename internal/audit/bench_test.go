package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/synth"
)

// benchLines are synthetic EKS lines, 5% anonymous, as the detector sees
// them on a quiet cluster.
func benchLines(b *testing.B) ([][]byte, int64) {
	b.Helper()
	lines := synth.Lines(2000, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	var total int64
	for _, l := range lines {
		total += int64(len(l))
	}
	return lines, total / int64(len(lines))
}

func BenchmarkParse(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := Parse(lines[i%len(lines)], 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseLeanStruct is Parse without its fast path: encoding/json
// into the lean struct.
func BenchmarkParseLeanStruct(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := parse(lines[i%len(lines)], 0, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkParseNaive(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var e synth.NaiveEvent
		if err := json.Unmarshal(lines[i%len(lines)], &e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
