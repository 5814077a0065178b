// Package jsonscan is the shared fast-path JSON scanner for audit lines
// (audit.Parse) and CloudWatch Logs subscription payloads (cwlogs).
// encoding/json scans every byte twice (checkValid, then decode) with a
// per-byte state machine, including the large fields neither caller reads;
// with these primitives a caller validates its input in one tight pass and
// decodes only the fields it needs.
//
// encoding/json remains the specification. SkipValue accepts exactly what
// json.Valid accepts and allows the same nesting, and DecodeString decodes
// a string to the bytes encoding/json decodes it to. Both callers fall back
// to encoding/json for anything they do not decode by hand, and their own
// fuzz tests check that the two paths agree.
//
// Every function takes the input and the index to start at, and reports
// the index after what it read, so a caller walks a document without
// copying it. None of them allocates, except the decoders of a string's
// contents, which return new bytes.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// MaxDepth is encoding/json's limit on nested arrays and objects.
const MaxDepth = 10000

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString validates the string literal at b[i] == '"' and returns the
// index after its closing quote, and whether it has escapes. It does not
// check UTF-8: encoding/json accepts invalid bytes in a string and decodes
// each to U+FFFD, as DecodeString does.
//
// Subscription payloads are mostly long strings (each message is an audit
// line, itself JSON) in which an escaped quote comes every ten bytes or so:
// too often for a loop that stops at each escape. So SkipString reads eight
// bytes at a time up to the first quote, backslash or control character
// (in most keys and values, the closing quote), and from there, after 64
// bytes word by word, 64 at a time: a block that is ASCII, holds no
// control character, and in which each backslash escapes a quote is
// accepted as a whole. Anything else (the closing quote, another escape, a
// backslash escaping a backslash) is worked out exactly for the eight bytes
// it is in, and the 56 after it go word by word, as such bytes come in
// clusters.
func SkipString(b []byte, i int) (end int, esc, ok bool) {
	start := i + 1
	i = start
	// Up to the first byte that is not plain contents: in most keys and
	// values, the closing quote.
	for i+8 <= len(b) {
		k := firstSpecial(binary.LittleEndian.Uint64(b[i:]))
		if k == 8 {
			i += 8
			continue
		}
		if b[i+k] == '"' {
			return i + k + 1, false, true
		}
		break
	}
	var carry uint64 // 1 when b[i] is escaped by the backslash at b[i-1]
	for i+8 <= len(b) {
		for stop := min(i+64, len(b)); i+8 <= stop; i += 8 {
			var next uint64
			end, next, ok = stringWord(b, i, carry)
			if !ok || end > 0 {
				return end, ok && hasBackslash(b[start:end-1]), ok
			}
			carry = next
		}
		// Then 64 bytes at a time while they are plain: ASCII, no control
		// character, every backslash escaping a quote. For an ASCII byte
		// x, (x ^ c) + 0x7f (notByte) has its high bit clear exactly when
		// x is c, with no carry out of the byte, so eight bytes at a time
		// give exact masks of the bytes that are not quotes and of those
		// that do not follow a backslash; in a plain block the two agree.
		// A byte with the high bit set breaks the arithmetic, so a block
		// holding one is not plain, whatever the masks say.
		//
		// This loop reads most of a payload. It is written out word by
		// word, each word's value used as soon as it is loaded, because
		// a function call per block, a loop over the words, or loading
		// all eight first each made it 10-30% slower.
		for i+64 <= len(b) {
			blk := b[i : i+64]
			// Word by word: pK is wK a byte earlier, so byte k of pK is
			// the byte before byte k of wK. For w0 that byte is known
			// only as carry.
			w := binary.LittleEndian.Uint64(blk[0:])
			bad := notByte(w, quotes) ^ (notByte(w<<8, backsl)&^0x80 | (1-carry)<<7)
			noCtrl, ascii := w+ctrl, w
			w = binary.LittleEndian.Uint64(blk[8:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[7:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[16:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[15:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[24:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[23:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[32:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[31:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[40:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[39:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[48:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[47:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			w = binary.LittleEndian.Uint64(blk[56:])
			bad |= notByte(w, quotes) ^ notByte(binary.LittleEndian.Uint64(blk[55:]), backsl)
			noCtrl &= w + ctrl
			ascii |= w
			if (bad|ascii)&highs != 0 || noCtrl&highs != highs {
				break
			}
			// In a plain block every backslash escapes, so a last one
			// escapes the next block's first byte.
			carry = 0
			if w>>56 == '\\' {
				carry = 1
			}
			i += 64
		}
	}
	if carry != 0 {
		i-- // the tail starts at the escape
	}
	end, ok = skipStringTail(b, i)
	return end, ok && hasBackslash(b[start:end-1]), ok
}

// notByte returns a word whose bytes have the high bit clear where v's
// byte equals c's (cs is c in every byte), for an ASCII v.
func notByte(v, cs uint64) uint64 { return (v ^ cs) + lo7 }

// ctrl added to an ASCII word leaves the high bit clear in exactly its
// control characters' bytes.
const ctrl = (0x80 - 0x20) * ones

// hasBackslash reports whether s holds a backslash. Asked once a string's
// end is known, it costs less than noting backslashes on the way: the
// search stops at the first, and in an escaped audit line that is the
// second byte.
func hasBackslash(s []byte) bool { return bytes.IndexByte(s, '\\') >= 0 }

// stringWord validates the eight bytes of string contents at b[i]. It
// returns end > 0, the index after the closing quote, when the string ends
// in them, and next, the carry for the following word. ok is false for a
// control character or an invalid escape before the end.
func stringWord(b []byte, i int, carry uint64) (end int, next uint64, ok bool) {
	v := binary.LittleEndian.Uint64(b[i:])
	// First SkipString's test of a plain block, for one word: most words
	// pass it.
	nb := notByte(v, backsl)
	if (notByte(v, quotes)^(nb<<8|(1-carry)<<7)|v)&highs == 0 && (v+ctrl)&highs == highs {
		return 0, 1 - nb>>63, true
	}
	// Then the end of a string with nothing special before it in the word
	// (with a carry, the first byte is part of an escape to check).
	if k := firstSpecial(v); carry == 0 && k < 8 && b[i+k] == '"' {
		return i + k + 1, 0, true
	}
	q, e, c := wordMasks(v)
	qm, em, cm := pack(q), pack(e), pack(c)
	t := escapedBytes[uint(carry)<<8|em]
	escd := uint(t & 0xff)
	ends := qm &^ escd
	in := uint(0xff) // the bytes before the end
	if ends != 0 {
		in = ends&-ends - 1
	}
	if cm&in != 0 {
		return 0, 0, false
	}
	// Escaped quotes and backslashes are valid; check the others.
	for odd := escd &^ (qm | em) & in; odd != 0; odd &= odd - 1 {
		if !validEscape(b, i+bits.TrailingZeros(odd)) {
			return 0, 0, false
		}
	}
	if ends != 0 {
		end = i + bits.TrailingZeros(ends) + 1
	}
	return end, uint64(t >> 8), true
}

// firstSpecial returns the index of the first byte of v that is a quote, a
// backslash or a control character, or 8 if there is none.
func firstSpecial(v uint64) int {
	// x - ones borrows from a zero byte of x, and v - spaces from a byte
	// below 0x20; a borrow can mark bytes above the one it comes from,
	// never below, so the lowest mark is exact.
	q, e := v^quotes, v^backsl
	m := ((q-ones)&^q | (e-ones)&^e | (v-spaces)&^v) & highs
	return bits.TrailingZeros64(m) >> 3
}

// wordMasks returns, for the eight bytes of v, masks holding the high bit of
// each byte that is a quote, a backslash, and a control character. Unlike
// the usual has-zero-byte test, they are exact for every byte, not only the
// lowest: no carry crosses a byte, because the arithmetic is done on the low
// seven bits, and bytes with the high bit set (never one of these) are
// cleared at the end.
func wordMasks(v uint64) (quote, backslash, control uint64) {
	low := v & lo7
	quote = ^((low ^ quotes) + lo7 | v) & highs
	backslash = ^((low ^ backsl) + lo7 | v) & highs
	control = ^(low + ctrl | v) & highs
	return quote, backslash, control
}

// validEscape reports whether the byte b[k], which follows an escaping
// backslash, makes a valid escape with what follows it.
func validEscape(b []byte, k int) bool {
	switch b[k] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if k+5 > len(b) {
			return false
		}
		for _, h := range b[k+1 : k+5] {
			if !isHex(h) {
				return false
			}
		}
		return true
	}
	return false
}

// pack gathers the high bits of the eight bytes of m into the low eight
// bits: bit k is the high bit of byte k.
func pack(m uint64) uint {
	// The multiplier moves bit 8k+7 (after the shift, 8k) to bit 56+k; no
	// two partial products meet, so nothing carries.
	return uint((m >> 7) * 0x0102040810204080 >> 56)
}

// escapedBytes maps carry<<8 | a word's backslash bits (pack) to the bits of
// its bytes that a backslash escapes, with bit 8 set when the word ends in
// an escaping backslash. It is the byte-by-byte rule, tabulated: a run of
// backslashes escapes the byte after it when it is odd.
var escapedBytes = func() (t [512]uint16) {
	for carry := range 2 {
		for bs := range 256 {
			in := carry == 1 // the next byte is escaped
			var e uint16
			for k := range 8 {
				if in {
					e |= 1 << k
					in = false
				} else {
					in = bs>>k&1 == 1
				}
			}
			if in {
				e |= 1 << 8
			}
			t[carry<<8|bs] = e
		}
	}
	return t
}()

// skipStringTail is SkipString byte by byte, for the last bytes of b, from
// b[i] inside the string and not inside an escape.
func skipStringTail(b []byte, i int) (end int, ok bool) {
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) || !validEscape(b, i+1) {
				return 0, false
			}
			if b[i+1] == 'u' {
				i += 6
			} else {
				i += 2
			}
		case c < 0x20:
			return 0, false
		default:
			i++
		}
	}
	return 0, false
}

// SWAR constants: every byte set to 0x01, 0x80, 0x7f, '"', '\\' and 0x20.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	lo7    = 0x7f7f7f7f7f7f7f7f
	quotes = 0x2222222222222222
	backsl = 0x5c5c5c5c5c5c5c5c
	spaces = 0x2020202020202020
)

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// SkipNumber validates the number at b[i] and returns the index after it.
func SkipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// SkipValue validates the value at b[i], nested in depth containers, and
// returns the index after it. It keeps its own stack rather than recursing,
// so hostile nesting costs a byte per level.
func SkipValue(b []byte, i, depth int) (int, bool) {
	var arr [64]byte
	stack := arr[:0] // the open containers: '{' or '['
	for {
		// A value starts at i.
		if i >= len(b) {
			return 0, false
		}
		var ok bool
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack)+1 > MaxDepth {
				return 0, false
			}
			stack = append(stack, c)
			i = SkipSpace(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if _, i, _, ok = key(b, i); !ok {
					return 0, false
				}
			}
			continue
		case '"':
			if i, _, ok = SkipString(b, i); !ok {
				return 0, false
			}
		case 't':
			if i, ok = skipLiteral(b, i, "true"); !ok {
				return 0, false
			}
		case 'f':
			if i, ok = skipLiteral(b, i, "false"); !ok {
				return 0, false
			}
		case 'n':
			if i, ok = skipLiteral(b, i, "null"); !ok {
				return 0, false
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return 0, false
			}
			if i, ok = SkipNumber(b, i); !ok {
				return 0, false
			}
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := stack[len(stack)-1]
			if c := b[i]; c == ',' {
				i = SkipSpace(b, i+1)
				if top == '{' {
					if _, i, _, ok = key(b, i); !ok {
						return 0, false
					}
				}
				break
			} else if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return 0, false
		}
	}
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

// Key validates `"key" :` at b[i] and returns the key's contents, without
// quotes or unescaping, and the index of its value, past white space.
//
// plain reports that the key has no escapes and only ASCII bytes. A caller
// that matches keys to field names must fall back to encoding/json for a
// key that is not plain: encoding/json matches after unescaping, and folds
// case with Unicode rules (so "ſ" matches "s"). A plain key matches a name
// exactly or else only by ASCII case folding.
func Key(b []byte, i int) (k []byte, next int, plain, ok bool) {
	end, next, esc, ok := key(b, i)
	if !ok {
		return nil, 0, false, false
	}
	k = b[i+1 : end-1]
	return k, next, !esc && isASCII(k), true
}

// key validates `"key" :` at b[i] and returns the index after the key's
// closing quote, the index of the value, and whether the key has escapes.
func key(b []byte, i int) (end, next int, esc, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false, false
	}
	if end, esc, ok = SkipString(b, i); !ok {
		return 0, 0, false, false
	}
	i = SkipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return 0, 0, false, false
	}
	return end, SkipSpace(b, i+1), esc, true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Next moves past the white space and the ',' or closer ('}' or ']') after
// an object member or array element at b[i]: to the next member or element,
// past white space, or, when done, to the index after closer.
func Next(b []byte, i int, closer byte) (next int, done, ok bool) {
	i = SkipSpace(b, i)
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return SkipSpace(b, i+1), false, true
	case closer:
		return i + 1, true, true
	}
	return 0, false, false
}
