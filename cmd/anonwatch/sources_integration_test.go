//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/logsource"
)

// TestBackfillSources puts the backfill fixtures' events into a log group
// on moto, and their CloudWatch export into a bucket, and replays both
// through the CLI's --log-group and s3:// sources: each must give the
// findings of the plain JSON-lines replay of the same events, one file per
// stream.
func TestBackfillSources(t *testing.T) {
	logs, store := logsource.NewClients(emu.Moto(t))
	ctx := context.Background()
	perStream := []string{backfillDir + "/lines/" + fixtureStreamA + ".jsonl", backfillDir + "/lines/" + fixtureStreamB + ".jsonl"}
	want, wantCounts := replayFindings(t, "", perStream...)

	t.Run("log group", func(t *testing.T) {
		// The fixtures' log group; left over from an earlier run, it goes.
		logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(fixtureGroup)})
		if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(fixtureGroup)}); err != nil {
			t.Fatal(err)
		}
		evs := backfillEvents(t)
		first, last := evs[0].timestamp, evs[0].timestamp
		for _, stream := range []string{fixtureStreamA, fixtureStreamB} {
			if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(fixtureGroup), LogStreamName: aws.String(stream)}); err != nil {
				t.Fatal(err)
			}
			var in []cwtypes.InputLogEvent
			for _, e := range ofStream(evs, stream) {
				in = append(in, cwtypes.InputLogEvent{Timestamp: aws.Int64(e.timestamp), Message: aws.String(e.message)})
				first, last = min(first, e.timestamp), max(last, e.timestamp)
			}
			// PutLogEvents takes a stream's events in time order.
			slices.SortStableFunc(in, func(a, b cwtypes.InputLogEvent) int { return int(*a.Timestamp - *b.Timestamp) })
			if _, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(fixtureGroup), LogStreamName: aws.String(stream), LogEvents: in}); err != nil {
				t.Fatal(err)
			}
		}
		start := time.UnixMilli(first).UTC().Format(time.RFC3339Nano)
		end := time.UnixMilli(last + 1).UTC().Format(time.RFC3339Nano)
		got, gotCounts := replayFindings(t, fixtureGroup, "--log-group", fixtureGroup, "--start", start, "--end", end)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("findings differ from the JSON-lines replay (-want +got):\n%s", diff)
		}
		if gotCounts != wantCounts {
			t.Errorf("summary counts %q, want %q", gotCounts, wantCounts)
		}
	})

	t.Run("S3 export", func(t *testing.T) {
		bucket := fmt.Sprintf("anonwatch-archive-%d", time.Now().UnixNano())
		if _, err := store.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		// As create-export-task lays it out: <prefix>/<task>/<stream>/000000.gz,
		// beside the write-test object it leaves at the prefix.
		put := func(key string, body []byte) {
			if _, err := store.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
		put("eks/aws-logs-write-test", []byte("Permission Check Successful"))
		for _, stream := range []string{fixtureStreamA, fixtureStreamB} {
			path := backfillDir + "/export/" + fixtureTask + "/" + stream + "/000000.gz"
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			put("eks/"+fixtureTask+"/"+stream+"/000000.gz", b)
		}
		got, gotCounts := replayFindings(t, "", "s3://"+bucket+"/eks/")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("findings differ from the JSON-lines replay (-want +got):\n%s", diff)
		}
		if gotCounts != wantCounts {
			t.Errorf("summary counts %q, want %q", gotCounts, wantCounts)
		}
	})
}
