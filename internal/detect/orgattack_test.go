package detect_test

import (
	"context"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// TestMemberAccountCannotSuppressAnother: in an organization, a member
// account writes what it likes into its own log groups. With a rule that
// does not group by cluster (a custom one: group_by [src_ip]), the
// attacker's account A fabricates, in a log group of its own, the very
// request its scanner then sends to account B's cluster. The detector
// sends A's finding, and B's real one, of the same rule, address,
// severity and period, is suppressed as a repeat: the security team hears
// of a cluster in A and never of B's.
func TestMemberAccountCannotSuppressAnother(t *testing.T) {
	set, err := rules.Load("custom.yaml", []byte(`
rules:
  - id: secrets-probe
    title: Anonymous secrets probe
    severity: high
    requires_any: ["system:anonymous"]
    match: anonymous && resource == "secrets"
    group_by: [src_ip]
    threshold: {count: 1, window: 1h}
    suppress: 6h
`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	probe := func(at time.Time) [][]byte {
		return [][]byte{synth.Probe{At: at, SrcIP: "198.51.100.7", URI: "/api/v1/secrets"}.Line()}
	}
	pub := &recorder{}
	d, err := detect.New(detect.Config{Rules: set, State: memstate.New(time.Now, 0), Publisher: pub, Qualify: true})
	if err != nil {
		t.Fatal(err)
	}
	decoy := synth.Batch(probe(at), "/aws/eks/decoy/cluster", "kube-apiserver-audit-0", 1)
	decoy.Owner, decoy.Region = "666666666666", "eu-west-1"
	real := synth.Batch(probe(at.Add(time.Minute)), "/aws/eks/prod/cluster", "kube-apiserver-audit-0", 1)
	real.Owner, real.Region = "222222222222", "eu-west-1"
	for _, b := range []*cwlogs.Batch{&decoy, &real} {
		if _, err := d.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	var accounts []string
	for _, f := range pub.got {
		accounts = append(accounts, f.Account+"/"+f.ClusterName)
	}
	found := false
	for _, f := range pub.got {
		if f.Account == real.Owner {
			found = true
		}
	}
	if !found {
		t.Errorf("findings name %v: account %s's probe was suppressed by account %s's fabricated one", accounts, real.Owner, decoy.Owner)
	}
}
