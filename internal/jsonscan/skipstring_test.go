package jsonscan

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// skipStringRef is SkipString as the JSON grammar reads, a byte at a time:
// the specification the word and block paths of SkipString are checked
// against.
func skipStringRef(b []byte, i int) (end int, esc, ok bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, true
		case c < 0x20:
			return 0, false, false
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !strings.ContainsRune("0123456789abcdefABCDEF", rune(h)) {
						return 0, false, false
					}
				}
				i += 5
			default:
				return 0, false, false
			}
		}
	}
	return 0, false, false
}

type skipResult struct {
	End     int
	Esc, OK bool
}

// checkSkipString compares SkipString with skipStringRef on the literal
// at b[0].
func checkSkipString(t *testing.T, b []byte) {
	t.Helper()
	end, esc, ok := SkipString(b, 0)
	got := skipResult{end, esc, ok}
	end, esc, ok = skipStringRef(b, 0)
	want := skipResult{end, esc, ok}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("SkipString(%q) mismatch (-want +got):\n%s", b, diff)
	}
}

// plainRun returns n bytes of string contents that SkipString's block
// test accepts, as an escaped audit line mostly is: ASCII text and
// escaped quotes.
func plainRun(n int) []byte {
	return bytes.Repeat([]byte(`ab\"`), n/4+1)[:n]
}

// TestSkipStringShort checks every string of up to five bytes over an
// alphabet of the bytes that matter (quote, backslash, escape letters, hex
// digits, a control character, a byte that is not ASCII) after prefixes
// that put it at each place in a word and a block, with the buffer ending
// right after it or going on.
func TestSkipStringShort(t *testing.T) {
	const alphabet = "\"\\un0a\x1f\xe9"
	var prefixes [][]byte
	for _, n := range []int{0, 1, 7, 8, 61, 62, 63, 64, 65, 71, 72, 127, 128, 131} {
		prefixes = append(prefixes, append([]byte{'"'}, plainRun(n)...))
	}
	// A prefix whose last byte escapes the pattern's first, and one ending
	// in an escaped backslash.
	prefixes = append(prefixes, append(append([]byte{'"'}, plainRun(63)...), '\\'))
	prefixes = append(prefixes, append(append([]byte{'"'}, plainRun(62)...), '\\', '\\'))
	suffixes := [][]byte{nil, []byte(`c\"d"}` + strings.Repeat(" ", 70))}
	var pat []byte
	var walk func(n int)
	walk = func(n int) {
		for _, p := range prefixes {
			for _, s := range suffixes {
				checkSkipString(t, append(append(append([]byte(nil), p...), pat...), s...))
			}
		}
		if n == 0 {
			return
		}
		for _, c := range []byte(alphabet) {
			pat = append(pat, c)
			walk(n - 1)
			pat = pat[:len(pat)-1]
		}
	}
	walk(4)
}

// TestSkipStringEdges puts escapes cut short by the end of the buffer, and
// other edge cases, after plain prefixes of every length up to past a
// block, so that each lands at every place in a word, a block and the tail.
func TestSkipStringEdges(t *testing.T) {
	edges := []string{
		`\u123`, `\u1234`, `\u12345"`, `\uABCDe"`, `\u12G4"`, `\`, `\\`, `\\"`, `\\\"`, `\\\\"`,
		`\"`, `\""`, `\b\f\n\r\t\/"`, `\a"`, "\\\x00\"", "\x1f\"", "\x7f\"", "\xff\"", `"`, ``,
	}
	for n := 0; n <= 140; n++ {
		for _, e := range edges {
			checkSkipString(t, append(append([]byte{'"'}, plainRun(n)...), e...))
		}
	}
}

// TestSkipStringRandom checks long strings made of the pieces audit lines
// and hostile input are made of, at every offset modulo a block.
func TestSkipStringRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{
		"kind", "Event", ":", ",", "{", "}", " ", `\"`, `\"`, `\"`, `\\`, `\\\"`, `\n`, `\t`, `\/`,
		`\u00e9`, `\uD83D\uDE00`, `\u12`, `\u12g4`, `\x`, `\`, "\x01", "\x7f", "\xc3\xa9", "\xff", `"`,
	}
	var ends, fails int
	for n := 0; n < 20000; n++ {
		b := []byte{'"'}
		b = append(b, plainRun(r.IntN(140))...)
		for k := r.IntN(40); k > 0; k-- {
			if r.IntN(4) == 0 {
				b = append(b, pieces[r.IntN(len(pieces))]...)
			} else {
				b = append(b, plainRun(1+r.IntN(20))...)
			}
		}
		if r.IntN(2) == 0 {
			b = append(b, `"}]}`...)
		}
		checkSkipString(t, b)
		if _, _, ok := skipStringRef(b, 0); ok {
			ends++
		} else {
			fails++
		}
	}
	// Both outcomes must be common, or the test checks one path only.
	if ends < 2000 || fails < 2000 {
		t.Errorf("%d strings end, %d are refused: too few of one kind", ends, fails)
	}
}

// TestSkipStringRefMatchesJSON ties the reference to encoding/json on the
// test's own kind of input: a literal the reference accepts is a JSON
// string, and one it refuses, cut after each quote, is never one.
func TestSkipStringRefMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "\"\\/bnu0aF\x1f\xe9"
	for n := 0; n < 20000; n++ {
		b := []byte{'"'}
		for k := r.IntN(12); k >= 0; k-- {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		end, _, ok := skipStringRef(b, 0)
		if ok {
			if !json.Valid(b[:end]) {
				t.Fatalf("reference accepts %q up to %d; encoding/json does not", b, end)
			}
			continue
		}
		for k := 2; k <= len(b); k++ {
			if b[k-1] == '"' && json.Valid(b[:k]) {
				t.Fatalf("reference refuses %q; encoding/json accepts %q", b, b[:k])
			}
		}
	}
}

// FuzzSkipString checks SkipString against the reference. pad plain bytes
// go before the fuzzed contents, so that they can reach the block path.
// The seeds include the testdata documents as escaped strings (see
// testdata/README.md: one is from falcosecurity/falco).
func FuzzSkipString(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files in testdata: %v", err)
	}
	for _, name := range files {
		doc, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		lit, err := json.Marshal(string(doc))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(lit[1:], uint8(0))
		f.Add(lit[1:], uint8(61))
	}
	f.Add([]byte(`\\\"x\u00e9\"y"`), uint8(63))
	f.Add([]byte("a\x01\""), uint8(64))
	f.Fuzz(func(t *testing.T, contents []byte, pad uint8) {
		b := append(append([]byte{'"'}, plainRun(int(pad))...), contents...)
		checkSkipString(t, b)
	})
}
