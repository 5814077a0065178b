//go:build integration

package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/evasion"
)

// deliver invokes fn with each delivery, in order, as CloudWatch Logs
// would: a gzipped subscription event on the evasion cases' stream, each
// log event with an id of its own and the delivery's ingestion time. Each
// invocation must succeed.
func deliver(t *testing.T, fn *rie.Instance, deliveries []evasion.Delivery) {
	t.Helper()
	id := 0
	for _, dl := range deliveries {
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
}

// TestEvasion delivers every evasion path of internal/evasion to the real
// bootstrap under the Lambda emulator, with DynamoDB and SNS emulators
// behind it, as CloudWatch Logs would: each delivery a gzipped
// subscription event. Each case must publish its findings, and none may
// fail an invocation (a failed one would land in the dead-letter queue,
// the critical event in it included).
func TestEvasion(t *testing.T) {
	for _, c := range evasion.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
			q := subscribeQueue(t, topic, false, "")
			fn := startFunction(t, functionEnv(table, topic))
			deliver(t, fn, c.Deliveries)
			got := findings(t, emu.MustReceive(t, q))
			for _, w := range c.Want {
				if !slices.ContainsFunc(got, func(d delivered) bool {
					f := &d.Finding
					return w.Match(f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass) && w.ShowsIn(f.Values)
				}) {
					t.Errorf("%s: no finding %+v", c.What, w)
				}
			}
			for _, d := range got {
				if slices.Contains(c.Not, d.Finding.Rule) {
					t.Errorf("%s: finding of %s, which must not fire", c.Name, d.Finding.Rule)
				}
				checkEnvelope(t, &d)
			}
			if t.Failed() {
				for _, d := range got {
					f := &d.Finding
					t.Logf("delivered: %s %s %s count %d ua_class %q", f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass)
				}
			}
		})
	}
}
