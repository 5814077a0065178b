package filterpattern

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The log events of the unstructured examples in "Filter pattern syntax for
// metric filters, subscription filters, filter log events, and Live Tail",
// section "Using filter patterns to match terms in unstructured log events"
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
const (
	err400 = "[ERROR 400] BAD REQUEST"
	err401 = "[ERROR 401] UNAUTHORIZED REQUEST"
	err419 = "[ERROR 419] MISSING ARGUMENTS"
	err420 = "[ERROR 420] INVALID ARGUMENTS"
	err500 = "[ERROR 500] INTERNAL SERVER ERROR"
	info   = "[INFO] REQUEST FAILED"
	warn   = "[WARN] UNAUTHORIZED REQUEST"
)

// The messages of the TestMetricFilter API reference's two text examples
// (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_TestMetricFilter.html),
// numbered as its eventNumber.
var testMetricFilterEvents = []string{
	"02 May 2014 00:34:12,525 [INFO] Starting the application",
	"02 May 2014 00:35:14,245 [DEBUG] Database connection established",
	"02 May 2014 00:34:14,663 [INFO] Executing SQL Query",
	"02 May 2014 00:34:16,142 [ERROR] Unhanded exception: InvalidQueryException",
	"02 May 2014 00:34:16,224 [ERROR] Terminating the application",
}

// TestTextDocumentedExamples checks the verdicts the documentation gives
// for text patterns. Each case's match list is what the source says the
// pattern matches; its miss list is what the source says it does not
// match, or, marked derived, a line of the same examples that lacks the
// terms.
func TestTextDocumentedExamples(t *testing.T) {
	tests := []struct {
		source  string
		pattern string
		match   []string
		miss    []string
	}{
		// The current user guide, "Using filter patterns to match terms
		// in unstructured log events".
		{"Example: Match a single term", `ERROR`,
			[]string{err400, err401, err419, err420},
			[]string{info, warn}}, // derived
		{"Example: Match multiple terms", `ERROR ARGUMENTS`,
			[]string{err419, err420},
			[]string{err400, err401}},
		{"Example: Match optional terms", `?ERROR ?ARGUMENTS`,
			[]string{err400, err401, err419, err420},
			[]string{info, warn}}, // derived
		{"Example: Match exact phrases", `"INTERNAL SERVER ERROR"`,
			[]string{err500},
			[]string{err400, "[ERROR 500] INTERNAL ERROR ON SERVER"}}, // derived
		{"Example: Include and exclude terms", `ERROR -ARGUMENTS`,
			[]string{err400, err401},
			[]string{err419, err420}},

		// The archived user guide (awsdocs/amazon-cloudwatch-logs-user-guide,
		// doc_source/FilterAndPatternSyntax.md, "Matching Terms in Log
		// Events"): a term matches inside a longer word.
		{"archived: Single term", `ERROR`,
			[]string{"[ERROR] A fatal exception has occurred", "Exiting with ERRORCODE: -1"},
			nil},
		// The same page, "OR Pattern Matching", over its three events.
		{"archived: OR, ERROR", `ERROR`,
			[]string{"ERROR WARN message", "ERROR message"},
			[]string{"WARN message"}},
		{"archived: OR, ?ERROR ?WARN", `?ERROR ?WARN`,
			[]string{"ERROR WARN message", "ERROR message", "WARN message"},
			nil},
		{"archived: OR, ERROR WARN", `ERROR WARN`,
			[]string{"ERROR WARN message"},
			[]string{"ERROR message", "WARN message"}},
		{"archived: OR, ERROR -WARN", `ERROR -WARN`,
			[]string{"ERROR message"},
			[]string{"ERROR WARN message", "WARN message"}},

		// TestMetricFilter: a quoted term with brackets; and "Exception"
		// matching only inside "InvalidQueryException", which shows both
		// substring matching and case sensitivity (event 3 also holds
		// "exception", event 4 neither).
		{"TestMetricFilter: [ERROR]", `"[ERROR]"`,
			testMetricFilterEvents[3:],
			testMetricFilterEvents[:3]},
		{"TestMetricFilter: [ERROR] and Exception", `"[ERROR]" Exception`,
			testMetricFilterEvents[3:4],
			append(append([]string(nil), testMetricFilterEvents[:3]...), testMetricFilterEvents[4])},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			p, err := Parse(tt.pattern)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.pattern, err)
			}
			for _, m := range tt.match {
				if !p.Match([]byte(m)) {
					t.Errorf("%s does not match %q, want a match", tt.pattern, m)
				}
			}
			for _, m := range tt.miss {
				if p.Match([]byte(m)) {
					t.Errorf("%s matches %q, want none", tt.pattern, m)
				}
			}
		})
	}
}

