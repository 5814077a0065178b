package cwlogs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// This file decodes the payload JSON. The reference is decodeStd, plain
// encoding/json. parsePayload is the fast path: most of a payload is long,
// escaped message strings, which encoding/json walks byte by byte through
// its state machine, twice; parsePayload validates in one tight pass and then
// unescapes each message in place, so the messages share the payload's
// buffer instead of costing an allocation each.
//
// parsePayload must decode exactly what decodeStd decodes, and
// FuzzDecodePayload checks that it does. It handles only the shape
// CloudWatch writes, and answers "fall back" for anything else: invalid JSON
// (so encoding/json writes the error), null or mistyped values, repeated
// keys, and keys that match a field only as encoding/json matches them
// (ignoring case, or after unescaping).

// wirePayload is the payload as encoding/json decodes it.
type wirePayload struct {
	MessageType string `json:"messageType"`
	Owner       string `json:"owner"`
	LogGroup    string `json:"logGroup"`
	LogStream   string `json:"logStream"`
	LogEvents   []struct {
		ID        string  `json:"id"`
		Timestamp int64   `json:"timestamp"`
		Message   message `json:"message"`
	} `json:"logEvents"`
}

// decodeStd decodes the payload with encoding/json.
func decodeStd(payload []byte) (Batch, error) {
	var w wirePayload
	if err := json.Unmarshal(payload, &w); err != nil {
		return Batch{}, err
	}
	b := Batch{MessageType: w.MessageType, Owner: w.Owner, LogGroup: w.LogGroup, LogStream: w.LogStream}
	if len(w.LogEvents) > 0 {
		b.Events = make([]LogEvent, len(w.LogEvents))
		for i, e := range w.LogEvents {
			b.Events[i] = LogEvent{ID: e.ID, Timestamp: e.Timestamp, Message: e.Message}
		}
	}
	return b, nil
}

// Bits for the keys an object has had, to refuse repeats.
const (
	seenMessageType = 1 << iota
	seenOwner
	seenLogGroup
	seenLogStream
	seenLogEvents
	seenID
	seenTimestamp
	seenMessage
)

var payloadKeys = []string{"messageType", "owner", "logGroup", "logStream", "logEvents"}
var eventKeys = []string{"id", "timestamp", "message"}

// parsePayload decodes buf, or reports false when the caller must use
// decodeStd. It modifies buf only when it succeeds.
func parsePayload(buf []byte, keep func([]byte) bool) (Batch, bool) {
	var b Batch
	i, ok := object(buf, jsonscan.SkipSpace(buf, 0), payloadKeys, func(key []byte, i int) (end, bit int, ok bool) {
		switch string(key) {
		case "messageType":
			b.MessageType, end, ok = stringValue(buf, i)
			return end, seenMessageType, ok
		case "owner":
			b.Owner, end, ok = stringValue(buf, i)
			return end, seenOwner, ok
		case "logGroup":
			b.LogGroup, end, ok = stringValue(buf, i)
			return end, seenLogGroup, ok
		case "logStream":
			b.LogStream, end, ok = stringValue(buf, i)
			return end, seenLogStream, ok
		case "logEvents":
			b.Events, end, ok = logEvents(buf, i, keep)
			return end, seenLogEvents, ok
		}
		end, ok = jsonscan.SkipValue(buf, i, 1)
		return end, 0, ok
	})
	if !ok || jsonscan.SkipSpace(buf, i) != len(buf) {
		return Batch{}, false
	}
	// Valid: now the messages may be unescaped, in place.
	for k := range b.Events {
		raw := b.Events[k].Message
		switch {
		case raw == nil:
		case b.Events[k].Dropped:
			b.Events[k].Message = nil
		case !utf8.Valid(raw):
			// U+FFFD is longer than the byte it replaces.
			m := jsonscan.AppendUnescaped(make([]byte, 0, len(raw)), raw)
			b.Events[k].Message = m[:len(m):len(m)]
		case bytes.IndexByte(raw, '\\') >= 0:
			m := jsonscan.UnescapeInPlace(raw)
			b.Events[k].Message = m[:len(m):len(m)]
		default:
			b.Events[k].Message = raw[:len(raw):len(raw)]
		}
	}
	return b, true
}

// detachKept moves the messages of b into storage of their own, out of the
// payload buffer of n bytes they were decoded in, when they are few: at
// most an eighth of it. It reports whether it did; if so, b no longer
// refers to the payload buffer, which can be reused. The bound keeps the
// copy cheap and the memory it adds, while both are live, small.
func detachKept(b *Batch, n int) bool {
	var kept int
	for _, e := range b.Events {
		kept += len(e.Message)
	}
	if kept > n/8 {
		return false
	}
	buf := make([]byte, 0, kept)
	for k, e := range b.Events {
		if e.Message != nil {
			start := len(buf)
			buf = append(buf, e.Message...)
			b.Events[k].Message = buf[start:len(buf):len(buf)]
		}
	}
	return true
}

