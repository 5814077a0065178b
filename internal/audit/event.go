// Package audit models the parts of a Kubernetes audit.k8s.io/v1 Event that
// anonwatch reads, and parses them from one CloudWatch log line.
//
// Every JSON field path the detector depends on is named in this package and
// nowhere else; the rest of the code works on the typed Event.
package audit

import (
	"encoding/json"
	"time"
)

// Stages of an audit record. Only StageResponseComplete and StagePanic are
// final: the other stages describe a request that will be logged again.
const (
	StageRequestReceived  = "RequestReceived"
	StageResponseStarted  = "ResponseStarted"
	StageResponseComplete = "ResponseComplete"
	StagePanic            = "Panic"
)

// Well-known identities.
const (
	Anonymous       = "system:anonymous"
	Unauthenticated = "system:unauthenticated"
)

// Event is one audit record, reduced to the fields rules and findings read.
type Event struct {
	AuditID    string
	Stage      string
	RequestURI string
	Verb       string
	User       User
	// SourceIPs is the list as the API server logged it: X-Forwarded-For
	// entries first (client-controlled), the connection's address last.
	SourceIPs      []string
	UserAgent      string
	ObjectRef      ObjectRef
	ResponseCode   int // 0 when the record has no responseStatus.code
	ResponseReason string
	// Decision and Reason come from the authorization.k8s.io annotations.
	Decision        string
	DecisionReason  string
	RequestReceived time.Time
	StageTimestamp  time.Time
	// RequestObject is kept raw; only rules that need it decode it.
	RequestObject json.RawMessage
	// Damage says why the line of an event Salvage recovered could not be
	// parsed whole, in the detector's words ("truncated", "too_large",
	// "malformed", "over_bound"); empty for a whole line. The caller sets
	// it, and LineSize, the length of the line in bytes as logged.
	Damage   string
	LineSize int
	// ResponseObject is the object as the request left it (the resulting
	// binding of a patch, say), logged at level RequestResponse; kept raw.
	ResponseObject json.RawMessage
}

// User is the authenticated (or anonymous) identity of the request.
type User struct {
	Username string
	Groups   []string
}

// ObjectRef names the object a request addressed.
type ObjectRef struct {
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	APIGroup    string
}
