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
// are frequent.
func TestMultiSearchAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcs:y"
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	var hits int
	for i := 0; i < 20000; i++ {
		lits := make([][]byte, 1+r.IntN(4))
		for j := range lits {
			lits[j] = randBytes(2 + r.IntN(6))
		}
		text := randBytes(r.IntN(80))
		want := naiveContains(text, lits)
		if want {
			hits++
		}
		if got := newMultiSearch(lits).contains(text); got != want {
			t.Fatalf("contains(%q, %q) = %v, want %v", text, lits, got, want)
		}
	}
	if hits < 1000 || hits > 19000 {
		t.Errorf("%d of 20000 random cases contain a literal: the test does not exercise both outcomes", hits)
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
		if got, want := newMultiSearch(lits).contains(text), naiveContains(text, lits); got != want {
			t.Fatalf("contains(%q, %q) = %v, want %v", text, lits, got, want)
		}
	})
}
