package jsonscan_test

import (
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/jsonscan"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// benchPayload returns a subscription payload of 2,000 synthetic EKS lines,
// 5% anonymous: mostly long escaped strings, the input SkipString is tuned
// for.
func benchPayload(b *testing.B) []byte {
	b.Helper()
	lines := synth.Lines(2000, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	p, err := cwlogs.EncodePayload(synth.Batch(lines, "/aws/eks/bench/cluster", "kube-apiserver-audit-0", 1))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkSkipValuePayload validates a whole payload, as the decoder's
// fast path does; SkipString over the messages is most of it.
func BenchmarkSkipValuePayload(b *testing.B) {
	p := benchPayload(b)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if end, ok := jsonscan.SkipValue(p, 0, 0); !ok || end != len(p) {
			b.Fatalf("SkipValue = %d, %v; want %d, true", end, ok, len(p))
		}
	}
}

// BenchmarkSkipValueLines validates the unescaped audit lines, whose
// strings are short: keys, names, timestamps.
func BenchmarkSkipValueLines(b *testing.B) {
	lines := synth.Lines(2000, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.SetBytes(size)
	for b.Loop() {
		for _, l := range lines {
			if end, ok := jsonscan.SkipValue(l, 0, 0); !ok || end != len(l) {
				b.Fatalf("SkipValue(%s) = %d, %v", l, end, ok)
			}
		}
	}
}
