package detect_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/evasion"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// TestEvasion delivers each evasion path (internal/evasion: the ways an
// anonymous attacker who has read the rules got no finding, or a weaker
// one than deserved) through the detector with the in-memory state. The
// end-to-end tests deliver the same cases to the real bootstrap.
func TestEvasion(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range evasion.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			pub := &recorder{}
			st := memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease)
			d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub})
			if err != nil {
				t.Fatal(err)
			}
			processAll(t, d, c.Deliveries)
			checkEvasion(t, c, pub.got)
		})
	}
}

// processAll runs each delivery through d, in order, on the evasion
// cases' stream, and returns the sum of their held findings and digests.
func processAll(t *testing.T, d *detect.Detector, deliveries []evasion.Delivery) detect.Result {
	t.Helper()
	var total detect.Result
	id := 0
	for _, dl := range deliveries {
		b := &cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: evasion.LogGroup, LogStream: evasion.Stream, Cluster: evasion.Cluster}
		for _, l := range dl.Lines {
			id++
			b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprint(id), Timestamp: dl.Ingest.UnixMilli(), Message: l, Size: len(l)})
		}
		res, err := d.Process(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		total.Held += res.Held
		total.Digests += res.Digests
	}
	return total
}

// checkEvasion checks the findings of a case against its table row.
func checkEvasion(t *testing.T, c evasion.Case, got []*detect.Finding) {
	t.Helper()
	for _, w := range c.Want {
		if !slices.ContainsFunc(got, func(f *detect.Finding) bool {
			return w.Match(f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass) && w.ShowsIn(f.Values)
		}) {
			t.Errorf("%s: no finding %+v", c.What, w)
		}
	}
	for _, f := range got {
		if slices.Contains(c.Not, f.Rule) {
			t.Errorf("%s: finding of %s, which must not fire: %s", c.Name, f.Rule, f.Summary)
		}
	}
	if t.Failed() {
		for _, f := range got {
			t.Logf("published: %s %s %s count %d ua_class %q", f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass)
		}
	}
}

// TestNoFindingOnClusterTraffic: the new rules must not fire on a busy
// cluster's own authenticated traffic (internal/synth's control-plane
// chatter: leases, node status, endpoints, watches). The 95/5 mix is
// delivered in batches of 500 lines over two hours: every finding must be
// about the scanners' addresses or the cluster as a whole, and no whole
// line may be taken for a damaged one.
func TestNoFindingOnClusterTraffic(t *testing.T) {
	pub := &recorder{}
	d, _ := newDetector(t, pub)
	lines := synth.Lines(40000, 0.05, 7, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), 180*time.Millisecond)
	parsed := 0
	for i := 0; i < len(lines); i += 500 {
		b := synth.Batch(lines[i:min(i+500, len(lines))], "/aws/eks/demo/cluster", "kube-apiserver-audit-1", i+1)
		res, err := d.Process(context.Background(), &b)
		if err != nil {
			t.Fatal(err)
		}
		if res.Damaged != 0 {
			t.Fatalf("%d whole lines reported as damaged", res.Damaged)
		}
		parsed += res.Parsed
	}
	if parsed == 0 || len(pub.got) == 0 {
		t.Fatalf("%d lines parsed, %d findings: the mix exercises nothing", parsed, len(pub.got))
	}
	for _, f := range pub.got {
		if f.SrcIP != "" && !slices.Contains(synth.DefaultScannerIPs, f.SrcIP) || f.User != "" && f.User != "system:anonymous" {
			t.Errorf("finding about authenticated traffic: %s", f.Summary)
		}
		if f.Rule == "audit-event-unreadable" || f.Rule == "authentication-failure-burst" {
			t.Errorf("finding of %s on whole, authenticated lines: %s", f.Rule, f.Summary)
		}
	}
}

// TestValuesTruncatedIsSet: a finding whose values were cut to the cap says
// so. Aggregation dropped the flag of its own value sets, so 43 paths in
// one minute showed 10 and claimed to be whole.
func TestValuesTruncatedIsSet(t *testing.T) {
	pub := &recorder{}
	d, _ := newDetector(t, pub)
	var reqs []req
	for i := range 43 {
		reqs = append(reqs, req{at: fmt.Sprintf("10:00:%02d", i), src: "192.0.2.46", verb: "get", uri: fmt.Sprintf("/probe/%02d", i), code: 403})
	}
	if _, err := d.Process(context.Background(), batchOf("s", 1, reqs...)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range pub.got {
		if f.Rule != "eks-cluster-scan" {
			continue
		}
		n++
		if len(f.Values["request_uri"]) != detect.BucketValuesCap || !f.ValuesTruncated {
			t.Errorf("%s: %d request URIs shown, values_truncated %v; want %d and true", f.Rule, len(f.Values["request_uri"]), f.ValuesTruncated, detect.BucketValuesCap)
		}
	}
	if n == 0 {
		t.Fatal("no eks-cluster-scan finding")
	}
}
