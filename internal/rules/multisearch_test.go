package rules

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func naiveContains(text []byte, lits [][]byte) bool {
	for _, l := range lits {
		if bytes.Contains(text, l) {
			return true
		}
	}
	return false
}

func TestMultiSearch(t *testing.T) {
	tests := []struct {
		text string
		lits []string
		want bool
	}{
		{"", []string{"ab"}, false},
		{"ab", []string{"ab"}, true},
		{"xab", []string{"ab", "abc"}, true},
		{"xabc", []string{"abc", "zzzzzzzz"}, true},
		{"abcab", []string{"abd", "cabz"}, false},
		{`{"user":{"username":"system:anonymous"}}`, []string{"system:anonymous", "system:unauthenticated", "rolebindings"}, true},
		{`{"user":{"username":"system:anonymou"}}`, []string{"system:anonymous", "system:unauthenticated", "rolebindings"}, false},
		{"clusterrolebindings", []string{"system:anonymous", "rolebindings"}, true},
		{"rolebinding", []string{"system:anonymous", "rolebindings"}, false},
		{"a", []string{"a"}, true}, // a one-byte literal falls back
		{"xyz", []string{"q", "yz"}, true},
	}
	for _, tt := range tests {
		var lits [][]byte
		for _, l := range tt.lits {
			lits = append(lits, []byte(l))
		}
		if got := newMultiSearch(lits).contains([]byte(tt.text)); got != tt.want {
			t.Errorf("contains(%q, %q) = %v, want %v", tt.text, tt.lits, got, tt.want)
		}
	}
}

// TestMultiSearchAgrees compares the search with bytes.Contains on random
// texts over a small alphabet, where partial matches and hash collisions
// are frequent: short texts, and texts long enough to be searched in
// quarters.
func TestMultiSearchAgrees(t *testing.T) {
	tests := []struct {
		name            string
		seed            uint64
		cases           int
		minLit          int // literals of minLit to minLit+5 bytes (long: +3)
		minText, spread int
		// Both outcomes must occur: between minHits and maxHits cases
		// contain a literal.
		minHits, maxHits int
	}{
		{name: "short", seed: 1, cases: 20000, minLit: 2, minText: 0, spread: 80, minHits: 1000, maxHits: 19000},
		{name: "long", seed: 3, cases: 5000, minLit: 4, minText: 4 * minQuarter, spread: 2000, minHits: 500, maxHits: 4500},
	}
	const alphabet = "abcs:y"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(tt.seed, tt.seed+1))
			randBytes := func(n int) []byte {
				b := make([]byte, n)
				for i := range b {
					b[i] = alphabet[r.IntN(len(alphabet))]
				}
				return b
			}
			litSpread := 6
			if tt.minText > 0 {
				litSpread = 4
			}
			var hits int
			for range tt.cases {
				lits := make([][]byte, 1+r.IntN(4))
				for j := range lits {
					lits[j] = randBytes(tt.minLit + r.IntN(litSpread))
				}
				text := randBytes(tt.minText + r.IntN(tt.spread))
				want := naiveContains(text, lits)
				if want {
					hits++
				}
				if got := newMultiSearch(lits).contains(text); got != want {
					t.Fatalf("contains(%q, %q) = %v, want %v", text, lits, got, want)
				}
			}
			if hits < tt.minHits || hits > tt.maxHits {
				t.Errorf("%d of %d random cases contain a literal: the test does not exercise both outcomes", hits, tt.cases)
			}
		})
	}
}

// TestMultiSearchQuarters puts a literal at every position of texts long
// enough to be searched in quarters, so that it straddles each boundary
// between them, over filler that half-matches the literals.
func TestMultiSearchQuarters(t *testing.T) {
	lits := [][]byte{[]byte("system:anonymous"), []byte("system:unauthenticated"), []byte("rolebindings")}
	s := newMultiSearch(lits)
	for _, n := range []int{4*minQuarter + 11, 4*minQuarter + 12, 1000, 2053} {
		filler := bytes.Repeat([]byte(`system:authenticated\",rolebinding \"system:anonymou\",`), n/50+1)[:n]
		if s.contains(filler) {
			t.Fatalf("filler of %d bytes contains a literal", n)
		}
		for _, l := range lits {
			for at := 0; at+len(l) <= n; at++ {
				text := bytes.Clone(filler)
				copy(text[at:], l)
				if got, want := s.contains(text), naiveContains(text, lits); got != want {
					t.Fatalf("%q at %d of %d bytes: contains = %v, want %v", l, at, n, got, want)
				}
			}
		}
	}
}

func FuzzMultiSearch(f *testing.F) {
	f.Add([]byte(`{"user":{"username":"system:anonymous"}}`), []byte("system:anonymous"), []byte("rolebindings"))
	f.Add([]byte("xxab"), []byte("ab"), []byte("b"))
	f.Fuzz(func(t *testing.T, text, a, b []byte) {
		if len(a) == 0 || len(b) == 0 {
			return
		}
		lits := [][]byte{a, b}
		s := newMultiSearch(lits)
		if got, want := s.contains(text), naiveContains(text, lits); got != want {
			t.Fatalf("contains(%q, %q) = %v, want %v", text, lits, got, want)
		}
		// The text repeated, long enough to be searched in quarters.
		long := bytes.Repeat(text, 4*minQuarter/(len(text)+1)+1)
		if got, want := s.contains(long), naiveContains(long, lits); got != want {
			t.Fatalf("contains(%q, %q) = %v, want %v", long, lits, got, want)
		}
	})
}
