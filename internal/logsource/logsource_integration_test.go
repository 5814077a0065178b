//go:build integration

package logsource_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/logsource"
)

// TestLogGroup puts events into two streams of a log group, some outside
// the time range and some without the pattern's term, and reads them back
// in small pages: every event in the range with the term arrives once,
// with its stream, id and timestamp, whatever the page cuts. The server
// may apply the pattern or not (moto applies only some): nothing depends
// on it.
func TestLogGroup(t *testing.T) {
	logs, _ := logsource.NewClients(emu.Moto(t))
	ctx := context.Background()
	group := fmt.Sprintf("/aws/eks/hist-%d/cluster", time.Now().UnixNano())
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	want := map[string]string{} // message → stream
	for s, stream := range []string{"kube-apiserver-audit-aaaa", "kube-apiserver-audit-bbbb"} {
		if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		var evs []cwtypes.InputLogEvent
		for i := range 30 {
			at := start.Add(time.Duration(i*4+s) * time.Minute)
			user := "system:anonymous"
			if i%3 == 2 {
				user = "system:node:ip-10-0-1-2"
			}
			msg := fmt.Sprintf(`{"kind":"Event","auditID":"%d-%d","user":{"username":%q},"stage":"ResponseComplete"}`, s, i, user)
			evs = append(evs, cwtypes.InputLogEvent{Timestamp: aws.Int64(at.UnixMilli()), Message: aws.String(msg)})
			if i < 25 && user == "system:anonymous" {
				want[msg] = stream
			}
		}
		if _, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	src := &logsource.LogGroup{API: logs, Name: group, Start: start, End: start.Add(100 * time.Minute),
		Pattern: `?"system:anonymous"`, PageSize: 7}
	got := map[string]string{}
	ids := map[string]bool{}
	var last logsource.Progress
	err := src.Each(ctx, func(b *cwlogs.Batch) error {
		if b.LogGroup != group || b.Cluster != strings.Split(group, "/")[3] {
			t.Errorf("batch of log group %q cluster %q", b.LogGroup, b.Cluster)
		}
		for _, e := range b.Events {
			if _, dup := got[string(e.Message)]; dup || ids[e.ID] {
				t.Errorf("event %s read twice", e.Message)
			}
			got[string(e.Message)], ids[e.ID] = b.LogStream, true
			if e.Timestamp < start.UnixMilli() || e.Timestamp >= start.Add(100*time.Minute).UnixMilli() {
				t.Errorf("event at %v outside the range", time.UnixMilli(e.Timestamp))
			}
		}
		return nil
	}, func(p logsource.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(want) {
		t.Errorf("read %d events, want at least the %d with the term", len(got), len(want))
	}
	for msg, stream := range want {
		if got[msg] != stream {
			t.Errorf("%s: stream %q, want %q", msg, got[msg], stream)
		}
	}
	if last.Events != int64(len(got)) || last.Pages < 2 {
		t.Errorf("progress %+v: want %d events over several pages", last, len(got))
	}
}

// TestPrefix lists and streams the objects under a prefix, skipping the
// console's folder marker and CloudWatch's write-test object.
func TestPrefix(t *testing.T) {
	_, store := logsource.NewClients(emu.Moto(t))
	ctx := context.Background()
	bucket := fmt.Sprintf("anonwatch-hist-%d", time.Now().UnixNano())
	if _, err := store.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	objects := map[string]string{
		"exports/":                    "",
		"exports/aws-logs-write-test": "Permission Check Successful",
		"exports/task-1/kube-apiserver-audit-a/000000.gz": "first",
		"exports/task-1/kube-apiserver-audit-b/000000.gz": "second",
		"elsewhere/000000.gz":                             "not under the prefix",
	}
	for k, v := range objects {
		if _, err := store.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	bkt, prefix, err := logsource.ParseS3URL("s3://" + bucket + "/exports/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = (&logsource.Prefix{API: store, Bucket: bkt, Prefix: prefix}).Each(ctx, func(key string, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, []byte(objects[key])) {
			t.Errorf("%s: read %q, want %q", key, b, objects[key])
		}
		keys = append(keys, key)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exports/task-1/kube-apiserver-audit-a/000000.gz", "exports/task-1/kube-apiserver-audit-b/000000.gz"}
	if !slices.Equal(keys, want) {
		t.Errorf("objects read %v, want %v", keys, want)
	}
}