// TestTextMessages covers the audit lines the subscription filter sees. A
// text pattern reads the message as text, so it matches a line cut short
// in the middle of its JSON, and a term anywhere in a JSON event, in any
// field, in the bytes as logged.
func TestTextMessages(t *testing.T) {
	p, err := Parse(`?"[Truncated...]" ?"system:anonymous"`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		message string
		want    bool
	}{
		{"cut mid-JSON", `{"kind":"Event","apiVersion":"audit.k8s.io/v1","requestURI":"/api/v1/namespaces/default/config[Truncated...]`, true},
		{"cut mid-string, marker then white space", "{\"kind\":\"Event\",\"user\":{\"userna[Truncated...] \n", true},
		{"marker in plain text", `something long [Truncated...]`, true},
		{"username in a JSON string", `{"kind":"Event","user":{"username":"system:anonymous","groups":["system:unauthenticated"]}}`, true},
		{"term inside another field", `{"kind":"Event","user":{"username":"alice"},"userAgent":"curl system:anonymous/1.0"}`, true},
		{"term inside a longer value", `{"user":{"username":"system:anonymousX"}}`, true},
		{"JSON-escaped colon", `{"user":{"username":"system\u003aanonymous"}}`, false},
		{"case differs", `{"user":{"username":"System:Anonymous"}}`, false},
		{"marker in lower case", `{"kind":"Event"[truncated...]`, false},
		{"marker cut short", `{"kind":"Event"[Truncated..`, false},
		{"neither", `{"kind":"Event","user":{"username":"alice"}}`, false},
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

// TestTextAndJSONReadTheMessageDifferently pins the difference the two
// kinds of pattern make on the same lines: the JSON pattern decodes the
// event and compares one field exactly; the text pattern searches the raw
// bytes.
func TestTextAndJSONReadTheMessageDifferently(t *testing.T) {
	jsonPattern, err := Parse(`{ $.user.username = "system:anonymous" }`)
	if err != nil {
		t.Fatal(err)
	}
	textPattern, err := Parse(`"system:anonymous"`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		message    string
		json, text bool
	}{
		{`{"user":{"username":"system:anonymous"}}`, true, true},
		{`{"user":{"username":"system\u003aanonymous"}}`, true, false},
		{`{"user":{"username":"system:anonymousX"}}`, false, true},
		{`{"userAgent":"system:anonymous"}`, false, true},
		{`{"user":{"username":"system:anonymous"},"verb":"ge[Truncated...]`, false, true},
	}
	for _, tt := range tests {
		if got := jsonPattern.Match([]byte(tt.message)); got != tt.json {
			t.Errorf("JSON pattern on %s = %v, want %v", tt.message, got, tt.json)
		}
		if got := textPattern.Match([]byte(tt.message)); got != tt.text {
			t.Errorf("text pattern on %s = %v, want %v", tt.message, got, tt.text)
		}
	}
}

func TestTextParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    string // a substring of the error
	}{
		// "You cant' combine the question mark ("?") with other filter
		// patterns, such as include and exclude terms. If you combine "?"
		// with other filter patterns, all question mark terms will be
		// ignored." (user guide, "Example: Match optional terms")
		{"optional with required", `?ERROR ?ARGUMENTS REQUEST`, "ignores the ? terms"},
		{"required before optional", `REQUEST ?ERROR`, "offset 8: ? terms combined"},
		{"optional with excluded", `?ERROR -ARGUMENTS`, "ignores the ? terms"},
		{"excluded alone", `-ERROR`, "- terms alone"},
		{"excluded terms alone", `-ERROR -"BAD REQUEST"`, "- terms alone"},
		{"prefix then space", `? ERROR`, "right after ?"},
		{"prefix at the end", `ERROR -`, "right after -"},
		{"double prefix", `?-ERROR`, "want a term"},
		{"unquoted colon", `system:anonymous`, "quote it"},
		{"unquoted bracket", `ERROR [Truncated...]`, "quote it"},
		{"unquoted wildcard", `ERR*`, "wildcards"},
		{"quote inside a word", `ERROR"X"`, "quote it"},
		{"unterminated", `?"[Truncated...]`, "unterminated"},
		{"escaped quote", `"a\"b"`, "backslash"},
		{"backslash", `"C:\temp"`, "backslash"},
		{"quoted wildcard", `"system:*"`, "* in a quoted term"},
		{"quoted percent", `"%ERROR%"`, "% in a quoted term"},
		{"quoted tab", "\"a\tb\"", "printable ASCII"},
		{"quoted non-ASCII", `"café"`, "printable ASCII"},
		{"empty quotes", `ERROR ""`, "empty or blank"},
		// The user guide's "Example: Match everything" says " " returns
		// all log events, which an exact phrase of one space would not.
		{"match everything", `" "`, "empty or blank"},
		{"quoted terms run together", `"a""b"`, "white space after"},
		{"JSON after a term", `ERROR { $.a = "b" }`, "want a term"},
		{"too long", `?"` + strings.Repeat("x", MaxLength) + `"`, "at most 1024"},
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

// TestTextMaxLength: PutSubscriptionFilter's filterPattern has "Maximum
// length of 1024"; a text pattern may hold only ASCII, so its characters
// are its bytes.
func TestTextMaxLength(t *testing.T) {
	at := `"` + strings.Repeat("x", MaxLength-2) + `"`
	if _, err := Parse(at); err != nil {
		t.Errorf("a %d-character pattern: %v", len(at), err)
	}
	if _, err := Parse(at + " "); err == nil {
		t.Errorf("a %d-character pattern parsed, want an error", len(at)+1)
	}
}

func TestTerms(t *testing.T) {
	p, err := Parse(` ?"[Truncated...]"	?"system:anonymous" ?ERROR_1 `)
	if err != nil {
		t.Fatal(err)
	}
	want := []Term{
		{Optional, "[Truncated...]"},
		{Optional, "system:anonymous"},
		{Optional, "ERROR_1"},
	}
	if diff := cmp.Diff(want, p.Terms()); diff != "" {
		t.Errorf("Terms() (-want +got):\n%s", diff)
	}
	if c := p.Conditions(); c != nil {
		t.Errorf("a text pattern's Conditions() = %q, want nil", c)
	}

	p, err = Parse(`"INTERNAL SERVER ERROR" ERROR -ARGUMENTS -"a-b"`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, term := range p.Terms() {
		got = append(got, term.String())
	}
	if diff := cmp.Diff([]string{`"INTERNAL SERVER ERROR"`, `ERROR`, `-ARGUMENTS`, `-"a-b"`}, got); diff != "" {
		t.Errorf("Term.String() (-want +got):\n%s", diff)
	}

	j, err := Parse(`{ $.a = "b" }`)
	if err != nil {
		t.Fatal(err)
	}
	if terms := j.Terms(); terms != nil {
		t.Errorf("a JSON pattern's Terms() = %v, want nil", terms)
	}
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		`?"[Truncated...]" ?"system:anonymous"`,
		`ERROR -ARGUMENTS`,
		`"INTERNAL SERVER ERROR" x_1`,
		`?a ?"b c"`,
		`-x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil || p.root != nil {
			return
		}
		terms := p.Terms()
		// Writing the terms back gives a pattern with the same terms.
		var parts []string
		for _, term := range terms {
			parts = append(parts, term.String())
		}
		q, err := Parse(strings.Join(parts, " "))
		if err != nil {
			t.Fatalf("terms of %q written back as %q do not parse: %v", s, strings.Join(parts, " "), err)
		}
		if diff := cmp.Diff(terms, q.Terms()); diff != "" {
			t.Fatalf("terms of %q written back (-first +second):\n%s", s, diff)
		}
		// Each term, required on its own, matches a message around it and
		// not a message too short to hold it.
		for _, term := range terms {
			r, err := Parse(Term{Required, term.Text}.String())
			if err != nil {
				t.Fatalf("term %s of %q does not parse alone: %v", term, s, err)
			}
			if !r.Match([]byte("<" + term.Text + ">")) {
				t.Errorf("%s does not match a message holding it", term)
			}
			if r.Match([]byte(term.Text[:len(term.Text)-1])) {
				t.Errorf("%s matches a message shorter than itself", term)
			}
		}
	})
}

func FuzzMatchText(f *testing.F) {
	p, err := Parse(`?"[Truncated...]" ?"system:anonymous" ?system_unauthenticated`)
	if err != nil {
		f.Fatal(err)
	}
	q, err := Parse(`"[Truncated...]" -"system:anonymous"`)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"user":{"username":"system:anonymous"}}`,
		`{"kind":"Event"[Truncated...]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := string(msg)
		trunc := strings.Contains(s, "[Truncated...]")
		anon := strings.Contains(s, "system:anonymous")
		if got, want := p.Match(msg), trunc || anon || strings.Contains(s, "system_unauthenticated"); got != want {
			t.Errorf("%s on %q = %v, want %v", p, s, got, want)
		}
		if got, want := q.Match(msg), trunc && !anon; got != want {
			t.Errorf("%s on %q = %v, want %v", q, s, got, want)
		}
	})
}
