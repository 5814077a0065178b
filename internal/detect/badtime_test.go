package detect_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

func TestValidEventTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want bool
	}{
		{time.Time{}, false},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Unix(0, -1), false},
		{time.Unix(0, 0), true},
		{time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC), true},
		{time.Date(8999, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := detect.ValidEventTime(tt.t); got != tt.want {
			t.Errorf("ValidEventTime(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
}

// TestBadEventTimes processes testdata/bad-times.jsonl: a request dated
// year 0 (203.0.113.10), one dated year 9999 (.11), a normal one (.12), and
// one whose requestReceivedTimestamp is year 0 but whose stageTimestamp is
// sound (.13). A time outside ValidEventTime falls back to the stage time,
// then to CloudWatch's ingestion time; a request with none of them usable is
// skipped as bad_time. Either way the rest of the batch is processed: such
// a line once failed the whole delivery, for good, in state.
func TestBadEventTimes(t *testing.T) {
	// In the minute of the requests, so each group has one bucket.
	cloudwatch := time.Date(2026, 11, 28, 10, 30, 10, 0, time.UTC).UnixMilli()
	tests := []struct {
		name      string
		ingest    int64 // every event's CloudWatch timestamp, Unix ms
		maxGroups int   // 0: detect.DefaultMaxGroups
		want      []brief
		skipped   map[string]int
		parsed    int
	}{
		{
			name:   "ingestion time stands in",
			ingest: cloudwatch,
			want: []brief{
				{"anonymous-network-rotation", "", "low", 4},
				{"eks-cluster-scan", "203.0.113.10", "low", 1},
				{"eks-cluster-scan", "203.0.113.11", "low", 1},
				{"eks-cluster-scan", "203.0.113.12", "low", 1},
				{"eks-cluster-scan", "203.0.113.13", "low", 1},
			},
			parsed: 4,
		},
		{
			// Replayed JSON lines carry no ingestion time: the epoch,
			// which is in range.
			name:   "ingestion time zero",
			ingest: 0,
			// .10 and .11 are in 1970, so 203.0.113.0/24 has two
			// addresses in each hour: no rotation.
			want: []brief{
				{"eks-cluster-scan", "203.0.113.10", "low", 1},
				{"eks-cluster-scan", "203.0.113.11", "low", 1},
				{"eks-cluster-scan", "203.0.113.12", "low", 1},
				{"eks-cluster-scan", "203.0.113.13", "low", 1},
			},
			parsed: 4,
		},
		{
			name:   "ingestion time out of range too",
			ingest: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli(),
			want: []brief{
				{"eks-cluster-scan", "203.0.113.12", "low", 1},
				{"eks-cluster-scan", "203.0.113.13", "low", 1},
			},
			skipped: map[string]int{detect.SkipBadTime: 2},
			parsed:  2,
		},
		{
			name:   "ingestion time before 1970",
			ingest: -1,
			want: []brief{
				{"eks-cluster-scan", "203.0.113.12", "low", 1},
				{"eks-cluster-scan", "203.0.113.13", "low", 1},
			},
			skipped: map[string]int{detect.SkipBadTime: 2},
			parsed:  2,
		},
		{
			// One group a rule: the second pass (regroup) sends the
			// other three to the sweep, and must settle their times as
			// the first pass did.
			name:      "second pass",
			ingest:    cloudwatch,
			maxGroups: 1,
			want: []brief{
				{"anonymous-network-rotation", "", "low", 4},
				{"eks-cluster-scan", "", "low", 3},
				{"eks-cluster-scan", "203.0.113.10", "low", 1},
			},
			parsed: 4,
		},
		{
			name:      "second pass, lines skipped",
			ingest:    -1,
			maxGroups: 1,
			want: []brief{
				{"eks-cluster-scan", "", "low", 1},
				{"eks-cluster-scan", "203.0.113.12", "low", 1},
			},
			skipped: map[string]int{detect.SkipBadTime: 2},
			parsed:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := rules.Default()
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			pub := &recorder{}
			d, err := detect.New(detect.Config{
				Rules:     set,
				State:     memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease),
				Publisher: pub,
				Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
				MaxGroups: tt.maxGroups,
			})
			if err != nil {
				t.Fatal(err)
			}
			b := readBatch(t, "bad-times.jsonl", "s1")
			for i := range b.Events {
				b.Events[i].Timestamp = tt.ingest
			}
			res, err := d.Process(context.Background(), b)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if diff := cmp.Diff(tt.want, briefs(pub.got)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.skipped, res.Skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			// eks-cluster-scan, unauthenticated-403-burst,
			// anonymous-enumeration, anonymous-slow-scan, the three
			// cluster-wide campaign rules and anonymous-network-rotation;
			// only the first fires on one request, and the last on the
			// three or more addresses of 203.0.113.0/24.
			if res.Parsed != tt.parsed || res.Matched != 8*tt.parsed || res.Published != len(tt.want) {
				t.Errorf("parsed %d, matched %d, published %d; want %d, %d, %d",
					res.Parsed, res.Matched, res.Published, tt.parsed, 8*tt.parsed, len(tt.want))
			}
			if n := strings.Count(logs.String(), "reason="+detect.SkipBadTime); n != tt.skipped[detect.SkipBadTime] {
				t.Errorf("%d bad_time warnings, want %d:\n%s", n, tt.skipped[detect.SkipBadTime], logs.String())
			}
			for _, f := range pub.got {
				if !detect.ValidEventTime(f.FirstSeen) || !detect.ValidEventTime(f.LastSeen) {
					t.Errorf("finding %s %s seen %v to %v", f.Rule, f.SrcIP, f.FirstSeen, f.LastSeen)
				}
			}
		})
	}
}
