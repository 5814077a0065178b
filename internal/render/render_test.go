package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixtures are the findings under test: hand-built realistic ones in
// testdata/findings, and two built here because JSON cannot carry them
// (invalid UTF-8) or they are too big to keep as a file.
var fixtures = []string{
	"pod-scan",
	"cluster-scan-masscan",
	"secret-read-critical",
	"access-granted",
	"forbidden-burst",
	"hostile",
	"huge",
	"sweep",
	"digest",
}

func loadFinding(t testing.TB, name string) *finding.Finding {
	t.Helper()
	if name == "huge" {
		return hugeFinding(hugeUA())
	}
	b, err := os.ReadFile(filepath.Join("testdata", "findings", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f finding.Finding
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if name == "hostile" {
		// Invalid UTF-8 cannot survive a JSON file: the decoder replaces it.
		f.Values["path"] = append(f.Values["path"], "/bad/\xff\xfe/\xc0\xaf/\xed\xa0\x80", "/del\x7f")
		f.ForwardedFor = append(f.ForwardedFor, "\x80\x81")
		f.UserAgent += " \xf0\x28\x8c\x28"
	}
	return &f
}

// hugeUA is a 100 KiB user agent made of characters that grow when escaped,
// twice over once the finding's JSON sits inside the SNS message's JSON.
func hugeUA() string {
	const unit = "<b>\"\\x\"</b>\x00é"
	return "Mozilla/5.0 " + strings.Repeat(unit, 100<<10/len(unit))
}

func hugeFinding(ua string) *finding.Finding {
	paths := make([]string, 500)
	for i := range paths {
		paths[i] = fmt.Sprintf("/api/v1/namespaces/ns-%03d/pods/pod-%03d", i, i)
	}
	return &finding.Finding{
		ID:          "f-77aa00ff11ee22dd",
		Rule:        "anonymous-path-scan",
		Title:       "Anonymous scan of the API surface",
		Severity:    "high",
		ClusterName: "demo",
		LogGroup:    "/aws/eks/demo/cluster",
		SrcIP:       "203.0.113.99",
		IPClass:     "documentation",
		User:        "system:anonymous",
		Groups:      []string{"system:unauthenticated"},
		UserAgent:   ua,
		UAClass:     "other",
		Count:       500,
		Distinct:    map[string]int{"path": 128},
		Window:      "15m0s",
		Values:      map[string][]string{"path": paths, "code": {"403"}},
	}
}

// renderings names each output and how to produce it for a golden file.
// JSON outputs are indented there so that a diff is readable.
var renderings = []struct {
	kind   string
	render func(*finding.Finding) ([]byte, error)
}{
	{"subject", func(f *finding.Finding) ([]byte, error) { return []byte(EmailSubject(f) + "\n"), nil }},
	{"email", func(f *finding.Finding) ([]byte, error) { return []byte(EmailBody(f)), nil }},
	{"chat", func(f *finding.Finding) ([]byte, error) { return indented(Chat(f)) }},
	{"slack", func(f *finding.Finding) ([]byte, error) { return indented(SlackBlocks(f)) }},
	{"json", func(f *finding.Finding) ([]byte, error) { return indented(JSON(f)) }},
	{"sns", func(f *finding.Finding) ([]byte, error) {
		m, err := SNS(f)
		if err != nil {
			return nil, err
		}
		body, err := indented([]byte(m.Body), nil)
		return append([]byte("Subject: "+m.Subject+"\n\n"), body...), err
	}},
}

func indented(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func TestGolden(t *testing.T) {
	for _, name := range fixtures {
		f := loadFinding(t, name)
		for _, r := range renderings {
			t.Run(name+"/"+r.kind, func(t *testing.T) {
				got, err := r.render(f)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", name+"."+r.kind+".golden")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
				}
			})
		}
	}
}

// people returns every text a person reads for f, as the chat platform,
// mail client or phone receives it: JSON payloads are decoded, and so are
// the renderings nested in the SNS message.
func people(t *testing.T, f *finding.Finding) map[string]string {
	t.Helper()
	out := map[string]string{
		"subject": EmailSubject(f),
		"email":   EmailBody(f),
	}
	chatJSON, err := Chat(f)
	if err != nil {
		t.Fatal(err)
	}
	out["chat (raw)"] = string(chatJSON)
	for i, s := range jsonStrings(t, chatJSON) {
		out[fmt.Sprintf("chat string %d", i)] = s
	}
	slackJSON, err := SlackBlocks(f)
	if err != nil {
		t.Fatal(err)
	}
	out["slack (raw)"] = string(slackJSON)
	for i, s := range jsonStrings(t, slackJSON) {
		out[fmt.Sprintf("slack string %d", i)] = s
	}
	m, err := SNS(f)
	if err != nil {
		t.Fatal(err)
	}
	out["sns subject"] = m.Subject
	out["sns (raw)"] = m.Body
	var body snsBody
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
		t.Fatalf("SNS body is not JSON: %v", err)
	}
	out["sns email"] = body.Email
	out["sns sms"] = body.SMS
	out["sns https (raw)"] = body.HTTPS
	for i, s := range jsonStrings(t, []byte(body.HTTPS)) {
		out[fmt.Sprintf("sns https string %d", i)] = s
	}
	return out
}

// jsonStrings decodes a JSON document and returns every string in it, keys
// included.
func jsonStrings(t *testing.T, b []byte) []string {
	t.Helper()
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, k)
				walk(x[k])
			}
		}
	}
	walk(x)
	return out
}

