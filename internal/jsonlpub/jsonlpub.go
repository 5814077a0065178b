// Package jsonlpub publishes findings as JSON lines to a writer. Replay uses
// it in place of SNS, so a run's output is the machine-readable finding
// document, one per line, ready for jq or a file.
package jsonlpub

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

var _ detect.Publisher = (*Publisher)(nil)

// Publisher writes each finding as one line of JSON. It is safe for
// concurrent use: each finding is written with a single Write call under a
// lock, so lines from concurrent publishes never interleave.
type Publisher struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Publisher that writes to w.
func New(w io.Writer) *Publisher {
	return &Publisher{w: w}
}

// Publish writes f as one line: render.JSON's document, the same bytes an
// SQS or Lambda subscriber gets. It is printable ASCII (everything else
// \u-escaped), so an attacker's user agent cannot move a terminal's cursor
// or reorder text with bidi controls when replay output is read on screen.
func (p *Publisher) Publish(_ context.Context, f *detect.Finding) error {
	doc, err := render.JSON(f)
	if err != nil {
		return fmt.Errorf("encode finding %s: %v", f.ID, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(append(doc, '\n')); err != nil {
		return fmt.Errorf("write finding %s: %w", f.ID, err)
	}
	return nil
}
