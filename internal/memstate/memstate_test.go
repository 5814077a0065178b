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
