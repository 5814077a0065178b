// Package evasion holds the ways an anonymous attacker who has read the
// rules tried to get past them, as audit lines kube-apiserver writes, with
// the findings each must raise. The detector's unit tests run them through
// the pipeline with the in-memory state; the end-to-end tests deliver the
// same lines to the real bootstrap under the Lambda emulator, with
// DynamoDB and SNS emulators behind it. One table, two harnesses, so the
// two cannot drift apart.
package evasion

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Stream is the log stream the cases are delivered on: an EKS audit stream.
const Stream = "kube-apiserver-audit-5f0c00317d1e4b2a9c3d4e5f6a7b8c9d"

// Cluster is the cluster the cases are delivered for.
const Cluster = "evasion"

// LogGroup is Cluster's control-plane log group.
const LogGroup = "/aws/eks/" + Cluster + "/cluster"

// Finding is what a case requires of one finding.
type Finding struct {
	Rule, SrcIP, Severity string
	// Count, when not 0, is the count the finding must show.
	Count int64
	// UAClass, when set, is the ua_class the finding must carry.
	UAClass string
	// Shows, when set, is a field and a part of a value the finding must
	// list for it ("request_uri", "/secrets/").
	Shows [2]string
}

// ShowsIn reports whether values hold what w.Shows asks for.
func (w Finding) ShowsIn(values map[string][]string) bool {
	if w.Shows[0] == "" {
		return true
	}
	for _, v := range values[w.Shows[0]] {
		if strings.Contains(v, w.Shows[1]) {
			return true
		}
	}
	return false
}

// Case is one evasion path.
type Case struct {
	Name string
	// What the attacker did, and why the old code missed it.
	What string
	// Deliveries are the batches of lines, in delivery order, each with
	// the ingestion time CloudWatch gave them.
	Deliveries []Delivery
	// Want are findings that must be among those published (others may
	// be too: a padded probe is also a scan).
	Want []Finding
	// Not names rules that must not fire.
	Not []string
}

// Delivery is one subscription delivery.
type Delivery struct {
	Lines  [][]byte
	Ingest time.Time
}

//go:embed testdata/*.jsonl
var testdata embed.FS

