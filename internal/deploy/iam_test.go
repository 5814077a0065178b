package deploy

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/slack"
	"github.com/anonwatch/anonwatch/internal/snspub"
)

// actionsOf names the IAM actions an adapter's client interface can call:
// one per method, "<service>:<Operation>". The adapters take their SDK
// client through these small interfaces, so a call the interface lacks does
// not compile, and a method added to it shows up here.
func actionsOf(service string, iface any) []string {
	t := reflect.TypeOf(iface).Elem()
	out := make([]string, 0, t.NumMethod())
	for i := range t.NumMethod() {
		out = append(out, service+":"+t.Method(i).Name)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestIAMMatchesCode keeps the template's policies (checked against these
// lists by the template tests) and the SDK operations the code calls from
// drifting apart, in both directions.
func TestIAMMatchesCode(t *testing.T) {
	tests := []struct {
		name   string
		code   []string
		policy []string
	}{
		{"detector DynamoDB", actionsOf("dynamodb", (*dynamostate.API)(nil)), DetectorDynamoDBActions},
		{"detector SNS", actionsOf("sns", (*snspub.API)(nil)), DetectorSNSActions},
		{"slack-notifier SSM", actionsOf("ssm", (*slack.ParameterAPI)(nil)), SlackNotifierSSMActions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.code) == 0 {
				t.Fatal("the client interface has no methods")
			}
			if diff := cmp.Diff(sorted(tt.policy), tt.code); diff != "" {
				t.Errorf("IAM actions (-policy +code):\n%s", diff)
			}
		})
	}
}

// TestSharedNames checks the names the template and the adapters share.
func TestSharedNames(t *testing.T) {
	if dynamostate.TTLAttribute != TableTTLAttribute {
		t.Errorf("TTL attribute: adapter %q, template %q", dynamostate.TTLAttribute, TableTTLAttribute)
	}
	if snspub.AttrSeverity != SeverityAttribute {
		t.Errorf("severity attribute: publisher %q, e-mail filter %q", snspub.AttrSeverity, SeverityAttribute)
	}
}
