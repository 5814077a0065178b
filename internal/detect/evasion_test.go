package detect_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/evasion"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// TestEvasion delivers each evasion path (internal/evasion: the ways an
// anonymous attacker who has read the rules got no finding, or a weaker
// one than deserved) through the detector with the in-memory state. The
// end-to-end tests deliver the same cases to the real bootstrap.
func TestEvasion(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range evasion.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			pub := &recorder{}
			st := memstate.New(func() time.Time { return time.Unix(0, 0) }, memstate.DefaultLease)
			d, err := detect.New(detect.Config{Rules: set, State: st, Publisher: pub})
			if err != nil {
				t.Fatal(err)
			}
			id := 0
			for _, dl := range c.Deliveries {
				b := &cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: evasion.LogGroup, LogStream: evasion.Stream, Cluster: evasion.Cluster}
				for _, l := range dl.Lines {
					id++
					b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprint(id), Timestamp: dl.Ingest.UnixMilli(), Message: l, Size: len(l)})
				}
				if _, err := d.Process(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			checkEvasion(t, c, pub.got)
		})
	}
}

// checkEvasion checks the findings of a case against its table row.
func checkEvasion(t *testing.T, c evasion.Case, got []*detect.Finding) {
	t.Helper()
	for _, w := range c.Want {
		if !slices.ContainsFunc(got, func(f *detect.Finding) bool {
			return w.Match(f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass)
		}) {
			t.Errorf("%s: no finding %+v", c.What, w)
		}
	}
	for _, f := range got {
		if slices.Contains(c.Not, f.Rule) {
			t.Errorf("%s: finding of %s, which must not fire: %s", c.Name, f.Rule, f.Summary)
		}
	}
	if t.Failed() {
		for _, f := range got {
			t.Logf("published: %s %s %s count %d ua_class %q", f.Rule, f.SrcIP, f.Severity, f.Count, f.UAClass)
		}
	}
}
