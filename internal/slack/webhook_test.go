package slack

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// fakeSSM answers GetParameter with out or err and records the input.
type fakeSSM struct {
	in  *ssm.GetParameterInput
	out *ssm.GetParameterOutput
	err error
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.in = in
	return f.out, f.err
}

func param(typ types.ParameterType, value string) *ssm.GetParameterOutput {
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: aws.String("/anonwatch/slack"), Type: typ, Value: aws.String(value)}}
}

func TestWebhookURL(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T000SECRET/B000SECRET/XXXXSECRETXXXX"
	tests := []struct {
		name    string
		param   string
		api     *fakeSSM
		want    string
		wantErr string
	}{
		{"secure https", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, hook)}, hook, ""},
		{"loopback http for a local stand-in", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "http://127.0.0.1:8080/SECRET")}, "http://127.0.0.1:8080/SECRET", ""},
		{"no name", "", &fakeSSM{}, "", "no SSM parameter name"},
		{"missing", "/anonwatch/slack", &fakeSSM{err: &types.ParameterNotFound{Message: aws.String("x")}}, "", `"/anonwatch/slack" does not exist`},
		{"access denied", "/anonwatch/slack", &fakeSSM{err: errors.New("AccessDeniedException: not allowed")}, "", "AccessDeniedException"},
		{"plain String", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeString, hook)}, "", "SecureString"},
		{"no parameter", "/anonwatch/slack", &fakeSSM{out: &ssm.GetParameterOutput{}}, "", "empty answer"},
		{"remote http", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "http://hooks.example.com/SECRET")}, "", "must be https"},
		{"not a URL", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "SECRET value")}, "", "not an absolute URL"},
		{"unparsable", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "https://SECRET host/%zz")}, "", "not an absolute URL"},
		{"user info", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "https://SECRET:pw@hooks.example.com/")}, "", "not an absolute URL"},
		{"other scheme", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "ftp://hooks.example.com/SECRET")}, "", "not an https URL"},
		{"https elsewhere than Slack", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "https://collector.example.com/SECRET")}, "", "not a URL the notifier may post to"},
		{"Slack's host as a prefix of another", "/anonwatch/slack", &fakeSSM{out: param(types.ParameterTypeSecureString, "https://hooks.slack.com.evil.example/SECRET")}, "", "not a URL the notifier may post to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WebhookURL(context.Background(), tt.api, tt.param, nil)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("WebhookURL() = %q, want %q", got, tt.want)
			}
			if tt.api.in != nil && (aws.ToString(tt.api.in.Name) != tt.param || !aws.ToBool(tt.api.in.WithDecryption)) {
				t.Errorf("GetParameter input = name %q decryption %v, want %q and true",
					aws.ToString(tt.api.in.Name), aws.ToBool(tt.api.in.WithDecryption), tt.param)
			}
			if err != nil && !strings.Contains(err.Error(), tt.param) {
				t.Errorf("error %q does not name the parameter %q", err, tt.param)
			}
		})
	}
}

// TestWebhookAllowlist: an operator can widen where the notifier posts, by
// whole prefixes only.
func TestWebhookAllowlist(t *testing.T) {
	tests := []struct {
		url     string
		allowed []string
		wantErr string
	}{
		{"https://hooks.slack.com/services/SECRET", nil, ""},
		{"https://chat.example.com/hooks/SECRET", []string{"https://chat.example.com/hooks/"}, ""},
		{"https://chat.example.com/other/SECRET", []string{"https://chat.example.com/hooks/"}, "not a URL the notifier may post to"},
		{"https://hooks.slack.com/services/SECRET", []string{"https://chat.example.com/hooks/"}, "not a URL the notifier may post to"},
		// A prefix without a path would allow any host it begins.
		{"https://chat.example.com.evil.example/x", []string{"https://chat.example.com"}, "not a URL the notifier may post to"},
	}
	for _, tt := range tests {
		_, err := WebhookURL(context.Background(), &fakeSSM{out: param(types.ParameterTypeSecureString, tt.url)}, "/anonwatch/slack", tt.allowed)
		checkErr(t, err, tt.wantErr)
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error quotes the URL: %v", err)
		}
	}
}
