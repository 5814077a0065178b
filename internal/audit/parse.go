package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxSize is the largest line Parse accepts by default: 1 MiB, the
// largest log event CloudWatch Logs stores (PutLogEvents: "Each log event can
// be no larger than 1 MB"; 256 KB until 2025). PutLogEvents refuses a longer
// event; CloudWatch's agent cuts a longer line and marks it "[Truncated...]".
const DefaultMaxSize = 1 << 20

// Sentinel errors, for errors.Is. Every error Parse returns wraps exactly one.
var (
	// ErrTruncated marks a line CloudWatch cut short; the JSON is
	// incomplete and its fields cannot be trusted.
	ErrTruncated = errors.New("audit: line truncated by CloudWatch")
	// ErrTooLarge marks a line longer than Parse's maxSize.
	ErrTooLarge = errors.New("audit: line exceeds size limit")
	// ErrMalformed marks a line that is not JSON, or an audit event with
	// a field of the wrong type.
	ErrMalformed = errors.New("audit: malformed audit event")
	// ErrNotAudit marks valid JSON that is not an audit event, such as
	// another component's log line in the same log group.
	ErrNotAudit = errors.New("audit: not an audit.k8s.io event")
)

// truncatedMarker is what CloudWatch's agent appends to a line it cut.
const truncatedMarker = "[Truncated...]"

// MarkedTruncated reports whether line ends, white space aside, with the
// mark CloudWatch's agent appends to a line it cut. An audit line
// kube-apiserver wrote whole ends with "}", so no client can make one
// carry the mark. It holds for a line still JSON-escaped too: the mark has
// no character an encoder escapes.
func MarkedTruncated(line []byte) bool {
	return bytes.HasSuffix(bytes.TrimRight(line, " \t\r\n"), []byte(truncatedMarker))
}

// wireEvent names every JSON field path Parse reads. Fields it does not name
// are scanned past without being allocated.
type wireEvent struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	SourceIPs []string `json:"sourceIPs"`
	UserAgent string   `json:"userAgent"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"responseStatus"`
	// A struct rather than a map: only two of the annotations are read,
	// and a map would allocate every key and value of all of them.
	Annotations struct {
		Decision string `json:"authorization.k8s.io/decision"`
		Reason   string `json:"authorization.k8s.io/reason"`
	} `json:"annotations"`
	RequestReceivedTimestamp string          `json:"requestReceivedTimestamp"`
	StageTimestamp           string          `json:"stageTimestamp"`
	RequestObject            json.RawMessage `json:"requestObject"`
	ResponseObject           json.RawMessage `json:"responseObject"`
}

// Parse decodes one log line into an Event. maxSize bounds the line's length
// in bytes; zero or less means DefaultMaxSize.
//
// Parse reports, in this order: ErrTooLarge for a line longer than maxSize;
// ErrTruncated for a line ending in "[Truncated...]" (ignoring trailing
// white space); ErrMalformed for a line that is not JSON, including JSON
// nested deeper than encoding/json's limit of 10000 levels; ErrNotAudit for
// JSON whose kind is not "Event" or whose apiVersion is not audit.k8s.io/v1
// or /v1beta1; and ErrMalformed for an audit event with a field of the wrong
// type.
//
// Lenient on purpose:
//   - Strings keep invalid UTF-8 as U+FFFD, as encoding/json decodes them;
//     RequestObject and ResponseObject, kept raw, keep the original bytes.
//   - Timestamps are RFC 3339 with optional fractional seconds, or
//     "2006-01-02 15:04:05.999999999" read as UTC. A missing or unreadable
//     requestReceivedTimestamp falls back to stageTimestamp, and one that is
//     also missing or unreadable leaves RequestReceived zero; an unreadable
//     stageTimestamp leaves StageTimestamp zero. The event is still
//     returned: a bad clock field should not hide a request.
//   - A requestObject or responseObject of null is treated as absent.
//
// The Event does not alias line.
func Parse(line []byte, maxSize int) (Event, error) {
	return parse(line, maxSize, true)
}

