package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
)

func TestFieldValue(t *testing.T) {
	ev := sampleEvent()
	ev.User.Groups = []string{"z", "system:unauthenticated", "a"}
	tests := []struct {
		field Field
		ev    audit.Event
		want  string
	}{
		{FieldSrcIP, ev, "203.0.113.9"},
		{FieldClusterName, ev, "prod"},
		{FieldUser, ev, "system:anonymous"},
		{FieldGroups, ev, "a,system:unauthenticated,z"},
		{FieldGroups, audit.Event{}, ""},
		{FieldUserAgent, ev, "curl/8.5.0"},
		{FieldPath, ev, "/api/v1/namespaces/default/pods/web-0/exec"},
		{FieldRequestURI, ev, "/api/v1/namespaces/default/pods/web-0/exec?command=sh"},
		{FieldVerb, ev, "create"},
		{FieldCode, ev, "101"},
		{FieldCode, audit.Event{}, ""},
		{FieldReason, audit.Event{ResponseReason: "Forbidden"}, "Forbidden"},
		{FieldResource, ev, "pods"},
		{FieldNamespace, ev, "default"},
		{FieldName, ev, "web-0"},
		{FieldDecisionReason, ev, `RBAC: allowed by RoleBinding "x"`},
		{FieldAuditID, audit.Event{AuditID: "5f0c0031"}, "5f0c0031"},
		{FieldDamage, ev, "truncated, 1048576 bytes"},
		{FieldDamage, audit.Event{LineSize: 900}, ""},
		{FieldSrcIP, audit.Event{SourceIPs: []string{"203.0.113.9", "garbage"}}, ""},
		{Field("nope"), ev, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.field)+"/"+tt.want, func(t *testing.T) {
			if got := tt.field.Value(&tt.ev, "prod"); got != tt.want {
				t.Errorf("%s.Value() = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
	if diff := cmp.Diff([]string{"z", "system:unauthenticated", "a"}, ev.User.Groups); diff != "" {
		t.Errorf("Value sorted the event's groups in place (-want +got):\n%s", diff)
	}
}

func TestParseField(t *testing.T) {
	for _, f := range Fields() {
		got, err := ParseField(string(f))
		if err != nil || got != f {
			t.Errorf("ParseField(%q) = %q, %v; want %q", f, got, err, f)
		}
	}
	for _, bad := range []string{"", "ip", "Src_IP", "namespace "} {
		if got, err := ParseField(bad); err == nil {
			t.Errorf("ParseField(%q) = %q, want an error", bad, got)
		}
	}
	var groupable []Field
	for _, f := range Fields() {
		if f.Groupable() {
			groupable = append(groupable, f)
		}
	}
	if diff := cmp.Diff([]Field{FieldSrcIP, FieldSrcNet, FieldClusterName, FieldUser, FieldGroups, FieldUserAgent}, groupable); diff != "" {
		t.Errorf("groupable fields (-want +got):\n%s", diff)
	}
}
