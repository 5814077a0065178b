package rules

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// pantherCase is one line of testdata/third_party/panther_eks_audit_test_cases.jsonl.
type pantherCase struct {
	SourceRule string          `json:"source_rule"`
	TestName   string          `json:"test_name"`
	Expected   bool            `json:"expected_result"`
	Log        json.RawMessage `json:"log"`
}

// TestPantherCases runs the test cases of Panther's EKS and Kubernetes audit
// rules (panther-labs/panther-analysis @ daa10c8, the Tests: blocks of
// rules/aws_eks_rules/anonymous_api_access.yml,
// rules/kubernetes_rules/k8s_anonymous_api_access.yml,
// rules/aws_eks_rules/source_ip_multiple_403.yml and
// rules/aws_eks_rules/system_namespace_public_ip.yml; Apache-2.0) through
// audit parsing and the default rules, one event at a time.
//
// For each case the table says which of our rules match the single event,
// whether we agree with Panther's verdict, and why not where we differ. We
// "report" an event when a matching rule's threshold is met by one event
// (count 1); the test computes that and checks the stated agreement.
func TestPantherCases(t *testing.T) {
	anonScan := map[string][]int{"eks-cluster-scan": {}, "anonymous-enumeration": {}, "anonymous-campaign": {}, "anonymous-path-campaign": {}, "anonymous-slow-scan": {}, "anonymous-network-rotation": {}}
	tests := []struct {
		name    string
		skipped error            // why the detector drops the line before matching
		want    map[string][]int // our matching rules and their marks
		agree   bool
		why     string // where we differ
	}{
		{name: "Anonymous API Access", agree: true,
			want: map[string][]int{"eks-cluster-scan": {}, "anonymous-enumeration": {}, "anonymous-request-allowed": {},
				"anonymous-campaign": {}, "anonymous-path-campaign": {}, "anonymous-slow-scan": {}, "anonymous-network-rotation": {}}},
		{name: "Non-Anonymous API Access", agree: true, want: map[string][]int{}},
		// /version is allowed by the default system:public-info-viewer
		// binding, so anonymous-request-allowed stays quiet; the scanner
		// is still reported, at low, by eks-cluster-scan.
		{name: "Anonymous API Access Web Scanner Allowed", agree: true, want: anonScan},
		{name: "ELB Health Check from 10.0.0.0/8", agree: true, want: map[string][]int{}},
		{name: "ELB Health Check from 172.16.0.0/12", agree: true, want: map[string][]int{}},
		{name: "ELB Health Check from 192.168.0.0/16", agree: true, want: map[string][]int{}},
		{name: "ELB Health Check from Public IP", agree: false, want: map[string][]int{},
			why: "health probes are allowed anonymously by default and every rule excludes them whatever the source; " +
				"the source's address class is enrichment on findings, not a trigger"},
		{name: "Anonymous API Access Web Scanner Denied", agree: true,
			want: map[string][]int{"eks-cluster-scan": {}, "anonymous-enumeration": {}, "unauthenticated-403-burst": {},
				"anonymous-campaign": {}, "anonymous-path-campaign": {}, "anonymous-slow-scan": {}, "anonymous-network-rotation": {}, "unauthenticated-refusal-campaign": {}}},
		{name: "EKS Anonymous API Access", agree: true,
			want: map[string][]int{"eks-cluster-scan": {}, "anonymous-enumeration": {}, "anonymous-request-allowed": {},
				"anonymous-campaign": {}, "anonymous-path-campaign": {}, "anonymous-slow-scan": {}, "anonymous-network-rotation": {}}},
		{name: "AKS Anonymous API Access", skipped: audit.ErrNotAudit, agree: false,
			why: "an Azure Monitor record with the audit event inside properties.log: anonwatch reads EKS audit logs only"},
		{name: "GCP GKE Anonymous API Access", skipped: audit.ErrNotAudit, agree: false,
			why: "a GCP Cloud Audit Log record, not a Kubernetes audit event: anonwatch reads EKS audit logs only"},
		{name: "Non-Anonymous API Access", agree: true, want: map[string][]int{}},
		// No stage: a partial event, not known to be final, so the
		// detector does not count it.
		{name: "Localhost Access", skipped: errNotFinal, agree: true},
		{name: "ELB Health Checker (excluded)", skipped: errNotFinal, agree: true},
		{name: "kube-probe Health Check (excluded)", skipped: errNotFinal, agree: true},
		{name: "Google Load Balancer Health Check (excluded)", skipped: audit.ErrNotAudit, agree: true},
		// ResponseStarted: the same request is logged again, complete.
		// A pods/log ResponseStarted: long-running, so counted, by an
		// authenticated user, so no rule matches.
		{name: "Not 403", agree: true, want: map[string][]int{}},
		{name: "403 and Private IP", agree: true, want: map[string][]int{}},
		{name: "403 and Public IP", agree: false, want: map[string][]int{},
			why: "Panther counts 403s per source address for any user; unauthenticated-403-burst counts only " +
				"unauthenticated clients (this is an authenticated service account), and needs 6 in 30 minutes"},
		// A pods/log ResponseStarted: long-running, so counted, by an
		// authenticated user, so no rule matches.
		{name: "non-system username", agree: true, want: map[string][]int{}},
		{name: "system username - private ip", agree: true, want: map[string][]int{}},
		{name: "403 from Public IP zero count", agree: false, want: map[string][]int{},
			why: "an authenticated system identity from a public address: out of anonwatch's scope (anonymous access)"},
		// A pods/log ResponseStarted: long-running, so counted, by an
		// authenticated user, so no rule matches.
		{name: "system username - public ip - not ResponseComplete", agree: true, want: map[string][]int{}},
		{name: "system username - public ip - 403", agree: true, want: map[string][]int{}},
		{name: "eks:addon-manager from public ip as lambda", agree: true, want: map[string][]int{}},
		{name: "legitimate EKS node from AWS IP - should not alert", agree: true, want: map[string][]int{}},
		{name: "system user from non-AWS public IP - should alert", agree: false, want: map[string][]int{},
			why: "an authenticated node identity from a public address: out of anonwatch's scope (anonymous access)"},
		{name: "attacker from non-AWS IP targeting AWS resource - should alert despite AWS target", agree: false, want: map[string][]int{},
			why: "an authenticated node identity from a public address: out of anonwatch's scope (anonymous access)"},
	}

	cases := readPanther(t)
	if len(cases) != len(tests) {
		t.Fatalf("%d Panther cases, %d table rows", len(cases), len(tests))
	}
	s := mustDefault(t)
	for i, tt := range tests {
		pc := cases[i]
		t.Run(pc.SourceRule+"/"+pc.TestName, func(t *testing.T) {
			if pc.TestName != tt.name {
				t.Fatalf("row %d is for %q, case is %q", i, tt.name, pc.TestName)
			}
			if !tt.agree && tt.why == "" {
				t.Errorf("we differ from Panther without saying why")
			}
			ev, err := parseEvent(pc.Log)
			if tt.skipped != nil {
				if !errors.Is(err, tt.skipped) {
					t.Fatalf("parse error %v, want %v", err, tt.skipped)
				}
			} else {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				got := matches(s, &ev, "example-cluster")
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("matches (-want +got):\n%s", diff)
				}
			}
			reported := false
			for id := range tt.want {
				if s.Rule(id).Threshold.Count == 1 {
					reported = true
				}
			}
			if agree := reported == pc.Expected; agree != tt.agree {
				t.Errorf("we report %v, Panther expects %v: agreement is %v, table says %v", reported, pc.Expected, agree, tt.agree)
			}
		})
	}
}

