//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/logsource"
)

// TestBackfillLogGroupFenced backfills the same events into the function's
// table twice, once read from the log group (--log-group, on moto) and once
// from filter-log-events output, each into a table where the function
// began counting half-way through: both must leave the same events to the
// function. A log group's pages are batches of replay's own, as an
// export's are, so counting them again would count the function's events
// twice.
func TestBackfillLogGroupFenced(t *testing.T) {
	logs, _ := logsource.NewClients(emu.Moto(t))
	useDynalite(t)
	ctx := context.Background()
	const group, cluster = "/aws/eks/fence/cluster", "fence"
	logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)})
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	evs := backfillEvents(t)
	var times []int64
	for _, stream := range []string{fixtureStreamA, fixtureStreamB} {
		if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		var in []cwtypes.InputLogEvent
		for _, e := range ofStream(evs, stream) {
			in = append(in, cwtypes.InputLogEvent{Timestamp: aws.Int64(e.timestamp), Message: aws.String(e.message)})
			times = append(times, e.timestamp)
		}
		slices.SortStableFunc(in, func(a, b cwtypes.InputLogEvent) int { return int(*a.Timestamp - *b.Timestamp) })
		if _, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: in}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(times)
	live := time.UnixMilli(times[len(times)/2]).UTC()
	cli := filepath.Join(t.TempDir(), "filter-log-events.json")
	if err := os.WriteFile(cli, filterLogEvents(t, evs), 0o644); err != nil {
		t.Fatal(err)
	}
	left := regexp.MustCompile(`(\d+) events left to the function`)
	backfill := func(args ...string) string {
		t.Helper()
		table := fmt.Sprintf("fence-%d", time.Now().UnixNano())
		if code, _, stderr := runCLI(t, "", "table", "create", table); code != exitOK {
			t.Fatalf("table create: exit %d: %s", code, stderr)
		}
		st, err := newTableState(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, stream := range []string{fixtureStreamA, fixtureStreamB} {
			if err := st.MarkLive(ctx, cluster, stream, live); err != nil {
				t.Fatal(err)
			}
		}
		code, _, stderr := runCLI(t, "", append([]string{"replay", "--table", table, "--cluster", cluster}, args...)...)
		if code != exitOK {
			t.Fatalf("replay %v: exit %d: %s", args, code, stderr)
		}
		m := left.FindStringSubmatch(stderr)
		if m == nil {
			return "0 (" + stderr + ")"
		}
		return m[1]
	}
	want := backfill(cli)
	if want == "0" {
		t.Fatal("the filter-log-events backfill left nothing to the function: the test shows nothing")
	}
	start := time.UnixMilli(times[0]).UTC().Format(time.RFC3339Nano)
	end := time.UnixMilli(times[len(times)-1] + 1).UTC().Format(time.RFC3339Nano)
	if got := backfill("--log-group", group, "--start", start, "--end", end); got != want {
		t.Errorf("--log-group left %s events to the function, filter-log-events output %s", got, want)
	}
}

// TestReplayDeadLetterMarksLive: replay --table applies a dead-lettered
// subscription event as the function would (reliability.md, "Replaying a
// dead-lettered event"), so it marks the cluster live as the function
// would have: a backfill run after it leaves the event's log events to
// the table, rather than counting them a second time.
func TestReplayDeadLetterMarksLive(t *testing.T) {
	useDynalite(t)
	ctx := context.Background()
	evs := ofStream(backfillEvents(t), fixtureStreamA)
	b := cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: fixtureOwner, LogGroup: fixtureGroup, LogStream: fixtureStreamA}
	first, last := evs[0].timestamp, evs[0].timestamp
	for _, e := range evs {
		b.Events = append(b.Events, cwlogs.LogEvent{ID: e.id, Timestamp: e.timestamp, Message: []byte(e.message)})
		first, last = min(first, e.timestamp), max(last, e.timestamp)
	}
	env, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dlq := filepath.Join(dir, "dlq.json")
	if err := os.WriteFile(dlq, env, 0o644); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("dlq-%d", time.Now().UnixNano())
	if code, _, stderr := runCLI(t, "", "table", "create", table); code != exitOK {
		t.Fatalf("table create: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "replay", "--table", table, dlq); code != exitOK {
		t.Fatalf("replay of the dead-lettered event: exit %d: %s", code, stderr)
	}
	st, err := newTableState(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.LiveSince(ctx, fixtureCluster)
	// From the earliest event it counted, watches aside: not before the
	// delivery's first event, nor after its last.
	if m := got[fixtureStreamA]; err != nil || len(got) != 1 || m.Before(time.UnixMilli(first).UTC()) || m.After(time.UnixMilli(last).UTC()) {
		t.Errorf("after the dead-letter replay, %s is live from %v (%v); want a mark of %s between %v and %v", fixtureCluster, got, err, fixtureStreamA, time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC())
	}
	// The same events, from the stream's export: all the function's now.
	code, _, stderr := runCLI(t, "", "replay", "--table", table, "--cluster", fixtureCluster, filepath.Join(backfillDir, "lines", fixtureStreamA+".jsonl"))
	if code != exitOK {
		t.Fatalf("backfill: exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`; 0 findings due`).MatchString(stderr) || regexp.MustCompile(`; 0 events left to the function`).MatchString(stderr) {
		t.Errorf("the backfill counted the dead-lettered events again: %s", stderr)
	}
}
