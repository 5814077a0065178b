package cwlogs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
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
func parsePayload(buf []byte) (Batch, bool) {
	var b Batch
	i := skipWS(buf, 0)
	if i >= len(buf) || buf[i] != '{' {
		return Batch{}, false
	}
	i = skipWS(buf, i+1)
	if i < len(buf) && buf[i] == '}' {
		i++
	} else {
		var seen int
		for {
			key, j, ok := objectKey(buf, i, payloadKeys)
			if !ok {
				return Batch{}, false
			}
			i = j
			bit := 0
			switch string(key) {
			case "messageType":
				bit = seenMessageType
				b.MessageType, i, ok = stringValue(buf, i)
			case "owner":
				bit = seenOwner
				b.Owner, i, ok = stringValue(buf, i)
			case "logGroup":
				bit = seenLogGroup
				b.LogGroup, i, ok = stringValue(buf, i)
			case "logStream":
				bit = seenLogStream
				b.LogStream, i, ok = stringValue(buf, i)
			case "logEvents":
				bit = seenLogEvents
				b.Events, i, ok = logEvents(buf, i)
			default:
				i, ok = skipValue(buf, i, 1)
			}
			if !ok || seen&bit != 0 {
				return Batch{}, false
			}
			seen |= bit
			var done bool
			if i, done, ok = nextMember(buf, i); !ok {
				return Batch{}, false
			}
			if done {
				break
			}
		}
	}
	if skipWS(buf, i) != len(buf) {
		return Batch{}, false
	}
	// Valid: now the messages may be unescaped, in place.
	for k := range b.Events {
		raw := b.Events[k].Message
		switch {
		case raw == nil:
		case !utf8.Valid(raw):
			// U+FFFD is longer than the byte it replaces.
			m := unescape(make([]byte, 0, len(raw)), raw)
			b.Events[k].Message = m[:len(m):len(m)]
		case bytes.IndexByte(raw, '\\') >= 0:
			m := unescapeInPlace(raw)
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
	i = skipWS(buf, i+1)
	if i < len(buf) && buf[i] == ']' {
		return nil, i + 1, true
	}
	var events []LogEvent
	for {
		if i >= len(buf) || buf[i] != '{' {
			return nil, 0, false
		}
		var e LogEvent
		i = skipWS(buf, i+1)
		if i < len(buf) && buf[i] == '}' {
			i++
		} else {
			var seen int
			for {
				key, j, ok := objectKey(buf, i, eventKeys)
				if !ok {
					return nil, 0, false
				}
				i = j
				bit := 0
				switch string(key) {
				case "id":
					bit = seenID
					e.ID, i, ok = stringValue(buf, i)
				case "timestamp":
					bit = seenTimestamp
					e.Timestamp, i, ok = intValue(buf, i)
				case "message":
					bit = seenMessage
					ok = false
					if i < len(buf) && buf[i] == '"' {
						var end int
						if end, _, ok = scanString(buf, i); ok {
							e.Message = buf[i+1 : end-1]
							i = end
						}
					}
				default:
					i, ok = skipValue(buf, i, 3)
				}
				if !ok || seen&bit != 0 {
					return nil, 0, false
				}
				seen |= bit
				var done bool
				if i, done, ok = nextMember(buf, i); !ok {
					return nil, 0, false
				}
				if done {
					break
				}
			}
		}
		events = append(events, e)
		i = skipWS(buf, i)
		if i >= len(buf) {
			return nil, 0, false
		}
		switch buf[i] {
		case ',':
			i = skipWS(buf, i+1)
		case ']':
			return events, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// objectKey parses `"key" :` at buf[i] and returns the key and the index of
// its value. It refuses a key that encoding/json would match to one of
// names although it is not spelled the same: with escapes, with non-ASCII
// bytes (Unicode case folding), or in another case.
func objectKey(buf []byte, i int, names []string) ([]byte, int, bool) {
	if i >= len(buf) || buf[i] != '"' {
		return nil, 0, false
	}
	end, esc, ok := scanString(buf, i)
	if !ok || esc {
		return nil, 0, false
	}
	key := buf[i+1 : end-1]
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return nil, 0, false
		}
	}
	for _, n := range names {
		if string(key) != n && len(key) == len(n) && bytes.EqualFold(key, []byte(n)) {
			return nil, 0, false
		}
	}
	i = skipWS(buf, end)
	if i >= len(buf) || buf[i] != ':' {
		return nil, 0, false
	}
	return key, skipWS(buf, i+1), true
}

// nextMember moves past the white space and the ',' or '}' after a member:
// to the next key, or past the object when done.
func nextMember(buf []byte, i int) (next int, done, ok bool) {
	i = skipWS(buf, i)
	if i >= len(buf) {
		return 0, false, false
	}
	switch buf[i] {
	case ',':
		return skipWS(buf, i+1), false, true
	case '}':
		return i + 1, true, true
	}
	return 0, false, false
}

// stringValue decodes the string literal at buf[i]; anything else is left
// to encoding/json.
func stringValue(buf []byte, i int) (string, int, bool) {
	if i >= len(buf) || buf[i] != '"' {
		return "", 0, false
	}
	end, esc, ok := scanString(buf, i)
	if !ok {
		return "", 0, false
	}
	s := buf[i+1 : end-1]
	if esc || !utf8.Valid(s) {
		return string(unescape(make([]byte, 0, len(s)), s)), end, true
	}
	return string(s), end, true
}

// intValue decodes the integer at buf[i] as encoding/json does into an
// int64; a fraction, an exponent or an overflow is left to encoding/json.
func intValue(buf []byte, i int) (int64, int, bool) {
	if i >= len(buf) || (buf[i] != '-' && (buf[i] < '0' || buf[i] > '9')) {
		return 0, 0, false
	}
	end, ok := scanNumber(buf, i)
	if !ok {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(buf[i:end]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, end, true
}
