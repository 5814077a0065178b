package render

import (
	"fmt"
	"strings"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// MaxSubjectLen is the longest subject EmailSubject returns. SNS requires a
// Subject of less than 100 characters, with no line breaks or control
// characters; older revisions of the Publish API reference also required
// ASCII text that begins with a letter, number or punctuation mark. Subjects
// here meet the stricter rule.
// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
const MaxSubjectLen = 99

// EmailSubject returns the subject line for a finding, for example
// "[HIGH] anonymous-request-allowed on demo from 203.0.113.7".
//
// It holds only the severity, rule id, cluster name and source address, each
// reduced to the characters such values may contain, so it is printable
// ASCII of at most MaxSubjectLen bytes and carries no text a client sent.
// When it would be too long, the cluster name and then the rule id are cut.
// A nil finding gets a generic subject, since SNS rejects an empty one.
func EmailSubject(f *finding.Finding) string {
	if f == nil {
		return "[UNKNOWN] anonwatch finding"
	}
	v := newView(f)
	sev := "[" + v.severity + "] "
	from := " from " + v.ip
	switch {
	case v.ip != "":
	case f.Digest != nil:
		from = fmt.Sprintf(": digest, %d held", f.Digest.Held)
	case v.sweep != "":
		from = " from " + v.sweep
	case f.User != "":
		// Rules grouped by identity (a binding granted to anonymous
		// users) name who did it: an identity the API server
		// authenticated, reduced to a short ASCII token. For an IAM
		// ARN the session or user name, its last segment, says most.
		user := f.User
		if i := strings.LastIndexByte(user, '/'); i >= 0 && i < len(user)-1 {
			user = user[i+1:]
		}
		from = " by " + token(user, 32, userByte)
	default:
		from = " from unknown address"
	}
	const on = " on "
	room := MaxSubjectLen - len(sev) - len(on) - len(from)
	rule, cluster := v.rule, v.named()
	if len(rule)+len(cluster) > room {
		cluster = cut(cluster, max(room-len(rule), 16))
		rule = cut(rule, room-len(cluster))
	}
	return sev + rule + on + cluster + from
}

// Caps for the values of a finding shown to people. SNS shrinks them when
// a message would not fit otherwise.
type caps struct {
	values int // values shown per list
	runes  int // runes shown per value
}

var defaultCaps = caps{values: 20, runes: 200}

// EmailBody returns the plain-text e-mail for a finding, written to be read
// on a phone: the summary first, then the evidence, then what to do, and the
// finding and rule ids last.
//
// Every value a client chose is shown in double quotes on a line of its own,
// cleaned to printable text on one line (line breaks, control, bidi and
// zero-width characters shown as escapes, invalid UTF-8 as U+FFFD) and cut
// to 200 runes, with at most 20 values per list, so no value can pass for
// part of the message around it.
func EmailBody(f *finding.Finding) string {
	if f == nil {
		return ""
	}
	return emailBody(newView(f), defaultCaps)
}

func emailBody(v view, c caps) string {
	f := v.f
	var b strings.Builder
	b.WriteString(v.summary())
	b.WriteString("\n")
	if f.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", line(f.Description, 1000))
	}

	b.WriteString("\nEVIDENCE\n")
	source := "unknown (the event had no valid connection address)"
	switch {
	case v.ip != "":
		source = v.ip + " (" + v.ipClass + "), the connection's own address, which the client cannot choose"
	case v.sweep != "":
		source = v.sweep + ", " + v.note
	}
	rows := [][2]string{
		{"Severity", v.severity},
		{"Rule", v.rule},
		{"Cluster", v.cluster},
	}
	if v.where != "" {
		rows = append(rows, [2]string{"Account", v.where})
	}
	rows = append(rows, [][2]string{
		{"Source", source},
		{v.countLabel(), fmt.Sprintf("%d in %s", f.Count, v.window())},
		{"First seen", stamp(f.FirstSeen)},
		{"Last seen", stamp(f.LastSeen)},
	}...)
	if f.User != "" {
		u := quoted(f.User, c.runes)
		if len(f.Groups) > 0 {
			u += " in groups " + quotedList(f.Groups, c)
		}
		rows = append(rows, [2]string{"User", u})
	}
	if v.uaClass != "" {
		rows = append(rows, [2]string{"Agent class", v.uaClass})
	}
	if len(f.MITRE) > 0 {
		rows = append(rows, [2]string{"MITRE ATT&CK", strings.Join(tokens(f.MITRE, 20), ", ")})
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "%-13s %s\n", r[0]+":", r[1])
	}

	ls, dropped := v.lists()
	for _, l := range ls {
		fmt.Fprintf(&b, "\n%s (%s):\n", l.label, l.count())
		if l.note != "" {
			fmt.Fprintf(&b, "  %s\n", l.note)
		}
		n := min(len(l.values), c.values)
		for _, s := range l.values[:n] {
			fmt.Fprintf(&b, "  - %s\n", quoted(s, c.runes))
		}
		if more := len(l.values) - n; more > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", more)
		}
	}
	if dropped > 0 {
		fmt.Fprintf(&b, "\n... and %d more fields\n", dropped)
	}
	if f.ValuesTruncated {
		b.WriteString("\nMore values were seen than the finding keeps.\n")
	}

	b.WriteString("\nWHAT TO DO\n")
	for i, s := range v.steps() {
		fmt.Fprintf(&b, "%d. %s.\n", i+1, s.text)
		if s.command != "" {
			fmt.Fprintf(&b, "   %s\n", s.command)
		}
	}

	fmt.Fprintf(&b, "\nFinding: %s\nRule: %s\n", v.id, v.rule)
	return b.String()
}

// quotedList renders a short list of untrusted values on one line.
func quotedList(vs []string, c caps) string {
	n := min(len(vs), c.values)
	parts := make([]string, 0, n+1)
	for _, s := range vs[:n] {
		parts = append(parts, quoted(s, c.runes))
	}
	if more := len(vs) - n; more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, ", ")
}

// tokens reduces operator-chosen identifiers such as MITRE technique ids to
// ASCII tokens, at most max of them.
func tokens(vs []string, max int) []string {
	out := make([]string, 0, min(len(vs), max))
	for _, s := range vs[:min(len(vs), max)] {
		out = append(out, token(s, 32, idByte))
	}
	return out
}
