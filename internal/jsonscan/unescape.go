package jsonscan

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The decoders below take the contents of a string literal that SkipString
// has validated, without its quotes, and decode them as encoding/json does:
// escapes resolved, each byte of invalid UTF-8 and each unpaired surrogate
// replaced by U+FFFD.

// DecodeString returns the decoded contents s of a validated string
// literal; esc is what SkipString reported for it.
func DecodeString(s []byte, esc bool) string {
	valid := utf8.Valid(s)
	switch {
	case valid && !esc:
		return string(s)
	case valid:
		// Checked once here rather than run by run.
		return string(unescapeRuns(make([]byte, 0, len(s)), s, appendRun))
	}
	return string(unescapeRuns(make([]byte, 0, len(s)), s, appendValidUTF8))
}

// AppendUnescaped appends the decoded contents s of a validated string
// literal to out.
func AppendUnescaped(out, s []byte) []byte {
	return unescapeRuns(out, s, appendValidUTF8)
}

// UnescapeInPlace decodes the contents s of a validated string literal into
// s's own storage and returns the decoded prefix. s must be valid UTF-8:
// without invalid bytes to widen into U+FFFD, the output never overtakes
// the input.
func UnescapeInPlace(s []byte) []byte {
	return unescapeRuns(s[:0], s, appendRun)
}

func appendRun(out, run []byte) []byte { return append(out, run...) }

// unescapeRuns resolves the escapes in s, appending the runs between them
// with appendRun.
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
		// SkipString has checked the escape. Every case reads what it needs
		// before it writes, as UnescapeInPlace requires.
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
			r := Hex4(s)
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if r2 := Hex4(s); r2 >= 0 {
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

// Hex4 decodes the \uXXXX escape at the start of s, or returns -1 when s
// does not start with a whole, valid one: the streaming decoder in cwlogs
// meets escapes its input has not validated yet.
func Hex4(s []byte) rune {
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
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
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
