package synth

import "time"

// NaiveEvent models all of an audit.k8s.io/v1 Event the straightforward
// way: every field, request and response bodies as maps, annotations as a
// map. Benchmarks decode into it with encoding/json as the naive baseline
// the detector's own parser is measured against.
type NaiveEvent struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     NaiveUser         `json:"user"`
	ImpersonatedUser         *NaiveUser        `json:"impersonatedUser"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent"`
	ObjectRef                *NaiveObjectRef   `json:"objectRef"`
	ResponseStatus           *NaiveStatus      `json:"responseStatus"`
	RequestObject            map[string]any    `json:"requestObject"`
	ResponseObject           map[string]any    `json:"responseObject"`
	RequestReceivedTimestamp time.Time         `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time         `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations"`
}

// NaiveUser is audit's user info.
type NaiveUser struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// NaiveObjectRef is audit's object reference.
type NaiveObjectRef struct {
	Resource        string `json:"resource"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	APIGroup        string `json:"apiGroup"`
	APIVersion      string `json:"apiVersion"`
	ResourceVersion string `json:"resourceVersion"`
	Subresource     string `json:"subresource"`
}

// NaiveStatus is a metav1.Status.
type NaiveStatus struct {
	Metadata map[string]any `json:"metadata"`
	Status   string         `json:"status"`
	Message  string         `json:"message"`
	Reason   string         `json:"reason"`
	Details  *struct {
		Name   string `json:"name"`
		Group  string `json:"group"`
		Kind   string `json:"kind"`
		UID    string `json:"uid"`
		Causes []struct {
			Type    string `json:"reason"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"causes"`
		RetryAfterSeconds int32 `json:"retryAfterSeconds"`
	} `json:"details"`
	Code int32 `json:"code"`
}
