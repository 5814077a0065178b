package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ParameterAPI is the part of the SSM client that WebhookURL uses;
// *ssm.Client satisfies it.
type ParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// DefaultAllowedWebhooks is where the notifier posts unless configured
// otherwise: Slack's incoming webhooks.
var DefaultAllowedWebhooks = []string{"https://hooks.slack.com/"}

// WebhookURL reads the Slack webhook URL from the SSM SecureString
// parameter called name.
//
// The URL is kept out of environment variables and templates, where it
// would show in the console and in deployment logs; only the parameter's
// name is configuration. A plain String parameter is refused for the same
// reason. The URL must start with one of allowed (DefaultAllowedWebhooks
// when empty), so that whoever can write the parameter cannot make the
// notifier post findings elsewhere, or be http to a loopback address for a
// local stand-in. Errors never contain the value.
func WebhookURL(ctx context.Context, api ParameterAPI, name string, allowed []string) (string, error) {
	if name == "" {
		return "", errors.New("no SSM parameter name for the Slack webhook URL")
	}
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		var nf *types.ParameterNotFound
		if errors.As(err, &nf) {
			return "", fmt.Errorf("SSM parameter %q does not exist", name)
		}
		return "", fmt.Errorf("read SSM parameter %q: %v", name, err)
	}
	if out.Parameter == nil {
		return "", fmt.Errorf("read SSM parameter %q: empty answer", name)
	}
	if t := out.Parameter.Type; t != types.ParameterTypeSecureString {
		return "", fmt.Errorf("SSM parameter %q is a %s; store the webhook URL as a SecureString", name, t)
	}
	v := aws.ToString(out.Parameter.Value)
	if err := checkURL(v, allowed); err != nil {
		return "", fmt.Errorf("SSM parameter %q: %v", name, err)
	}
	return v, nil
}

// checkURL accepts an absolute https URL that starts with one of allowed
// (DefaultAllowedWebhooks when empty), or an http URL to a loopback
// address. Its errors do not quote the URL.
func checkURL(s string, allowed []string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("value is not an absolute URL")
	}
	if len(allowed) == 0 {
		allowed = DefaultAllowedWebhooks
	}
	switch u.Scheme {
	case "https":
		for _, p := range allowed {
			// A prefix must end its host with "/", or
			// https://hooks.slack.com.evil.example/ would pass.
			if strings.Count(p, "/") >= 3 && strings.HasPrefix(s, p) {
				return nil
			}
		}
		return fmt.Errorf("value is not a URL the notifier may post to (allowed: %s)", strings.Join(allowed, ", "))
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("value is an http URL; the webhook must be https")
	}
	return errors.New("value is not an https URL")
}
