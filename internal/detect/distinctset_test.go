package detect

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
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