func readPanther(t *testing.T) []pantherCase {
	t.Helper()
	f, err := os.Open("testdata/third_party/panther_eks_audit_test_cases.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pantherCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c pantherCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOtherThirdPartyEvents runs single audit events published by other
// detectors through the default rules.
func TestOtherThirdPartyEvents(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		source string
		want   map[string][]int
	}{
		{
			// Falco's own rule "Anonymous Request Allowed" fires on it;
			// ours does, escalated to critical because it creates.
			name:   "anonymous creates namespace",
			file:   "testdata/third_party/falco_test_trace_anonymous_creates_namespace_foo.json",
			source: "falcosecurity/falco @ 7cac45e: test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json",
			want: map[string][]int{
				"eks-cluster-scan": {}, "anonymous-enumeration": {}, "anonymous-request-allowed": {0},
				"anonymous-campaign": {}, "anonymous-path-campaign": {}, "anonymous-slow-scan": {}, "anonymous-network-rotation": {},
			},
		},
		{
			// An authenticated user refused: not anonymous access.
			name:   "authenticated user forbidden to create jobs",
			file:   "testdata/third_party/splunk_security_content_kubernetes_audit_example_log.json",
			source: "splunk/security_content @ b13b314: data_sources/kubernetes_audit.yml (example_log)",
			want:   map[string][]int{},
		},
	}
	s := mustDefault(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := parseEvent(line)
			if err != nil {
				t.Fatalf("parse %s: %v", tt.source, err)
			}
			got := matches(s, &ev, "minikube")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matches on %s (-want +got):\n%s", tt.source, diff)
			}
			if len(got) > 0 && !s.Prefilter(line) {
				t.Errorf("Prefilter rejects %s, which rules match", tt.source)
			}
		})
	}
}