// logEvents parses the array at buf[i]; each event's Message is left as the
// raw contents of its string literal, to be unescaped once the whole payload
// is known to be valid.
func logEvents(buf []byte, i int, keep func([]byte) bool) ([]LogEvent, int, bool) {
	if i >= len(buf) || buf[i] != '[' {
		return nil, 0, false
	}
	i = jsonscan.SkipSpace(buf, i+1)
	if i < len(buf) && buf[i] == ']' {
		return nil, i + 1, true
	}
	var events []LogEvent
	for {
		e, end, ok := cloudWatchEvent(buf, i)
		if !ok {
			e = LogEvent{}
			end, ok = object(buf, i, eventKeys, func(key []byte, i int) (end, bit int, ok bool) {
				switch string(key) {
				case "id":
					e.ID, end, ok = stringValue(buf, i)
					return end, seenID, ok
				case "timestamp":
					e.Timestamp, end, ok = intValue(buf, i)
					return end, seenTimestamp, ok
				case "message":
					if i >= len(buf) || buf[i] != '"' {
						return 0, 0, false
					}
					if end, _, ok = jsonscan.SkipString(buf, i); ok {
						e.Message = buf[i+1 : end-1]
					}
					return end, seenMessage, ok
				}
				end, ok = jsonscan.SkipValue(buf, i, 3)
				return end, 0, ok
			})
		}
		if !ok {
			return nil, 0, false
		}
		if e.Message != nil && keep != nil {
			// keep reads the whole message: now it is still in cache,
			// which measured 4% faster than a pass after the payload.
			e.Dropped = !keep(e.Message)
		}
		events = append(events, e)
		var done bool
		if i, done, ok = jsonscan.Next(buf, end, ']'); !ok {
			return nil, 0, false
		}
		if done {
			return events, i, true
		}
	}
}

// cloudWatchEvent parses the event at buf[i] when it is written as
// CloudWatch Logs writes one, {"id":"<digits>","timestamp":<integer>,
// "message":"<string>"}, and reports false for anything else, which object
// then parses. It decodes what object decodes: the id needs no unescaping,
// the keys are the field names as they are spelled, and none repeats.
// object's way (keys matched against the names, a call per member) made
// decoding a batch of synthetic EKS lines 7% slower.
func cloudWatchEvent(buf []byte, i int) (e LogEvent, end int, ok bool) {
	const idKey, timestampKey, messageKey = `{"id":"`, `","timestamp":`, `,"message":"`
	if !hasPrefixAt(buf, i, idKey) {
		return LogEvent{}, 0, false
	}
	i += len(idKey)
	j := i
	for j < len(buf) && '0' <= buf[j] && buf[j] <= '9' {
		j++
	}
	if !hasPrefixAt(buf, j, timestampKey) {
		return LogEvent{}, 0, false
	}
	id := buf[i:j]
	if e.Timestamp, j, ok = intValue(buf, j+len(timestampKey)); !ok || !hasPrefixAt(buf, j, messageKey) {
		return LogEvent{}, 0, false
	}
	i = j + len(messageKey) - 1 // the message's opening quote
	if end, _, ok = jsonscan.SkipString(buf, i); !ok || end >= len(buf) || buf[end] != '}' {
		return LogEvent{}, 0, false
	}
	e.ID, e.Message = string(id), buf[i+1:end-1]
	return e, end + 1, true
}

// hasPrefixAt reports whether buf[i:] begins with prefix.
func hasPrefixAt(buf []byte, i int, prefix string) bool {
	return len(buf)-i >= len(prefix) && string(buf[i:i+len(prefix)]) == prefix
}

// object parses the object at buf[i] == '{' and returns the index after
// it. It passes each member's key and the index of its value to member,
// which parses the value and returns its end and the key's seen bit (0 for
// a key it skips). A repeated key is refused: encoding/json decodes the
// second value over the first, which the fast path does not mimic. Keys
// are checked against names with objectKey.
func object(buf []byte, i int, names []string, member func(key []byte, i int) (end, bit int, ok bool)) (int, bool) {
	if i >= len(buf) || buf[i] != '{' {
		return 0, false
	}
	i = jsonscan.SkipSpace(buf, i+1)
	if i < len(buf) && buf[i] == '}' {
		return i + 1, true
	}
	var seen int
	for {
		key, j, ok := objectKey(buf, i, names)
		if !ok {
			return 0, false
		}
		end, bit, ok := member(key, j)
		if !ok || seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		var done bool
		if i, done, ok = jsonscan.Next(buf, end, '}'); !ok || done {
			return i, ok
		}
	}
}

// objectKey parses `"key" :` at buf[i] and returns the key and the index of
// its value. It refuses a key that encoding/json would match to one of
// names although it is not spelled the same: with escapes, with non-ASCII
// bytes (Unicode case folding), or in another case.
func objectKey(buf []byte, i int, names []string) ([]byte, int, bool) {
	key, next, plain, ok := jsonscan.Key(buf, i)
	if !ok || !plain {
		return nil, 0, false
	}
	for _, n := range names {
		if string(key) != n && len(key) == len(n) && bytes.EqualFold(key, []byte(n)) {
			return nil, 0, false
		}
	}
	return key, next, true
}

// stringValue decodes the string literal at buf[i]; anything else is left
// to encoding/json.
func stringValue(buf []byte, i int) (string, int, bool) {
	if i >= len(buf) || buf[i] != '"' {
		return "", 0, false
	}
	end, esc, ok := jsonscan.SkipString(buf, i)
	if !ok {
		return "", 0, false
	}
	return jsonscan.DecodeString(buf[i+1:end-1], esc), end, true
}

// intValue decodes the integer at buf[i] as encoding/json does into an
// int64; a fraction, an exponent or an overflow is left to encoding/json.
func intValue(buf []byte, i int) (int64, int, bool) {
	if i >= len(buf) || (buf[i] != '-' && (buf[i] < '0' || buf[i] > '9')) {
		return 0, 0, false
	}
	end, ok := jsonscan.SkipNumber(buf, i)
	if !ok {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(buf[i:end]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, end, true
}
