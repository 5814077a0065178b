package cwlogs

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// feedString is jsonscan.SkipString and jsonscan.AppendUnescaped for a
// string literal whose contents arrive in pieces: a message longer than the
// decoder's window, or one it only counts and cuts. It validates and decodes
// the contents from b[i], as those two validate and decode them: escapes
// resolved, each byte of invalid UTF-8 and each unpaired surrogate replaced
// by U+FFFD.
//
// It appends the decoded bytes to out while each whole rune keeps len(out)
// within max; from the first rune that does not fit it appends nothing more
// (st.full), so out ends with the longest prefix of the decoded contents
// that fits, cut at a rune boundary (every escape decodes to one rune, so
// no escape is split). It counts every decoded byte in st.size.
//
// It stops after the closing quote (done), at a control character or a bad
// escape (!ok), or at the end of b. Unless final (b ends where the input
// does), it stops short of a last escape or UTF-8 sequence that may go on
// past b; next is where to go on from, with more input after it.
func feedString(b []byte, i int, final bool, out []byte, max int, st *strState) (next int, _ []byte, done, ok bool) {
	for {
		j := i + specialIndex(b[i:])
		if j == len(b) {
			k := j
			if !final {
				k = runeSafe(b, i, j)
			}
			return k, st.run(out, b[i:k], max), false, true
		}
		out = st.run(out, b[i:j], max)
		switch c := b[j]; {
		case c == '"':
			return j + 1, out, true, true
		case c < 0x20:
			return j, out, false, false
		}
		// A backslash. A \u escape may be a high surrogate paired with the
		// next one: 12 bytes decide it.
		if j+12 > len(b) && !final {
			return j, out, false, true
		}
		if j+1 >= len(b) {
			return j, out, false, false
		}
		var r rune
		n := 2
		switch c := b[j+1]; c {
		case '"', '\\', '/':
			r = rune(c)
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			if r = jsonscan.Hex4(b[j:]); r < 0 {
				return j, out, false, false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				// As jsonscan's decoder: a pair makes one rune; a
				// surrogate without its pair is U+FFFD, and what follows
				// it is decoded on its own.
				r2 := jsonscan.Hex4(b[j+6:])
				if r2 < 0 && len(b) >= j+8 && b[j+6] == '\\' && b[j+7] == 'u' {
					return j, out, false, false // \u with bad hex digits
				}
				if d := utf16.DecodeRune(r, r2); r2 >= 0 && d != utf8.RuneError {
					r, n = d, 12
				} else {
					r = utf8.RuneError
				}
			}
		default:
			return j, out, false, false
		}
		w := utf8.RuneLen(r)
		st.size += int64(w)
		if !st.full {
			if len(out)+w <= max {
				out = utf8.AppendRune(out, r)
			} else {
				st.full = true
			}
		}
		i = j + n
	}
}

// strState is what feedString carries from one piece of a string to the
// next.
type strState struct {
	size int64 // bytes the contents decode to so far
	full bool  // a rune did not fit: nothing more is appended
}

// run decodes run, contents without escapes or quotes, as feedString does.
func (st *strState) run(out, run []byte, max int) []byte {
	if utf8.Valid(run) {
		st.size += int64(len(run))
		switch {
		case st.full:
		case len(out)+len(run) <= max:
			out = append(out, run...)
		default:
			k := max - len(out)
			for k > 0 && !utf8.RuneStart(run[k]) {
				k--
			}
			out = append(out, run[:k]...)
			st.full = true
		}
		return out
	}
	for len(run) > 0 {
		r, n := utf8.DecodeRune(run)
		w := n
		if r == utf8.RuneError && n == 1 {
			w = utf8.RuneLen(utf8.RuneError)
		}
		st.size += int64(w)
		if !st.full {
			if len(out)+w <= max {
				out = utf8.AppendRune(out, r)
			} else {
				st.full = true
			}
		}
		run = run[n:]
	}
	return out
}

// runeSafe returns where to end a run b[i:j] that b's end cut short: j, or
// the start of a last UTF-8 sequence that is not yet whole. Decoding the run
// to that point and the rest later then decodes as the whole would: no rune
// spans the point.
func runeSafe(b []byte, i, j int) int {
	for k := j - 1; k >= i && k >= j-3; k-- {
		switch c := b[k]; {
		case c < utf8.RuneSelf:
			return j
		case utf8.RuneStart(c):
			if !utf8.FullRune(b[k:j]) {
				return k
			}
			return j
		}
	}
	return j
}

// specialIndex returns the index of the first byte of b that is a quote, a
// backslash or a control character, or len(b).
func specialIndex(b []byte) int {
	const (
		ones   = 0x0101010101010101
		highs  = 0x8080808080808080
		quotes = '"' * ones
		backsl = '\\' * ones
		spaces = ' ' * ones
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		// x - ones borrows from a zero byte of x, and v - spaces from a
		// byte below 0x20; a borrow can mark bytes above the one it comes
		// from, never below, so the lowest mark is exact.
		v := binary.LittleEndian.Uint64(b[i:])
		q, e := v^quotes, v^backsl
		if m := ((q-ones)&^q | (e-ones)&^e | (v-spaces)&^v) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

// decodedLen returns the length of the decoded contents esc of a validated
// string literal.
func decodedLen(esc []byte) int64 {
	var st strState
	st.full = true
	feedString(esc, 0, true, nil, 0, &st)
	return st.size
}