// T0 is the start of every case's event time.
var T0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// Cases returns every case. The big ones are generated: padded lines of a
// megabyte and more, a scan from 150 addresses, a day of slow probes.
func Cases() []Case {
	secretRead := Request{
		At: T0.Add(50 * time.Minute), Stage: "ResponseComplete", URI: "/api/v1/namespaces/kube-system/secrets/aws-load-balancer-tls",
		Verb: "get", Anonymous: true, SourceIPs: []string{"192.0.2.44"}, UserAgent: "python-requests/2.32.3",
		Resource: "secrets", Namespace: "kube-system", Name: "aws-load-balancer-tls", Code: 200,
		Decision: "allow", Reason: `RBAC: allowed by ClusterRoleBinding "debug-anonymous" of ClusterRole "cluster-admin" to User "system:anonymous"`,
	}
	pad := func(n int) string { return strings.Repeat("A", n) }
	return []Case{
		{
			Name: "uri-padded-cut-marked",
			What: "a 1 MiB request URI; CloudWatch's agent cut the line at 256 KiB and marked it: it was not JSON, so no rule saw it",
			Deliveries: one(
				cutMarked(Request{At: T0, Stage: "ResponseComplete", URI: "/api/v1/pods?" + pad(1<<20), Verb: "list", Anonymous: true,
					SourceIPs: []string{"203.0.113.80"}, Resource: "pods", Code: 403, Decision: "forbid"}.Line(), 256<<10),
			),
			Want: []Finding{{Rule: "audit-event-unreadable", Severity: "high", Count: 1}},
		},
		{
			Name: "audit-id-padded-cut",
			What: "a 1 MiB Audit-ID header (auditID is written before user and sourceIPs); the line cut at 1 MiB with no mark",
			Deliveries: one(
				Request{At: T0, AuditID: pad(1 << 20), Stage: "ResponseComplete", URI: "/api/v1/secrets", Verb: "list", Anonymous: true,
					SourceIPs: []string{"203.0.113.81"}, Resource: "secrets", Code: 403, Decision: "forbid"}.Line()[:1<<20],
			),
			Want: []Finding{{Rule: "audit-event-unreadable", Severity: "high", Count: 1}},
		},
		{
			Name: "allowed-read-padded-past-the-parser",
			What: "an allowed secret read whose whole line is 1.1 MiB, over the parser's 1 MiB bound: skipped as too_large",
			Deliveries: one(Request{
				At: T0, Stage: "ResponseComplete", URI: "/api/v1/namespaces/kube-system/secrets/db?" + pad(1100<<10),
				Verb: "get", Anonymous: true, SourceIPs: []string{"203.0.113.82"}, Resource: "secrets", Namespace: "kube-system", Name: "db",
				Code: 200, Decision: "allow", Reason: secretRead.Reason,
			}.Line()),
			Want: []Finding{
				{Rule: "anonymous-request-allowed", SrcIP: "203.0.113.82", Severity: "critical", Count: 1},
				{Rule: "audit-event-unreadable", SrcIP: "203.0.113.82", Severity: "high", Count: 1},
			},
		},
		{
			Name:       "delivery-past-the-decoder-bound",
			What:       "40 anonymous probes with 1 MiB URIs in one delivery with a real secret read: the payload inflated past 32 MiB and the whole delivery, the read included, was refused",
			Deliveries: one(append(paddedProbes(40, 1<<20), secretRead.Line())...),
			Want: []Finding{
				{Rule: "anonymous-request-allowed", SrcIP: "192.0.2.44", Severity: "critical", Count: 1},
			},
		},
		{
			Name:       "watch-allowed-never-completes",
			What:       "an allowed anonymous watch of pods with a distant timeoutSeconds: only its ResponseStarted record exists until the client hangs up",
			Deliveries: one(line("watch-pods.jsonl", 2)),
			Want: []Finding{
				{Rule: "eks-pod-scan", SrcIP: "192.0.2.44", Severity: "high", Count: 1},
				{Rule: "anonymous-request-allowed", SrcIP: "192.0.2.44", Severity: "high", Count: 1},
			},
		},
		{
			Name:       "watch-of-pods-refused",
			What:       "a refused anonymous watch of pods (ResponseStarted and ResponseComplete): not a list, so no pod scan",
			Deliveries: one(lines("watch-pods.jsonl", 0, 1)...),
			Want:       []Finding{{Rule: "eks-pod-scan", SrcIP: "203.0.113.99", Severity: "medium", Count: 1}},
		},
		{
			Name:       "exec-spdy-open-session",
			What:       "an allowed anonymous exec over SPDY (verb create), still open: only its ResponseStarted record",
			Deliveries: one(line("exec-spdy.jsonl", 0)),
			Want:       []Finding{{Rule: "anonymous-request-allowed", SrcIP: "198.51.100.77", Severity: "critical", Count: 1}},
		},
		{
			Name: "exec-spdy-both-records-apart",
			What: "the same exec's ResponseStarted and ResponseComplete in two deliveries: one request, counted once",
			Deliveries: []Delivery{
				{Lines: [][]byte{line("exec-spdy.jsonl", 1)}, Ingest: T0.Add(2 * time.Hour)},
				{Lines: [][]byte{line("exec-spdy.jsonl", 0)}, Ingest: T0.Add(22 * time.Minute)},
			},
			Want: []Finding{{Rule: "anonymous-request-allowed", SrcIP: "198.51.100.77", Severity: "critical", Count: 1}},
		},
		{
			Name:       "exec-websocket",
			What:       "an allowed anonymous exec over WebSocket (verb get, not a write): rated high, not critical",
			Deliveries: one(lines("exec-websocket.jsonl", 0, 1)...),
			Want:       []Finding{{Rule: "anonymous-request-allowed", SrcIP: "198.51.100.77", Severity: "critical", Count: 1}},
		},
		{
			Name:       "node-proxy-and-portforward",
			What:       "an allowed anonymous nodes/proxy GET: rated high, not critical",
			Deliveries: one(lines("nodes-proxy.jsonl", 0, 1)...),
			Want:       []Finding{{Rule: "anonymous-request-allowed", SrcIP: "198.51.100.23", Severity: "critical", Count: 1}},
		},
		{
			Name:       "failed-authentication-burst",
			What:       "12 requests with a revoked token: audited once each at ResponseStarted with no user, dropped as a non-final stage",
			Deliveries: one(failedAuth(12)...),
			Want:       []Finding{{Rule: "authentication-failure-burst", SrcIP: "203.0.113.50", Severity: "medium", Count: 12}},
		},
		{
			Name:       "distributed-scan-as-aws-security-scanner",
			What:       `150 addresses each probe 5 paths in an hour with User-Agent "AWS Security Scanner": under every per-source threshold`,
			Deliveries: distributed(150, 5),
			Want: []Finding{
				{Rule: "anonymous-campaign", Severity: "medium"},
				{Rule: "unauthenticated-refusal-campaign", Severity: "medium"},
			},
			Not: []string{"eks-cluster-scan"},
		},
		{
			Name:       "slow-scan",
			What:       "one address probes every 7 minutes for a day: never a burst in any hour",
			Deliveries: slow("198.51.100.44", 7*time.Minute, 24*time.Hour),
			Want:       []Finding{{Rule: "anonymous-slow-scan", SrcIP: "198.51.100.44", Severity: "medium", Count: 48}},
		},
		{
			Name:       "binding-patched-by-json-patch-move",
			What:       "a JSON-patch move puts system:anonymous into a binding's subjects: the name is in no operation's value",
			Deliveries: one(line("rbac-move.jsonl", 0)),
			Want:       []Finding{{Rule: "anonymous-access-granted", Severity: "critical", Count: 1}},
		},
		{
			Name:       "binding-patched-at-metadata-level",
			What:       "a binding patch logged without bodies: nothing to judge, nothing reported",
			Deliveries: one(line("rbac-metadata.jsonl", 0)),
			Want:       []Finding{{Rule: "rbac-binding-write-unjudged", Severity: "high", Count: 1}},
		},
		{
			Name:       "public-info-viewer-widened",
			What:       "system:public-info-viewer, bound to system:unauthenticated by default, patched to read secrets: no binding written",
			Deliveries: one(line("widen-public-info-viewer.jsonl", 0)),
			Want:       []Finding{{Rule: "anonymous-role-changed", Severity: "critical", Count: 1}},
		},
		{
			Name:       "secret-read-crowded-out",
			What:       "40 allowed anonymous reads of pods, then 3 of secrets, in one minute: the critical finding's values were the 10 smallest URIs, all pods",
			Deliveries: one(crowdedOut(40, 3)...),
			Want: []Finding{{Rule: "anonymous-request-allowed", SrcIP: "192.0.2.45", Severity: "critical",
				Shows: [2]string{"request_uri", "/secrets/"}}},
		},
		{
			Name: "secret-read-crowded-out-across-deliveries",
			What: "40 allowed anonymous reads of pods in four deliveries, then 3 of secrets in a fifth, in the same minute: the stored bucket had been offered 40 values and refused the later ones, so the critical finding named no secret",
			Deliveries: func() []Delivery {
				ls := crowdedOut(40, 3)
				var ds []Delivery
				for i := 0; i < len(ls); i += 10 {
					ds = append(ds, Delivery{Lines: ls[i:min(i+10, len(ls))], Ingest: T0.Add(time.Minute + time.Duration(i)*time.Second)})
				}
				return ds
			}(),
			Want: []Finding{{Rule: "anonymous-request-allowed", SrcIP: "192.0.2.45", Severity: "critical",
				Shows: [2]string{"request_uri", "/secrets/"}}},
		},
		{
			Name: "no-user-agent",
			What: "a request without a User-Agent header: the finding had no ua_class",
			Deliveries: one(Request{At: T0, Stage: "ResponseComplete", URI: "/api/v1/namespaces/default/pods", Verb: "list", Anonymous: true,
				SourceIPs: []string{"203.0.113.31"}, Resource: "pods", Namespace: "default", Code: 403, Decision: "forbid"}.Line()),
			Want: []Finding{{Rule: "eks-pod-scan", SrcIP: "203.0.113.31", Severity: "medium", Count: 1, UAClass: "none"}},
		},
	}
}

