package cwlogs

import (
	"bytes"
	"errors"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// message decodes a JSON string into bytes for encoding/json, in decodeStd.
// The result is what encoding/json decodes the same string to: escapes
// resolved, each byte of invalid UTF-8 and each unpaired surrogate replaced
// by U+FFFD.
type message []byte

var errNotString = errors.New("message is not a string")

// UnmarshalJSON is called by encoding/json with a literal its scanner has
// already validated. As for a string field, null leaves the message as it
// is and any other kind of value is an error.
func (m *message) UnmarshalJSON(lit []byte) error {
	if string(lit) == "null" {
		return nil
	}
	if lit[0] != '"' {
		return errNotString
	}
	s := lit[1 : len(lit)-1]
	u := unescape(make([]byte, 0, len(s)), s)
	*m = u[:len(u):len(u)]
	return nil
}

// unescape appends the contents of a validated JSON string literal, without
// its quotes, as encoding/json decodes it.
func unescape(out, s []byte) []byte {
	return unescapeRuns(out, s, appendValidUTF8)
}

// unescapeInPlace unescapes s, which must be valid UTF-8, into its own
// storage: without invalid bytes to widen into U+FFFD, the output never
// overtakes the input.
func unescapeInPlace(s []byte) []byte {
	return unescapeRuns(s[:0], s, func(out, run []byte) []byte { return append(out, run...) })
}

// unescapeRuns resolves the escapes in s, passing the runs between them to
// appendRun.
func unescapeRuns(out, s []byte, appendRun func(out, run []byte) []byte) []byte {
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			i = len(s)
		}
		out = appendRun(out, s[:i])
		s = s[i:]
		if len(s) == 0 {
			break
		}
		// The escape has been validated; every case reads what it needs
		// before it writes.
		switch c := s[1]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s)
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if r2 := hex4(s); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						s = s[6:]
						out = utf8.AppendRune(out, d)
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, c)
		}
		s = s[2:]
	}
	return out
}

// hex4 decodes the validated \uXXXX escape at the start of s, or returns -1
// when s does not start with one.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default: // 'A' to 'F'
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendValidUTF8 appends run, replacing each byte of invalid UTF-8 with
// U+FFFD.
func appendValidUTF8(out, run []byte) []byte {
	if utf8.Valid(run) {
		return append(out, run...)
	}
	for len(run) > 0 {
		r, n := utf8.DecodeRune(run)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, run[:n]...)
		}
		run = run[n:]
	}
	return out
}
