package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// chatNotification is an Amazon Q Developer in chat applications (formerly
// AWS Chatbot) custom notification, as documented at
// https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html:
// version must be "1.0" and source must be "custom" (both required); id is
// an optional unique event id; "client-markdown" is the only textType, and
// makes Amazon Q render title, description and next steps in the chat
// platform's own markdown (Slack mrkdwn for Slack), so the documented
// samples put Slack <url|label> links and @mentions in them. threadId groups
// notifications into one thread when the channel allows it; summary,
// eventType, relatedResources and additionalContext are optional metadata,
// the last one also usable as variables by custom actions.
type chatNotification struct {
	Version  string       `json:"version"`
	Source   string       `json:"source"`
	ID       string       `json:"id,omitempty"`
	Content  chatContent  `json:"content"`
	Metadata chatMetadata `json:"metadata"`
}

type chatContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

type chatMetadata struct {
	ThreadID         string            `json:"threadId"`
	Summary          string            `json:"summary"`
	EventType        string            `json:"eventType"`
	RelatedResources []string          `json:"relatedResources,omitempty"`
	AdditionalCtx    map[string]string `json:"additionalContext,omitempty"`
	// EnableCustomActions lets an operator's own custom action buttons
	// attach; additionalContext holds nothing a client chose, so a button
	// that uses it cannot be steered by an attacker.
	EnableCustomActions bool `json:"enableCustomActions"`
}

// MaxChatDescription bounds the description of a chat notification, in
// UTF-16 code units. The Amazon Q documentation states no limit that we
// could find; this is Slack's limit for the text of one section block
// (https://api.slack.com/reference/block-kit/blocks#section), a safe bound
// for text that ends up in a Slack message.
const MaxChatDescription = 3000

// Chat returns the finding as an Amazon Q Developer in chat applications
// custom notification, to publish on an SNS topic that Amazon Q watches.
//
// Every finding about one address on one cluster carries the same threadId,
// derived from the two, so the channel gets one thread per attacker. Values a
// client chose appear only inside inline code, with &, < and > escaped, and
// backticks and at signs replaced by look-alikes, so they cannot mention
// anyone, link anywhere or format the message. The description stays within
// MaxChatDescription: lists are cut, and say how many values they left out.
func Chat(f *finding.Finding) ([]byte, error) {
	if f == nil {
		return nil, errors.New("render: nil finding")
	}
	return chat(newView(f), defaultCaps)
}

func chat(v view, c caps) ([]byte, error) {
	n := chatNotification{
		Version: "1.0",
		Source:  "custom",
		ID:      v.id,
		Content: chatContent{
			TextType:    "client-markdown",
			Title:       severityEmoji(v.severity) + " " + md(v.severity+": "+v.title+" on "+v.named(), 200),
			Description: chatDescription(v, c),
			NextSteps:   chatSteps(v),
			Keywords:    keywords(v),
		},
		Metadata: chatMetadata{
			ThreadID:            v.threadID(),
			Summary:             md(v.summary(), 300),
			EventType:           "anonwatch-" + token(v.rule, 80, func(c byte) bool { return isAlnum(c) || c == '-' }),
			RelatedResources:    []string{v.cluster, v.logGroup},
			AdditionalCtx:       additionalContext(v),
			EnableCustomActions: true,
		},
	}
	return marshal(n)
}

// severityEmojis mark each severity, hotter as it rises.
var severityEmojis = [...]string{
	finding.Low:      ":large_blue_circle:",
	finding.Medium:   ":large_orange_circle:",
	finding.High:     ":red_circle:",
	finding.Critical: ":rotating_light:",
}

// severityEmoji returns the emoji for a view's severity word (upper case,
// ASCII letters), and a white circle for a severity no rule file can name.
func severityEmoji(word string) string {
	for s := finding.Low; s <= finding.Critical; s++ {
		if strings.EqualFold(word, s.String()) {
			return severityEmojis[s]
		}
	}
	return ":white_circle:"
}

