package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// sampleEvent sets every field a variable reads.
func sampleEvent() audit.Event {
	return audit.Event{
		AuditID:        "a1",
		Stage:          audit.StageResponseComplete,
		RequestURI:     "/api/v1/namespaces/default/pods/web-0/exec?command=sh",
		Verb:           "create",
		User:           audit.User{Username: audit.Anonymous, Groups: []string{"system:unauthenticated", "b-group"}},
		SourceIPs:      []string{"10.0.0.1", " 127.0.0.1", "::ffff:203.0.113.9"},
		UserAgent:      "curl/8.5.0",
		ObjectRef:      audit.ObjectRef{Resource: "pods", Subresource: "exec", Namespace: "default", Name: "web-0"},
		ResponseCode:   101,
		ResponseReason: "",
		Decision:       "allow",
		DecisionReason: `RBAC: allowed by RoleBinding "x"`,
		RequestObject:  json.RawMessage(`{"kind":"PodExecOptions","command":["sh"],"stdin":true,"n":2}`),
		ResponseObject: json.RawMessage(`{"kind":"Status","code":101}`),
		Damage:         "truncated",
		LineSize:       1048576,
	}
}

// TestVariables evaluates, for each variable, an expression that pins its
// value on sampleEvent, and checks that every documented variable is usable.
func TestVariables(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		{`user == "system:anonymous"`, true},
		{`groups == ["system:unauthenticated", "b-group"]`, true},
		{`"system:unauthenticated" in groups`, true},
		{`anonymous`, true},
		{`verb == "create"`, true},
		{`request_uri == "/api/v1/namespaces/default/pods/web-0/exec?command=sh"`, true},
		{`path == "/api/v1/namespaces/default/pods/web-0/exec"`, true},
		{`src_ip == "203.0.113.9"`, true},
		{`forwarded_for == ["10.0.0.1", " 127.0.0.1"]`, true},
		{`user_agent == "curl/8.5.0"`, true},
		{`resource == "pods"`, true},
		{`subresource == "exec"`, true},
		{`ns == "default"`, true},
		{`name == "web-0"`, true},
		{`api_group == ""`, true},
		{`code == 101`, true},
		{`reason == ""`, true},
		{`decision == "allow"`, true},
		{`decision_reason.startsWith("RBAC: allowed by RoleBinding")`, true},
		{`stage == "ResponseComplete"`, true},
		{`cluster_name == "prod"`, true},
		{`is_health_path`, false},
		{`request_object.kind == "PodExecOptions" && request_object.command == ["sh"] && request_object.stdin && request_object.n == 2.0`, true},
		{`response_object.kind == "Status" && response_object.code == 101.0`, true},
		{`damaged == "truncated"`, true},
		{`line_size == 1048576`, true},
	}
	used := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s := loadOne(t, tt.expr)
			ev := sampleEvent()
			got := len(matches(s, &ev, "prod")) == 1
			if got != tt.want || s.EvalErrors() != 0 {
				t.Errorf("%s = %v with %d eval errors, want %v", tt.expr, got, s.EvalErrors(), tt.want)
			}
		})
		for _, v := range Variables() {
			if strings.Contains(tt.expr, v.Name) {
				used[v.Name] = true
			}
		}
	}
	for i, v := range Variables() {
		if !used[v.Name] {
			t.Errorf("variable %s has no test", v.Name)
		}
		if varIndex(v.Name) != i || v.Doc == "" || v.Type == "" {
			t.Errorf("variable %d %+v: varIndex %d, want %d and a type and doc", i, v, varIndex(v.Name), i)
		}
	}
}

func TestVariablesNoRequestObject(t *testing.T) {
	ev := sampleEvent()
	ev.RequestObject = nil
	ev.SourceIPs = []string{"not-an-ip"}
	ev.ResponseCode = 0
	s := loadOne(t, `request_object == null && src_ip == "" && forwarded_for == [] && code == 0`)
	if got := matches(s, &ev, ""); len(got) != 1 || s.EvalErrors() != 0 {
		t.Errorf("matches = %v with %d eval errors, want one match", got, s.EvalErrors())
	}
}

func TestVariablesListed(t *testing.T) {
	var got []string
	for _, v := range Variables() {
		got = append(got, v.Name+" "+v.Type)
	}
	want := []string{
		"user string", "groups list(string)", "anonymous bool", "verb string",
		"request_uri string", "path string", "src_ip string", "forwarded_for list(string)",
		"user_agent string", "resource string", "subresource string", "ns string",
		"name string", "api_group string", "code int", "reason string", "decision string",
		"decision_reason string", "stage string", "cluster_name string",
		"is_health_path bool", "request_object dyn", "response_object dyn", "damaged string",
		"line_size int",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Variables() (-want +got):\n%s", diff)
	}
}

// loadOne loads a single rule whose match is expr.
func loadOne(t testing.TB, expr string) *Set {
	t.Helper()
	src := fmt.Sprintf("rules:\n  - {id: r, title: R, severity: low, match: %q, threshold: {count: 1, window: 1m}}\n", expr)
	s, err := Load("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
