// Command detector is the anonwatch Lambda function: it reads its
// configuration from the environment once, wires the DynamoDB state, the SNS
// publisher and the rules into a handler, and starts the Lambda runtime.
//
// Environment (a contract that deployments and tests rely on):
//
//	TABLE_NAME   DynamoDB table for rolling state (required)
//	TOPIC_ARN    SNS topic for findings (required)
//	RULES_FILE   rule file to use instead of the embedded rules (optional;
//	             a relative path is taken from the function's directory)
//	QUALIFY_CLUSTERS
//	             "true" in an organization's detector: clusters of one name
//	             in different accounts or regions are kept apart
//	             (detect.Config.Qualify); default false, a single-account
//	             deployment's keys
//
// It takes a CloudWatch Logs subscription event or a Kinesis event of a
// CloudWatch Logs destination's stream (handler.Event).
//
// GOMEMLIMIT, when set, replaces the soft memory limit the function
// otherwise derives from its memory size (internal/memlimit).
//
// The AWS SDK's own variables apply, such as AWS_REGION and
// AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SNS for local emulators.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/handler"
	"github.com/anonwatch/anonwatch/internal/memlimit"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/snspub"
)

func main() {
	log := lambdacontext.NewLogger()
	if limit, ok := memlimit.For(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	h, err := setup(context.Background(), log)
	if err != nil {
		// One clear line, then a failed init: Lambda reports it and
		// never runs a request with a half-built handler.
		log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Invoke)
}

func setup(ctx context.Context, log *slog.Logger) (*handler.Handler, error) {
	table, topic := os.Getenv("TABLE_NAME"), os.Getenv("TOPIC_ARN")
	if table == "" || topic == "" {
		return nil, errors.New("TABLE_NAME and TOPIC_ARN must be set")
	}
	qualify := false
	if v := os.Getenv("QUALIFY_CLUSTERS"); v != "" {
		var err error
		if qualify, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("QUALIFY_CLUSTERS=%q: want true or false", v)
		}
	}
	set, err := loadRules(os.Getenv("RULES_FILE"))
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	state := dynamostate.New(dynamodb.NewFromConfig(cfg, dynamostate.ClientOptions()...), table, time.Now)
	pub := snspub.New(snspub.NewClient(cfg), topic)
	// MarkLive: a backfill into the same table (anonwatch replay
	// --table) then counts only what came before this function did.
	det, err := detect.New(detect.Config{Rules: set, State: state, Publisher: pub, Logger: log, MarkLive: true, Qualify: qualify})
	if err != nil {
		return nil, err
	}
	return &handler.Handler{
		Processor:     det,
		Log:           log,
		Metrics:       os.Stdout,
		Limits:        cwlogs.DefaultLimits,
		Keep:          det.Keep,
		Now:           time.Now,
		Region:        cfg.Region,
		EKSOnly:       true,
		DynamoDBCalls: state.Calls,
		SNSCalls:      pub.Calls,
	}, nil
}

func loadRules(path string) (*rules.Set, error) {
	if path == "" {
		return rules.Default()
	}
	if !filepath.IsAbs(path) {
		if root := os.Getenv("LAMBDA_TASK_ROOT"); root != "" {
			path = filepath.Join(root, path)
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("RULES_FILE: %w", err)
	}
	return rules.Load(path, src)
}
