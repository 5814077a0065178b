package detect_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// TestClustersOfOneName: two accounts, and a second region of one of them,
// each have a cluster named prod, and one scanner sends each the same four
// refused requests. An organization's detector (Qualify) keeps the three
// apart: three findings per rule, each naming its account and region, with
// counts and suppression of its own. A single-account one keeps the keys it
// always had, so the three are one cluster to it.
func TestClustersOfOneName(t *testing.T) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	var lines [][]byte
	for i, u := range []string{"/api/v1/secrets", "/apis", "/.env", "/version"} {
		lines = append(lines, synth.Probe{At: at.Add(time.Duration(i) * time.Second), SrcIP: "203.0.113.9", UserAgent: "zgrab/0.x", URI: u}.Line())
	}
	scopes := []detect.Scope{{Account: "111111111111", Region: "eu-west-1"}, {Account: "222222222222", Region: "eu-west-1"}, {Account: "111111111111", Region: "us-east-1"}}
	tests := []struct {
		qualify bool
		count   int64 // of each account's and region's highest finding
	}{
		{qualify: true, count: 4},
		{qualify: false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("qualify=%v", tt.qualify), func(t *testing.T) {
			set, err := rules.Default()
			if err != nil {
				t.Fatal(err)
			}
			pub := &recorder{}
			d, err := detect.New(detect.Config{Rules: set, State: memstate.New(time.Now, 0), Publisher: pub, Qualify: tt.qualify})
			if err != nil {
				t.Fatal(err)
			}
			for i, sc := range scopes {
				// The same event ids in every account when qualified:
				// the keys keep them apart, not the ids. Unqualified,
				// one account's ids never repeat.
				first := 1
				if !tt.qualify {
					first += 100 * i
				}
				b := synth.Batch(lines, "/aws/eks/prod/cluster", "kube-apiserver-audit-0", first)
				b.Owner, b.Region = sc.Account, sc.Region
				if _, err := d.Process(context.Background(), &b); err != nil {
					t.Fatalf("delivery %d: %v", i, err)
				}
			}
			byRule := map[string][]*detect.Finding{}
			for _, f := range pub.got {
				byRule[f.Rule] = append(byRule[f.Rule], f)
			}
			scan := byRule["eks-cluster-scan"]
			if len(scan) == 0 {
				t.Fatal("no eks-cluster-scan finding")
			}
			var highest []*detect.Finding // per account and region
			seen := map[string]*detect.Finding{}
			for _, f := range scan {
				k := f.Account + "/" + f.Region
				if cur := seen[k]; cur == nil || f.Count > cur.Count {
					seen[k] = f
				}
			}
			for _, f := range seen {
				highest = append(highest, f)
			}
			sort.Slice(highest, func(i, j int) bool {
				return highest[i].Account+highest[i].Region < highest[j].Account+highest[j].Region
			})
			ids := map[string]bool{}
			for _, f := range scan {
				if ids[f.ID] {
					t.Errorf("finding id %s twice", f.ID)
				}
				ids[f.ID] = true
				if f.ClusterName != "prod" {
					t.Errorf("cluster_name %q, want prod: the account and region go beside it", f.ClusterName)
				}
			}
			if tt.qualify {
				if len(highest) != 3 {
					t.Fatalf("findings in %d accounts and regions, want 3: %v", len(highest), highest)
				}
				for i, f := range highest {
					want := []detect.Scope{scopes[0], scopes[2], scopes[1]}[i]
					if f.Account != want.Account || f.Region != want.Region || f.Count != tt.count {
						t.Errorf("finding %d: %s/%s count %d; want %s/%s count %d", i, f.Account, f.Region, f.Count, want.Account, want.Region, tt.count)
					}
				}
				return
			}
			// One cluster to it: the first delivery's findings suppress
			// the same ones of the others.
			if len(highest) != 1 || highest[0].Account != scopes[0].Account {
				t.Errorf("findings in %d accounts and regions, want the first delivery's only: without Qualify the three clusters are one", len(highest))
			}
		})
	}
}

// TestScopeKeepsSingleAccountKeys: the zero scope leaves a group's state key
// as it was before accounts and regions existed, and any other scope
// changes it.
func TestScopeKeepsSingleAccountKeys(t *testing.T) {
	g := detect.Group{SrcIP: "203.0.113.9", ClusterName: "prod"}
	// Stored by every release before organization scale (pinned).
	const before = "eks-cluster-scan#203.0.113.9#"
	k := detect.GroupKey("eks-cluster-scan", &g)
	if k[:len(before)] != before {
		t.Fatalf("key %q", k)
	}
	scoped := g
	scoped.Account, scoped.Region = "111111111111", "eu-west-1"
	if detect.GroupKey("eks-cluster-scan", &scoped) == k {
		t.Error("an account and region do not change the key")
	}
	other := scoped
	other.Region = "us-east-1"
	if detect.GroupKey("eks-cluster-scan", &other) == detect.GroupKey("eks-cluster-scan", &scoped) {
		t.Error("two regions share a key")
	}
}
