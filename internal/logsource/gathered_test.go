package logsource

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// onePage is a LogsAPI whose log group holds one page of events.
type onePage []types.FilteredLogEvent

func (p onePage) FilterLogEvents(context.Context, *cloudwatchlogs.FilterLogEventsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	return &cloudwatchlogs.FilterLogEventsOutput{Events: p}, nil
}

// TestLogGroupBatchesAreGathered: the batches of FilterLogEvents pages are
// cut by replay, not by a subscription, so they must say so
// (cwlogs.Batch.Gathered): replay --table leaves the events the function
// counted only out of gathered batches, and a log group read without the
// flag would be counted again whole.
func TestLogGroupBatchesAreGathered(t *testing.T) {
	api := onePage{
		{LogStreamName: aws.String("kube-apiserver-audit-a"), EventId: aws.String("1"), Timestamp: aws.Int64(1000), Message: aws.String("{}")},
		{LogStreamName: aws.String("kube-apiserver-audit-b"), EventId: aws.String("2"), Timestamp: aws.Int64(2000), Message: aws.String("{}")},
	}
	g := &LogGroup{API: api, Name: "/aws/eks/prod/cluster"}
	n := 0
	err := g.Each(context.Background(), func(b *cwlogs.Batch) error {
		n++
		if !b.Gathered {
			t.Errorf("batch of stream %s is not marked Gathered", b.LogStream)
		}
		return nil
	}, nil)
	if err != nil || n != 2 {
		t.Fatalf("Each: %d batches, %v; want 2", n, err)
	}
}
