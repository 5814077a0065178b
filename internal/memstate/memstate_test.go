package memstate_test

import (
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/detect/statetest"
	"github.com/anonwatch/anonwatch/internal/memstate"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T, now func() time.Time) detect.State {
		return memstate.New(now, statetest.Lease)
	})
}

// TestProperty runs the detector over memstate against the one-event-at-a-
// time oracle: random batch cuts, delivery orders, concurrent invocations
// and retries (see statetest.Property).
func TestProperty(t *testing.T) {
	cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 2000, Seed: 1, Workers: 4, Events: 60})
	statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
		return memstate.New(now, statetest.Lease)
	}, cfg)
}

// TestPropertyWithFaults is TestProperty with one State or Publisher call
// in ten failing, before or after it took effect, and the failed delivery
// delivered again: counts stay exact, no finding is lost, and a finding is
// repeated only with its own id.
func TestPropertyWithFaults(t *testing.T) {
	cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 1000, Seed: 3, Workers: 4, Events: 60, Faults: 0.1})
	statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
		return memstate.New(now, statetest.Lease)
	}, cfg)
}

// TestPropertyBackfill is TestProperty for a backfill into the function's
// state: the function counts the events from a random time on, then a
// replay of all of them, cut and ordered its own way, fills in the rest;
// with faults, so that marks and fences fail and are retried too.
func TestPropertyBackfill(t *testing.T) {
	cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 1000, Seed: 5, Workers: 4, Events: 60, Faults: 0.05, Backfill: true})
	statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
		return memstate.New(now, statetest.Lease)
	}, cfg)
}

// TestPropertyBackfillIngest is TestPropertyBackfill with the records
// shipped as CloudWatch Logs gets them (statetest.Ingest): each once
// written, each API server's stream at a delay of its own, and the
// function delivered what was ingested after it was subscribed. With one
// live mark per cluster, what a quicker stream shipped before the
// subscription was left out, unseen by anyone, when a slower one
// delivered earlier log times; and with log times the requests' (as the
// fixtures have them), a long-running request ending after the
// subscription moved the mark back by its length. Marks per stream, from
// the events counted, watches aside, hold in every case.
func TestPropertyBackfillIngest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   statetest.Ingest
	}{
		{"stage time, no lag", statetest.Ingest{StageTime: true}},
		{"stage time, no lag, JSON lines", statetest.Ingest{StageTime: true, Lines: true}},
		{"request time, no lag", statetest.Ingest{}},
		{"request time, streams 0-2m apart", statetest.Ingest{Lag: 2 * time.Minute}},
		{"stage time, streams 0-2m apart", statetest.Ingest{StageTime: true, Lag: 2 * time.Minute}},
		{"stage time, streams 0-2m apart, JSON lines", statetest.Ingest{StageTime: true, Lag: 2 * time.Minute, Lines: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 1000, Seed: 5, Workers: 4, Events: 60, Faults: 0.05, Backfill: true, Ingest: &in})
			statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
				return memstate.New(now, statetest.Lease)
			}, cfg)
		})
	}
}
