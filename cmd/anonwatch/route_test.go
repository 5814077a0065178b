package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/finding"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// ids records the IDs of the findings published to it.
type ids []string

func (p *ids) Publish(_ context.Context, f *detect.Finding) error {
	*p = append(*p, f.ID)
	return nil
}

// TestRouter: replay --topic publishes what the function would still be
// suppressing on its account, prints the rest, and with --publish
// publishes everything.
func TestRouter(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rule("eks-cluster-scan")
	if r == nil || r.Suppress <= 0 {
		t.Fatal("eks-cluster-scan has no suppression period")
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		f       detect.Finding
		all     bool
		publish bool
	}{
		{name: "just now", f: detect.Finding{Rule: r.ID, LastSeen: now.Add(-time.Minute)}, publish: true},
		{name: "at the end of its suppression", f: detect.Finding{Rule: r.ID, LastSeen: now.Add(-r.Suppress)}, publish: true},
		{name: "past it", f: detect.Finding{Rule: r.ID, LastSeen: now.Add(-r.Suppress - time.Millisecond)}},
		{name: "last month", f: detect.Finding{Rule: r.ID, LastSeen: now.AddDate(0, -1, 0)}},
		{name: "last month, --publish", f: detect.Finding{Rule: r.ID, LastSeen: now.AddDate(0, -1, 0)}, all: true, publish: true},
		{name: "a digest whose period is still open", f: detect.Finding{Rule: r.ID, LastSeen: now.Add(-2 * r.Suppress),
			Digest: &finding.Digest{PeriodEnd: now.Add(time.Minute)}}, publish: true},
		{name: "a rule without suppression", f: detect.Finding{Rule: "unknown", LastSeen: now.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var topic, printed ids
			rt := newRouter(&topic, &printed, set, tt.all, func() time.Time { return now })
			tt.f.ID = "f1"
			if err := rt.Publish(context.Background(), &tt.f); err != nil {
				t.Fatal(err)
			}
			if got := len(topic) == 1 && len(printed) == 0; got != tt.publish || len(topic)+len(printed) != 1 {
				t.Errorf("to the topic %v, printed %v; want published %v", topic, printed, tt.publish)
			}
			if rt.published.Load() != int64(len(topic)) || rt.printed.Load() != int64(len(printed)) {
				t.Errorf("counters %d, %d; want %d, %d", rt.published.Load(), rt.printed.Load(), len(topic), len(printed))
			}
		})
	}
}

// TestSummaryNamesTheMarkExactly: the summary names the time from which
// the function counts, as --live-since would take it: to the millisecond
// the mark keeps. Cut to the second, an event the backfill counted at
// 10:10:00.200 would seem to be the function's.
func TestSummaryNamesTheMarkExactly(t *testing.T) {
	mark := time.Date(2026, 11, 28, 10, 10, 0, 500e6, time.UTC)
	tot := totals{fenced: 3, fences: map[string]map[string]time.Time{"demo": {"kube-apiserver-audit-a": mark}}}
	s := tot.summary(false, time.Second, nil)
	if want := "3 events left to the function, which counts demo from 2026-11-28T10:10:00.5Z"; !strings.Contains(s, want) {
		t.Errorf("summary %q does not say %q", s, want)
	}
	got, err := parseTime("2026-11-28T10:10:00.5Z")
	if err != nil || !got.Equal(mark) {
		t.Errorf("--live-since of the summary's time: %v, %v; want %v", got, err, mark)
	}
}

// TestLiveSinceInSummary: with --live-since the summary names the time
// given for each cluster read, as it names the table's mark without it.
func TestLiveSinceInSummary(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	f := &liveFence{override: &at}
	if got, err := f.fence(context.Background(), "demo", "kube-apiserver-audit-a"); err != nil || !got.Equal(at) {
		t.Fatalf("fence = %v, %v; want %v", got, err, at)
	}
	if got := f.marksRead(); !got["demo"][""].Equal(at) {
		t.Errorf("marks read %v; want demo at %v", got, at)
	}
}
