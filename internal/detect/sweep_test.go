package detect_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

var sweepStart = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// sweepBatch returns a batch of refused anonymous probes: one from each of
// quiet addresses, then five from each of busy addresses, which come last
// so that a cap on first arrival would miss them.
func sweepBatch(quiet, busy int) *cwlogs.Batch {
	var lines [][]byte
	n := 0
	probe := func(ip string) {
		lines = append(lines, synth.Probe{
			At:        sweepStart.Add(time.Duration(n) * 10 * time.Millisecond),
			SrcIP:     ip,
			UserAgent: "zgrab/0.x",
			URI:       fmt.Sprintf("/api/v1/namespaces/team-%d/configmaps", n),
		}.Line())
		n++
	}
	for i := range quiet {
		probe(fmt.Sprintf("198.18.%d.%d", i>>8, i&0xff))
	}
	for i := range busy {
		for range 5 {
			probe(fmt.Sprintf("198.19.0.%d", i))
		}
	}
	b := synth.Batch(lines, "/aws/eks/demo/cluster", "kube-apiserver-audit-0", 1)
	return &b
}

func sweepDetector(t *testing.T, max int, pub detect.Publisher) *detect.Detector {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	st := memstate.New(func() time.Time { return sweepStart }, memstate.DefaultLease)
	d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub, MaxGroups: max})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMaxGroups checks the per-batch bound on groups: each rule tracks its
// busiest MaxGroups sources one by one and counts the rest in one sweep
// aggregate, so no request is lost from the rule's total, and the choice
// does not depend on the order of the batch.
func TestMaxGroups(t *testing.T) {
	// The probes match these default rules, each grouping by src_ip.
	probeRules := []string{"anonymous-enumeration", "anonymous-slow-scan", "eks-cluster-scan", "unauthenticated-403-burst"}
	// The campaign rules match every probe too, with one group a cluster,
	// and so does anonymous-network-rotation, with one group a network.
	const clusterRules = 4
	tests := []struct {
		name        string
		max         int
		quiet, busy int
		wantTracked int // per rule
		wantSwept   int64
	}{
		{name: "under the cap", max: 10, quiet: 6, busy: 4, wantTracked: 10},
		{name: "busy sources kept", max: 10, quiet: 30, busy: 4, wantTracked: 10, wantSwept: 24},
		{name: "busiest fill the cap", max: 3, quiet: 5, busy: 4, wantTracked: 3, wantSwept: 5 + 5},
		{name: "no bound", max: -1, quiet: 300, busy: 2, wantTracked: 302},
		{name: "default cap", max: 0, quiet: 250, busy: 0, wantTracked: detect.DefaultMaxGroups, wantSwept: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sweepDetector(t, tt.max, &recorder{})
			b := sweepBatch(tt.quiet, tt.busy)
			aggs, res := d.Aggregate(b)
			total := int64(tt.quiet + 5*tt.busy)
			if want := (len(probeRules) + clusterRules) * int(total); res.Matched != want {
				t.Fatalf("matched %d, want %d", res.Matched, want)
			}
			for _, rule := range probeRules {
				var tracked int
				var sum, swept int64
				busy := map[string]bool{}
				for _, a := range aggs {
					if a.Rule != rule {
						continue
					}
					sum += a.Count
					if a.Group.Sweep {
						swept = a.Count
						if a.Group.SrcIP != "" || a.Group.ClusterName != "demo" {
							t.Errorf("%s: sweep group %+v, want only the cluster", rule, a.Group)
						}
						if !strings.Contains(a.Key, "#*#") {
							t.Errorf("%s: sweep key %q", rule, a.Key)
						}
						continue
					}
					tracked++
					if strings.HasPrefix(a.Group.SrcIP, "198.19.") {
						busy[a.Group.SrcIP] = true
					}
				}
				if sum != total {
					t.Errorf("%s: counts add up to %d, want every request, %d", rule, sum, total)
				}
				if tracked != tt.wantTracked || swept != tt.wantSwept {
					t.Errorf("%s: %d tracked, %d swept; want %d, %d", rule, tracked, swept, tt.wantTracked, tt.wantSwept)
				}
				if want := min(tt.busy, tt.wantTracked); len(busy) != want {
					t.Errorf("%s: %d of the busy sources tracked, want %d", rule, len(busy), want)
				}
			}

			// The same lines in another order make the same aggregates.
			shuffled := *b
			shuffled.Events = append([]cwlogs.LogEvent(nil), b.Events...)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled.Events), func(i, j int) {
				shuffled.Events[i], shuffled.Events[j] = shuffled.Events[j], shuffled.Events[i]
			})
			again, _ := d.Aggregate(&shuffled)
			if diff := cmp.Diff(aggs, again); diff != "" {
				t.Errorf("aggregates depend on the batch's order (-first +shuffled):\n%s", diff)
			}
		})
	}
}