// checkInert fails when a text a person reads could act on them: mention
// or link in Slack, open a code fence, break a line where a value is, hide
// or reorder text, or be invalid UTF-8. Line breaks are allowed only where
// allowNewline says; our own layout uses them.
func checkInert(t *testing.T, what, s string, allowNewline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: invalid UTF-8", what)
	}
	for _, bad := range []string{"<!", "<@", "<http", "<#", "```", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028",
		// Invisible or blank look-alikes: Hangul fillers, the braille
		// blank, the ideographic space, the combining grapheme joiner,
		// variation selectors.
		"\u3164", "\u115f", "\uffa0", "\u2800", "\u3000", "\u034f", "\ufe0f", "\U000e0100",
		// A stack of combining marks.
		"\u0301\u0301\u0301"} {
		if strings.Contains(s, bad) {
			i := strings.Index(s, bad)
			t.Errorf("%s contains %q: …%.120q…", what, bad, s[max(i-60, 0):])
		}
	}
	for _, r := range s {
		if r == '\n' && allowNewline {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s contains control or format character %U", what, r)
			break
		}
	}
}

func TestHostileValuesStayInert(t *testing.T) {
	for _, name := range []string{"hostile", "huge"} {
		t.Run(name, func(t *testing.T) {
			f := loadFinding(t, name)
			for what, s := range people(t, f) {
				multiline := strings.Contains(what, "email") || strings.Contains(what, "string")
				checkInert(t, what, s, multiline)
				// Mail clients link bare host names and addresses.
				if strings.Contains(what, "email") {
					for _, bad := range []string{"www.evil", "soc@evil", "a@b"} {
						if strings.Contains(s, bad) {
							t.Errorf("%s contains %q, which a mail client turns into a link", what, bad)
						}
					}
				}
			}
		})
	}
}

// TestValuesCannotAddLines renders the hostile finding and a twin whose
// values lost every control, format and separator character: each text a
// person reads must have as many lines for both, so no value broke a line.
func TestValuesCannotAddLines(t *testing.T) {
	f := loadFinding(t, "hostile")
	strip := func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
				return -1
			}
			return r
		}, strings.ToValidUTF8(s, "?"))
	}
	strips := func(vs []string) []string {
		out := make([]string, len(vs))
		for i, s := range vs {
			out[i] = strip(s)
		}
		return out
	}
	twin := *f
	twin.UserAgent = strip(f.UserAgent)
	twin.User = strip(f.User)
	twin.Groups = strips(f.Groups)
	twin.ForwardedFor = strips(f.ForwardedFor)
	twin.Values = map[string][]string{}
	for k, vs := range f.Values {
		twin.Values[k] = strips(vs)
	}
	got, want := people(t, f), people(t, &twin)
	for what, s := range got {
		if g, w := strings.Count(s, "\n"), strings.Count(want[what], "\n"); g != w {
			t.Errorf("%s has %d line breaks, %d without control characters in values", what, g, w)
		}
	}
}

