//go:build integration

package drills

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// Shape of the flood drill: what two API servers' audit streams deliver,
// one delivery per stream every 5 seconds, while an attacker sends 2
// anonymous requests a second, each from a new address: half rotating
// through one IPv6 /64, half from a botnet with one address per IPv4 /24.
const (
	floodStreams    = 2
	floodMinutes    = 3
	floodEvery      = 5 * time.Second
	floodPerDeliver = 10 // new addresses per delivery
)

var floodStart = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// floodReader is the address of the allowed secret read in minute 2.
const floodReader = "198.51.100.77"

// floodDelivery is stream s's delivery d.
func floodDelivery(t testing.TB, s, d int) []byte {
	t.Helper()
	var lines [][]byte
	at := floodStart.Add(time.Duration(d) * floodEvery)
	for i := range floodPerDeliver {
		n := (d*floodStreams+s)*floodPerDeliver + i
		ip := fmt.Sprintf("2001:db8:66:1::%x", n)
		if i%2 == 1 {
			ip = fmt.Sprintf("45.%d.%d.9", 20+n/256, n%256)
		}
		lines = append(lines, synth.Probe{At: at.Add(time.Duration(i) * 400 * time.Millisecond), SrcIP: ip,
			UserAgent: "Mozilla/5.0 zgrab/0.x", URI: scanPaths[n%len(scanPaths)]}.Line())
	}
	if s == 0 && d == int(time.Minute/floodEvery)+6 {
		lines = append(lines, synth.Probe{At: at, SrcIP: floodReader, UserAgent: "python-requests/2.32.3",
			URI: "/api/v1/namespaces/payments/secrets/stripe-live-key", Code: 200}.Line())
	}
	b := synth.Batch(lines, drillLogGroup, fmt.Sprintf("kube-apiserver-audit-%032x", s), (d*floodStreams+s)*1000)
	ev, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestFloodDrill runs a sustained address-rotation flood through the real
// bootstrap, one function instance per stream invoked as the streams
// deliver, twice side by side: with the default rules, and with every
// notification budget off (the behaviour before budgets). It counts the
// messages SNS delivers in each minute of the flood. docs/reliability.md
// quotes its table.
func TestFloodDrill(t *testing.T) {
	src := rules.DefaultSource()
	// Every rule has a suppress line; a budget of 0 after it turns the
	// budget off.
	off := bytes.ReplaceAll(src, []byte("\n    suppress: "), []byte("\n    budget: {count: 0}\n    suppress: "))
	if _, err := rules.Load("off.yaml", off); err != nil {
		t.Fatal(err)
	}
	offFile := filepath.Join(t.TempDir(), "budgets-off.yaml")
	if err := os.WriteFile(offFile, off, 0o644); err != nil {
		t.Fatal(err)
	}
	perMinute := int(time.Minute / floodEvery)
	events := make([][][]byte, floodStreams)
	for s := range events {
		for d := range floodMinutes * perMinute {
			events[s] = append(events[s], floodDelivery(t, s, d))
		}
	}

	type outcome struct {
		perMinute []int
		reader    bool
		digests   int
		took      time.Duration
	}
	run := func(t *testing.T, rulesFile string) outcome {
		table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
		topic, q := newTopicAndQueue(t, sharedSNS.URL())
		env := functionEnv(sharedDynamo.URL(), sharedSNS.URL(), table, topic)
		if rulesFile != "" {
			env = append(env, "RULES_FILE="+rulesFile)
		}
		var o outcome
		fns := make([]*rie.Instance, floodStreams)
		for s := range fns {
			fns[s] = startFunction(t, env)
		}
		began := time.Now()
		for m := range floodMinutes {
			// The streams deliver concurrently, each in order.
			var wg sync.WaitGroup
			errs := make([]error, floodStreams)
			for s := range floodStreams {
				wg.Go(func() {
					for d := m * perMinute; d < (m+1)*perMinute; d++ {
						iv, err := invoke(context.Background(), fns[s], events[s][d])
						if err == nil && !iv.OK() {
							err = fmt.Errorf("delivery %d: HTTP %d %s", d, iv.Resp.Status, iv.Resp.Body)
						}
						if err != nil {
							errs[s] = err
							return
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			fs := delivered(t, emu.MustReceive(t, q))
			o.perMinute = append(o.perMinute, len(fs))
			for _, f := range fs {
				if f.Digest != nil {
					o.digests++
				}
				if f.Digest == nil && f.SrcIP == floodReader && f.Rule == "anonymous-request-allowed" && f.Severity == "critical" &&
					strings.Contains(strings.Join(f.Values["request_uri"], " "), "stripe-live-key") {
					o.reader = true
				}
			}
		}
		o.took = time.Since(began)
		return o
	}
	var budgeted, noBudget outcome
	t.Run("budgets", func(t *testing.T) { budgeted = run(t, "") })
	t.Run("budgets-off", func(t *testing.T) { noBudget = run(t, offFile) })

	addresses := floodStreams * floodPerDeliver * perMinute
	t.Logf("flood: %d streams, a delivery each every %v, %d new addresses a minute (half one /64, half one per /24), an allowed secret read in minute 2", floodStreams, floodEvery, addresses)
	t.Logf("| minute | messages, default budgets | messages, budgets off |")
	t.Logf("|---|---|---|")
	var sumB, sumO int
	for m := range floodMinutes {
		t.Logf("| %d | %d | %d |", m+1, budgeted.perMinute[m], noBudget.perMinute[m])
		sumB, sumO = sumB+budgeted.perMinute[m], sumO+noBudget.perMinute[m]
	}
	t.Logf("| total | %d (%d digests) | %d |", sumB, budgeted.digests, sumO)
	t.Logf("wall time: %v with budgets, %v without", budgeted.took.Round(time.Second), noBudget.took.Round(time.Second))

	if !budgeted.reader || !noBudget.reader {
		t.Errorf("the reader's critical finding on its own: with budgets %v, without %v; want both", budgeted.reader, noBudget.reader)
	}
	// After the first minute a flood of new addresses adds digests at
	// powers of ten and the sweeps' rises, no longer a message per address.
	for m, n := range budgeted.perMinute[1:] {
		if n > 10 {
			t.Errorf("minute %d: %d messages with budgets, want at most 10", m+2, n)
		}
	}
	if sumO < 5*sumB {
		t.Errorf("%d messages without budgets, %d with: want the budgets to cut them at least fivefold", sumO, sumB)
	}
}
