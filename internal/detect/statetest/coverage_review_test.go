package statetest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/anonwatch/anonwatch/internal/rules"
)

// TestReviewGeneratorCoverage measures what the property generator
// exercises: severities per rule in the oracle, and batches per minute.
func TestReviewGeneratorCoverage(t *testing.T) {
	set, err := rules.Load("property.yaml", []byte(PropertyRules))
	if err != nil {
		t.Fatal(err)
	}
	sev := map[string]map[rules.Severity]int{}
	periodsPerKey := map[int]int{}
	maxBatchesPerMinute := map[int]int{}
	var cases, twice int
	for i := range 2000 {
		rng := rand.New(rand.NewPCG(1, uint64(i)))
		sc := generate(rng, fmt.Sprintf("c%d", i), 60)
		want, _, err := oracle(set, sc)
		if err != nil {
			t.Fatal(err)
		}
		cases++
		perKey := map[string]int{}
		for pk, s := range want {
			r := pk.key[:len(pk.key)-len("#")-16]
			_ = r
			rid := ""
			for _, rr := range set.Rules() {
				if len(pk.key) > len(rr.ID) && pk.key[:len(rr.ID)+1] == rr.ID+"#" {
					rid = rr.ID
				}
			}
			if sev[rid] == nil {
				sev[rid] = map[rules.Severity]int{}
			}
			sev[rid][s]++
			perKey[pk.key]++
		}
		for _, n := range perKey {
			periodsPerKey[n]++
		}
		// batches touching one (stream-agnostic) minute, any src
		perMin := map[int64]map[int]bool{}
		seenB := map[*int]bool{}
		for bi, b := range sc.batches {
			if seenB[&b[0]] {
				twice++
				continue
			}
			seenB[&b[0]] = true
			for _, e := range b {
				m := sc.events[e].at.Unix() / 60
				if perMin[m] == nil {
					perMin[m] = map[int]bool{}
				}
				perMin[m][bi] = true
			}
		}
		mx := 0
		for _, bs := range perMin {
			mx = max(mx, len(bs))
		}
		maxBatchesPerMinute[mx]++
	}
	t.Logf("cases %d, redeliveries %d", cases, twice)
	for r, m := range sev {
		t.Logf("rule %s: %v", r, m)
	}
	t.Logf("periods with a finding per key: %v", periodsPerKey)
	t.Logf("max distinct batches touching one minute (any key): %v", maxBatchesPerMinute)
}
