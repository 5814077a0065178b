package detect_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// recorder is a Publisher that keeps what it was given and can be told to
// fail.
type recorder struct {
	mu   sync.Mutex
	got  []*detect.Finding
	fail error
}

func (r *recorder) Publish(_ context.Context, f *detect.Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, f)
	return nil
}

// brief is the part of a finding the table tests compare.
type brief struct {
	Rule, SrcIP, Severity string
	Count                 int64
}

// briefs sums up fs sorted by rule, address, severity and count: the
// detector publishes a batch's findings most severe first, which the
// tests do not pin down.
func briefs(fs []*detect.Finding) []brief {
	var out []brief
	for _, f := range fs {
		out = append(out, brief{f.Rule, f.SrcIP, f.Severity, f.Count})
	}
	slices.SortStableFunc(out, func(x, y brief) int {
		for _, c := range []int{strings.Compare(x.Rule, y.Rule), strings.Compare(x.SrcIP, y.SrcIP), strings.Compare(x.Severity, y.Severity)} {
			if c != 0 {
				return c
			}
		}
		return int(x.Count - y.Count)
	})
	return out
}

func newDetector(t *testing.T, pub detect.Publisher) (*detect.Detector, *memstate.State) {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease)
	d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	return d, st
}

// readBatch builds a batch from a testdata JSON-lines file, giving each line
// its line number as id.
func readBatch(t *testing.T, name, stream string) *cwlogs.Batch {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		LogGroup:    "/aws/eks/demo/cluster",
		LogStream:   stream,
		Cluster:     "demo",
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for n := 1; sc.Scan(); n++ {
		b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprint(n), Message: []byte(sc.Text())})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProcess(t *testing.T) {
	tests := []struct {
		file    string
		want    []brief
		skipped map[string]int
		// filtered lines contain no rule's pre-filter string.
		filtered int
	}{
		{
			// The client claims X-Forwarded-For 192.0.2.10; only the
			// connection's address, 203.0.113.66, may be blamed.
			file: "spoofed-xff.jsonl",
			want: []brief{
				{"eks-cluster-scan", "203.0.113.66", "low", 2},
				{"eks-pod-scan", "203.0.113.66", "medium", 2},
			},
		},
		{
			// Five refused requests stay under the burst threshold of six.
			file: "unauthenticated-403-x5.jsonl",
			want: []brief{{"eks-cluster-scan", "198.51.100.5", "low", 5}},
		},
		{
			file: "unauthenticated-403-x6.jsonl",
			want: []brief{
				{"eks-cluster-scan", "198.51.100.6", "low", 6},
				{"unauthenticated-403-burst", "198.51.100.6", "medium", 6},
			},
		},
		{
			// Seven requests 31 minutes apart never share a 30m window.
			file: "unauthenticated-403-spread.jsonl",
			// One cluster-scan finding per 24h suppression period, at its
			// first request, as live processing would have sent it.
			want: []brief{{"eks-cluster-scan", "198.51.100.7", "low", 1}},
		},
		{
			// The cut line is salvaged: what survived names an anonymous
			// request from 203.0.113.99, counted by eks-cluster-scan at
			// the ingestion time (0 here, 1970) since its timestamps were
			// lost, and reported as damaged. The line that is not JSON
			// at all shows no audit event and stays skipped.
			file: "skips.jsonl",
			want: []brief{
				{"audit-event-unreadable", "203.0.113.99", "high", 1},
				{"eks-cluster-scan", "203.0.113.99", "low", 1},
				{"eks-cluster-scan", "203.0.113.99", "low", 1},
			},
			skipped: map[string]int{
				detect.SkipMalformed: 1, detect.SkipNotAudit: 1,
				detect.SkipStage: 1, detect.SkipDuplicate: 1,
			},
			filtered: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pub := &recorder{}
			d, _ := newDetector(t, pub)
			b := readBatch(t, tt.file, "s1")
			if tt.file == "skips.jsonl" {
				// CloudWatch never repeats an id in a batch, but a
				// broken producer might: the repeat is dropped.
				b.Events = append(b.Events, b.Events[0])
			}
			res, err := d.Process(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, briefs(pub.got)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.skipped, res.Skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			if tt.filtered != res.Filtered {
				t.Errorf("filtered = %d, want %d", res.Filtered, tt.filtered)
			}
			for _, f := range pub.got {
				for _, ip := range f.ForwardedFor {
					if ip == f.SrcIP {
						t.Errorf("%s: src_ip %s also listed as forwarded_for", f.Rule, ip)
					}
				}
			}
		})
	}
}

func TestSpoofedForwardedForIsContextOnly(t *testing.T) {
	pub := &recorder{}
	d, _ := newDetector(t, pub)
	if _, err := d.Process(context.Background(), readBatch(t, "spoofed-xff.jsonl", "s1")); err != nil {
		t.Fatal(err)
	}
	if len(pub.got) == 0 {
		t.Fatal("no findings")
	}
	for _, f := range pub.got {
		if f.SrcIP == "192.0.2.10" || strings.Contains(f.Summary, "192.0.2.10") {
			t.Errorf("%s blames the spoofed address: %+v", f.Rule, f)
		}
		if diff := cmp.Diff([]string{"192.0.2.10"}, f.ForwardedFor); diff != "" {
			t.Errorf("%s forwarded_for (-want +got):\n%s", f.Rule, diff)
		}
	}
}

// TestRetryAndSuppression replays what Lambda does: the same batch again
// after a failure, later batches within and after the suppression period,
// and an escalation.
func TestRetryAndSuppression(t *testing.T) {
	pub := &recorder{}
	d, _ := newDetector(t, pub)
	ctx := context.Background()
	first := readBatch(t, "unauthenticated-403-x6.jsonl", "s1")

	pub.fail = errors.New("sns down")
	if _, err := d.Process(ctx, first); err == nil {
		t.Fatal("Process with a failing publisher returned no error")
	}
	pub.fail = nil
	res, err := d.Process(ctx, first) // Lambda's retry
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 2 || len(pub.got) != 2 {
		t.Fatalf("retry published %d (recorded %d), want 2", res.Published, len(pub.got))
	}
	if pub.got[0].Count != 6 {
		t.Errorf("count after retry = %d, want 6: the failed attempt's increments must not be applied twice", pub.got[0].Count)
	}
	res, err = d.Process(ctx, first) // a duplicate delivery after success
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 0 || res.Suppressed != 2 {
		t.Errorf("third run: published %d suppressed %d, want 0 and 2", res.Published, res.Suppressed)
	}

	// Four more requests ten minutes later: cluster-scan escalates to
	// medium (10 requests) and is sent again despite suppression; the
	// burst finding stays suppressed.
	pub.got = nil
	later := readBatch(t, "unauthenticated-403-x4-later.jsonl", "s2")
	if _, err := d.Process(ctx, later); err != nil {
		t.Fatal(err)
	}
	want := []brief{{"eks-cluster-scan", "198.51.100.6", "medium", 10}}
	if diff := cmp.Diff(want, briefs(pub.got)); diff != "" {
		t.Errorf("after escalation (-want +got):\n%s", diff)
	}
}

func TestControlMessage(t *testing.T) {
	pub := &recorder{}
	d, _ := newDetector(t, pub)
	b := &cwlogs.Batch{MessageType: cwlogs.ControlMessage, Events: []cwlogs.LogEvent{{Message: []byte("CWL CONTROL MESSAGE")}}}
	res, err := d.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Control || res.Parsed != 0 || len(pub.got) != 0 {
		t.Errorf("control message: %+v, %d findings", res, len(pub.got))
	}
}
