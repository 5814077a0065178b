//go:build integration

package drills

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// drillLogGroup is the log group of the events the drills build: cluster
// "drill".
const drillLogGroup = "/aws/eks/drill/cluster"

// scanners are the concurrency drill's addresses (RFC 5737).
var scanners = []string{"203.0.113.10", "203.0.113.20", "203.0.113.30"}

// scanPaths are six paths a default EKS cluster refuses to anonymous
// clients: no pods (eks-pod-scan), nothing public-info-viewer allows.
var scanPaths = []string{
	"/api/v1/secrets", "/api/v1/namespaces", "/apis/apps/v1/deployments",
	"/.env", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/api/v1/nodes",
}

// concurrentStart is the first minute the concurrency drill's events fall in.
var concurrentStart = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

// concurrentEnvelope is what one API server's log stream delivers: from
// each scanner, in each of two minutes, one refused request to each of
// scanPaths. Envelopes differ in log stream and by a few milliseconds per
// event, as the API servers of one cluster log the same scan.
func concurrentEnvelope(t testing.TB, i int) []byte {
	t.Helper()
	var lines [][]byte
	for _, ip := range scanners {
		for m := range 2 {
			for j, path := range scanPaths {
				at := concurrentStart.Add(time.Duration(m)*time.Minute + time.Duration(j)*5*time.Second + time.Duration(i)*7*time.Millisecond)
				lines = append(lines, synth.Probe{At: at, SrcIP: ip, UserAgent: "masscan/1.3", URI: path}.Line())
			}
		}
	}
	b := synth.Batch(lines, drillLogGroup, fmt.Sprintf("kube-apiserver-audit-%032x", i), 1)
	ev, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// concurrentRules are the rules each scanner's requests meet in every
// envelope on its own: eks-cluster-scan at medium (12 requests, 6 paths),
// anonymous-enumeration (6 paths) and unauthenticated-403-burst (12 403s).
// Each is at its highest severity already, so no envelope can escalate a
// finding another one sent.
var concurrentRules = []string{"anonymous-enumeration", "eks-cluster-scan", "unauthenticated-403-burst"}

// laterRules are the per-address rule whose threshold no envelope meets on
// its own: anonymous-slow-scan (48 requests; an envelope holds 12 of each
// scanner), so whichever invocation reads the window after the fourth
// envelope's merge reports it; and the per-cluster rule met the same way,
// unauthenticated-refusal-campaign (100 refusals; an envelope holds 36).
// anonymous-campaign and anonymous-path-campaign count every event too,
// below their thresholds (3 addresses, 6 paths).
var (
	laterRules   = []string{"anonymous-slow-scan"}
	clusterRules = []string{"anonymous-campaign", "anonymous-path-campaign", "unauthenticated-refusal-campaign"}
)

// TestConcurrentInvocations invokes eight function instances at once, each
// with its own envelope of the same scan from the same three addresses in
// the same minutes, all on one table and one topic, as the log streams of
// a cluster's API servers are delivered in parallel. The table must hold
// the exact sum of the events, and each (rule, address) must be reported
// exactly once: the claims let one invocation publish and the rest find the
// finding claimed or sent. It runs three rounds, each on fresh state, for
// more interleavings.
func TestConcurrentInvocations(t *testing.T) {
	const instances = 8
	events := make([][]byte, instances)
	for i := range events {
		events[i] = concurrentEnvelope(t, i)
	}
	perEnvelope := 2 * len(scanPaths) // one scanner's events in one envelope
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) {
			table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
			topic, q := newTopicAndQueue(t, sharedSNS.URL())
			env := functionEnv(sharedDynamo.URL(), sharedSNS.URL(), table, topic)
			fns := make([]*rie.Instance, instances)
			for i := range fns {
				fns[i] = startFunction(t, env)
			}

			ivs := make([]*invocation, instances)
			errs := make([]error, instances)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range fns {
				wg.Go(func() {
					<-start
					ivs[i], errs[i] = invoke(context.Background(), fns[i], events[i])
				})
			}
			began := time.Now()
			close(start)
			wg.Wait()
			took := time.Since(began)

			var due, published, suppressed int
			for i, iv := range ivs {
				if errs[i] != nil {
					t.Fatalf("instance %d: %v", i, errs[i])
				}
				if !iv.OK() || iv.Summary == nil {
					t.Fatalf("instance %d: HTTP %d %s, summary %v", i, iv.Resp.Status, iv.Resp.Body, iv.Summary)
				}
				due += counter(iv.Summary, "findings_due")
				published += counter(iv.Summary, "findings_published")
				suppressed += counter(iv.Summary, "findings_suppressed")
			}
			// Every instance finds the first rules' findings due; the
			// later ones only those that read enough envelopes. Each is
			// published once.
			always := len(concurrentRules) * len(scanners)
			// +1: unauthenticated-refusal-campaign; +1: the scanners'
			// /24 for anonymous-network-rotation, at medium in every
			// envelope (3 addresses, 36 requests).
			findings := always + len(laterRules)*len(scanners) + 2
			if published != findings || due != published+suppressed || due < instances*always {
				t.Errorf("summed over the instances, findings due, published, suppressed = %v; want %d published, due = published + suppressed >= %d",
					[3]int{due, published, suppressed}, findings, instances*always)
			}

			// Every rule counts every event: 8 envelopes × 6 requests per
			// scanner and minute; anonymous-slow-scan's 24h window counts
			// in 24-minute buckets (detect.BucketWidthFor), so both
			// minutes fall in one; the per-cluster rules count all three
			// scanners, under no address.
			want := map[string]int64{}
			for _, ip := range scanners {
				for _, rule := range concurrentRules {
					for m := range 2 {
						start := concurrentStart.Add(time.Duration(m) * time.Minute)
						want[rule+" "+ip+" "+start.Format(time.RFC3339)] = int64(instances * perEnvelope / 2)
					}
				}
				for _, rule := range laterRules {
					want[rule+" "+ip+" "+concurrentStart.Format(time.RFC3339)] = int64(instances * perEnvelope)
				}
			}
			for _, rule := range clusterRules {
				for m := range 2 {
					start := concurrentStart.Add(time.Duration(m) * time.Minute)
					want[rule+"  "+start.Format(time.RFC3339)] = int64(instances * perEnvelope / 2 * len(scanners))
				}
			}
			for m := range 2 {
				start := concurrentStart.Add(time.Duration(m) * time.Minute)
				want["anonymous-network-rotation 203.0.113.0/24 "+start.Format(time.RFC3339)] = int64(instances * perEnvelope / 2 * len(scanners))
			}
			got := map[string]int64{}
			for key, n := range bucketCounts(scanTable(t, sharedDynamo.URL(), table)) {
				// key is "rule#ip#hash b#<minute>".
				pk, sk, _ := strings.Cut(key, " ")
				parts := strings.Split(pk, "#")
				got[parts[0]+" "+parts[1]+" "+strings.TrimPrefix(sk, "b#")] += n
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bucket counts (-want +got):\n%s", diff)
			}

			delivered := delivered(t, emu.MustReceive(t, q))
			var wantOut, gotOut []string
			for _, rule := range append(slices.Clone(concurrentRules), laterRules...) {
				for _, ip := range scanners {
					wantOut = append(wantOut, rule+" "+ip+" medium")
				}
			}
			wantOut = append(wantOut, "unauthenticated-refusal-campaign  medium", "anonymous-network-rotation  medium")
			wantOut = sortedStrings(wantOut)
			for _, f := range delivered {
				gotOut = append(gotOut, f.Rule+" "+f.SrcIP+" "+f.Severity)
				// A finding counts what its window held when its
				// invocation read it, at the first minute that reaches
				// the finding's severity: its own envelope's first minute
				// at least, all eight envelopes at most (of all three
				// scanners, for the per-cluster rule).
				most := int64(instances * perEnvelope)
				if f.SrcIP == "" {
					most *= int64(len(scanners))
				}
				if f.Count < int64(perEnvelope/2) || f.Count > most {
					t.Errorf("finding %s %s counts %d, want %d to %d", f.Rule, f.SrcIP, f.Count, perEnvelope/2, most)
				}
			}
			if diff := cmp.Diff(wantOut, sortedStrings(gotOut)); diff != "" {
				t.Errorf("deliveries, one per rule and address (-want +got):\n%s", diff)
			}
			t.Logf("%d instances invoked at once: all returned within %v; %d findings delivered, %d suppressed", instances, took.Round(time.Millisecond), len(delivered), suppressed)
		})
	}
}