// one is a single delivery, ingested a minute after T0.
func one(lines ...[]byte) []Delivery {
	return []Delivery{{Lines: lines, Ingest: T0.Add(time.Minute)}}
}

// line returns line i (0-based) of testdata/name.
func line(name string, i int) []byte { return lines(name, i)[0] }

// lines returns the given lines (0-based) of testdata/name.
func lines(name string, idx ...int) [][]byte {
	data, err := testdata.ReadFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	var out [][]byte
	for _, i := range idx {
		out = append(out, all[i])
	}
	return out
}

// cutMarked cuts line to n bytes and appends CloudWatch's agent's mark.
func cutMarked(line []byte, n int) []byte {
	return append(line[:n:n], "[Truncated...]"...)
}

// paddedProbes are n anonymous probes from n addresses with URIs padded to
// size bytes, each different so none compresses against another.
func paddedProbes(n, size int) [][]byte {
	var out [][]byte
	for i := range n {
		r := Request{
			At: T0.Add(time.Duration(i) * time.Second), Stage: "ResponseComplete",
			URI:  fmt.Sprintf("/api/v1/pods?x%d=", i) + strings.Repeat(string(rune('a'+i%26)), size),
			Verb: "list", Anonymous: true, SourceIPs: []string{fmt.Sprintf("198.18.1.%d", i+1)},
			Resource: "pods", Code: 403, Decision: "forbid",
		}
		out = append(out, r.Line())
	}
	return out
}

