package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ParameterAPI is the part of the SSM client that WebhookURL uses;
// *ssm.Client satisfies it.
type ParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// WebhookURL reads the Slack webhook URL from the SSM SecureString
// parameter called name.
//
// The URL is kept out of environment variables and templates, where it
// would show in the console and in deployment logs; only the parameter's
// name is configuration. A plain String parameter is refused for the same
// reason. The URL must be https, or http to a loopback address for a local
// stand-in. Errors never contain the value.
func WebhookURL(ctx context.Context, api ParameterAPI, name string) (string, error) {
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
	if err := checkURL(v); err != nil {
		return "", fmt.Errorf("SSM parameter %q: %v", name, err)
	}
	return v, nil
}

// checkURL accepts an absolute https URL, or an http URL to a loopback
// address. Its errors do not quote the URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("value is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("value is an http URL; the webhook must be https")
	}
	return errors.New("value is not an https URL")
}
