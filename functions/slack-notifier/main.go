// Command slack-notifier is the Lambda function that posts anonwatch
// findings to Slack. It subscribes to the findings topic; WEBHOOK_PARAMETER
// names the SSM SecureString parameter that holds the incoming-webhook URL,
// read once at start. SLACK_MAX_ATTEMPTS and SLACK_RETRY_BUDGET (a Go
// duration) set how long one post keeps trying while Slack refuses it
// (slack.ParsePolicy; slack.DefaultPolicy when unset). The template deploys
// this program twice: for critical findings, with more patience, and for
// the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/anonwatch/anonwatch/internal/slack"
)

// ssmTimeout bounds the parameter read, well inside Lambda's 10-second init.
const ssmTimeout = 5 * time.Second

func main() {
	n, err := setup(context.Background(), os.Getenv, newLogger(os.Stdout, os.Getenv("AWS_LAMBDA_LOG_LEVEL")))
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("slack-notifier cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(n.Handle)
}

// setup reads the configuration and builds the notifier, so that a bad
// configuration fails the function's init rather than a request.
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*slack.Notifier, error) {
	name := getenv("WEBHOOK_PARAMETER")
	if name == "" {
		return nil, errors.New("WEBHOOK_PARAMETER is not set; it must name the SSM SecureString parameter that holds the Slack webhook URL")
	}
	policy, err := slack.ParsePolicy(getenv("SLACK_MAX_ATTEMPTS"), getenv("SLACK_RETRY_BUDGET"))
	if err != nil {
		return nil, fmt.Errorf("SLACK_MAX_ATTEMPTS, SLACK_RETRY_BUDGET: %v", err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ssmTimeout)
	defer cancel()
	var allowed []string
	for _, p := range strings.Split(getenv("WEBHOOK_ALLOWED_PREFIXES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			allowed = append(allowed, p)
		}
	}
	url, err := slack.WebhookURL(ctx, ssm.NewFromConfig(cfg), name, allowed)
	if err != nil {
		return nil, err
	}
	return slack.NewNotifier(slack.New(url, policy, nil, nil), log), nil
}
