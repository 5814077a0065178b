package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// linesPerBatch matches CloudWatch Logs' largest batch (10,000 events), so
// JSON-lines input is processed in the same shape Lambda sees.
const linesPerBatch = 10000

// expandInputs turns the command line into files: "-" stays, a folder
// becomes the .json, .jsonl and .gz files directly inside it, sorted.
func expandInputs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" || isS3(a) {
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
		// subscription events, events/src their JSON-lines sources, and
		// an export's folder for a log stream its 000000.gz, 000001.gz...
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
		if len(found) == 0 {
			// An export synced whole is folders of folders: say so rather
			// than replay nothing and exit 0.
			return nil, fmt.Errorf("%s: no .json, .jsonl or .gz file directly inside; subfolders are not read, so name their files (an export: %s)", a, filepath.Join(a, "*", "*", "*.gz"))
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func isInputName(p string) bool {
	for _, ext := range []string{".json", ".jsonl", ".gz"} {
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

// Sizes of the read buffers. sniffSize is how much of a file, and of each
// JSON document in it, is looked at to tell what it is: CloudWatch and the
// AWS CLI write the keys that tell (messageType, awslogs, events) within
// the first few hundred bytes.
const (
	bufSize   = 64 << 10
	sniffSize = 1 << 20
)

// maxGzipLayers bounds the gzip streams nested in one another that replay
// opens: Firehose compresses records that CloudWatch compressed, so two.
const maxGzipLayers = 3

// each calls fn for every batch in r. name labels the input in batch ids
// and errors. The format is detected from the content: gzip or not (and
// gzip in gzip), then a CloudWatch Logs export (a timestamp before each
// line), JSON documents (subscription events, subscription payloads back
// to back as Firehose archives them, the output of filter-log-events or
// get-log-events, pretty-printed audit events), or else JSON lines of audit
// events, which may hold objects back to back (Firehose's message
// extraction).
//
// The input is read as a stream: what it costs is a batch, not the file.
// A Lambda event is replayed as the delivery it was; the log events of
// everything else are gathered into batches of one log stream each (see
// batcher), as CloudWatch delivers them.
func (rd *reader) each(name string, r io.Reader, fn func(*cwlogs.Batch) error) error {
	err := rd.read(name, r, func(b *cwlogs.Batch) error {
		if err := fn(b); err != nil {
			return &fnError{err}
		}
		return nil
	})
	if fe := (*fnError)(nil); errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// fnError carries an error from each's fn out through the readers, to be
// returned as fn returned it.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

func (rd *reader) read(name string, r io.Reader, fn func(*cwlogs.Batch) error) error {
	br := bufio.NewReaderSize(r, bufSize)
	for layer := 0; layer < maxGzipLayers && isGzip(br); layer++ {
		zr, err := newGunzip(br)
		if err != nil {
			return err
		}
		br = bufio.NewReaderSize(zr, bufSize)
	}
	br = bufio.NewReaderSize(br, sniffSize)
	head, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF {
		return err
	}
	bt := &batcher{fn: fn, maxBytes: int(cmp.Or(max(rd.lim.MaxDecompressed, 0), cwlogs.DefaultLimits.MaxDecompressed))}
	switch sniff(head) {
	case formatExport:
		err = rd.export(name, br, bt)
	case formatDocuments:
		err = rd.documents(name, br, bt, fn)
	default:
		err = rd.lines(name, br, bt)
	}
	if err != nil {
		return err
	}
	return bt.flush()
}

// format is the shape of an input, once decompressed.
type format int

const (
	// formatLines is JSON lines of audit events, a line possibly holding
	// several objects back to back.
	formatLines format = iota
	// formatDocuments is JSON documents back to back, with or without
	// white space between them.
	formatDocuments
	// formatExport is a CloudWatch Logs export to S3.
	formatExport
)

// sniff tells the format from the head of an input: an export when it
// starts with an export's timestamp; documents when its first object is a
// subscription event, a subscription payload or log events from the CLI,
// or goes on past its first line (pretty-printed) that was not cut short;
// otherwise lines.
func sniff(head []byte) format {
	head = head[jsonscan.SkipSpace(head, 0):]
	switch {
	case len(head) == 0:
		return formatLines
	case hasExportStamp(head):
		return formatExport
	case head[0] != '{':
		return formatLines
	}
	if kind, _ := classify(head); kind != docAudit {
		return formatDocuments
	}
	first := head
	nl := bytes.IndexByte(head, '\n')
	if nl >= 0 {
		first = head[:nl]
	}
	var sc valueScan
	if sc.scan(first) >= 0 || nl < 0 {
		// The object ends on its line, or the line is longer than sniff
		// looks: JSON lines.
		return formatLines
	}
	// A line cut inside a string, or marked by CloudWatch as cut, is a
	// damaged JSON line; an object that simply goes on is pretty-printed.
	if sc.inStr || audit.MarkedTruncated(first) {
		return formatLines
	}
	return formatDocuments
}

func (rd *reader) lines(name string, br *bufio.Reader, bt *batcher) error {
	o := origin{cluster: rd.cluster, logStream: fileStream(name)}
	for n := 1; ; n++ {
		rec, err := readRecord(br, rd.maxLine)
		if len(bytes.TrimSpace(rec)) > 0 {
			if aerr := bt.add(o, cwlogs.LogEvent{ID: eventID(rec), Message: rec}); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
}

// eventID is the log event id of line: the hex of the first 16 bytes of
// its SHA-256. Input that carries no ids (JSON lines, an export,
// get-log-events) takes ids from content, as CloudWatch's own ids identify
// events, so a batch's id (detect.BatchID) changes with its content: a
// file replayed again gives the same batch ids, and different lines under
// the same name, replayed into the same --table, are not taken for a batch
// already merged. Two identical lines in one batch share an id, so the
// detector counts the repeat as duplicate_id: it is the same event twice.
func eventID(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:16])
}

// readLine returns the next line, in new bytes, without its newline. A
// line longer than max is cut to max+1 bytes (so the parser rejects it as
// too large) and the rest of it is discarded, keeping memory bounded.
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

// readRecord returns the next record of JSON lines, in new bytes, without
// its line end: a line, as readLine returns it, unless the line holds JSON
// objects back to back, as Firehose writes the messages it extracts when no
// delimiter is set, and then the next of them. It splits a line only where
// an object ends and, white space aside, another begins, so that anything
// else, a damaged line included, stays whole. A record longer than max is
// cut to max+1 bytes and the rest of it discarded, keeping memory bounded.
func readRecord(br *bufio.Reader, max int) ([]byte, error) {
	var (
		rec []byte
		// mode is 0 before the record's first byte that is not white
		// space, '{' in an object and after it, and 'l' in a record that
		// goes to its line's end.
		mode   byte
		sc     = valueScan{lines: true}
		closed bool // the object has ended; only white space since
	)
	keep := func(p []byte) {
		if room := max + 1 - len(rec); room > 0 {
			rec = append(rec, p[:min(len(p), room)]...)
		}
	}
	for {
		buf, err := buffered(br)
		if err != nil {
			return bytes.TrimRight(rec, "\r\n"), err
		}
		if mode == 0 && len(rec) == 0 {
			// Most lines hold one object: a line with no object's end
			// followed by another's start is a record as it stands, with
			// no need to follow its strings. Looking for its end no
			// further than a usual line keeps objects back to back on
			// one long line from being searched again for each.
			if nl := bytes.IndexByte(buf[:min(len(buf), 16<<10)], '\n'); nl >= 0 && !mayJoin(buf[:nl]) {
				keep(buf[:nl])
				br.Discard(nl + 1)
				return bytes.TrimRight(rec, "\r\n"), nil
			}
		}
		// end is where the record ends in buf; nl, that a newline does.
		end, nl := -1, false
	scan:
		for i := 0; i < len(buf); {
			switch {
			case mode == 0:
				switch buf[i] {
				case ' ', '\t', '\r':
					i++
				case '\n':
					end, nl = i, true
					break scan
				case '{':
					mode = '{'
				default:
					mode = 'l'
				}
			case mode == 'l':
				if k := bytes.IndexByte(buf[i:], '\n'); k >= 0 {
					end, nl = i+k, true
				}
				break scan
			case !closed:
				e := sc.scan(buf[i:])
				switch {
				case e < 0:
					break scan
				case sc.newline:
					end, nl = i+e, true
					break scan
				}
				i += e
				closed = true
			default:
				switch buf[i] {
				case ' ', '\t', '\r':
					i++
				case '\n':
					end, nl = i, true
					break scan
				case '{':
					end = i
					break scan
				default:
					mode = 'l'
				}
			}
		}
		if end < 0 {
			keep(buf)
			br.Discard(len(buf))
			continue
		}
		keep(buf[:end])
		if nl {
			br.Discard(end + 1)
			return bytes.TrimRight(rec, "\r\n"), nil
		}
		br.Discard(end)
		return bytes.TrimRight(rec, " \t\r"), nil
	}
}

// mayJoin reports whether line may hold JSON objects back to back: whether
// a '}' is followed, white space aside, by a '{'.
func mayJoin(line []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(line[i:], '}')
		if j < 0 {
			return false
		}
		i += j + 1
		k := i
		for k < len(line) && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r') {
			k++
		}
		if k < len(line) && line[k] == '{' {
			return true
		}
	}
}

// isGzip reports whether br starts with gzip's magic number.
func isGzip(br *bufio.Reader) bool {
	magic, _ := br.Peek(2)
	return len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

// gunzip reads a gzip stream of one or more members, as gzip.Reader does,
// and also when white space separates the members: Firehose's
// AppendDelimiterToRecord processor writes a newline after each record,
// and each record CloudWatch sends Firehose is a gzip member.
type gunzip struct {
	src *bufio.Reader
	zr  *gzip.Reader
}

func newGunzip(src *bufio.Reader) (*gunzip, error) {
	zr, err := gzip.NewReader(src)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return &gunzip{src: src, zr: zr}, nil
}

func (g *gunzip) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		// The member ended: another may follow, after white space.
		if _, err := skipSpace(g.src); err != nil {
			return 0, err // io.EOF: the last member ended the stream
		}
		if !isGzip(g.src) {
			return 0, errors.New("gzip: data after a member is not another member")
		}
		if err := g.zr.Reset(g.src); err != nil {
			return 0, err
		}
		g.zr.Multistream(false)
	}
}
