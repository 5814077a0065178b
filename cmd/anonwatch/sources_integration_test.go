//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/logsource"
)

// TestBackfillSources puts the backfill fixtures' events into a log group
// on moto, and each of their formats into a bucket, laid out as AWS writes
// it, and replays them through the CLI's --log-group and s3:// sources:
// each must give the findings of the plain JSON-lines replay of the same
// events (see TestBackfillFormats).
func TestBackfillSources(t *testing.T) {
	logs, store := logsource.NewClients(emu.Moto(t))
	ctx := context.Background()
	formats, perStream := backfillFormats(t)

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
		replayLike(t, perStream, fixtureGroup, "--log-group", fixtureGroup, "--start", start, "--end", end)
	})

	bucket := fmt.Sprintf("anonwatch-archive-%d", time.Now().UnixNano())
	if _, err := store.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, key, file string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// The JSON lines themselves, uploaded, are a format too.
	formats = append(formats, backfillFormat{"JSON lines, a file per stream", perStream, perStream, ""})
	for _, f := range formats {
		t.Run("S3, "+f.name, func(t *testing.T) {
			prefix, _ := s3Key(f.files[0])
			for _, file := range f.files {
				p, key := s3Key(file)
				if p != prefix {
					t.Fatalf("%s under %s, not %s with the format's other files", file, p, prefix)
				}
				put(t, key, file)
			}
			if prefix == "export/" {
				// CloudWatch leaves it at the prefix when the task starts.
				if _, err := store.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "aws-logs-write-test"),
					Body: strings.NewReader("Permission Check Successful")}); err != nil {
					t.Fatal(err)
				}
			}
			replayLike(t, f.like, f.logGroup, "s3://"+bucket+"/"+prefix)
		})
	}

	// Formats side by side under one prefix, each holding a stream of its
	// own, so that each event is read once. Not the whole bucket: it holds
	// every event once per format, and as the formats differ in event ids
	// and log group, no JSON-lines replay gives its findings.
	t.Run("S3, a prefix of several formats", func(t *testing.T) {
		put(t, "mixed/"+fixtureTask+"/"+fixtureStreamA+"/000000.gz", backfillDir+"/export/"+fixtureTask+"/"+fixtureStreamA+"/000000.gz")
		put(t, "mixed/"+fixtureStreamB+".json", backfillDir+"/get-log-events/"+fixtureStreamB+".json")
		replayLike(t, perStream, "", "s3://"+bucket+"/mixed/")
	})
}

// s3Key returns where a testdata/backfill file goes in the bucket: its
// format's prefix, and its key, as AWS lays it out. create-export-task
// writes <prefix>/<task>/<stream>/000000.gz, as testdata does; Firehose
// <prefix>YYYY/MM/dd/HH/<stream>-<version>-<time>-<uuid>, in UTC, with .gz
// when it compresses (here a minute after the fixtures' last event); the
// CLI's output and JSON lines go up as they are.
func s3Key(file string) (prefix, key string) {
	rel := strings.TrimPrefix(file, backfillDir+"/")
	dir, name, nested := strings.Cut(rel, "/")
	switch {
	case dir == "export":
		return "export/", rel
	case dir == "firehose":
		key = rel + "/2026/11/28/10/anonwatch-archive-1-2026-11-28-10-26-03-7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
		if strings.HasSuffix(name, ".gz") {
			key += ".gz"
		}
		return rel + "/", key
	case nested:
		return dir + "/", rel
	default:
		base, _, _ := strings.Cut(rel, ".")
		return base + "/", base + "/" + rel
	}
}
