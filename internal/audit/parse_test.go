package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func readLine(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// anonSecrets is the Event in testdata/anonymous_secrets_403.json; the
// variants in testdata change one field of it.
func anonSecrets() Event {
	return Event{
		AuditID:    "5d9b6c1e-2f3a-4b7c-9d8e-1a2b3c4d5e6f",
		Stage:      StageResponseComplete,
		RequestURI: "/api/v1/namespaces/kube-system/secrets?limit=500",
		Verb:       "list",
		User:       User{Username: Anonymous, Groups: []string{Unauthenticated}},
		SourceIPs:  []string{"10.0.0.1", "203.0.113.7"},
		UserAgent:  "python-requests/2.31.0",
		ObjectRef:  ObjectRef{Resource: "secrets", Namespace: "kube-system"},
		// responseStatus.message and .details are not read.
		ResponseCode:    403,
		ResponseReason:  "Forbidden",
		Decision:        "forbid",
		DecisionReason:  "",
		RequestReceived: utc("2025-01-02T03:04:05.123456Z"),
		StageTimestamp:  utc("2025-01-02T03:04:05.125001Z"),
	}
}

func with(f func(*Event)) Event {
	e := anonSecrets()
	f(&e)
	return e
}

func TestParse(t *testing.T) {
	tests := []struct {
		file    string
		want    Event
		wantErr error
	}{
		{file: "anonymous_secrets_403.json", want: anonSecrets()},
		{
			// Source: falcosecurity/falco @ 7cac45e,
			// test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json
			// (Apache-2.0). A minikube v1beta1 record: anonymous
			// allowed to create a namespace. It has no userAgent.
			file: "falco_anonymous_creates_namespace_foo.json",
			want: Event{
				AuditID:         "841d3e6d-90d2-43df-8da4-684738bee3d5",
				Stage:           StageResponseComplete,
				RequestURI:      "/api/v1/namespaces",
				Verb:            "create",
				User:            User{Username: Anonymous, Groups: []string{"system:masters", "system:authenticated"}},
				SourceIPs:       []string{"192.168.99.1"},
				ObjectRef:       ObjectRef{Resource: "namespaces", Name: "foo"},
				ResponseCode:    201,
				Decision:        "allow",
				RequestReceived: utc("2018-10-25T13:58:49.730588Z"),
				StageTimestamp:  utc("2018-10-25T13:58:49.736141Z"),
				RequestObject:   json.RawMessage(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"foo","creationTimestamp":null},"spec":{},"status":{"phase":"Active"}}`),
			},
		},
		{
			// Source: splunk/security_content @ b13b314,
			// data_sources/kubernetes_audit.yml, example_log
			// (Apache-2.0). An EKS user refused creating a job.
			file: "splunk_kubernetes_audit_example_log.json",
			want: Event{
				AuditID:         "582c31ab-4906-49bb-9ff9-872f980ccb84",
				Stage:           StageResponseComplete,
				RequestURI:      "/apis/batch/v1/namespaces/test2/jobs?fieldManager=kubectl-create&fieldValidation=Strict",
				Verb:            "create",
				User:            User{Username: "k8s-test-user", Groups: []string{"system:authenticated"}},
				SourceIPs:       []string{"176.95.188.101"},
				UserAgent:       "kubectl/v1.27.2 (darwin/arm64) kubernetes/7f6f68f",
				ObjectRef:       ObjectRef{Resource: "jobs", Namespace: "test2", APIGroup: "batch"},
				ResponseCode:    403,
				ResponseReason:  "Forbidden",
				Decision:        "forbid",
				RequestReceived: utc("2023-12-07T14:44:53.358394Z"),
				StageTimestamp:  utc("2023-12-07T14:44:53.375985Z"),
				ResponseObject:  json.RawMessage(`{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "jobs.batch is forbidden: User \"k8s-test-user\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"test2\"", "reason": "Forbidden", "details": {"group": "batch", "kind": "jobs"}, "code": 403}`),
			},
		},
		{
			file: "authenticated_scale_request_response.json",
			want: Event{
				AuditID:    "5d9b6c1e-2f3a-4b7c-9d8e-1a2b3c4d5e6f",
				Stage:      StageResponseComplete,
				RequestURI: "/apis/apps/v1/namespaces/prod/deployments/web/scale?fieldManager=kubectl",
				Verb:       "patch",
				User:       User{Username: "alice@example.com", Groups: []string{"devs", "system:authenticated"}},
				SourceIPs:  []string{"198.51.100.4"},
				UserAgent:  "kubectl/v1.29.2 (darwin/arm64) kubernetes/4b8e819",
				ObjectRef: ObjectRef{
					Resource: "deployments", Subresource: "scale", Namespace: "prod", Name: "web", APIGroup: "apps",
				},
				ResponseCode:    200,
				Decision:        "allow",
				DecisionReason:  `RBAC: allowed by RoleBinding "deployers/prod" of Role "deployer" to Group "devs"`,
				RequestReceived: utc("2025-01-02T03:04:05.123456Z"),
				StageTimestamp:  utc("2025-01-02T03:04:05.125001Z"),
				RequestObject:   json.RawMessage(`{"spec":{"replicas":5}}`),
				ResponseObject:  json.RawMessage(`{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"prod","managedFields":[{"manager":"kubectl","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}]},"spec":{"replicas":5},"status":{"replicas":3,"selector":"app=web"}}`),
			},
		},
		{
			file: "request_received_stage.json",
			want: with(func(e *Event) {
				e.Stage = StageRequestReceived
				e.ResponseCode, e.ResponseReason, e.Decision = 0, "", ""
				e.StageTimestamp = e.RequestReceived
			}),
		},
		{file: "v1beta1.json", want: anonSecrets()},
		{file: "ipv6_source.json", want: with(func(e *Event) { e.SourceIPs = []string{"2001:db8:5c4::17"} })},
		{file: "ipv4_mapped_source.json", want: with(func(e *Event) { e.SourceIPs = []string{"::ffff:203.0.113.7"} })},
		{file: "empty_source_ips.json", want: with(func(e *Event) { e.SourceIPs = []string{} })},
		{file: "non_ip_source.json", want: with(func(e *Event) { e.SourceIPs = []string{"127.0.0.1", "not-an-ip"} })},
		{
			// Panther's test cases write timestamps with a space and
			// no zone; they are UTC.
			file: "panther_space_timestamps.json",
			want: with(func(e *Event) {
				e.RequestReceived = utc("2022-11-29T00:09:04.38Z")
				e.StageTimestamp = utc("2022-11-29T00:09:04.392Z")
			}),
		},
		{
			file: "offset_timestamps.json",
			want: with(func(e *Event) {
				e.RequestReceived = utc("2025-01-02T03:04:05.5Z")
				e.StageTimestamp = utc("2025-01-02T03:04:06Z")
			}),
		},
		{file: "no_request_received.json", want: with(func(e *Event) { e.RequestReceived = e.StageTimestamp })},
		{file: "bad_request_received.json", want: with(func(e *Event) { e.RequestReceived = e.StageTimestamp })},
		{file: "no_timestamps.json", want: with(func(e *Event) { e.RequestReceived, e.StageTimestamp = time.Time{}, time.Time{} })},
		{file: "null_request_object.json", want: anonSecrets()},
		{
			file: "no_user_agent_no_object_ref.json",
			want: with(func(e *Event) { e.UserAgent, e.ObjectRef, e.RequestURI, e.Verb = "", ObjectRef{}, "/", "get" }),
		},
		{
			// encoding/json turns each invalid byte in a string into
			// U+FFFD; the raw requestObject keeps its bytes.
			file: "invalid_utf8.json",
			want: with(func(e *Event) {
				e.UserAgent = "zgrab/\uFFFD\uFFFD0.x"
				e.RequestObject = json.RawMessage("{\"note\":\"caf\xc3\"}")
			}),
		},
		{file: "nul_escaped.json", want: with(func(e *Event) { e.UserAgent = "curl\x00/8.4.0" })},
		{file: "unicode_escapes.json", want: with(func(e *Event) { e.UserAgent = "é😀<script>" })},

		{file: "truncated.json", wantErr: ErrTruncated},
		{file: "truncated_trailing_space.json", wantErr: ErrTruncated},
		{file: "nul_raw.json", wantErr: ErrMalformed},
		{file: "not_json.txt", wantErr: ErrMalformed},
		{file: "wrong_type_code.json", wantErr: ErrMalformed},
		{file: "wrong_type_user.json", wantErr: ErrMalformed},
		{file: "v1alpha1.json", wantErr: ErrNotAudit},
		{file: "kind_eventlist.json", wantErr: ErrNotAudit},
		{file: "other_json_log.json", wantErr: ErrNotAudit},
		{file: "json_array.json", wantErr: ErrNotAudit},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Parse(readLine(t, tt.file), 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// line renders an anonymous request with the given requestURI and
// requestObject JSON.
func line(uri, requestObject string) []byte {
	u, _ := json.Marshal(uri)
	return []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","requestURI":` + string(u) +
		`,"verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.7"],"requestObject":` + requestObject + `}`)
}

func TestParseSizes(t *testing.T) {
	longURI := "/" + strings.Repeat("a", 1_000_000)
	tests := []struct {
		name    string
		line    []byte
		maxSize int
		wantURI string
		wantErr error
	}{
		{name: "1 MB requestURI within DefaultMaxSize", line: line(longURI, "null"), maxSize: 0, wantURI: longURI},
		{name: "1 MB requestURI above maxSize", line: line(longURI, "null"), maxSize: 512 << 10, wantErr: ErrTooLarge},
		{name: "exactly maxSize", line: line("/x", "null"), maxSize: len(line("/x", "null")), wantURI: "/x"},
		{name: "one byte over maxSize", line: line("/x", "null"), maxSize: len(line("/x", "null")) - 1, wantErr: ErrTooLarge},
		{
			// Deep nesting inside requestObject is within
			// encoding/json's depth limit (10000): kept raw.
			name:    "requestObject nested 5000 deep",
			line:    line("/", strings.Repeat("[", 5000)+strings.Repeat("]", 5000)),
			wantURI: "/",
		},
		{
			// Beyond the limit encoding/json stops with a syntax
			// error instead of recursing: malformed, no crash.
			name:    "requestObject nested 100000 deep",
			line:    line("/", strings.Repeat(`{"a":`, 100_000)+"1"+strings.Repeat("}", 100_000)),
			wantErr: ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.line, tt.maxSize)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse() error = %v, want %v", err, tt.wantErr)
			}
			if got.RequestURI != tt.wantURI {
				t.Errorf("Parse() RequestURI has %d bytes, want %d", len(got.RequestURI), len(tt.wantURI))
			}
		})
	}
}

func TestParseDoesNotAliasLine(t *testing.T) {
	l := readLine(t, "authenticated_scale_request_response.json")
	got, err := Parse(l, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Parse(l, 0)
	for i := range l {
		l[i] = 'x'
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Event changed with its line (-want +got):\n%s", diff)
	}
}

// pantherResult is one line of testdata/panther.golden.jsonl.
type pantherResult struct {
	Test  string `json:"test"`
	Error string `json:"error,omitempty"`
	Event *Event `json:"event,omitempty"`
	Final bool   `json:"final"`
	SrcIP string `json:"src_ip,omitempty"`
}

// TestParsePanther parses the log of every Panther test case and compares
// the result with a golden file; regenerate it with -update and review the
// diff.
//
// Source: panther-labs/panther-analysis @ daa10c8, the Tests: blocks of
// rules/aws_eks_rules/anonymous_api_access.yml,
// rules/kubernetes_rules/k8s_anonymous_api_access.yml,
// rules/aws_eks_rules/source_ip_multiple_403.yml and
// rules/aws_eks_rules/system_namespace_public_ip.yml (Apache-2.0). Three of
// its cases are AKS, GKE or GCP load-balancer records, not audit.k8s.io
// events: they must come out as ErrNotAudit.
func TestParsePanther(t *testing.T) {
	src := readLine(t, "panther_eks_audit_test_cases.jsonl")
	var got bytes.Buffer
	notAudit := 0
	for i, l := range bytes.Split(src, []byte("\n")) {
		var tc struct {
			TestName string          `json:"test_name"`
			Log      json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(l, &tc); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		r := pantherResult{Test: tc.TestName}
		ev, err := Parse(tc.Log, 0)
		switch {
		case errors.Is(err, ErrNotAudit):
			notAudit++
			r.Error = "not audit"
		case err != nil:
			t.Errorf("%s: Parse() error = %v", tc.TestName, err)
			r.Error = err.Error()
		default:
			r.Event, r.Final, r.SrcIP = &ev, ev.Final(), ev.SrcIP()
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(append(b, '\n'))
	}
	if notAudit != 3 {
		t.Errorf("%d Panther cases were not audit events, want 3 (AKS, GKE, GCP)", notAudit)
	}
	golden := filepath.Join("testdata", "panther.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("Panther results differ from %s (-want +got):\n%s", golden, diff)
	}
}

func TestFinal(t *testing.T) {
	tests := []struct {
		stage string
		want  bool
	}{
		{StageRequestReceived, false},
		{StageResponseStarted, false},
		{StageResponseComplete, true},
		{StagePanic, true},
		{"", false},
		{"responsecomplete", false},
	}
	for _, tt := range tests {
		e := Event{Stage: tt.stage}
		if got := e.Final(); got != tt.want {
			t.Errorf("Event{Stage: %q}.Final() = %v, want %v", tt.stage, got, tt.want)
		}
	}
}

func TestCounted(t *testing.T) {
	tests := []struct {
		name        string
		stage, verb string
		subresource string
		code        int
		longRunning bool
		want        bool
	}{
		{"final get", StageResponseComplete, "get", "", 200, false, true},
		{"panic", StagePanic, "get", "", 500, false, true},
		{"received", StageRequestReceived, "watch", "", 0, true, false},
		{"started get", StageResponseStarted, "get", "", 200, false, false},
		{"started watch", StageResponseStarted, "watch", "", 200, true, true},
		{"completed watch", StageResponseComplete, "watch", "", 200, true, true},
		{"started exec over SPDY", StageResponseStarted, "create", "exec", 101, true, true},
		{"started exec over WebSocket", StageResponseStarted, "get", "exec", 101, true, true},
		{"started attach", StageResponseStarted, "create", "attach", 101, true, true},
		{"started portforward", StageResponseStarted, "get", "portforward", 101, true, true},
		{"started nodes/proxy", StageResponseStarted, "get", "proxy", 200, true, true},
		{"started log", StageResponseStarted, "get", "log", 200, true, true},
		{"started proxy verb", StageResponseStarted, "proxy", "", 200, true, true},
		{"failed authentication", StageResponseStarted, "get", "", 401, false, true},
		{"refused watch started", StageResponseStarted, "watch", "", 403, true, true},
		{"status subresource", StageResponseStarted, "get", "status", 200, false, false},
		{"unknown stage", "", "watch", "", 200, true, false},
	}
	for _, tt := range tests {
		e := Event{Stage: tt.stage, Verb: tt.verb, ObjectRef: ObjectRef{Subresource: tt.subresource}, ResponseCode: tt.code}
		if got := e.LongRunning(); got != tt.longRunning {
			t.Errorf("%s: LongRunning() = %v, want %v", tt.name, got, tt.longRunning)
		}
		if got := e.Counted(); got != tt.want {
			t.Errorf("%s: Counted() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
