package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/snspub"
)

func tableCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: anonwatch table create NAME")
		return exitUsage
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch table create:", err)
		return exitError
	}
	err = dynamostate.CreateTable(ctx, dynamodb.NewFromConfig(cfg, dynamostate.ClientOptions()...), args[1])
	switch {
	case errors.Is(err, dynamostate.ErrTTLUnsupported):
		fmt.Fprintf(stderr, "anonwatch table create: warning: %v\n", err)
	case err != nil:
		fmt.Fprintln(stderr, "anonwatch table create:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "table %s ready\n", args[1])
	return exitOK
}

// newTopicPublisher builds the SNS publisher for replay --topic.
func newTopicPublisher(ctx context.Context, topic string) (*snspub.Publisher, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return snspub.New(snspub.NewClient(cfg), topic), nil
}

// newTableState builds the DynamoDB state for replay --table.
func newTableState(ctx context.Context, table string) (*dynamostate.State, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return dynamostate.New(dynamodb.NewFromConfig(cfg, dynamostate.ClientOptions()...), table, time.Now), nil
}