// TestSweepFinding checks the finding a sweep makes, and that a retried
// batch publishes it once.
func TestSweepFinding(t *testing.T) {
	pub := &recorder{}
	d := sweepDetector(t, 10, pub)
	b := sweepBatch(30, 0)
	for attempt := range 2 {
		if _, err := d.Process(context.Background(), b); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	var sweeps []*detect.Finding
	perIP := 0
	var digests []*detect.Finding
	for _, f := range pub.got {
		switch {
		case f.Sweep:
			sweeps = append(sweeps, f)
		case f.Digest != nil:
			digests = append(digests, f)
		case f.Rule == "eks-cluster-scan":
			perIP++
		}
	}
	// eks-cluster-scan's low budget (5 an hour; the sweep, at medium,
	// draws on another) goes to 5 of the 10 addresses tracked one by one;
	// the other 5 are rolled into the low digest, at its step of 5 held
	// (one delivery: the steps of 1 and 2 are passed within it).
	if perIP != 5 {
		t.Errorf("%d per-address eks-cluster-scan findings, want 5", perIP)
	}
	if len(digests) != 1 || digests[0].Rule != "eks-cluster-scan" || digests[0].Digest.Held != 5 || digests[0].Distinct["src_ip"] != 5 {
		t.Errorf("digests %+v, want one of eks-cluster-scan holding 5 findings from 5 addresses", digests)
	}
	// eks-cluster-scan (threshold 1) and anonymous-enumeration (20 paths
	// >= 6) fire; the 403 burst counts 20 requests >= 6 too. A sweep's
	// escalations speak of the sources together: the rule's own words
	// ("the source sent 10 or more requests") are about one source.
	got := map[string]string{}
	for _, f := range sweeps {
		if f.SrcIP != "" || f.Count != 20 || f.Distinct["src_ip"] != 20 {
			t.Errorf("%s: src_ip %q count %d distinct %v, want no address, 20 requests from 20 addresses", f.Rule, f.SrcIP, f.Count, f.Distinct)
		}
		if len(f.Values["src_ip"]) == 0 {
			t.Errorf("%s: no sample of the addresses", f.Rule)
		}
		got[f.Rule] = f.Summary
	}
	want := map[string]string{
		"eks-cluster-scan":          "Anonymous requests to the Kubernetes API: 20 requests from 20 addresses, a sweep from more sources than are counted one by one on cluster demo within 1h; medium because 10 or more requests from these sources together and 3 or more distinct path values from these sources together",
		"anonymous-enumeration":     "Anonymous API enumeration: 20 requests from 20 addresses, a sweep from more sources than are counted one by one on cluster demo within 1h with 20 distinct path values (threshold 6)",
		"unauthenticated-403-burst": "Burst of refused unauthenticated requests: 20 requests from 20 addresses, a sweep from more sources than are counted one by one on cluster demo within 30m (threshold 6)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sweep findings, published once each (-want +got):\n%s", diff)
	}
}

