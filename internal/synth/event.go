package synth

import "time"

// event is the wire form of an audit.k8s.io/v1 Event, in the field order the
// API server writes. It is separate from audit.Event on purpose: synth writes
// what a cluster writes, including the fields anonwatch never reads.
type event struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     user              `json:"user"`
	ImpersonatedUser         *user             `json:"impersonatedUser,omitempty"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent,omitempty"`
	ObjectRef                *objectRef        `json:"objectRef,omitempty"`
	ResponseStatus           *status           `json:"responseStatus,omitempty"`
	RequestObject            any               `json:"requestObject,omitempty"`
	ResponseObject           any               `json:"responseObject,omitempty"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	StageTimestamp           string            `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations,omitempty"`
}

type user struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

type objectRef struct {
	Resource        string `json:"resource,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIGroup        string `json:"apiGroup,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Subresource     string `json:"subresource,omitempty"`
}

type status struct {
	Metadata struct{}       `json:"metadata"`
	Status   string         `json:"status,omitempty"`
	Message  string         `json:"message,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	Code     int            `json:"code"`
}

// m is a JSON object; json.Marshal sorts its keys, so output stays
// deterministic.
type m = map[string]any

// Annotation keys written by the authorizer.
const (
	annDecision = "authorization.k8s.io/decision"
	annReason   = "authorization.k8s.io/reason"
)

// timeLayout is how the API server writes audit timestamps: UTC with
// microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func ts(t time.Time) string { return t.UTC().Format(timeLayout) }

// newEvent fills the fields every ResponseComplete record has.
func newEvent(id string, at time.Time, latency time.Duration, level, verb, uri string, u user, src []string, ua string) event {
	return event{
		Kind:                     "Event",
		APIVersion:               "audit.k8s.io/v1",
		Level:                    level,
		AuditID:                  id,
		Stage:                    "ResponseComplete",
		RequestURI:               uri,
		Verb:                     verb,
		User:                     u,
		SourceIPs:                src,
		UserAgent:                ua,
		RequestReceivedTimestamp: ts(at),
		StageTimestamp:           ts(at.Add(latency)),
	}
}

// toRequestReceived turns a completed record into the first record the API
// server writes for the same request: no response, no authorization yet.
func (e *event) toRequestReceived() {
	e.Stage = "RequestReceived"
	e.ResponseStatus = nil
	e.ResponseObject = nil
	e.StageTimestamp = e.RequestReceivedTimestamp
	e.Annotations = nil
}

func allowed(reason string) map[string]string {
	return map[string]string{annDecision: "allow", annReason: reason}
}

func forbidden() map[string]string {
	return map[string]string{annDecision: "forbid", annReason: ""}
}

func ok(code int) *status { return &status{Code: code} }
