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

// plainStringByte marks the bytes that a JSON string holds as they are: not
// '"', not '\\', not a control character.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// SkipString validates the string literal at b[i] == '"' and returns the
// index after its closing quote, and whether it has escapes. It does not
// check UTF-8: encoding/json accepts invalid bytes in a string and decodes
// each to U+FFFD, as DecodeString does.
func SkipString(b []byte, i int) (end int, esc, ok bool) {
	i++
	for i < len(b) {
		if plainStringByte[b[i]] {
			i = skipPlain(b, i+1)
			continue
		}
		switch b[i] {
		case '"':
			return i + 1, esc, true
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		default:
			return 0, false, false // a control character
		}
	}
	return 0, false, false
}

// SWAR constants: every byte set to 0x01, 0x80, '"', '\\' and 0x20.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = 0x2222222222222222
	backsl = 0x5c5c5c5c5c5c5c5c
	spaces = 0x2020202020202020
)

// skipPlain returns the index of the first byte at or after i that is not
// a plain string byte, or len(b). It tests eight bytes at a time: subscription
// payloads are mostly long escaped strings (each message is an audit line),
// and a byte-wise loop over them was the largest cost of decoding.
func skipPlain(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		// A byte is zero in v^quotes where v has '"' (likewise '\\');
		// (x - ones) & ^x & highs marks x's zero bytes, and
		// (v - spaces) & ^v & highs v's bytes below 0x20. Borrows can
		// mark bytes above a marked one, never below, so the lowest mark
		// is exact.
		q, e := v^quotes, v^backsl
		if m := ((q-ones)&^q | (e-ones)&^e | (v-spaces)&^v) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && plainStringByte[b[i]] {
		i++
	}
	return i
}

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
