// Package filterpattern evaluates CloudWatch Logs filter patterns, so a test
// can show which audit lines the subscription filter in template.yaml
// forwards to the detector without deploying it.
//
// It implements two kinds of pattern, each in the subset of its syntax that
// the documentation ("Filter pattern syntax for metric filters, subscription
// filters, filter log events, and Live Tail", the TestMetricFilter API
// reference) pins down, with the semantics it gives them.
//
// A JSON pattern is one JSON expression in braces, { ... }:
//
//   - conditions combine with && and ||, && binding tighter, and
//     parentheses group them;
//   - a condition is SELECTOR = VALUE, where SELECTOR starts at the root $
//     and names properties with .name and array elements with [N] after a
//     property ($.user.groups[0], $.coordinates[0][1]);
//   - VALUE is a double-quoted string, or an unquoted string of letters and
//     digits; it is compared with a JSON string, exactly and case-sensitively;
//   - a condition is false when its selector is missing, indexes something
//     that is not an array, or points to an array or object rather than to a
//     value node;
//   - a log event that is not a JSON object matches nothing.
//
// A text pattern is a list of terms separated by white space, matched
// against the log event message as text, whatever the message holds: a JSON
// event, or a JSON event cut short and marked "[Truncated...]". (The
// documentation describes text patterns on log event messages and never
// restricts them to messages that are not JSON; that they read a JSON event
// as its raw bytes is this package's reading of it, not a documented
// example.)
//
//   - a term is a word of ASCII letters, digits and _ (ERROR), or a
//     double-quoted string of printable ASCII ("system:anonymous",
//     "[Truncated...]", "INTERNAL SERVER ERROR");
//   - a term matches when it occurs in the message as a substring, exactly
//     and case-sensitively: ERROR matches "Exiting with ERRORCODE: -1", and
//     "Exception" matches "InvalidQueryException" but not "exception";
//   - plain terms must all occur (ERROR ARGUMENTS);
//   - a term after a minus sign must not occur (ERROR -ARGUMENTS), and a
//     pattern needs at least one plain term beside its - terms;
//   - terms after a question mark are alternatives: at least one of them
//     must occur (?ERROR ?ARGUMENTS).
//
// Anything else CloudWatch accepts is rejected by Parse: in JSON patterns
// !=, numeric comparisons, IS NULL, EXISTS, * wildcards and %regex%; in text
// patterns ? terms combined with other terms (which the documentation says
// CloudWatch then ignores), - terms on their own, quoted strings that hold a
// backslash, a double quote, *, % or a character outside printable ASCII, and
// the empty or blank pattern; and space-delimited ([...]) and standalone
// regular expression (%...%) patterns altogether. So a pattern this package
// accepts means here what it means to CloudWatch, as far as the
// documentation says.
package filterpattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLength is the longest filter pattern CloudWatch Logs accepts
// (PutSubscriptionFilter: filterPattern, maximum length 1024).
const MaxLength = 1024

// Pattern is a parsed filter pattern, JSON or text. It is safe for
// concurrent use.
type Pattern struct {
	src   string
	root  node       // a JSON pattern's expression; nil for a text pattern
	terms []textTerm // a text pattern's terms; nil for a JSON pattern
}

// String returns the pattern as it was parsed.
func (p *Pattern) String() string { return p.src }