// crowdedOut is decoys allowed anonymous reads of pods whose URIs sort
// before any secret's, then reads allowed anonymous reads of secrets, all
// from 192.0.2.45 within one minute.
func crowdedOut(decoys, reads int) [][]byte {
	reason := `RBAC: allowed by ClusterRoleBinding "debug-anonymous" of ClusterRole "cluster-admin" to User "system:anonymous"`
	var out [][]byte
	for i := range decoys + reads {
		r := Request{
			At: T0.Add(time.Duration(i) * time.Second), Stage: "ResponseComplete", Verb: "get", Anonymous: true,
			SourceIPs: []string{"192.0.2.45"}, UserAgent: "python-requests/2.32.3", Code: 200, Decision: "allow", Reason: reason,
			Namespace: "default",
		}
		if i < decoys {
			r.URI, r.Resource, r.Name = fmt.Sprintf("/api/v1/namespaces/default/pods/a%02d", i), "pods", fmt.Sprintf("a%02d", i)
		} else {
			r.URI, r.Resource, r.Name = fmt.Sprintf("/api/v1/namespaces/default/secrets/z%02d", i), "secrets", fmt.Sprintf("z%02d", i)
		}
		out = append(out, r.Line())
	}
	return out
}

// failedAuth is n requests with a rejected bearer token from 203.0.113.50,
// as kube-apiserver audits them (WithFailedAuthenticationAudit).
func failedAuth(n int) [][]byte {
	var out [][]byte
	for i := range n {
		r := Request{
			At: T0.Add(time.Duration(i) * 20 * time.Second), Stage: "ResponseStarted",
			URI: "/api/v1/namespaces/kube-system/secrets", Verb: "list", NoUser: true,
			SourceIPs: []string{"203.0.113.50"}, UserAgent: "python-requests/2.32.3",
			Resource: "secrets", Namespace: "kube-system", Code: 401,
		}
		out = append(out, r.Line())
	}
	return out
}

// distributed is sources addresses each probing paths paths within an
// hour as "AWS Security Scanner", refused, in deliveries of 100 lines.
func distributed(sources, paths int) []Delivery {
	var out [][]byte
	for s := range sources {
		for p := range paths {
			at := T0.Add(time.Duration(s*paths+p) * (time.Hour / time.Duration(sources*paths+1)))
			out = append(out, Request{
				At: at, Stage: "ResponseComplete", URI: fmt.Sprintf("/probe/%d", p), Verb: "get", Anonymous: true,
				SourceIPs: []string{fmt.Sprintf("198.18.%d.%d", s/250, s%250+1)}, UserAgent: "AWS Security Scanner",
				Code: 403, Decision: "forbid",
			}.Line())
		}
	}
	return batches(out, 100)
}

