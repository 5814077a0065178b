package detect

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// TestDistinctSetOrder: whatever the order of the values, a set keeps the
// same hashes, and past the cap exactly the DistinctCap smallest.
func TestDistinctSetOrder(t *testing.T) {
	for _, n := range []int{0, 1, DistinctCap - 1, DistinctCap, DistinctCap + 1, 5 * DistinctCap} {
		vals := make([]string, 0, 2*n)
		for i := range n {
			v := fmt.Sprintf("/probe/%d", i)
			vals = append(vals, v, v) // every value twice
		}
		var all []string
		for _, v := range dedup(vals) {
			all = append(all, DistinctHash(v))
		}
		sort.Strings(all)
		want := all[:min(len(all), DistinctCap)]
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		for range 20 {
			rng.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
			var s distinctSet
			for _, v := range vals {
				s.add(v)
			}
			if got := s.sorted(); !slices.Equal(got, want) {
				t.Fatalf("%d values: kept %d hashes, not the %d smallest", n, len(got), len(want))
			}
			if s.saturated() != (n >= DistinctCap) {
				t.Errorf("%d values: saturated %v", n, s.saturated())
			}
		}
	}
}

func dedup(vs []string) []string {
	s := slices.Clone(vs)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestBucketWidthFor(t *testing.T) {
	tests := []struct {
		window, width, span time.Duration
	}{
		{time.Minute, time.Minute, 0},
		{30 * time.Minute, time.Minute, 29 * time.Minute},
		{2 * time.Hour, time.Minute, 119 * time.Minute},
		{3 * time.Hour, 3 * time.Minute, 177 * time.Minute},
		{24 * time.Hour, 24 * time.Minute, 24*time.Hour - 24*time.Minute},
	}
	for _, tt := range tests {
		if got := BucketWidthFor(tt.window); got != tt.width {
			t.Errorf("BucketWidthFor(%v) = %v, want %v", tt.window, got, tt.width)
		}
		if got := WindowSpan(tt.window); got != tt.span {
			t.Errorf("WindowSpan(%v) = %v, want %v", tt.window, got, tt.span)
		}
		// A window covers the same number of whole buckets, at most 60
		// past the one-minute range.
		if n := tt.window / BucketWidthFor(tt.window); n > 120 {
			t.Errorf("window %v: %d buckets", tt.window, n)
		}
	}
}