// TestEmailStructureCannotBeFaked checks that the hostile values, which
// hold line breaks followed by "Finding:", "Rule:", "Subject:" and "Bcc:",
// do not give those words a line of their own.
func TestEmailStructureCannotBeFaked(t *testing.T) {
	f := loadFinding(t, "hostile")
	body := EmailBody(f)
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	var starts []string
	for _, l := range lines {
		for _, p := range []string{"Finding:", "Rule:", "Subject:", "Bcc:", "*Finding"} {
			if strings.HasPrefix(strings.TrimSpace(l), p) {
				starts = append(starts, l)
			}
		}
	}
	want := []string{"Rule:         anonymous-request-allowed", "Finding: f-13f0c6a2e8b95d47", "Rule: anonymous-request-allowed"}
	if diff := cmp.Diff(want, starts); diff != "" {
		t.Errorf("lines that start like the message's own structure (-want +got):\n%s", diff)
	}
	if got, want := lines[len(lines)-2:], []string{"Finding: f-13f0c6a2e8b95d47", "Rule: anonymous-request-allowed"}; !cmp.Equal(got, want) {
		t.Errorf("last lines = %q, want %q", got, want)
	}
}

func TestEmailSubject(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		f    finding.Finding
		want string
	}{
		{"typical", finding.Finding{Severity: "high", Rule: "anonymous-request-allowed", ClusterName: "demo", SrcIP: "203.0.113.7"},
			"[HIGH] anonymous-request-allowed on demo from 203.0.113.7"},
		{"ipv6", finding.Finding{Severity: "critical", Rule: "anonymous-secret-read", ClusterName: "prod", SrcIP: "2001:db8::1"},
			"[CRITICAL] anonymous-secret-read on prod from 2001:db8::1"},
		{"mapped address is unmapped", finding.Finding{Severity: "low", Rule: "r", ClusterName: "c", SrcIP: "::ffff:192.0.2.1"},
			"[LOW] r on c from 192.0.2.1"},
		{"not an address", finding.Finding{Severity: "low", Rule: "r", ClusterName: "c", SrcIP: "evil\r\nBcc: x"},
			"[LOW] r on c from unknown address"},
		{"hostile cluster and rule", finding.Finding{Severity: "high\n", Rule: "r\r\nBcc: a@b", ClusterName: "démo <x>", SrcIP: "192.0.2.1"},
			"[HIGH_] r__Bcc:_a_b on d_mo__x_ from 192.0.2.1"},
		{"empty", finding.Finding{},
			"[UNKNOWN] unknown-rule on CLUSTER from unknown address"},
		{"long names are cut", finding.Finding{Severity: "medium", Rule: long, ClusterName: long, SrcIP: "2001:db8:1111:2222:3333:4444:5555:6666"},
			"[MEDIUM] " + strings.Repeat("x", 23) + "... on " + strings.Repeat("x", 13) + "... from 2001:db8:1111:2222:3333:4444:5555:6666"},
		{"long cluster is cut first", finding.Finding{Severity: "high", Rule: "anonymous-request-allowed", ClusterName: long, SrcIP: "192.0.2.1"},
			"[HIGH] anonymous-request-allowed on " + strings.Repeat("x", 45) + "... from 192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EmailSubject(&tt.f)
			if got != tt.want {
				t.Errorf("EmailSubject() = %q, want %q", got, tt.want)
			}
			checkSubject(t, got)
		})
	}
	if got := EmailSubject(nil); got == "" {
		t.Error("EmailSubject(nil) is empty; SNS rejects an empty subject")
	}
}

