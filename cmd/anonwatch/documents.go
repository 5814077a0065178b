package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// docKind is what a JSON document holds, as replay reads it.
type docKind int

const (
	// docAudit is anything else: an audit event, perhaps pretty-printed.
	docAudit docKind = iota
	// docEnvelope is a Lambda event from a subscription filter,
	// {"awslogs":{"data":"..."}}: a dead letter, or a sample event.
	docEnvelope
	// docPayload is a subscription payload, {"messageType":...,
	// "logEvents":[...]}: decoded from a Lambda event, or archived by
	// Firehose, compressed or not.
	docPayload
	// docEvents is what `aws logs filter-log-events` and `aws logs
	// get-log-events` print: {"events":[...], ...}.
	docEvents
)

// classify tells what the object at the start of head holds from its
// top-level keys, as far as head goes: CloudWatch, Firehose and the AWS
// CLI all write the key that tells within a few hundred bytes. sure
// reports that head told: it held that key or the whole object.
func classify(head []byte) (kind docKind, sure bool) {
	i := jsonscan.SkipSpace(head, 0)
	if i >= len(head) || head[i] != '{' {
		return docAudit, i < len(head)
	}
	if i = jsonscan.SkipSpace(head, i+1); i < len(head) && head[i] == '}' {
		return docAudit, true
	}
	for {
		key, next, _, ok := jsonscan.Key(head, i)
		if !ok || next >= len(head) {
			return docAudit, false
		}
		switch c := head[next]; string(key) {
		case "awslogs":
			if c != 'n' { // null, as encoding/json reads it, is no event
				return docEnvelope, true
			}
		case "messageType":
			if c == '"' && next+1 < len(head) && head[next+1] != '"' {
				return docPayload, true
			}
		case "events":
			if c == '[' {
				return docEvents, true
			}
		}
		end, ok := jsonscan.SkipValue(head, next, 1)
		if !ok {
			return docAudit, false
		}
		var done bool
		if i, done, ok = jsonscan.Next(head, end, '}'); !ok || done {
			return docAudit, done
		}
	}
}

// peekKind classifies the document next in br, looking no further into it
// than it must (up to sniffSize): moving what is buffered costs as much as
// what is looked at, for each of many small documents.
func peekKind(br *bufio.Reader) docKind {
	for n := 4 << 10; ; n = min(2*n, sniffSize) {
		head, err := br.Peek(n)
		if kind, sure := classify(head); sure || err != nil || n == sniffSize {
			return kind
		}
	}
}

// documents reads JSON documents, back to back with or without white space
// between them. A Lambda event is a delivery the function received (or
// would have), replayed as that batch, so that its batch id is the
// function's and --table counts it once; the log events of the others go
// to bt.
func (rd *reader) documents(name string, br *bufio.Reader, bt *batcher, fn func(*cwlogs.Batch) error) error {
	for n := 1; ; n++ {
		c, err := skipSpace(br)
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if c != '{' && c != '[' {
			return fmt.Errorf("document %d: found %q where a JSON document starts", n, c)
		}
		if err := rd.document(name, br, peekKind(br), bt, fn); err != nil {
			return fmt.Errorf("document %d: %w", n, err)
		}
	}
}

// document reads the document of kind at br: a Lambda event to fn, the log
// events of anything else to bt.
func (rd *reader) document(name string, br *bufio.Reader, kind docKind, bt *batcher, fn func(*cwlogs.Batch) error) error {
	switch kind {
	case docEnvelope:
		// Read whole, as cwlogs decodes it, but no longer than the base64
		// of the largest gzip stream it accepts.
		limit := base64.StdEncoding.EncodedLen(int(cmp.Or(rd.lim.MaxCompressed, cwlogs.DefaultLimits.MaxCompressed))) + bufSize
		raw, over, err := readValue(br, limit)
		if err != nil {
			return err
		}
		if over {
			return fmt.Errorf("%w: a Lambda event longer than %d bytes", cwlogs.ErrTooLarge, limit)
		}
		var b cwlogs.Batch
		if data, ok := awslogsData(raw); ok {
			b, err = cwlogs.DecodeDataKeep(data, rd.lim, rd.keep)
		} else {
			b, err = cwlogs.DecodeEvent(raw, rd.lim)
		}
		if err != nil {
			return err
		}
		if err := bt.flush(); err != nil {
			return err
		}
		return fn(&b)
	case docPayload:
		b, err := cwlogs.DecodePayload(&valueReader{br: br}, rd.lim)
		if err != nil {
			return err
		}
		if b.MessageType == cwlogs.ControlMessage {
			return fn(&b)
		}
		o := origin{owner: b.Owner, logGroup: b.LogGroup, logStream: b.LogStream, cluster: b.Cluster}
		if b.LogGroup == "" {
			o.cluster = rd.cluster
		}
		if b.LogStream == "" {
			o.logStream = fileStream(name)
		}
		for _, e := range b.Events {
			if err := bt.addCopy(o, e); err != nil {
				return err
			}
		}
		return nil
	case docEvents:
		return rd.logEvents(name, br, bt)
	}
	raw, over, err := readValue(br, rd.maxLine)
	if err != nil {
		return err
	}
	if !over {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			raw = buf.Bytes()
		}
	}
	return bt.add(origin{cluster: rd.cluster, logStream: fileStream(name)}, cwlogs.LogEvent{ID: eventID(raw), Message: raw})
}

// maxLogEvent bounds one log event the AWS CLI prints: CloudWatch Logs
// keeps at most 1 MB of message, which JSON escapes to at most six times
// as much (\u0001 for one byte).
const maxLogEvent = 6<<20 + bufSize

// cliEvent is a log event as `aws logs filter-log-events` prints it;
// get-log-events prints neither logStreamName nor eventId.
type cliEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	EventID       string `json:"eventId"`
}

// logEvents reads the output of filter-log-events or get-log-events: the
// events, one at a time, whatever the size of the document (the CLI prints
// every page in one). Neither names the log group, so the cluster is
// --cluster's; get-log-events does not name the log stream either, which
// is then the input's file name (fileStream), as for JSON lines. An event without an id
// (get-log-events) takes the id of its line as an export writes it.
func (rd *reader) logEvents(name string, br *bufio.Reader, bt *batcher) error {
	return members(br, func(key string) error {
		if key != "events" {
			return skipValue(br)
		}
		return elements(br, func() error {
			raw, over, err := readValue(br, maxLogEvent)
			if err != nil {
				return err
			}
			if over {
				return fmt.Errorf("%w: a log event longer than %d bytes", cwlogs.ErrTooLarge, maxLogEvent)
			}
			var ev cliEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("log event: %w", err)
			}
			o := origin{cluster: rd.cluster, logStream: ev.LogStreamName}
			if o.logStream == "" {
				o.logStream = fileStream(name)
			}
			id := ev.EventID
			if id == "" {
				id = eventID(exportLine(ev.Timestamp, ev.Message))
			}
			return bt.add(o, cwlogs.LogEvent{ID: id, Timestamp: ev.Timestamp, Message: []byte(ev.Message)})
		})
	})
}
