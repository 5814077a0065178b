package filterpattern

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMatchDocumentedExamples checks the verdicts the CloudWatch Logs
// documentation gives for its two example events ("Filter and Pattern
// Syntax", awsdocs/amazon-cloudwatch-logs-user-guide,
// doc_source/FilterAndPatternSyntax.md; the events are in testdata). Where
// the documented pattern compares a number (id = 2), the case compares the
// string property next to it instead, because this package supports string
// values only; the structure the documentation illustrates is kept.
func TestMatchDocumentedExamples(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		pattern string
		want    bool
	}{
		// "JSON Metric Filter Examples": "The following filters would match".
		{"property", "docs-event.json", `{ $.eventType = "UpdateTrail" }`, true},
		{"first array entry", "docs-event.json", `{ $.arrayKey[0] = "value" }`, true},
		{"object in array", "docs-event.json", `{ $.objectList[1].name = "b" }`, true},
		// "If arrayKey is not an array this will be false."
		{"index on a string", "docs-event.json", `{ $.eventType[0] = "UpdateTrail" }`, false},
		// "If the items in objectList are not objects or do not have an id
		// property, this will be false."
		{"missing property in array item", "docs-event.json", `{ $.objectList[1].label = "b" }`, false},
		{"index past the end", "docs-event.json", `{ $.arrayKey[2] = "value" }`, false},

		// "JSON Compound Conditions".
		{"and of two", "docs-compound.json",
			`{ ($.user.email = "John.Stiles@example.com") && ($.users[0].email = "John.Doe@example.com") }`, true},
		{"or fails both sides", "docs-compound.json",
			`{ ($.user.email = "nonmatch" && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, false},
		// && binds tighter than ||: true || (false && false).
		{"precedence without parentheses", "docs-compound.json",
			`{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, true},
		// Parentheses override it: (true || false) && false.
		{"precedence with parentheses", "docs-compound.json",
			`{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, false},
		{"nested array index", "docs-compound.json", `{ $.actions[2] = "DELETE" }`, true},

		// "JSON Special Considerations": a selector that points to an array
		// or object does not match.
		{"selector on an array", "docs-compound.json", `{ $.actions = "GET" }`, false},
		{"selector on an object", "docs-compound.json", `{ $.user = "John.Stiles@example.com" }`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.pattern)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.pattern, err)
			}
			if got := p.Match(readTestdata(t, tt.event)); got != tt.want {
				t.Errorf("Match(%s) with %s = %v, want %v", tt.event, tt.pattern, got, tt.want)
			}
		})
	}
}

// TestMatchOr follows the documentation's OR example: {$.foo = bar}
// matches {"foo": "bar"} only, {$.foo = bar || $.foo = baz} matches both.
func TestMatchOr(t *testing.T) {
	events := []string{`{"foo": "bar"}`, `{"foo": "baz"}`}
	tests := []struct {
		pattern string
		want    []bool
	}{
		{`{$.foo = bar}`, []bool{true, false}},
		{`{$.foo = baz }`, []bool{false, true}},
		{`{$.foo = bar || $.foo = baz }`, []bool{true, true}},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pattern)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.pattern, err)
		}
		var got []bool
		for _, e := range events {
			got = append(got, p.Match([]byte(e)))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s over %q (-want +got):\n%s", tt.pattern, events, diff)
		}
	}
}

// TestMatchMessages covers what the documentation implies about messages
// rather than patterns: only a JSON object can match, values compare
// exactly, and a number is never equal to a string.
func TestMatchMessages(t *testing.T) {
	p, err := Parse(`{ $.user.username = "system:anonymous" || $.code = "403" }`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		message string
		want    bool
	}{
		{"match", `{"user":{"username":"system:anonymous"}}`, true},
		{"trailing white space", "{\"user\":{\"username\":\"system:anonymous\"}}\n", true},
		{"other value", `{"user":{"username":"system:anonymousX"}}`, false},
		{"case differs", `{"user":{"username":"System:Anonymous"}}`, false},
		{"missing property", `{"user":{}}`, false},
		{"property is null", `{"user":{"username":null}}`, false},
		{"number is not the string", `{"code":403}`, false},
		{"string equal", `{"code":"403"}`, true},
		{"escaped in JSON", `{"user":{"username":"system\u003aanonymous"}}`, true},
		{"not JSON", `this line is not JSON at all`, false},
		{"truncated by CloudWatch", `{"user":{"username":"system:anonymous"},"verb":[Truncated...]`, false},
		{"JSON array", `[{"user":{"username":"system:anonymous"}}]`, false},
		{"JSON string", `"system:anonymous"`, false},
		{"trailing data", `{"user":{"username":"system:anonymous"}} {}`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Match([]byte(tt.message)); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.message, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    string // a substring of the error
	}{
		{"empty", ``, "empty filter pattern"},
		{"blank", " \t ", "empty filter pattern"},
		{"space-delimited pattern", `[ip, user]`, "space-delimited"},
		{"regex pattern", `%system:anon.*%`, "regular expression"},
		{"unclosed brace", `{ $.a = "b"`, "want }"},
		{"text after brace", `{ $.a = "b" } x`, "after the closing }"},
		{"unclosed parenthesis", `{ ($.a = "b" }`, "want )"},
		{"no selector", `{ a = "b" }`, "starting with $"},
		{"root alone", `{ $ = "b" }`, "want .name after $"},
		{"empty name", `{ $..a = "b" }`, "property name"},
		{"index first", `{ $[0] = "b" }`, "must follow a property"},
		{"bad index", `{ $.a[x] = "b" }`, "[NUMBER]"},
		{"not equal", `{ $.a != "b" }`, `"!="`},
		{"greater", `{ $.a > 1 }`, `">"`},
		{"is null", `{ $.a IS NULL }`, `"IS"`},
		{"not exists", `{ $.a NOT EXISTS }`, `"NOT"`},
		{"number", `{ $.a = 403 }`, "numeric"},
		{"wildcard", `{ $.a = "system:*" }`, "wildcards"},
		{"escape", `{ $.a = "a\"b" }`, "escapes"},
		{"unterminated string", `{ $.a = "b }`, "unterminated"},
		{"unquoted colon", `{ $.a = system:anonymous }`, "quote it"},
		{"regex", `{ $.a = %abc% }`, "quoted string"},
		{"dangling or", `{ $.a = "b" || }`, "starting with $"},
		{"invalid UTF-8", "{ $.a = \"\x83\" }", "UTF-8"},
		{"too long", `{ $.a = "` + strings.Repeat("x", MaxLength) + `" }`, "at most 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.pattern)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one containing %q", tt.pattern, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.pattern, err, tt.want)
			}
		})
	}
}

func TestConditions(t *testing.T) {
	p, err := Parse(`{ $.a = x || ($.b[0][1].c = "y z" && $.d-e_f = "") }`)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Conditions()
	want := []string{`$.a = "x"`, `$.b[0][1].c = "y z"`, `$.d-e_f = ""`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Conditions() (-want +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{ $.a = "b" }`,
		`{ ($.a[0] = x || $.b = "y") && $.c.d = "e" }`,
		`{ $.a != 1 }`,
		`{ (((`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		// Each condition, parsed on its own, must match a document that
		// holds its value at its selector, and not one that holds
		// something else there.
		if p.root == nil {
			return // a text pattern; FuzzParseText checks those
		}
		p.root.walk(func(c *condition) {
			q, err := Parse("{" + c.String() + "}")
			if err != nil {
				t.Fatalf("condition %s of %q does not parse: %v", c, s, err)
			}
			if !q.Match(docAt(t, c.path, c.value)) {
				t.Errorf("%s does not match a document built for it", c)
			}
			if q.Match(docAt(t, c.path, c.value+"x")) {
				t.Errorf("%s matches a document with another value", c)
			}
		})
	})
}

// docAt returns a JSON object holding value at path, with null in the array
// slots before an index.
func docAt(t *testing.T, path []step, value string) []byte {
	t.Helper()
	var v any = value
	for i := len(path) - 1; i >= 0; i-- {
		if s := path[i]; s.name != "" {
			v = map[string]any{s.name: v}
		} else {
			if s.index > 1000 {
				t.Skip("index too large to build a document for")
			}
			arr := make([]any, s.index+1)
			arr[s.index] = v
			v = arr
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzMatch(f *testing.F) {
	p, err := Parse(`{ $.user.username = "system:anonymous" || $.user.groups[1] = "g" && ($.verb = "create" || $.verb = patch) }`)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"user":{"username":"system:anonymous"}}`,
		`{"user":{"groups":["a","g"]},"verb":"patch"}`,
		`[1,2`,
		`{"user":[{"username":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = p.Match(msg)
	})
}
