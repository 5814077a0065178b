package memstate

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnion(t *testing.T) {
	tests := []struct {
		a, b, want []string
	}{
		{nil, nil, nil},
		{[]string{"a"}, nil, []string{"a"}},
		{nil, []string{"a"}, []string{"a"}},
		{[]string{"a", "c"}, []string{"b"}, []string{"a", "b", "c"}},
		{[]string{"b"}, []string{"a", "c"}, []string{"a", "b", "c"}},
		{[]string{"a", "b", "c"}, []string{"a", "c"}, []string{"a", "b", "c"}},
		{[]string{"a", "b"}, []string{"b", "c", "d"}, []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		got := union(tt.a, tt.b)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("union(%q, %q) mismatch (-want +got):\n%s", tt.a, tt.b, diff)
		}
	}
}

// TestUnionRandom checks union against a map on random sets, and that it
// returns a only when b adds nothing, and never b's array.
func TestUnionRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	set := func() []string {
		m := map[string]bool{}
		for range r.IntN(12) {
			m[string(rune('a'+r.IntN(16)))] = true
		}
		return slices.Sorted(maps.Keys(m))
	}
	for range 5000 {
		a, b := set(), set()
		all := map[string]bool{}
		for _, x := range append(slices.Clone(a), b...) {
			all[x] = true
		}
		want := slices.Sorted(maps.Keys(all))
		got := union(a, b)
		if !slices.Equal(got, want) {
			t.Fatalf("union(%q, %q) = %q, want %q", a, b, got, want)
		}
		grew := len(want) > len(a)
		same := len(a) == 0 || &got[0] == &a[0]
		if grew && len(a) > 0 && same || !grew && !same {
			t.Fatalf("union(%q, %q): returned a: %v, though b added to it: %v", a, b, same, grew)
		}
		if len(got) > 0 && len(b) > 0 && &got[0] == &b[0] {
			t.Fatalf("union(%q, %q) returned b's array", a, b)
		}
	}
}
