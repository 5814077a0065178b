package cwlogs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// This file holds the reference decoder, decodeStd: plain encoding/json,
// which also decodes, whole, a payload the streaming decoder (stream.go)
// does not parse, as long as it fits in Limits.MaxDecompressed. The
// streaming decoder must decode exactly what decodeStd decodes, budget
// applied (applyBudget), and FuzzDecodePayload checks that it does. It
// handles only the shape CloudWatch writes and leaves anything else to
// decodeStd: invalid JSON (so encoding/json writes the error), null or
// mistyped values, repeated keys, and keys that match a field only as
// encoding/json matches them (ignoring case, or after unescaping).

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

// applyBudget charges b's events against budget as the streaming decoder
// does, in order: each event's overhead and id, then its message, which is
// kept whole if it fits in what messages may still take (see shares) and
// cut to a prefix if not. It refuses the batch when the events alone
// exceed budget. A cut message is copied, so that the whole one can be
// collected.
func applyBudget(b *Batch, budget int64) error {
	msg, long := shares(budget)
	var charged int64
	for i := range b.Events {
		e := &b.Events[i]
		if charged += eventOverhead + int64(len(e.ID)); charged > budget {
			return tooManyEvents(budget)
		}
		e.Size = len(e.Message)
		left := max(msg-charged, 0)
		if e.Size > CutPrefix {
			left = max(long-charged, 0)
		}
		if int64(e.Size) <= left {
			charged += int64(e.Size)
			continue
		}
		p := int(min(CutPrefix, max(msg-charged, 0)/64))
		for p > 0 && !utf8.RuneStart(e.Message[p]) {
			p--
		}
		e.Message, e.Cut = append([]byte{}, e.Message[:p]...), true
		charged += int64(p)
	}
	return nil
}

// maxEvents returns an upper bound on the number of log events encoding/json
// would decode from payload: the elements of the arrays that are values of
// its top-level members, any of which encoding/json might take for
// logEvents. It returns 0 for a payload that is not a valid object.
func maxEvents(payload []byte) int {
	i := jsonscan.SkipSpace(payload, 0)
	if i >= len(payload) || payload[i] != '{' {
		return 0
	}
	if i = jsonscan.SkipSpace(payload, i+1); i < len(payload) && payload[i] == '}' {
		return 0
	}
	n := 0
	for {
		_, next, _, ok := jsonscan.Key(payload, i)
		if !ok || next >= len(payload) {
			return 0
		}
		if i = next; payload[i] == '[' {
			if i = jsonscan.SkipSpace(payload, i+1); i < len(payload) && payload[i] == ']' {
				i++
			} else {
				for done := false; !done; n++ {
					if i, ok = jsonscan.SkipValue(payload, i, 2); !ok {
						return 0
					}
					if i, done, ok = jsonscan.Next(payload, i, ']'); !ok {
						return 0
					}
				}
			}
		} else if i, ok = jsonscan.SkipValue(payload, i, 1); !ok {
			return 0
		}
		var done bool
		if i, done, ok = jsonscan.Next(payload, i, '}'); !ok {
			return 0
		}
		if done {
			return n
		}
	}
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

// hasPrefixAt reports whether buf[i:] begins with prefix.
func hasPrefixAt(buf []byte, i int, prefix string) bool {
	return len(buf)-i >= len(prefix) && string(buf[i:i+len(prefix)]) == prefix
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
