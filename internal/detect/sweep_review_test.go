package detect_test

import (
	"context"
	"fmt"
	"testing"
)

// TestReviewSweepHidesCriticalSource: the per-batch group bound decides,
// per delivery, which sources get their own key. A source whose critical
// request lands in a delivery with 200 busier sources is counted only in
// the rule's sweep; if the sweep already sent a critical in the same
// suppression period, the source's critical is sent nowhere. One event at
// a time, the same events give that source its own critical finding.
func TestReviewSweepHidesCriticalSource(t *testing.T) {
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
	// Delivery 1 (stream a): 200 busy sources and a decoy's secret read.
	b1 := append(busy("198.18", "10:00:00", 200), secret("10:00:01", "192.0.2.250"))
	// Delivery 2 (stream b): 200 other busy sources and the attacker's.
	b2 := append(busy("198.19", "10:05:00", 200), secret("10:05:01", attacker))

	criticalFor := func(fs []*recorder) (attackerCrit bool, crit []string) {
		for _, r := range fs {
			for _, f := range r.got {
				if f.Rule == "anonymous-request-allowed" && f.Severity == "critical" {
					crit = append(crit, fmt.Sprintf("src=%q sweep=%v", f.SrcIP, f.Sweep))
					if f.SrcIP == attacker {
						attackerCrit = true
					}
				}
			}
		}
		return
	}

	// One event at a time (each delivery of one event).
	one := &recorder{}
	d1 := sweepDetector(t, 0, one)
	id := 0
	for _, r := range append(append([]req{}, b1...), b2...) {
		id++
		if _, err := d1.Process(context.Background(), batchOf("s", id, r)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, crit := criticalFor([]*recorder{one}); !ok {
		t.Fatalf("one at a time: no critical for the attacker: %v", crit)
	}

	// The same events in two deliveries.
	two := &recorder{}
	d2 := sweepDetector(t, 0, two)
	if _, err := d2.Process(context.Background(), batchOf("a", 1, b1...)); err != nil {
		t.Fatal(err)
	}
	n := len(two.got)
	res, err := d2.Process(context.Background(), batchOf("b", 10000, b2...))
	if err != nil {
		t.Fatal(err)
	}
	ok, crit := criticalFor([]*recorder{two})
	var second []string
	for _, f := range two.got[n:] {
		if f.Severity == "critical" {
			second = append(second, f.SrcIP)
		}
	}
	if !ok {
		t.Errorf("batched: the attacker's allowed secret read produced no critical finding naming it; criticals sent: %v; delivery 2 sent %d findings, none critical (%v), %d suppressed", crit, len(two.got)-n, second, res.Suppressed)
	}
}
