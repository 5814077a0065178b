//go:build integration

package e2e

import (
	"testing"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/evasion"
	"github.com/anonwatch/anonwatch/internal/finding"
)

// TestFlood delivers each flood of internal/evasion (1,000 rotating
// addresses over 4 deliveries, an allowed secret read in the middle) to
// the real bootstrap, with the budgets in dynalite and the messages counted
// as goaws delivers them: a couple of dozen, the secret read among them on
// its own, and a digest of the rest.
func TestFlood(t *testing.T) {
	for _, fl := range evasion.Floods() {
		t.Run(fl.Name, func(t *testing.T) {
			t.Parallel()
			table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
			q := subscribeQueue(t, topic, false, "")
			fn := startFunction(t, functionEnv(table, topic))
			deliver(t, fn, fl.Deliveries)
			got := findings(t, emu.MustReceive(t, q))
			fs := make([]*finding.Finding, len(got))
			for i := range got {
				fs[i] = &got[i].Finding
				checkEnvelope(t, &got[i])
			}
			for _, p := range fl.Check(fs) {
				t.Errorf("%s: %s", fl.What, p)
			}
			t.Logf("%s: %d messages delivered", fl.Name, len(fs))
			if t.Failed() {
				for _, f := range fs {
					t.Logf("delivered: %s %s", f.Severity, f.Summary)
				}
			}
		})
	}
}
