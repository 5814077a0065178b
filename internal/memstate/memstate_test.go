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
