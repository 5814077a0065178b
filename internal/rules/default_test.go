package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var fixtureFiles = []string{"testdata/cases.jsonl", "testdata/system_traffic.jsonl"}

// TestDefaultRulesCases runs every fixture through the default rules. Each
// line of testdata/cases.jsonl names the rules that must match the event and
// the escalation marks they must report; all others must not match.
func TestDefaultRulesCases(t *testing.T) {
	s := mustDefault(t)
	for _, fx := range readFixtures(t, fixtureFiles...) {
		t.Run(fx.Name, func(t *testing.T) {
			ev, err := fx.event()
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got := matches(s, &ev, "prod")
			if diff := cmp.Diff(fx.Want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}
	if n := s.EvalErrors(); n != 0 {
		t.Errorf("EvalErrors() = %d after the fixtures, want 0", n)
	}
}

// TestDefaultRulesCoverage keeps the fixtures honest: every default rule
// has events it must match and events it must not, and every per-event
// escalation is seen both marked and unmarked.
func TestDefaultRulesCoverage(t *testing.T) {
	s := mustDefault(t)
	fxs := readFixtures(t, fixtureFiles...)
	for _, r := range s.Rules() {
		var pos, neg int
		marked := map[int]int{}
		for _, fx := range fxs {
			marks, ok := fx.Want[r.ID]
			if !ok {
				neg++
				continue
			}
			pos++
			for _, m := range marks {
				marked[m]++
			}
		}
		if pos == 0 || neg == 0 {
			t.Errorf("rule %s: %d positive and %d negative fixtures, want some of each", r.ID, pos, neg)
		}
		for _, w := range r.when {
			if marked[w.index] == 0 || marked[w.index] == pos {
				t.Errorf("rule %s: escalation %d marked in %d of %d matching fixtures, want some but not all", r.ID, w.index, marked[w.index], pos)
			}
		}
	}
}

// TestDefaultRulesSpec pins the parts of the default rules other packages
// depend on: ids, order, grouping, thresholds, severities, escalations.
func TestDefaultRulesSpec(t *testing.T) {
	type esc struct {
		Severity  Severity
		Count     int64
		Distinct  Field
		DistinctN int
		HasWhen   bool
	}
	type spec struct {
		ID        string
		Severity  Severity
		GroupBy   []Field
		Threshold Threshold
		Escalate  []esc
		Requires  []string
	}
	anonGroup := []Field{FieldSrcIP, FieldClusterName, FieldUser, FieldGroups}
	ipCluster := []Field{FieldSrcIP, FieldClusterName}
	cluster := []Field{FieldClusterName}
	want := []spec{
		{"eks-pod-scan", Medium, anonGroup, Threshold{Count: 1, Window: time.Hour},
			[]esc{{Severity: High, HasWhen: true}}, []string{"system:anonymous"}},
		{"eks-cluster-scan", Low, anonGroup, Threshold{Count: 1, Window: time.Hour},
			[]esc{{Severity: Medium, Count: 10}, {Severity: Medium, Distinct: FieldPath, DistinctN: 3}}, []string{"system:anonymous"}},
		{"anonymous-request-allowed", High, ipCluster, Threshold{Count: 1, Window: time.Hour},
			[]esc{{Severity: Critical, HasWhen: true}, {Severity: Critical, HasWhen: true}}, []string{"system:anonymous"}},
		{"unauthenticated-403-burst", Medium, ipCluster, Threshold{Count: 6, Window: 30 * time.Minute},
			nil, []string{"system:unauthenticated"}},
		{"anonymous-enumeration", Medium, ipCluster, Threshold{Distinct: FieldPath, DistinctN: 6, Window: time.Hour},
			nil, []string{"system:anonymous"}},
		{"authentication-failure-burst", Medium, ipCluster, Threshold{Count: 10, Window: 10 * time.Minute},
			[]esc{{Severity: High, Count: 100}}, []string{"Unauthorized", "Authentication failed"}},
		{"anonymous-campaign", Low, cluster, Threshold{Distinct: FieldSrcIP, DistinctN: 20, Window: time.Hour},
			[]esc{{Severity: Medium, Distinct: FieldSrcIP, DistinctN: 50}, {Severity: Medium, Distinct: FieldPath, DistinctN: 30}}, []string{"system:anonymous"}},
		{"anonymous-path-campaign", Medium, cluster, Threshold{Distinct: FieldPath, DistinctN: 30, Window: time.Hour},
			nil, []string{"system:anonymous"}},
		{"unauthenticated-refusal-campaign", Medium, cluster, Threshold{Count: 100, Window: time.Hour},
			nil, []string{"system:unauthenticated", "Unauthorized", "Authentication failed"}},
		{"anonymous-slow-scan", Medium, ipCluster, Threshold{Count: 48, Window: 24 * time.Hour},
			nil, []string{"system:anonymous"}},
		{"anonymous-network-rotation", Low, []Field{FieldSrcNet, FieldClusterName}, Threshold{Distinct: FieldSrcIP, DistinctN: 3, Window: time.Hour},
			[]esc{{Severity: Medium, Count: 10}, {Severity: Medium, Distinct: FieldPath, DistinctN: 6}, {Severity: Medium, Distinct: FieldSrcIP, DistinctN: 20}},
			[]string{"system:anonymous"}},
		{"audit-event-unreadable", Medium, ipCluster, Threshold{Count: 1, Window: time.Hour},
			[]esc{{Severity: High, HasWhen: true}, {Severity: Critical, HasWhen: true}}, []string{"[Truncated...]"}},
		{"anonymous-access-granted", Critical, []Field{FieldUser, FieldClusterName}, Threshold{Count: 1, Window: time.Hour},
			nil, []string{"rolebindings"}},
		{"rbac-binding-write-unjudged", High, []Field{FieldUser, FieldClusterName}, Threshold{Count: 1, Window: time.Hour},
			nil, []string{"rolebindings"}},
		{"anonymous-role-changed", Critical, []Field{FieldUser, FieldClusterName}, Threshold{Count: 1, Window: time.Hour},
			nil, []string{"clusterroles"}},
	}
	var got []spec
	for _, r := range mustDefault(t).Rules() {
		sp := spec{ID: r.ID, Severity: r.Severity, GroupBy: r.GroupBy, Threshold: r.Threshold, Requires: r.RequiresAny}
		for _, e := range r.Escalate {
			sp.Escalate = append(sp.Escalate, esc{e.Severity, e.Count, e.Distinct, e.DistinctN, e.When != ""})
		}
		got = append(got, sp)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default rules (-want +got):\n%s", diff)
	}
}

// TestDefaultRulesDocumented checks what responders read: ESCU's stats
// fields are collected, and every rule explains itself.
func TestDefaultRulesDocumented(t *testing.T) {
	for _, r := range mustDefault(t).Rules() {
		for _, f := range []Field{FieldReason, FieldCode, FieldUserAgent, FieldVerb, FieldRequestURI} {
			if !slices.Contains(r.Collect, f) {
				t.Errorf("rule %s: collect lacks %s", r.ID, f)
			}
		}
		if len(r.Description) < 100 || len(r.MITRE) == 0 || r.Suppress < r.Threshold.Window && r.ID != "anonymous-access-granted" && r.ID != "anonymous-role-changed" {
			t.Errorf("rule %s: description %d chars, mitre %v, suppress %v: want a real description, MITRE ids, suppress >= window",
				r.ID, len(r.Description), r.MITRE, r.Suppress)
		}
		if strings.Contains(r.Description, "  ") {
			t.Errorf("rule %s: description has a double space (YAML folding?)", r.ID)
		}
	}
}

// TestOnlyClusterScanTrustsUserAgent: a user agent is written by the client,
// so a scanner can claim any. ESCU's cluster scan search excludes "AWS
// Security Scanner", and eks-cluster-scan keeps that; no other default rule
// may let a user agent keep it quiet.
func TestOnlyClusterScanTrustsUserAgent(t *testing.T) {
	for _, r := range mustDefault(t).Rules() {
		if strings.Contains(r.Exclude, "user_agent") && r.ID != "eks-cluster-scan" {
			t.Errorf("rule %s: exclude reads user_agent: %s", r.ID, r.Exclude)
		}
		if strings.Contains(r.Match, "user_agent") {
			t.Errorf("rule %s: match reads user_agent: %s", r.ID, r.Match)
		}
	}
}
