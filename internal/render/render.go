// Package render turns a finding into what people and machines read: an
// e-mail subject and body, an Amazon Q Developer chat notification, a Slack
// Block Kit message, the finding's JSON document, and the one SNS message
// that carries them all.
//
// Escaping lives here, and only here. A finding carries values that an
// attacker chose (user agents, request paths, forwarded-for claims, and any
// collected value), so each rendering treats them as hostile: it shows them
// cleaned to one printable line, inside syntax that keeps them from acting
// as markup, and cut to a stated length. The summary line and the next steps
// are written once and shared by every rendering, and hold no attacker text.
package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// MaxMessageBytes bounds the SNS message body SNS returns, and the JSON
// document JSON returns. SNS accepts at most 262,144 bytes of UTF-8 per
// message, and message attributes count toward that limit
// (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html); the bound
// leaves room for the subject and for attributes a publisher adds.
const MaxMessageBytes = 200 << 10

// JSON returns the finding's document for machines: the finding.Finding
// encoding, exact unless it would exceed MaxMessageBytes. Then values are
// cut, in steps, until it fits, and values_truncated is set, and a cut value
// ends with "…(+N bytes)".
//
// The document is printable ASCII: every other character, and <, >, & and
// the backtick, is written as a \u escape. A decoder gets the exact values
// back, while the bytes themselves can go into a page, a chat message or a
// terminal without hidden bidi controls or markup.
func JSON(f *finding.Finding) ([]byte, error) {
	if f == nil {
		return nil, errors.New("render: nil finding")
	}
	for _, l := range levels {
		b, err := document(f, l.json)
		if err != nil {
			return nil, err
		}
		if len(b) <= MaxMessageBytes {
			return b, nil
		}
	}
	return nil, fmt.Errorf("render: finding %s does not fit in %d bytes", token(f.ID, 128, idByte), MaxMessageBytes)
}

// Message is what one SNS Publish sends: Subject for e-mail subscribers, and
// Body, to publish with MessageStructure set to "json".
type Message struct {
	Subject string
	Body    string
}

// For returns what a subscriber over protocol ("email", "https", "sqs",
// "lambda" and so on) receives of m: the body's key for that protocol, or
// its "default", as SNS delivers a message published with MessageStructure
// "json". A preview of a delivery can so show exactly what SNS would send.
func (m Message) For(protocol string) (string, error) {
	var keys map[string]string
	if err := json.Unmarshal([]byte(m.Body), &keys); err != nil {
		return "", fmt.Errorf("render: SNS message body: %v", err)
	}
	if s, ok := keys[protocol]; ok {
		return s, nil
	}
	s, ok := keys["default"]
	if !ok {
		return "", errors.New(`render: SNS message body has no "default"`)
	}
	return s, nil
}

// snsBody maps SNS protocols to the message each receives. SNS requires
// "default", and gives it to every protocol without a key of its own.
type snsBody struct {
	// Default is the finding's JSON document, for sqs, lambda, http,
	// email-json and any other protocol: machines read it. Giving it once,
	// rather than under each of those keys, keeps the document from
	// counting several times toward the size limit.
	Default string `json:"default"`
	Email   string `json:"email"`
	// HTTPS is the Amazon Q Developer custom notification: Amazon Q
	// subscribes to a topic over https, so its form must go under this
	// key. Every other https subscriber gets it too; a webhook that wants
	// the finding itself should subscribe through SQS or Lambda.
	HTTPS string `json:"https"`
	// SMS is the subject line alone: an SMS holds at most 1,600
	// characters in all, and the document would be cut to pieces.
	SMS string `json:"sms"`
}

// SNS returns the message that delivers a finding to every subscriber of an
// SNS topic at once, as a MessageStructure "json" body: the plain-text
// e-mail under "email", the Amazon Q chat notification under "https", the
// subject under "sms", and the finding's JSON document under "default" for
// all other protocols (sqs, lambda, http, email-json).
//
// Body stays within MaxMessageBytes. When the renderings would not fit
// together, the values they show are cut in steps (fewer per list, fewer
// runes each) until they do, so a finding with a 100 KB user agent and
// hundreds of paths is still delivered.
func SNS(f *finding.Finding) (Message, error) {
	if f == nil {
		return Message{}, errors.New("render: nil finding")
	}
	v := newView(f)
	subject := EmailSubject(f)
	for _, l := range levels {
		doc, err := document(f, l.json)
		if err != nil {
			return Message{}, err
		}
		notification, err := chat(v, l.show)
		if err != nil {
			return Message{}, fmt.Errorf("render: encode chat notification: %w", err)
		}
		body, err := marshal(snsBody{
			Default: string(doc),
			Email:   emailBody(v, l.show),
			HTTPS:   string(notification),
			SMS:     subject,
		})
		if err != nil {
			return Message{}, fmt.Errorf("render: encode SNS message: %w", err)
		}
		if len(body)+len(subject) <= MaxMessageBytes {
			return Message{Subject: subject, Body: string(body)}, nil
		}
	}
	return Message{}, fmt.Errorf("render: finding %s does not fit in an SNS message", v.id)
}

