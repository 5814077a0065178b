// Package jsonlpub publishes findings as JSON lines to a writer. Replay uses
// it in place of SNS, so a run's output is the machine-readable finding
// document, one per line, ready for jq or a file.
package jsonlpub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/anonwatch/anonwatch/internal/detect"
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

// Publish writes f as a newline-terminated JSON object. HTML characters are
// not escaped, so a user agent such as "<script>" reads as sent; control
// characters and U+2028/U+2029 are still escaped by encoding/json, so an
// attacker-chosen value cannot break the line.
//
// The document decodes to the same value as render.JSON, which SNS
// subscribers get, with two differences: it is never cut to fit SNS's size
// limit, and characters outside ASCII (bidi controls included) are written
// as they are, where render.JSON escapes them.
func (p *Publisher) Publish(_ context.Context, f *detect.Finding) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil { // Encode appends the newline
		return fmt.Errorf("encode finding %s: %v", f.ID, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write finding %s: %w", f.ID, err)
	}
	return nil
}
