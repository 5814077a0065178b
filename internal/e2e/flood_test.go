//go:build integration

package e2e

import (
	"fmt"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
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
			id := 0
			for _, dl := range fl.Deliveries {
				b := cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: "123456789012", LogGroup: evasion.LogGroup, LogStream: evasion.Stream}
				for _, l := range dl.Lines {
					id++
					b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprintf("%056d", id), Timestamp: dl.Ingest.UnixMilli(), Message: l})
				}
				event, err := cwlogs.Encode(b)
				if err != nil {
					t.Fatal(err)
				}
				invokeOK(t, fn, event)
			}
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