// parse is Parse; fast false decodes with encoding/json alone, the
// reference the fast path is tested against.
func parse(line []byte, maxSize int, fast bool) (Event, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(line) > maxSize {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(line), maxSize)
	}
	if MarkedTruncated(line) {
		return Event{}, ErrTruncated
	}
	var w wireEvent
	var typeErr error
	ok := false
	if fast {
		typeErr, ok = parseFast(line, &w)
	}
	if !ok {
		w = wireEvent{}
		var err error
		if typeErr, err = decodeStd(line, &w); err != nil {
			return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return fromWire(&w, typeErr)
}

// decodeStd decodes line with encoding/json. It returns a type error, after
// which encoding/json has still decoded the other fields, apart from any
// other error.
func decodeStd(line []byte, w *wireEvent) (typeErr, err error) {
	err = json.Unmarshal(line, w)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return err, nil
	}
	return nil, err
}

// fromWire checks that w is an audit event and converts it. A type error
// in a line that is not an audit event at all (another program's JSON that
// shares a field name) reports ErrNotAudit rather than ErrMalformed.
func fromWire(w *wireEvent, typeErr error) (Event, error) {
	if w.Kind != "Event" || (w.APIVersion != "audit.k8s.io/v1" && w.APIVersion != "audit.k8s.io/v1beta1") {
		return Event{}, fmt.Errorf("%w: kind %q, apiVersion %q", ErrNotAudit, w.Kind, w.APIVersion)
	}
	if typeErr != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, typeErr)
	}
	e := Event{
		AuditID:    w.AuditID,
		Stage:      w.Stage,
		RequestURI: w.RequestURI,
		Verb:       w.Verb,
		User:       User{Username: w.User.Username, Groups: w.User.Groups},
		SourceIPs:  w.SourceIPs,
		UserAgent:  w.UserAgent,
		ObjectRef: ObjectRef{
			Resource:    w.ObjectRef.Resource,
			Subresource: w.ObjectRef.Subresource,
			Namespace:   w.ObjectRef.Namespace,
			Name:        w.ObjectRef.Name,
			APIGroup:    w.ObjectRef.APIGroup,
		},
		ResponseCode:   w.ResponseStatus.Code,
		ResponseReason: w.ResponseStatus.Reason,
		Decision:       w.Annotations.Decision,
		DecisionReason: w.Annotations.Reason,
		RequestObject:  w.RequestObject,
		ResponseObject: w.ResponseObject,
	}
	if string(e.RequestObject) == "null" {
		e.RequestObject = nil
	}
	if string(e.ResponseObject) == "null" {
		e.ResponseObject = nil
	}
	e.StageTimestamp, _ = parseTime(w.StageTimestamp)
	var ok bool
	if e.RequestReceived, ok = parseTime(w.RequestReceivedTimestamp); !ok {
		e.RequestReceived = e.StageTimestamp
	}
	return e, nil
}

// spaceLayout is how Panther, among others, writes audit timestamps.
const spaceLayout = "2006-01-02 15:04:05.999999999"

// parseTime reads an audit timestamp as UTC. It reports false for an empty or
// unreadable one.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	layout := time.RFC3339Nano
	if strings.IndexByte(s, 'T') < 0 {
		layout = spaceLayout
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// Final reports whether e is the last record of its request: stage
// ResponseComplete, or Panic.
func (e *Event) Final() bool {
	return e.Stage == StageResponseComplete || e.Stage == StagePanic
}

// LongRunning reports whether kube-apiserver serves the request as
// long-running, by its BasicLongRunningRequestCheck: the verbs watch and
// proxy, and the subresources attach, exec, log, portforward and proxy.
// Such a request is audited at ResponseStarted when its response begins
// and at ResponseComplete only when it ends, which for a watch with a
// distant timeoutSeconds or an open exec session is whenever the client
// hangs up. Both fields are the server's reading of the request, the same
// in both records.
func (e *Event) LongRunning() bool {
	switch e.Verb {
	case "watch", "proxy":
		return true
	}
	switch e.ObjectRef.Subresource {
	case "attach", "exec", "log", "portforward", "proxy":
		return true
	}
	return false
}

// Counted reports whether the detector counts this record of its request:
//   - a final record (ResponseComplete, Panic);
//   - a ResponseStarted record of a long-running request, which may be the
//     only record for hours; the detector counts such a request once
//     whichever of its records it sees (see detect's request identity);
//   - a ResponseStarted record with code 401: kube-apiserver audits a
//     failed authentication once, at that stage, and never completes it.
//
// RequestReceived records, and ResponseStarted records of other requests,
// describe a request that is logged again and are not counted.
func (e *Event) Counted() bool {
	switch e.Stage {
	case StageResponseComplete, StagePanic:
		return true
	case StageResponseStarted:
		return e.LongRunning() || e.ResponseCode == 401
	}
	return false
}
