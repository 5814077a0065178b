package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/jsonlpub"
	"github.com/anonwatch/anonwatch/internal/render"
)

// formats are the values of replay's --format, as usage lists them.
const formats = "json, email, chat or slack"

// separator goes between two findings in the e-mail and chat previews,
// which span many lines: a line that no rendering starts with.
const separator = "\n" + "=======================================================================" + "\n\n"

// newPublisher returns the publisher that prints each finding to w in
// format: json, the finding's document, one per line, as SQS and Lambda
// subscribers get it; email, chat or slack, what people read (see
// preview).
func newPublisher(format string, w io.Writer) (detect.Publisher, error) {
	switch format {
	case "json":
		return jsonlpub.New(w), nil
	case "email", "chat", "slack":
		return &preview{format: format, w: w}, nil
	}
	return nil, fmt.Errorf("unknown --format %q (want %s)", format, formats)
}

// preview prints each finding as a subscriber of the findings topic would
// receive it, taken from the very SNS message the detector publishes
// (render.SNS), so a finding too large for SNS shows cut as delivered:
//
//   - email: the subject and plain-text body of the "email" protocol;
//   - chat: the Amazon Q Developer notification of the "https" protocol,
//     indented;
//   - slack: the Block Kit message the slack-notifier function posts for
//     the finding document it gets over "lambda", one per line.
//
// It is safe for concurrent use, like jsonlpub: each finding is written
// with one Write under the lock.
type preview struct {
	format string

	mu sync.Mutex
	w  io.Writer
	n  int // findings written
}

func (p *preview) Publish(_ context.Context, f *detect.Finding) error {
	out, err := p.rendering(f)
	if err != nil {
		return fmt.Errorf("render finding %s as %s: %v", f.ID, p.format, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n > 0 && p.format != "slack" {
		out = separator + out
	}
	if _, err := io.WriteString(p.w, out); err != nil {
		return fmt.Errorf("write finding %s: %w", f.ID, err)
	}
	p.n++
	return nil
}

// rendering returns f in p's format, ending in a newline.
func (p *preview) rendering(f *detect.Finding) (string, error) {
	m, err := render.SNS(f)
	if err != nil {
		return "", err
	}
	switch p.format {
	case "email":
		body, err := m.For("email")
		if err != nil {
			return "", err
		}
		return "Subject: " + m.Subject + "\n\n" + strings.TrimSuffix(body, "\n") + "\n", nil
	case "chat":
		n, err := m.For("https")
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(n), "", "  "); err != nil {
			return "", fmt.Errorf("chat notification: %v", err)
		}
		return b.String() + "\n", nil
	case "slack":
		// What the notifier does with its delivery: decode the finding
		// document, then render it.
		doc, err := m.For("lambda")
		if err != nil {
			return "", err
		}
		var got detect.Finding
		if err := json.Unmarshal([]byte(doc), &got); err != nil {
			return "", fmt.Errorf("finding document: %v", err)
		}
		b, err := render.SlackBlocks(&got)
		if err != nil {
			return "", err
		}
		return string(b) + "\n", nil
	}
	return "", fmt.Errorf("unknown format %q", p.format)
}
