package render

import (
	"errors"
	"fmt"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// Block Kit limits, from https://api.slack.com/reference/block-kit/blocks
// (header, section and context blocks) and
// https://api.slack.com/reference/block-kit/composition-objects#text:
// a message has at most 50 blocks; a header's plain_text at most 150
// characters; a section's text at most 3000, and at most 10 fields of at most
// 2000 each; a context block at most 10 elements.
const (
	slackMaxBlocks        = 50
	slackMaxHeader        = 150
	slackMaxSectionText   = 3000
	slackMaxFields        = 10
	slackMaxFieldText     = 2000
	slackMaxContextElems  = 10
	slackMaxFallbackRunes = 500
)

type slackMessage struct {
	// Text is the fallback shown in notifications and where blocks cannot
	// be; Slack parses it as mrkdwn, so it is escaped like the rest.
	Text        string       `json:"text"`
	Blocks      []slackBlock `json:"blocks"`
	UnfurlLinks bool         `json:"unfurl_links"`
	UnfurlMedia bool         `json:"unfurl_media"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackText is a Block Kit text object. Verbatim is set on every mrkdwn
// object: without it Slack turns bare URLs into links, channel names into
// channel links and parses some mentions in plain text.
type slackText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Emoji    bool   `json:"emoji,omitempty"`
	Verbatim bool   `json:"verbatim,omitempty"`
}

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s, Verbatim: true} }

// SlackBlocks returns the finding as a Slack incoming-webhook payload built
// from Block Kit blocks: a header, the key facts as section fields, one
// section per list of evidence, the next steps, and the finding and rule ids
// in a context block.
//
// Values a client chose appear only inside inline code, escaped as in Chat,
// and the header is plain_text holding no such value. Link unfurling is off,
// so no value makes Slack fetch a URL. The payload keeps within Block Kit's
// limits: lists are cut to fit a section, and fields that do not fit in the
// block budget are counted instead of shown.
func SlackBlocks(f *finding.Finding) ([]byte, error) {
	if f == nil {
		return nil, errors.New("render: nil finding")
	}
	return slackBlocks(newView(f), defaultCaps)
}

func slackBlocks(v view, c caps) ([]byte, error) {
	f := v.f
	header, _ := clean(v.severity+": "+v.title+" on "+v.named(), slackMaxHeader)
	header = prefixUTF16(header, slackMaxHeader)
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: header, Emoji: true}},
	}

	source := "unknown"
	switch {
	case v.ip != "":
		source = cmd(v.ip) + " (" + v.ipClass + ")"
	case v.sweep != "":
		source = v.sweep + " (" + v.tag + ")"
	}
	fields := []slackText{
		mrkdwn("*Severity*\n" + severityEmoji(v.severity) + " " + v.severity),
		mrkdwn("*Rule*\n" + cmd(v.rule)),
		mrkdwn("*Cluster*\n" + cmd(v.cluster) + v.whereSuffix()),
		mrkdwn("*Source address*\n" + source),
		mrkdwn(fmt.Sprintf("*%s*\n%d in %s", v.countLabel(), f.Count, mdEscaper.Replace(v.window()))),
		mrkdwn("*First seen*\n" + stamp(f.FirstSeen)),
		mrkdwn("*Last seen*\n" + stamp(f.LastSeen)),
	}
	if v.uaClass != "" {
		fields = append(fields, mrkdwn("*User agent class*\n"+v.uaClass))
	}
	if f.User != "" {
		u := "*User*\n" + code(f.User, 64)
		if len(f.Groups) > 0 {
			u += " in " + codeList(f.Groups, 5, 64, 600)
		}
		fields = append(fields, mrkdwn(u))
	}
	blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	if f.Description != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: new(mrkdwn("_" + md(f.Description, 500) + "_"))})
	}

	steps := v.steps()
	// Header, facts, description, divider, one block per step, context.
	fixed := len(blocks) + 1 + len(steps) + 1
	ls, dropped := v.lists()
	room := slackMaxBlocks - fixed
	if len(ls) > room {
		// Keep the forwarded-for claims, which come last.
		last := ls[len(ls)-1]
		dropped += len(ls) - room
		ls = append(ls[:room-1], last)
	}
	var notes string // closes the last evidence section
	if dropped > 0 {
		notes += fmt.Sprintf("\n_…and %d more fields_", dropped)
	}
	if f.ValuesTruncated {
		notes += "\n_More values were seen than the finding keeps._"
	}
	for i, l := range ls {
		text := fmt.Sprintf("*%s* (%s)", l.label, l.count())
		if l.note != "" {
			text += "\n_" + mdEscaper.Replace(l.note) + "_"
		}
		end := ""
		if i == len(ls)-1 {
			end = notes
		}
		text += "\n" + codeLines(l.values, c, slackMaxSectionText-utf16Len(text)-1-utf16Len(end)) + end
		blocks = append(blocks, slackBlock{Type: "section", Text: new(mrkdwn(text))})
	}

	blocks = append(blocks, slackBlock{Type: "divider"})
	for i, s := range steps {
		text := fmt.Sprintf("*%d.* %s", i+1, mdEscaper.Replace(s.text))
		if s.command != "" {
			text += "\n" + cmd(s.command)
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: new(mrkdwn(text))})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{
		mrkdwn("Finding " + cmd(v.id)),
		mrkdwn("Rule " + cmd(v.rule)),
		mrkdwn("anonwatch"),
	}})

	fallback, _ := clean(v.summary(), slackMaxFallbackRunes)
	return marshal(slackMessage{
		Text:   mdEscaper.Replace(fallback),
		Blocks: blocks,
	})
}

// codeLines lists untrusted values one per line as bullets of inline code,
// ending with how many it left out, all within room UTF-16 code units.
func codeLines(vs []string, c caps, room int) string {
	var b []byte
	used, shown := 0, 0
	for _, s := range vs[:min(len(vs), c.values)] {
		item := "• " + code(s, c.runes)
		if shown > 0 {
			item = "\n" + item
		}
		reserve := 0
		if shown+1 < len(vs) {
			reserve = utf16Len(fmt.Sprintf("\n…and %d more", len(vs)))
		}
		if used+utf16Len(item)+reserve > room {
			if shown > 0 {
				break
			}
			// As in codeList: at most 5 units a rune, 25 for the rest.
			item = "• " + code(s, max((room-reserve-30)/5, 4))
		}
		b = append(b, item...)
		used += utf16Len(item)
		shown++
	}
	if left := len(vs) - shown; left > 0 {
		b = append(b, fmt.Sprintf("\n…and %d more", left)...)
	}
	return string(b)
}

// prefixUTF16 returns the longest prefix of s, cut between runes, that
// takes at most n UTF-16 code units.
func prefixUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		w := 1
		if r > 0xffff {
			w = 2
		}
		if units+w > n {
			return s[:i]
		}
		units += w
	}
	return s
}