// checkSubject asserts SNS's rules for a Subject, in their strictest form.
func checkSubject(t *testing.T, s string) {
	t.Helper()
	if len(s) > MaxSubjectLen {
		t.Errorf("subject is %d bytes, want at most %d: %q", len(s), MaxSubjectLen, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			t.Errorf("subject byte %d is %#x, not printable ASCII: %q", i, c, s)
		}
	}
	if s == "" || !(unicode.IsLetter(rune(s[0])) || unicode.IsDigit(rune(s[0])) || unicode.IsPunct(rune(s[0]))) {
		t.Errorf("subject %q does not begin with a letter, number or punctuation mark", s)
	}
}

func TestSubjectOfEveryFixture(t *testing.T) {
	for _, name := range fixtures {
		checkSubject(t, EmailSubject(loadFinding(t, name)))
	}
}

func TestJSONRoundTrips(t *testing.T) {
	for _, name := range fixtures[:5] {
		t.Run(name, func(t *testing.T) {
			f := loadFinding(t, name)
			b, err := JSON(f)
			if err != nil {
				t.Fatal(err)
			}
			var got finding.Finding
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*f, got); diff != "" {
				t.Errorf("JSON did not round-trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONIsBounded(t *testing.T) {
	f := loadFinding(t, "huge")
	b, err := JSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxMessageBytes {
		t.Errorf("JSON is %d bytes, want at most %d", len(b), MaxMessageBytes)
	}
	var got finding.Finding
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.ValuesTruncated {
		t.Error("values_truncated = false for a cut document")
	}
	if n := len(got.Values["path"]); n == 0 || n >= 500 {
		t.Errorf("document keeps %d of 500 paths, want some but fewer", n)
	}
	if !strings.HasSuffix(got.UserAgent, " bytes)") || len(got.UserAgent) >= len(f.UserAgent) {
		t.Errorf("user agent not cut with a marker: %.80q…", got.UserAgent)
	}
}

func TestSNS(t *testing.T) {
	plainHuge := hugeFinding("Mozilla/5.0 " + strings.Repeat("A", 100<<10))
	tests := []struct {
		name string
		f    *finding.Finding
		// exact: whether "default" must be the finding's exact JSON.
		exact bool
	}{
		{"pod-scan", loadFinding(t, "pod-scan"), true},
		{"hostile", loadFinding(t, "hostile"), false},
		// 100 KiB of plain ASCII fits untouched beside the other renderings.
		{"huge plain user agent", plainHuge, true},
		// The same size in characters that escaping doubles twice does not.
		{"huge escaping user agent", loadFinding(t, "huge"), false},
		{"far too big", hugeFinding(strings.Repeat("<", 1<<20)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := SNS(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.Body) + len(m.Subject); n > MaxMessageBytes {
				t.Errorf("message is %d bytes, want at most %d", n, MaxMessageBytes)
			}
			checkSubject(t, m.Subject)
			var keys map[string]any
			if err := json.Unmarshal([]byte(m.Body), &keys); err != nil {
				t.Fatal(err)
			}
			for k, v := range keys {
				if _, ok := v.(string); !ok {
					t.Errorf("key %q holds %T; SNS ignores keys whose value is not a string", k, v)
				}
			}
			var body snsBody
			if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
				t.Fatal(err)
			}
			if body.SMS != m.Subject {
				t.Errorf("sms = %q, want the subject %q", body.SMS, m.Subject)
			}
			if !strings.HasSuffix(body.Email, "Finding: "+tt.f.ID+"\nRule: "+tt.f.Rule+"\n") {
				t.Errorf("e-mail does not end with the finding and rule ids:\n%s", body.Email)
			}
			var n chatNotification
			if err := json.Unmarshal([]byte(body.HTTPS), &n); err != nil {
				t.Fatalf("https is not a chat notification: %v", err)
			}
			if n.Version != "1.0" || n.Source != "custom" {
				t.Errorf("https: version %q, source %q", n.Version, n.Source)
			}
			var doc finding.Finding
			if err := json.Unmarshal([]byte(body.Default), &doc); err != nil {
				t.Fatalf("default is not a finding: %v", err)
			}
			if tt.exact {
				if diff := cmp.Diff(*tt.f, doc); diff != "" {
					t.Errorf("default is not the exact finding (-want +got):\n%s", diff)
				}
			} else if doc.ID != tt.f.ID || doc.Rule != tt.f.Rule || doc.SrcIP != tt.f.SrcIP {
				t.Errorf("default lost the finding's identity: %q %q %q", doc.ID, doc.Rule, doc.SrcIP)
			}
		})
	}
	if _, err := SNS(nil); err == nil {
		t.Error("SNS(nil) succeeded")
	}
}

// crowdedFinding fills every part of a chat description at once: escaping
// operator text, a long user and groups, and many lists.
func crowdedFinding(t *testing.T) *finding.Finding {
	f := loadFinding(t, "pod-scan")
	f.Description = strings.Repeat("&", 500)
	f.User = strings.Repeat("<", 100)
	f.Groups = []string{strings.Repeat("<", 100), strings.Repeat(">", 100), "a", "b", "c", "d"}
	f.Values = map[string][]string{}
	for i := range 40 {
		f.Values[fmt.Sprintf("field_with_a_long_name_%02d", i)] = []string{strings.Repeat("&", 300), "w", "x"}
	}
	f.ForwardedFor = []string{"192.0.2.200"}
	return f
}

func TestChat(t *testing.T) {
	cases := map[string]*finding.Finding{"crowded": crowdedFinding(t)}
	for _, name := range fixtures {
		cases[name] = loadFinding(t, name)
	}
	for n := 1; n <= 60; n += 3 {
		f := crowdedFinding(t)
		f.ForwardedFor = slices.Repeat([]string{strings.Repeat("&", n)}, 25)
		f.ValuesTruncated = true
		cases[fmt.Sprintf("crowded, claims of %d", n)] = f
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := Chat(f)
			if err != nil {
				t.Fatal(err)
			}
			var n chatNotification
			if err := json.Unmarshal(b, &n); err != nil {
				t.Fatal(err)
			}
			if n.Version != "1.0" || n.Source != "custom" || n.Content.TextType != "client-markdown" {
				t.Errorf("version %q, source %q, textType %q", n.Version, n.Source, n.Content.TextType)
			}
			if n.Content.Description == "" {
				t.Error("empty description")
			}
			if f.ForwardedFor != nil && !strings.Contains(n.Content.Description, "UNVERIFIED") {
				t.Error("forwarded-for claims were dropped")
			}
			if strings.Count(n.Content.Description, "`")%2 != 0 {
				t.Error("description leaves an inline code span open")
			}
			if got := utf16Len(n.Content.Description); got > MaxChatDescription {
				t.Errorf("description is %d UTF-16 units, want at most %d", got, MaxChatDescription)
			}
			for k, v := range n.Metadata.AdditionalCtx {
				if v == "" || len(v) > 1024 || strings.IndexFunc(v, func(r rune) bool { return r < 0x21 || r > 0x7f }) >= 0 {
					t.Errorf("additionalContext[%q] = %q, not a valid custom action variable", k, v)
				}
			}
			if !strings.HasPrefix(n.Metadata.EventType, "anonwatch-") || strings.IndexFunc(n.Metadata.EventType, func(r rune) bool { return !(r < 0x80 && (isAlnum(byte(r)) || r == '-')) }) >= 0 {
				t.Errorf("eventType %q", n.Metadata.EventType)
			}
		})
	}
}

func TestChatThreadsByClusterAndAddress(t *testing.T) {
	thread := func(rule, cluster, ip string) string {
		b, err := Chat(&finding.Finding{ID: "x", Rule: rule, ClusterName: cluster, SrcIP: ip})
		if err != nil {
			t.Fatal(err)
		}
		var n chatNotification
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatal(err)
		}
		return n.Metadata.ThreadID
	}
	a := thread("anonymous-path-scan", "demo", "203.0.113.7")
	if b := thread("anonymous-request-allowed", "demo", "203.0.113.7"); a != b {
		t.Errorf("same cluster and address, different rules: threads %q and %q differ", a, b)
	}
	if b := thread("anonymous-path-scan", "demo", "::ffff:203.0.113.7"); a != b {
		t.Errorf("mapped spelling of the same address: threads %q and %q differ", a, b)
	}
	for _, other := range [][2]string{{"demo", "203.0.113.8"}, {"prod", "203.0.113.7"}} {
		if b := thread("anonymous-path-scan", other[0], other[1]); a == b {
			t.Errorf("%v shares thread %q with demo/203.0.113.7", other, a)
		}
	}
}