// chatDescription lays out the evidence compactly, one line per fact and per
// list, within MaxChatDescription. The facts come first; the lists share
// what room is left, so a long list of paths cannot push the forwarded-for
// claims out. Lines are only ever dropped whole, so no inline code span is
// left open.
func chatDescription(v view, c caps) string {
	f := v.f
	var facts []string
	if v.ip != "" {
		facts = append(facts, fmt.Sprintf("*Source:* %s (%s), the connection's own address", cmd(v.ip), v.ipClass))
	} else if v.sweep != "" {
		facts = append(facts, "*Source:* "+v.sweep+", "+v.note)
	} else {
		facts = append(facts, "*Source:* unknown")
	}
	facts = append(facts, fmt.Sprintf("*%s:* %d in %s, first %s, last %s", v.countLabel(), f.Count, mdEscaper.Replace(v.window()), stamp(f.FirstSeen), stamp(f.LastSeen)))
	if f.User != "" {
		u := "*User:* " + code(f.User, 64)
		if len(f.Groups) > 0 {
			u += " in " + codeList(f.Groups, 5, 64, 300)
		}
		facts = append(facts, u)
	}
	if v.uaClass != "" {
		facts = append(facts, "*User agent class:* "+v.uaClass)
	}
	if f.Description != "" {
		facts = append(facts, "_"+md(f.Description, 200)+"_")
	}

	ls, dropped := v.lists()
	var tail []string
	if f.ValuesTruncated {
		tail = append(tail, "_More values were seen than the finding keeps._")
	}
	share := 0
	if len(ls) > 0 {
		share = (MaxChatDescription - linesLen(facts) - linesLen(tail) - 40) / len(ls)
	}
	var rows []string
	var claims string // the forwarded-for line, kept whatever else goes
	for _, l := range ls {
		head := fmt.Sprintf("*%s (%s):* ", l.label, l.count())
		if l.note != "" {
			head = fmt.Sprintf("*%s (%s, UNVERIFIED, set by the client):* ", l.label, l.count())
		}
		row := head + codeList(l.values, c.values, c.runes, share-utf16Len(head)-1)
		if l.key == "forwarded_for" {
			claims = row
		} else {
			rows = append(rows, row)
		}
	}
	for {
		all := append(append([]string{}, facts...), rows...)
		if claims != "" {
			all = append(all, claims)
		}
		if dropped > 0 {
			all = append(all, fmt.Sprintf("_…and %d more fields_", dropped))
		}
		all = append(all, tail...)
		desc := strings.Join(all, "\n")
		if utf16Len(desc) <= MaxChatDescription || len(rows) == 0 {
			return desc
		}
		rows = rows[:len(rows)-1]
		dropped++
	}
}

func linesLen(lines []string) int {
	n := 0
	for _, l := range lines {
		n += utf16Len(l) + 1
	}
	return n
}

// codeList renders untrusted values as inline code, separated by commas,
// in at most room UTF-16 code units: at most n values of at most runes runes
// each, and then how many it left out. If even the first value does not fit
// it is cut shorter, so a list shows something whenever it can.
func codeList(vs []string, n, runes, room int) string {
	var b strings.Builder
	used, shown := 0, 0
	for shown < len(vs) && shown < n {
		reserve := 0
		if shown+1 < len(vs) {
			reserve = utf16Len(fmt.Sprintf(", …and %d more", len(vs)))
		}
		sep := ""
		if shown > 0 {
			sep = ", "
		}
		piece := sep + code(vs[shown], runes)
		if used+utf16Len(piece)+reserve > room {
			if shown > 0 {
				break
			}
			// A cleaned rune takes at most 5 units once escaped (&amp;),
			// and the code span and cut marker at most 25 more.
			r := (room - reserve - 25) / 5
			if r < 4 {
				break
			}
			piece = code(vs[0], min(r, runes))
		}
		b.WriteString(piece)
		used += utf16Len(piece)
		shown++
	}
	if left := len(vs) - shown; left > 0 {
		if shown > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "…and %d more", left)
	}
	return b.String()
}

// chatSteps writes the next steps for markdown: our advice escaped, our
// commands as inline code.
func chatSteps(v view) []string {
	var out []string
	for _, s := range v.steps() {
		t := mdEscaper.Replace(s.text)
		if s.command != "" {
			t += ": " + cmd(s.command)
		}
		out = append(out, t)
	}
	return out
}

func keywords(v view) []string {
	k := []string{v.severity, v.rule}
	if v.ipClass != "" {
		k = append(k, v.ipClass)
	}
	if v.uaClass != "" {
		k = append(k, v.uaClass)
	}
	return k
}

// additionalContext gives custom actions the finding's identifiers. Custom
// action variables must match [\x21-\x7F]+ and be at most 1024 long
// (https://docs.aws.amazon.com/chatbot/latest/APIReference/API_CustomActionAttachment.html),
// and every value here does: they are ASCII tokens without spaces.
func additionalContext(v view) map[string]string {
	m := map[string]string{
		"findingId": v.id,
		"rule":      v.rule,
		"severity":  v.severity,
		"cluster":   v.cluster,
		"count":     fmt.Sprint(v.f.Count),
	}
	if v.account != "" {
		m["account"] = v.account
	}
	if v.region != "" {
		m["region"] = v.region
	}
	if v.ip != "" {
		m["srcIp"] = v.ip
		m["ipClass"] = v.ipClass
	}
	if v.uaClass != "" {
		m["uaClass"] = v.uaClass
	}
	return m
}

// marshal encodes JSON without HTML escaping: the text is escaped for its
// own markup already, and \u003c in place of < would only add bytes.
func marshal(x any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