// Match reports whether the log event message would pass the filter.
func (p *Pattern) Match(message []byte) bool {
	if p.root == nil {
		return matchTerms(p.terms, message)
	}
	// UseNumber keeps numbers out of the comparison: they decode to
	// json.Number, which never equals a string value.
	dec := json.NewDecoder(bytes.NewReader(message))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	if len(bytes.TrimSpace(message[dec.InputOffset():])) != 0 {
		return false // trailing data: the message is not one JSON document
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	return p.root.eval(obj)
}

// Conditions returns a JSON pattern's conditions in source order, each
// written as SELECTOR = "VALUE". Tests use it to check which fields a pattern
// reads. It returns nil for a text pattern.
func (p *Pattern) Conditions() []string {
	if p.root == nil {
		return nil
	}
	var out []string
	p.root.walk(func(c *condition) {
		out = append(out, c.String())
	})
	return out
}

type node interface {
	eval(doc map[string]any) bool
	walk(fn func(*condition))
}

type orNode []node

func (n orNode) eval(doc map[string]any) bool {
	for _, c := range n {
		if c.eval(doc) {
			return true
		}
	}
	return false
}

func (n orNode) walk(fn func(*condition)) {
	for _, c := range n {
		c.walk(fn)
	}
}

type andNode []node

func (n andNode) eval(doc map[string]any) bool {
	for _, c := range n {
		if !c.eval(doc) {
			return false
		}
	}
	return true
}

func (n andNode) walk(fn func(*condition)) {
	for _, c := range n {
		c.walk(fn)
	}
}

// step is one selector element: a property name, or an array index when
// name is empty.
type step struct {
	name  string
	index int
}

type condition struct {
	path  []step
	value string
}

func (c *condition) walk(fn func(*condition)) { fn(c) }

func (c *condition) eval(doc map[string]any) bool {
	var cur any = doc
	for _, s := range c.path {
		switch v := cur.(type) {
		case map[string]any:
			if s.name == "" {
				return false
			}
			next, ok := v[s.name]
			if !ok {
				return false
			}
			cur = next
		case []any:
			if s.name != "" || s.index >= len(v) {
				return false
			}
			cur = v[s.index]
		default:
			return false
		}
	}
	str, ok := cur.(string)
	return ok && str == c.value
}

func (c *condition) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range c.path {
		if s.name != "" {
			b.WriteByte('.')
			b.WriteString(s.name)
		} else {
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	b.WriteString(` = "`)
	b.WriteString(c.value)
	b.WriteByte('"')
	return b.String()
}

// Parse parses a filter pattern: a JSON pattern when it starts with {, a
// text pattern otherwise. The error names the byte offset of the first thing
// it cannot accept.
func Parse(pattern string) (*Pattern, error) {
	if len(pattern) > MaxLength {
		return nil, fmt.Errorf("filter pattern is %d characters, CloudWatch Logs accepts at most %d", len(pattern), MaxLength)
	}
	if !utf8.ValidString(pattern) {
		return nil, errors.New("filter pattern is not valid UTF-8")
	}
	p := &parser{src: pattern}
	p.skipSpace()
	if p.pos == len(p.src) {
		return nil, p.errorf("an empty filter pattern is not supported")
	}
	switch p.src[p.pos] {
	case '{':
		root, err := p.json()
		if err != nil {
			return nil, err
		}
		return &Pattern{src: pattern, root: root}, nil
	case '[':
		return nil, p.errorf("space-delimited filter patterns are not supported")
	case '%':
		return nil, p.errorf("regular expression filter patterns are not supported")
	}
	terms, err := p.text()
	if err != nil {
		return nil, err
	}
	return &Pattern{src: pattern, terms: terms}, nil
}

// json parses a JSON pattern from the opening { to the end of the source.
func (p *parser) json() (node, error) {
	if !p.eat("{") {
		return nil, p.errorf("want { to open a JSON filter pattern")
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.eat("}") {
		return nil, p.errorf("want } or an operator")
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, p.errorf("unexpected text after the closing }")
	}
	return root, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("filter pattern: offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return strings.IndexByte(" \t\r\n", c) >= 0 }

func (p *parser) eat(tok string) bool {
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *parser) or() (node, error) {
	var terms orNode
	for {
		t, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		p.skipSpace()
		if !p.eat("||") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) and() (node, error) {
	var terms andNode
	for {
		t, err := p.primary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		p.skipSpace()
		if !p.eat("&&") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) primary() (node, error) {
	p.skipSpace()
	if p.eat("(") {
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if !p.eat(")") {
			return nil, p.errorf("want ) or an operator")
		}
		return n, nil
	}
	return p.condition()
}

func (p *parser) condition() (node, error) {
	path, err := p.selector()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	for _, op := range [...]string{"!=", ">=", "<=", ">", "<", "IS ", "NOT ", "EXISTS"} {
		if strings.HasPrefix(p.src[p.pos:], op) {
			return nil, p.errorf("operator %q is not supported; only = is", strings.TrimSpace(op))
		}
	}
	if !p.eat("=") {
		return nil, p.errorf("want = after the selector")
	}
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return &condition{path: path, value: v}, nil
}

func (p *parser) selector() ([]step, error) {
	if !p.eat("$") {
		return nil, p.errorf("want a selector starting with $")
	}
	var path []step
	for {
		switch {
		case p.eat("."):
			name := p.span(isNameByte)
			if name == "" {
				return nil, p.errorf("want a property name after .")
			}
			path = append(path, step{name: name})
		case p.eat("["):
			if len(path) == 0 {
				return nil, p.errorf("an array index must follow a property")
			}
			digits := p.span(isDigit)
			i, err := strconv.Atoi(digits)
			if err != nil || !p.eat("]") {
				return nil, p.errorf("want [NUMBER]")
			}
			path = append(path, step{index: i})
		default:
			if len(path) == 0 {
				return nil, p.errorf("want .name after $")
			}
			return path, nil
		}
	}
}

func (p *parser) value() (string, error) {
	if p.eat(`"`) {
		end := strings.IndexByte(p.src[p.pos:], '"')
		if end < 0 {
			return "", p.errorf("unterminated string")
		}
		v := p.src[p.pos : p.pos+end]
		if strings.ContainsAny(v, `\*`) {
			return "", p.errorf("escapes and * wildcards are not supported")
		}
		p.pos += end + 1
		return v, nil
	}
	start := p.pos
	v := p.span(isAlnum)
	if v == "" {
		p.pos = start
		return "", p.errorf("want a quoted string or a word of letters and digits")
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		p.pos = start
		return "", p.errorf("numeric values are not supported")
	}
	if p.pos < len(p.src) && strings.IndexByte(`*.-_:"`, p.src[p.pos]) >= 0 {
		return "", p.errorf("an unquoted value may hold only letters and digits; quote it")
	}
	return v, nil
}

func (p *parser) span(ok func(byte) bool) string {
	start := p.pos
	for p.pos < len(p.src) && ok(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }
