package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// linesPerBatch matches CloudWatch Logs' largest batch (10,000 events), so
// JSON-lines input is processed in the same shape Lambda sees.
const linesPerBatch = 10000

// expandInputs turns the command line into files: "-" stays, a folder
// becomes the .json, .jsonl and .json.gz files directly inside it, sorted.
func expandInputs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" {
			out = append(out, a)
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		// A folder means the files directly inside it: events/ holds the
		// subscription events, events/src their JSON-lines sources.
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range entries {
			if !e.IsDir() && isInputName(e.Name()) {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func isInputName(p string) bool {
	for _, ext := range []string{".json", ".jsonl", ".json.gz", ".jsonl.gz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// reader reads one input file, whatever its format, as batches.
type reader struct {
	cluster string // for input without a log group
	lim     cwlogs.Limits
	maxLine int
	keep    func(escaped []byte) bool // the detector's pre-filter, for subscription events
}

// each calls fn for every batch in r. name labels the input in batch ids
// and errors. The format is detected from the content: gzip or not, then a
// CloudWatch subscription event, a decoded subscription payload, or audit
// events (JSON lines, or one pretty-printed event).
func (rd *reader) each(name string, r io.Reader, fn func(*cwlogs.Batch) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	// The first line may be a whole subscription payload, so it may be as
	// large as the decoder's own bound.
	first, err := readLine(br, max(rd.maxLine, int(rd.lim.MaxDecompressed)))
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", name, err)
	}
	rest := io.MultiReader(bytes.NewReader(first), strings.NewReader("\n"), br)
	if isDocument(first) {
		return rd.documents(name, rest, fn)
	}
	return rd.lines(name, bufio.NewReaderSize(rest, 64<<10), fn)
}

// isDocument reports whether the first line starts a subscription event or
// payload, or is not a complete JSON value on its own (pretty-printed).
func isDocument(line []byte) bool {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || bytes.HasSuffix(line, []byte("[Truncated...]")) {
		return false
	}
	var probe struct {
		AWSLogs     json.RawMessage `json:"awslogs"`
		MessageType string          `json:"messageType"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		var syn *json.SyntaxError
		// Cut short: a document spread over lines. Other errors: a bad
		// line of a JSON-lines file, which the detector skips.
		return errors.As(err, &syn) && line[0] == '{' && bytes.Count(line, []byte("{")) > bytes.Count(line, []byte("}"))
	}
	return probe.AWSLogs != nil || probe.MessageType != ""
}

func (rd *reader) documents(name string, r io.Reader, fn func(*cwlogs.Batch) error) error {
	dec := newDocumentDecoder(r)
	var loose [][]byte
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		var probe struct {
			AWSLogs *struct {
				Data string `json:"data"`
			} `json:"awslogs"`
			MessageType string `json:"messageType"`
		}
		if data, ok := awslogsData(raw); ok {
			probe.AWSLogs = &struct {
				Data string `json:"data"`
			}{data}
		} else if err := json.Unmarshal(raw, &probe); err != nil {
			loose = append(loose, raw)
			continue
		}
		var b cwlogs.Batch
		var err error
		switch {
		case probe.AWSLogs != nil:
			b, err = cwlogs.DecodeDataKeep(probe.AWSLogs.Data, rd.lim, rd.keep)
		case probe.MessageType != "":
			b, err = cwlogs.DecodePayload(bytes.NewReader(raw), rd.lim)
		default:
			var buf bytes.Buffer
			if json.Compact(&buf, raw) == nil {
				raw = buf.Bytes()
			}
			loose = append(loose, raw)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	if len(loose) > 0 {
		b := rd.batch(name, loose)
		return fn(&b)
	}
	return nil
}

func (rd *reader) lines(name string, br *bufio.Reader, fn func(*cwlogs.Batch) error) error {
	var chunk [][]byte
	for n := 1; ; n++ {
		line, err := readLine(br, rd.maxLine)
		if len(bytes.TrimSpace(line)) > 0 {
			chunk = append(chunk, bytes.Clone(line))
		}
		if len(chunk) == linesPerBatch || (err == io.EOF && len(chunk) > 0) {
			b := rd.batch(name, chunk)
			if ferr := fn(&b); ferr != nil {
				return ferr
			}
			chunk = chunk[:0]
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: line %d: %w", name, n, err)
		}
	}
}

// batch wraps lines read from a file as a batch. The stream is the input's
// name, which log lines show. An event's id is derived from its line's
// content (eventID), as CloudWatch's own ids identify events, so the batch
// id (detect.BatchID) changes with the content: a file replayed again gives
// the same batch ids, and different lines under the same name, replayed
// into the same --table, are not taken for a batch already merged. Two
// identical lines in one batch share an id, so the detector counts the
// repeat as duplicate_id: it is the same event twice.
func (rd *reader) batch(name string, lines [][]byte) cwlogs.Batch {
	b := cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		LogStream:   name,
		Cluster:     rd.cluster,
		Events:      make([]cwlogs.LogEvent, len(lines)),
	}
	for i, l := range lines {
		b.Events[i] = cwlogs.LogEvent{ID: eventID(l), Message: l}
	}
	return b
}

// eventID is the log event id of line: the hex of the first 16 bytes of
// its SHA-256.
func eventID(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:16])
}

// readLine returns the next line without its newline. A line longer than
// max is cut to max+1 bytes (so the parser rejects it as too large) and the
// rest of it is discarded, keeping memory bounded.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line) <= max {
			room := max + 1 - len(line)
			line = append(line, frag[:min(len(frag), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, err
	}
}