// slow is one refused probe from src every step for span, as "AWS Security
// Scanner", delivered hour by hour.
func slow(src string, step, span time.Duration) []Delivery {
	var out [][]byte
	for at := T0; at.Before(T0.Add(span)); at = at.Add(step) {
		out = append(out, Request{
			At: at, Stage: "ResponseComplete", URI: "/api/v1/namespaces", Verb: "list", Anonymous: true,
			SourceIPs: []string{src}, UserAgent: "AWS Security Scanner", Resource: "namespaces", Code: 403, Decision: "forbid",
		}.Line())
	}
	return batches(out, int(time.Hour/step)+1)
}

func batches(all [][]byte, n int) []Delivery {
	var out []Delivery
	for i := 0; i < len(all); i += n {
		out = append(out, Delivery{Lines: all[i:min(i+n, len(all))], Ingest: T0.Add(time.Duration(i) * time.Second)})
	}
	return out
}

// Request is one anonymous (or failed-authentication) request, written as
// kube-apiserver writes its audit event: the members in the order of
// audit.k8s.io/v1 Event, as Go's encoding/json escapes them.
type Request struct {
	At        time.Time
	AuditID   string // default: derived from the request
	Stage     string
	URI       string
	Verb      string
	Anonymous bool // system:anonymous in system:unauthenticated
	NoUser    bool // a failed authentication: "user":{}
	SourceIPs []string
	UserAgent string
	Resource  string
	Namespace string
	Name      string
	Code      int
	Decision  string // "" for a failed authentication, which is never authorized
	Reason    string
}

type wireUser struct {
	Username string   `json:"username,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

type wireRef struct {
	Resource   string `json:"resource,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

type wireStatus struct {
	Metadata struct{} `json:"metadata"`
	Status   string   `json:"status,omitempty"`
	Message  string   `json:"message,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Code     int      `json:"code"`
}

type wireEvent struct {
	Kind        string            `json:"kind"`
	APIVersion  string            `json:"apiVersion"`
	Level       string            `json:"level"`
	AuditID     string            `json:"auditID"`
	Stage       string            `json:"stage"`
	RequestURI  string            `json:"requestURI"`
	Verb        string            `json:"verb"`
	User        wireUser          `json:"user"`
	SourceIPs   []string          `json:"sourceIPs"`
	UserAgent   string            `json:"userAgent,omitempty"`
	ObjectRef   *wireRef          `json:"objectRef,omitempty"`
	Status      wireStatus        `json:"responseStatus"`
	Received    string            `json:"requestReceivedTimestamp"`
	StageTime   string            `json:"stageTimestamp"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Line returns the audit line.
func (r Request) Line() []byte {
	id := r.AuditID
	if id == "" {
		id = fmt.Sprintf("%08x-0000-4000-8000-%012x", r.At.Unix()&0xffffffff, r.At.UnixNano()%1e12)
	}
	ts := r.At.UTC().Format("2006-01-02T15:04:05.000000Z")
	w := wireEvent{
		Kind: "Event", APIVersion: "audit.k8s.io/v1", Level: "Metadata", AuditID: id, Stage: r.Stage,
		RequestURI: r.URI, Verb: r.Verb, SourceIPs: r.SourceIPs, UserAgent: r.UserAgent,
		Received: ts, StageTime: ts,
	}
	if r.Anonymous {
		w.User = wireUser{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}
	}
	if r.Resource != "" {
		w.ObjectRef = &wireRef{Resource: r.Resource, Namespace: r.Namespace, Name: r.Name, APIVersion: "v1"}
	}
	w.Status.Code = r.Code
	switch {
	case r.Code == 401:
		w.Status.Status, w.Status.Message, w.Status.Reason = "Failure", "Unauthorized", "Unauthorized"
	case r.Code >= 400:
		w.Status.Status, w.Status.Reason = "Failure", "Forbidden"
		w.Status.Message = fmt.Sprintf("%s is forbidden: User \"system:anonymous\" cannot %s", r.Resource, r.Verb)
	}
	if r.Decision != "" {
		w.Annotations = map[string]string{"authorization.k8s.io/decision": r.Decision, "authorization.k8s.io/reason": r.Reason}
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	return b
}

// Match reports whether a published finding (rule, address, severity,
// count, ua_class) is the one w describes.
func (w Finding) Match(rule, src, severity string, count int64, uaClass string) bool {
	return w.Rule == rule && w.SrcIP == src && w.Severity == severity &&
		(w.Count == 0 || w.Count == count) && (w.UAClass == "" || w.UAClass == uaClass)
}
