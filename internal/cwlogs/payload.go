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
			b.Events, end, ok = logEvents(buf, i)
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
		case keep != nil && !keep(raw):
			b.Events[k].Message, b.Events[k].Dropped = nil, true
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

// logEvents parses the array at buf[i]; each event's Message is left as the
// raw contents of its string literal, to be unescaped once the whole payload
// is known to be valid.
func logEvents(buf []byte, i int) ([]LogEvent, int, bool) {
	if i >= len(buf) || buf[i] != '[' {
		return nil, 0, false
	}
	i = jsonscan.SkipSpace(buf, i+1)
	if i < len(buf) && buf[i] == ']' {
		return nil, i + 1, true
	}
	var events []LogEvent
	for {
		var e LogEvent
		var ok bool
		i, ok = object(buf, i, eventKeys, func(key []byte, i int) (end, bit int, ok bool) {
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
		if !ok {
			return nil, 0, false
		}
		events = append(events, e)
		var done bool
		if i, done, ok = jsonscan.Next(buf, i, ']'); !ok {
			return nil, 0, false
		}
		if done {
			return events, i, true
		}
	}
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