// slackPayload decodes what SlackBlocks emits, to check Block Kit's limits.
type slackPayload struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type     string      `json:"type"`
		Text     *slackText  `json:"text"`
		Fields   []slackText `json:"fields"`
		Elements []slackText `json:"elements"`
	} `json:"blocks"`
	UnfurlLinks *bool `json:"unfurl_links"`
	UnfurlMedia *bool `json:"unfurl_media"`
}

func TestSlackBlockKitLimits(t *testing.T) {
	many := loadFinding(t, "pod-scan")
	many.Values = map[string][]string{}
	for i := range 60 {
		many.Values[fmt.Sprintf("field_%02d", i)] = []string{strings.Repeat("v", 300), "w"}
	}
	many.ValuesTruncated = true
	cases := map[string]*finding.Finding{"crowded": crowdedFinding(t)}
	// The last section also carries the notes on dropped fields and
	// values; sweep value sizes so that its list fills the section exactly.
	for n := 1; n <= 60; n++ {
		g := *many
		g.ForwardedFor = slices.Repeat([]string{strings.Repeat("&", n)}, 25)
		cases[fmt.Sprintf("sixty fields, claims of %d", n)] = &g
	}
	for _, name := range fixtures {
		cases[name] = loadFinding(t, name)
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := SlackBlocks(f)
			if err != nil {
				t.Fatal(err)
			}
			var p slackPayload
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if p.Text == "" {
				t.Error("no fallback text")
			}
			if p.UnfurlLinks == nil || *p.UnfurlLinks || p.UnfurlMedia == nil || *p.UnfurlMedia {
				t.Error("unfurling is not switched off")
			}
			if n := len(p.Blocks); n > slackMaxBlocks || n == 0 {
				t.Errorf("%d blocks, want 1 to %d", n, slackMaxBlocks)
			}
			if p.Blocks[0].Type != "header" || p.Blocks[0].Text.Type != "plain_text" {
				t.Errorf("first block is %q, want a plain_text header", p.Blocks[0].Type)
			}
			if f.ForwardedFor != nil && !strings.Contains(string(b), "Forwarded-for claims") {
				t.Error("forwarded-for claims were dropped")
			}
			checkMrkdwn := func(x slackText, limit int) {
				if n := utf16Len(x.Text); n == 0 || n > limit {
					t.Errorf("%s text of %d units, want 1 to %d: %.60q", x.Type, n, limit, x.Text)
				}
				if x.Type == "mrkdwn" && !x.Verbatim {
					t.Errorf("mrkdwn text without verbatim: %.60q", x.Text)
				}
			}
			for _, bl := range p.Blocks {
				switch bl.Type {
				case "header":
					checkMrkdwn(*bl.Text, slackMaxHeader)
				case "section":
					if bl.Text != nil {
						checkMrkdwn(*bl.Text, slackMaxSectionText)
					}
					if len(bl.Fields) > slackMaxFields {
						t.Errorf("section with %d fields", len(bl.Fields))
					}
					for _, x := range bl.Fields {
						checkMrkdwn(x, slackMaxFieldText)
					}
				case "context":
					if len(bl.Elements) > slackMaxContextElems {
						t.Errorf("context with %d elements", len(bl.Elements))
					}
					for _, x := range bl.Elements {
						checkMrkdwn(x, slackMaxSectionText)
					}
				case "divider":
				default:
					t.Errorf("unexpected block type %q", bl.Type)
				}
			}
		})
	}
}

