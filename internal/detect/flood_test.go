package detect_test

import (
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/evasion"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// TestFlood delivers each flood (internal/evasion: address rotation over
// several deliveries, with one allowed secret read in the middle) with the
// default rules, and again with every budget off, side by side: with
// budgets people get a couple of dozen messages, the secret read among
// them on its own.
func TestFlood(t *testing.T) {
	for _, fl := range evasion.Floods() {
		t.Run(fl.Name, func(t *testing.T) {
			got, res := runFlood(t, fl, false)
			for _, p := range fl.Check(got) {
				t.Errorf("%s: %s", fl.What, p)
			}
			unbudgeted, _ := runFlood(t, fl, true)
			t.Logf("%s: %d messages (%d findings held, %d digests); %d without budgets", fl.Name, len(got), res.Held, res.Digests, len(unbudgeted))
			if len(unbudgeted) <= fl.MaxMessages {
				t.Errorf("without budgets %d messages: the flood does not flood", len(unbudgeted))
			}
			if t.Failed() || testing.Verbose() {
				for _, f := range got {
					t.Logf("published: %s %s", f.Severity, f.Summary)
				}
			}
		})
	}
}

func runFlood(t *testing.T, fl evasion.Flood, noBudget bool) ([]*detect.Finding, detect.Result) {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	if noBudget {
		for _, r := range set.Rules() {
			r.Budget.Count = 0
		}
	}
	pub := &recorder{}
	st := memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease)
	d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	total := processAll(t, d, fl.Deliveries)
	return pub.got, total
}
