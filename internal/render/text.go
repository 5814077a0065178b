package render

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clean makes s safe to show as one line of text, and returns it with the
// number of bytes of s it left out to stay within max runes (max <= 0 means
// no limit).
//
// Whatever the input, the result is valid UTF-8 on a single line with no
// control, format or separator characters, so a hostile value cannot start a
// line of its own, reorder the text around it (bidi overrides) or hide text
// (zero-width characters). Those characters are shown as Go-style escapes
// (\n, \x00, \u202e) rather than dropped, so a reader can see that they were
// sent; a backslash is doubled so that an escape cannot be faked. Bytes that
// are not UTF-8 become U+FFFD.
func clean(s string, max int) (string, int) {
	var b strings.Builder
	n := 0     // runes written
	marks := 0 // combining marks in a row
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.Is(unicode.M, r) {
			marks++
		} else {
			marks = 0
		}
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = "\uFFFD"
		case r == '\\':
			piece = `\\`
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case r < 0x20 || r == 0x7f:
			piece = fmt.Sprintf(`\x%02x`, r)
		case r < 0x80:
			piece = s[i : i+1]
		case (hidden(r) || marks > maxMarks) && r > 0xffff:
			piece = fmt.Sprintf(`\U%08x`, r)
		case hidden(r) || marks > maxMarks:
			piece = fmt.Sprintf(`\u%04x`, r)
		default:
			piece = s[i : i+size]
		}
		pn := utf8.RuneCountInString(piece)
		if max > 0 && n+pn > max {
			return b.String(), len(s) - i
		}
		b.WriteString(piece)
		n += pn
		i += size
	}
	return b.String(), 0
}

// hidden reports whether r changes or hides the text around it instead of
// showing as a glyph: C1 controls, format characters (bidi embeddings,
// overrides and isolates, zero-width space and joiners, the BOM, tag
// characters), the line and paragraph separators, spaces other than the
// ASCII one (U+3000 and its kin: runs of them push text out of sight), the
// combining grapheme joiner and variation selectors, and the characters
// that render as nothing though they are letters or symbols (the Hangul
// fillers, the braille blank).
func hidden(r rune) bool {
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F:
		return true
	}
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) ||
		r != ' ' && unicode.Is(unicode.Zs, r) ||
		unicode.Is(unicode.Variation_Selector, r)
}

// maxMarks is how many combining marks in a row clean shows as they are:
// enough for any script's accents, too few to stack marks over the lines
// above and below ("Zalgo" text).
const maxMarks = 2

// line is clean without the count, with a visible marker when it cut.
func line(s string, max int) string {
	c, cut := clean(s, max)
	return c + cutMark(cut)
}

// cutMark tells how much of a value was left out.
func cutMark(cut int) string {
	if cut == 0 {
		return ""
	}
	return fmt.Sprintf("…(+%d bytes)", cut)
}

// plainEscaper keeps untrusted text inert in plain text too. Mail clients
// turn anything that looks like a URL or an address into a link, so "://",
// "www." and "@" are defanged as security tools do (www[.]evil.example,
// soc[@]evil.example); and angle brackets and backticks become look-alikes,
// so that a message forwarded or bridged into Slack or a markdown viewer
// cannot form mentions, links or code fences either. The JSON document
// keeps the exact values.
var plainEscaper = strings.NewReplacer(`"`, `\"`, "<", "\u2039", ">", "\u203a", "`", "\u02cb", "://", "[:]//",
	"www.", "www[.]", "WWW.", "WWW[.]", "@", "[@]")

// quoted renders an untrusted value for plain text: cleaned, escaped with
// plainEscaper and in double quotes, so a reader sees where it starts and
// ends. The cut marker stays outside the quotes, where the sender cannot
// write.
func quoted(s string, max int) string {
	c, cut := clean(s, max)
	return `"` + plainEscaper.Replace(c) + `"` + cutMark(cut)
}

// mdEscaper escapes the three characters that Slack's mrkdwn treats as
// control characters. With them escaped, text cannot form <!channel>,
// <!here>, <@U123> mentions or <https://evil|label> links.
// https://api.slack.com/reference/surfaces/formatting#escaping
var mdEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// untrustedCode also replaces the backtick, so a value cannot close the
// inline code span it sits in and format what follows, and the at sign,
// because Amazon Q Developer's own samples show it turning "@name" in
// notification text into a mention, and we cannot see how it does that.
// U+02CB and U+FF20 look alike and are not syntax anywhere.
var untrustedCode = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb", "@", "\uff20")

// trustedCode is for our own commands: they must stay copy-pasteable, so
// only what mrkdwn requires is escaped. They contain no backtick.
var trustedCode = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb")

// md escapes one line of our own or the operator's text for mrkdwn.
func md(s string, max int) string {
	return mdEscaper.Replace(line(s, max))
}

// code renders an untrusted value for mrkdwn: cleaned, escaped and inside
// inline code, where *bold*, _italic_, ~strike~ and ``` have no effect. An
// empty value is shown as such rather than as an empty code span.
func code(s string, max int) string {
	if s == "" {
		return "_(empty)_"
	}
	c, cut := clean(s, max)
	return "`" + untrustedCode.Replace(c) + "`" + cutMark(cut)
}

// cmd renders one of our commands as inline code.
func cmd(s string) string {
	return "`" + trustedCode.Replace(s) + "`"
}

// token keeps the bytes of s that ok accepts, replaces every other rune with
// '_', and cuts the result to max bytes with "..." at the end. It is for
// values that must be plain ASCII: e-mail subjects, identifiers, thread ids.
func token(s string, max int, ok func(byte) bool) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && ok(byte(r)) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('_')
		}
	}
	return cut(b.String(), max)
}

// cut shortens an ASCII string to max bytes, marking the cut with "...".
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 3 {
		return s[:max]
	}
	return s[:max-3] + "..."
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// idByte accepts the characters of rule ids and finding ids.
func idByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == ':' }

// userByte accepts the characters of Kubernetes and IAM user names that
// mean nothing to a mail client or a shell.
func userByte(c byte) bool { return idByte(c) || c == '@' || c == '=' || c == ',' }

// nameByte accepts the characters of EKS cluster names and log groups. None
// of them means anything to a shell, so names can go into commands as is.
func nameByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/' }

// address returns ip in canonical form, or "" when it is not an address: the
// finding's src_ip should be canonical already, and this keeps any other
// text out of subjects and commands if it is not.
func address(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}

// network returns p in canonical CIDR form, or "" when it is not a prefix.
func network(p string) string {
	n, err := netip.ParsePrefix(p)
	if err != nil {
		return ""
	}
	return n.Masked().String()
}

// utf16Len counts UTF-16 code units. Slack's length limits are in
// characters; counting code units never undercounts them.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xffff {
			n += 2
		} else {
			n++
		}
	}
	return n
}