func TestNilFinding(t *testing.T) {
	if _, err := Chat(nil); err == nil {
		t.Error("Chat(nil) succeeded")
	}
	if _, err := SlackBlocks(nil); err == nil {
		t.Error("SlackBlocks(nil) succeeded")
	}
	if _, err := JSON(nil); err == nil {
		t.Error("JSON(nil) succeeded")
	}
	if got := EmailBody(nil); got != "" {
		t.Errorf("EmailBody(nil) = %q", got)
	}
}

func TestNextStepsCommands(t *testing.T) {
	f := loadFinding(t, "secret-read-critical")
	steps := newView(f).steps()
	var got []string
	for _, s := range steps {
		got = append(got, s.command)
	}
	want := []string{
		`kubectl get clusterrolebindings,rolebindings -A -o json | jq -r '.items[] | select(any(.subjects[]?; .name == "system:anonymous" or .name == "system:unauthenticated")) | "\(.kind) \(.metadata.namespace // "-")/\(.metadata.name) roleRef=\(.roleRef.kind)/\(.roleRef.name)"'`,
		`aws eks update-cluster-config --name payments --resources-vpc-config endpointPublicAccess=true,publicAccessCidrs="ADMIN_CIDR",endpointPrivateAccess=true`,
		`fields @timestamp, verb, requestURI, userAgent, responseStatus.code | filter @message like /"sourceIPs":\[[^\]]*"192\.0\.2\.44"\]/ | sort @timestamp desc | limit 200`,
		``, // the 2xx step: advice only
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	// Without a 2xx response there is nothing to rotate.
	if n := len(newView(loadFinding(t, "pod-scan")).steps()); n != 3 {
		t.Errorf("pod-scan has %d steps, want 3", n)
	}
}

func TestSeverityEmoji(t *testing.T) {
	tests := []struct {
		severity string // as in the finding
		want     string
	}{
		{"low", ":large_blue_circle:"},
		{"medium", ":large_orange_circle:"},
		{"high", ":red_circle:"},
		{"critical", ":rotating_light:"},
		{"High", ":red_circle:"},
		{"high\n", ":white_circle:"}, // HIGH_: not a name
		{"info", ":white_circle:"},
		{"", ":white_circle:"},
		{"criticalx", ":white_circle:"},
	}
	for _, tt := range tests {
		if got := severityEmoji(severityWord(tt.severity)); got != tt.want {
			t.Errorf("severityEmoji(severityWord(%q)) = %q, want %q", tt.severity, got, tt.want)
		}
	}
}

// TestMessageFor checks that each SNS protocol gets its own rendering, and
// the protocols without one the finding's document.
func TestMessageFor(t *testing.T) {
	f := loadFinding(t, "pod-scan")
	m, err := SNS(f)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := JSON(f)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := Chat(f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		protocol string
		want     string
	}{
		{"email", EmailBody(f)},
		{"https", string(chat)},
		{"sms", EmailSubject(f)},
		{"sqs", string(doc)},
		{"lambda", string(doc)},
		{"http", string(doc)},
		{"email-json", string(doc)},
	}
	for _, tt := range tests {
		got, err := m.For(tt.protocol)
		if err != nil {
			t.Fatalf("For(%q): %v", tt.protocol, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("For(%q) mismatch (-want +got):\n%s", tt.protocol, diff)
		}
	}
	for _, body := range []string{"", "not json", `{"email":"x"}`} {
		if got, err := (Message{Body: body}).For("lambda"); err == nil {
			t.Errorf("Message{Body: %q}.For(lambda) = %q, want an error", body, got)
		}
	}
}