// TestSweepAddressCount checks the address count of a sweep wider than a
// bucket's distinct set: the batch's own count is the better lower bound.
func TestSweepAddressCount(t *testing.T) {
	pub := &recorder{}
	d := sweepDetector(t, 10, pub)
	if _, err := d.Process(context.Background(), sweepBatch(300, 0)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range pub.got {
		if !f.Sweep {
			continue
		}
		n++
		if f.Distinct["src_ip"] != 290 || !slices.Contains(f.DistinctSaturated, "src_ip") {
			t.Errorf("%s: distinct %v saturated %v, want at least 290 addresses", f.Rule, f.Distinct, f.DistinctSaturated)
		}
		if !strings.Contains(f.Summary, "from at least 290 addresses") {
			t.Errorf("%s: summary %q", f.Rule, f.Summary)
		}
	}
	// eks-cluster-scan, anonymous-enumeration, unauthenticated-403-burst
	// and anonymous-slow-scan (290 requests >= 48).
	if n != 4 {
		t.Errorf("%d sweep findings, want 4", n)
	}
}

// TestSweepKeepsEscalatingSourcesApart: a source whose one request is an
// allowed secret read arrives in a delivery with 200 busier sources. The
// per-delivery bound must track it one by one, not count it in the sweep,
// where a decoy's earlier critical in the same period would have hidden it
// (found by review). One event at a time gives it its own critical; so must
// the batched deliveries.
func TestSweepKeepsEscalatingSourcesApart(t *testing.T) {
	const attacker = "203.0.113.66"
	busy := func(prefix string, at string, n int) []req {
		var out []req
		for i := range n {
			ip := fmt.Sprintf("%s.%d.%d", prefix, i>>8, i&0xff)
			for range 2 {
				out = append(out, req{at: at, src: ip, verb: "get", uri: "/api/v1/namespaces/default/pods", resource: "pods", code: 200})
			}
		}
		return out
	}
	secret := func(at, src string) req {
		return req{at: at, src: src, verb: "get", uri: "/api/v1/namespaces/kube-system/secrets/x", resource: "secrets", code: 200}
	}
	// Delivery 1: 200 busy sources and a decoy's secret read; delivery 2:
	// 200 other busy sources and the attacker's.
	b1 := append(busy("198.18", "10:00:00", 200), secret("10:00:01", "192.0.2.250"))
	b2 := append(busy("198.19", "10:05:00", 200), secret("10:05:01", attacker))
	critical := func(fs []*detect.Finding) (sources []string) {
		for _, f := range fs {
			if f.Rule == "anonymous-request-allowed" && f.Severity == "critical" {
				sources = append(sources, f.SrcIP)
			}
		}
		return sources
	}
	tests := []struct {
		name       string
		deliveries [][]req
	}{
		{"one event at a time", nil},
		{"two deliveries", [][]req{b1, b2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recorder{}
			d := sweepDetector(t, 0, pub)
			deliveries := tc.deliveries
			if deliveries == nil {
				for _, r := range append(append([]req{}, b1...), b2...) {
					deliveries = append(deliveries, []req{r})
				}
			}
			id := 1
			for i, reqs := range deliveries {
				if _, err := d.Process(context.Background(), batchOf(fmt.Sprintf("s%d", i), id, reqs...)); err != nil {
					t.Fatal(err)
				}
				id += len(reqs)
			}
			if got := critical(pub.got); !slices.Contains(got, attacker) {
				t.Errorf("no critical finding names %s; critical findings: %q", attacker, got)
			}
		})
	}
}

// TestEscalatingSourcesPastTheBound: more sources with an allowed secret
// read than the bound of groups a rule tracks one by one are all still
// tracked one by one, each with its own critical finding; only the merely
// busy ones go to the sweep.
func TestEscalatingSourcesPastTheBound(t *testing.T) {
	const readers, max = 30, 10
	var reqs []req
	for i := range 3 * max {
		// Busy sources, more requests each than any reader.
		for range 3 {
			reqs = append(reqs, req{at: "10:00:00", src: fmt.Sprintf("198.18.0.%d", i+1), verb: "get", uri: "/api/v1/namespaces/default/pods", resource: "pods", code: 200})
		}
	}
	for i := range readers {
		reqs = append(reqs, req{at: "10:00:01", src: fmt.Sprintf("192.0.2.%d", i+1), verb: "get", uri: "/api/v1/namespaces/kube-system/secrets/x", resource: "secrets", code: 200})
	}
	pub := &recorder{}
	d := sweepDetector(t, max, pub)
	if _, err := d.Process(context.Background(), batchOf("s", 1, reqs...)); err != nil {
		t.Fatal(err)
	}
	critical := map[string]bool{}
	for _, f := range pub.got {
		if f.Rule == "anonymous-request-allowed" && f.Severity == "critical" {
			if f.Sweep {
				t.Errorf("a secret read counted in the sweep: %s", f.Summary)
			}
			critical[f.SrcIP] = true
		}
	}
	if len(critical) != readers {
		t.Errorf("%d readers with their own critical finding, want all %d", len(critical), readers)
	}
}