// document encodes f cut to c, in printable ASCII.
func document(f *finding.Finding, c caps) ([]byte, error) {
	b, err := json.Marshal(bounded(f, c))
	if err != nil {
		return nil, fmt.Errorf("render: encode finding: %w", err)
	}
	return asciiJSON(b), nil
}

// asciiJSON rewrites valid JSON so that every character outside printable
// ASCII, and the backtick, is a \u escape. Such characters can only occur
// inside strings, where the escape means the same character, so the value
// the JSON encodes does not change. json.Marshal has already escaped
// control characters, <, > and &, and replaced invalid UTF-8.
func asciiJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x7f && c != '`' {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}

// level is one step of shrinking: caps for the JSON document and for what
// people are shown.
type level struct {
	json caps // zero: the document as it is
	show caps
}

// levels are tried in order until the output fits. The first keeps the
// document exact; the second applies detect's own caps to every list and
// untrusted string (detectValues values, detectValueLen runes each), so it
// mostly cuts the grouped user agent, which detect does not bound; the
// last is small enough for any finding, because bounded also caps how many
// lists and identifiers a document holds.
var levels = []level{
	{json: caps{}, show: defaultCaps},
	{json: caps{values: detectValues, runes: detectValueLen}, show: defaultCaps},
	{json: caps{values: 20, runes: 200}, show: caps{values: 10, runes: 120}},
	{json: caps{values: 10, runes: 100}, show: caps{values: 5, runes: 80}},
	{json: caps{values: 3, runes: 60}, show: caps{values: 3, runes: 60}},
	{json: caps{values: 1, runes: 32}, show: caps{values: 1, runes: 32}},
}

// detect's caps on the values it reports (detect.ReportValuesCap and
// detect.StoredValueLen), repeated here because render must not import the
// pipeline: the Slack notifier links render, and would link the rule engine
// with it. A test checks that they still agree.
const (
	detectValues   = 50
	detectValueLen = 256
)

// Fixed caps that bounded applies at every level but the first.
const (
	maxKeys      = 32   // lists in Values and Distinct
	maxIDLen     = 512  // identifiers, names and other short strings
	maxTitleLen  = 200  // title
	maxTextLen   = 2000 // description and summary
	maxMITRE     = 20
	maxMITRELen  = 64
	maxSaturated = 32
)

// bounded returns f with every value cut to c, or f itself when c is zero.
func bounded(f *finding.Finding, c caps) *finding.Finding {
	if c == (caps{}) {
		return f
	}
	g := *f
	t := false // whether anything was cut
	str := func(s string, n int) string {
		out, cut := cutRunes(s, n)
		t = t || cut
		return out
	}
	strs := func(vs []string, n, runes int) []string {
		if vs == nil {
			return nil
		}
		if len(vs) > n {
			vs, t = vs[:n], true
		}
		out := make([]string, len(vs))
		for i, s := range vs {
			out[i] = str(s, runes)
		}
		return out
	}
	g.ID = str(f.ID, maxIDLen)
	g.Rule = str(f.Rule, maxIDLen)
	g.Title = str(f.Title, maxTitleLen)
	g.Description = str(f.Description, maxTextLen)
	g.Severity = str(f.Severity, maxIDLen)
	g.MITRE = strs(f.MITRE, maxMITRE, maxMITRELen)
	g.ClusterName = str(f.ClusterName, maxIDLen)
	g.Account = str(f.Account, maxIDLen)
	g.Region = str(f.Region, maxIDLen)
	g.LogGroup = str(f.LogGroup, maxIDLen)
	g.SrcIP = str(f.SrcIP, maxIDLen)
	g.SrcNet = str(f.SrcNet, maxIDLen)
	g.IPClass = str(f.IPClass, maxIDLen)
	g.ForwardedFor = strs(f.ForwardedFor, c.values, c.runes)
	g.User = str(f.User, c.runes)
	g.Groups = strs(f.Groups, c.values, c.runes)
	g.UserAgent = str(f.UserAgent, c.runes)
	g.UAClass = str(f.UAClass, maxIDLen)
	g.Window = str(f.Window, maxIDLen)
	g.Summary = str(f.Summary, maxTextLen)
	g.DistinctSaturated = strs(f.DistinctSaturated, maxSaturated, maxIDLen)
	if f.Distinct != nil {
		g.Distinct = map[string]int{}
		for _, k := range firstKeys(f.Distinct) {
			g.Distinct[str(k, maxIDLen)] = f.Distinct[k]
		}
		t = t || len(f.Distinct) > maxKeys
	}
	if f.Values != nil {
		g.Values = map[string][]string{}
		for _, k := range firstKeys(f.Values) {
			g.Values[str(k, maxIDLen)] = strs(f.Values[k], c.values, c.runes)
		}
		t = t || len(f.Values) > maxKeys
	}
	g.ValuesTruncated = f.ValuesTruncated || t
	return &g
}

// firstKeys returns the maxKeys smallest keys of m.
func firstKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[:min(len(keys), maxKeys)]
}

// cutRunes cuts s to n runes, marking the cut with the number of bytes left
// out, and reports whether it cut. It cuts between runes, so valid UTF-8
// stays valid.
func cutRunes(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	i, k := 0, 0
	for k < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		k++
	}
	return s[:i] + cutMark(len(s)-i), true
}
