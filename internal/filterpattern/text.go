package filterpattern

import (
	"bytes"
	"strings"
)

// TermOp says how a term of a text pattern takes part in a match.
type TermOp int

const (
	// Required is a plain term, ERROR: the message must contain it.
	Required TermOp = iota + 1
	// Optional is a ?term, ?ERROR: the message must contain at least one
	// of the pattern's optional terms. A pattern whose terms are optional
	// has no other kind of term.
	Optional
	// Excluded is a -term, -ARGUMENTS: the message must not contain it.
	Excluded
)

// Term is one term of a text pattern.
type Term struct {
	Op TermOp
	// Text is what the message must (or, Excluded, must not) contain, as an
	// exact, case-sensitive substring; without the quotes of a quoted term.
	Text string
}

// String writes the term as it would appear in a pattern: its ? or -
// prefix, then the text, quoted unless it is a word of letters, digits
// and _.
func (t Term) String() string {
	var b strings.Builder
	switch t.Op {
	case Optional:
		b.WriteByte('?')
	case Excluded:
		b.WriteByte('-')
	}
	if t.Text != "" && strings.IndexFunc(t.Text, func(r rune) bool { return r > 0x7f || !isWordByte(byte(r)) }) < 0 {
		b.WriteString(t.Text)
	} else {
		b.WriteByte('"')
		b.WriteString(t.Text)
		b.WriteByte('"')
	}
	return b.String()
}

// Terms returns a text pattern's terms in source order. It returns nil for
// a JSON pattern.
func (p *Pattern) Terms() []Term {
	if p.terms == nil {
		return nil
	}
	out := make([]Term, len(p.terms))
	for i, t := range p.terms {
		out[i] = Term{Op: t.op, Text: t.text}
	}
	return out
}

type textTerm struct {
	op     TermOp
	text   string
	needle []byte // text, converted once for bytes.Contains
}

// matchTerms applies the documented rules: every required term occurs, no
// excluded term occurs, and, if there are optional terms, one of them
// occurs. Parse has made sure optional terms stand alone.
func matchTerms(terms []textTerm, message []byte) bool {
	optional, matched := false, false
	for _, t := range terms {
		has := bytes.Contains(message, t.needle)
		switch t.op {
		case Required:
			if !has {
				return false
			}
		case Excluded:
			if has {
				return false
			}
		case Optional:
			optional = true
			matched = matched || has
		}
	}
	return !optional || matched
}

// text parses a text pattern from the first term to the end of the source.
func (p *parser) text() ([]textTerm, error) {
	var terms []textTerm
	// Offsets of the first term of each kind, for the error that
	// rejects a combination.
	first := map[TermOp]int{}
	for {
		p.skipSpace()
		if p.pos == len(p.src) {
			break
		}
		start := p.pos
		op := Required
		switch p.src[p.pos] {
		case '?':
			op = Optional
			p.pos++
		case '-':
			op = Excluded
			p.pos++
		}
		if op != Required && (p.pos == len(p.src) || isSpace(p.src[p.pos])) {
			return nil, p.errorf("want a term right after %c", p.src[start])
		}
		text, err := p.term()
		if err != nil {
			return nil, err
		}
		if _, ok := first[op]; !ok {
			first[op] = start
		}
		terms = append(terms, textTerm{op: op, text: text, needle: []byte(text)})
	}
	if at, ok := first[Optional]; ok && len(first) > 1 {
		p.pos = at
		return nil, p.errorf("? terms combined with other terms are not supported: CloudWatch Logs ignores the ? terms then")
	}
	if at, ok := first[Excluded]; ok && len(first) == 1 {
		p.pos = at
		return nil, p.errorf("a pattern of - terms alone is not supported; add a term the events must contain")
	}
	return terms, nil
}

// term parses one term, quoted or not, after its ? or - prefix.
func (p *parser) term() (string, error) {
	if p.eat(`"`) {
		end := strings.IndexByte(p.src[p.pos:], '"')
		if end < 0 {
			return "", p.errorf("unterminated quoted term")
		}
		text := p.src[p.pos : p.pos+end]
		if strings.TrimSpace(text) == "" {
			return "", p.errorf("an empty or blank quoted term is not supported")
		}
		for i := 0; i < len(text); i++ {
			switch c := text[i]; {
			case c == '\\':
				p.pos += i
				return "", p.errorf("a backslash in a quoted term is not supported: the documentation does not say whether it escapes")
			case c == '*' || c == '%':
				p.pos += i
				return "", p.errorf("%c in a quoted term is not supported", c)
			case c < 0x20 || c > 0x7e:
				p.pos += i
				return "", p.errorf("a quoted term may hold only printable ASCII")
			}
		}
		p.pos += end + 1
		if p.pos < len(p.src) && !isSpace(p.src[p.pos]) {
			return "", p.errorf("want white space after a quoted term")
		}
		return text, nil
	}
	text := p.span(isWordByte)
	if p.pos < len(p.src) && !isSpace(p.src[p.pos]) {
		if p.src[p.pos] == '*' {
			return "", p.errorf("* wildcards are not supported")
		}
		if text == "" {
			return "", p.errorf("want a term: a word of letters, digits and _, or a double-quoted string; quote it if it holds other characters")
		}
		return "", p.errorf("an unquoted term may hold only letters, digits and _; quote it")
	}
	return text, nil
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }
