package audit

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// Salvage recovers what it can of a line Parse refused as truncated, too
// large or malformed: an audit event cut short (by CloudWatch's agent,
// kube-apiserver's own bounds or a delivery bound), padded past a limit, or
// damaged in the middle. An attacker pads the request URI or the Audit-ID
// header (auditID comes before user and sourceIPs) so that the fields a
// rule needs are lost; what survived still says where the line came from.
//
// It reads the top-level members in order and keeps every member that is
// whole, decoded as Parse decodes it; of the first member that is not, it
// keeps the start of auditID, requestURI or userAgent (the fields a client
// pads), never of anything else: a sourceIPs list cut short would make an
// X-Forwarded-For entry look like the connection's address, and a cut user
// would be a name the API server did not finish writing. Nothing after the
// first broken member is read.
//
// ok reports whether the surviving bytes show an audit event: kind "Event"
// and an audit.k8s.io apiVersion, the first members kube-apiserver writes.
// The Event is returned either way.
func Salvage(line []byte) (ev Event, ok bool) {
	line = bytes.TrimRight(line, " \t\r\n")
	line = bytes.TrimSuffix(line, []byte(truncatedMarker))
	i := jsonscan.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return Event{}, false
	}
	i = jsonscan.SkipSpace(line, i+1)
	whole := i // end of the last whole member
	var cutKey string
	var cutAt int
	for i < len(line) {
		key, j, _, kok := jsonscan.Key(line, i)
		if !kok {
			break
		}
		end, vok := jsonscan.SkipValue(line, j, 1)
		if !vok {
			cutKey, cutAt = string(key), j
			break
		}
		whole = end
		next, done, nok := jsonscan.Next(line, end, '}')
		if !nok || done {
			break
		}
		i = next
	}
	// The whole members, closed into an object, decode as Parse would.
	var w wireEvent
	prefix := make([]byte, 0, whole+2)
	prefix = append(prefix, line[:whole]...)
	prefix = bytes.TrimRight(prefix, " \t\r\n,")
	prefix = append(prefix, '}')
	// A member of the wrong type leaves its field empty; the others are
	// decoded all the same.
	if _, err := decodeStd(prefix, &w); err != nil {
		w = wireEvent{}
	}
	if cutKey != "" {
		if s, sok := partialString(line, cutAt); sok {
			switch cutKey {
			case "auditID":
				w.AuditID = s
			case "requestURI":
				w.RequestURI = s
			case "userAgent":
				w.UserAgent = s
			}
		}
	}
	ok = w.Kind == "Event" && strings.HasPrefix(w.APIVersion, "audit.k8s.io/")
	e, err := fromWire(&w, nil)
	if err != nil {
		// Not an audit event as far as its members show; keep what
		// was read for the caller's own judgement.
		w.Kind, w.APIVersion = "Event", "audit.k8s.io/v1"
		e, _ = fromWire(&w, nil)
	}
	return e, ok
}

// partialPrefix bounds the start of a cut string that Salvage keeps: far
// more than a finding shows (detect.StoredValueLen), far less than a padded
// value.
const partialPrefix = 4 << 10

// partialString decodes the start of a string literal at line[i] that runs
// to the end of line without its closing quote, at most partialPrefix bytes
// of it. It drops an escape cut in the middle. It reports false when
// line[i] does not start a string.
func partialString(line []byte, i int) (string, bool) {
	if i >= len(line) || line[i] != '"' {
		return "", false
	}
	body := line[i+1:]
	if len(body) > partialPrefix {
		body = body[:partialPrefix]
	}
	// One buffer for every try: each closes the literal one byte
	// earlier, overwriting only a byte the later, shorter tries don't read.
	lit := make([]byte, 0, len(body)+2)
	lit = append(append(lit, '"'), body...)
	for cut := len(body); cut >= 0 && cut >= len(body)-6; cut-- {
		var s string
		if json.Unmarshal(append(lit[:1+cut], '"'), &s) == nil {
			return s, true
		}
	}
	return "", false
}
