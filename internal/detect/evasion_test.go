package detect_test

import (
	cmpstd "cmp"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// evaded is what an evasion test compares of a finding.
type evaded struct {
	Rule, SrcIP, Severity, UAClass string
	Count                          int64
}

// TestEvasion holds one case per way an anonymous attacker who has read the
// rules used to get no finding, or a weaker one than deserved: each fixture
// in testdata/evasion is written as kube-apiserver writes it, and is
// delivered as one batch.
func TestEvasion(t *testing.T) {
	tests := []struct {
		file string
		want []evaded
	}{
		{
			// Real audit lines often carry no userAgent: the class is
			// "none", not missing.
			file: "no-user-agent.jsonl",
			want: []evaded{
				{"eks-cluster-scan", "203.0.113.31", "low", "none", 1},
				{"eks-pod-scan", "203.0.113.31", "medium", "none", 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pub := &recorder{}
			d, _ := newDetector(t, pub)
			b := readBatch(t, filepath.Join("evasion", tt.file), "kube-apiserver-audit-1")
			if _, err := d.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			var got []evaded
			for _, f := range pub.got {
				got = append(got, evaded{f.Rule, f.SrcIP, f.Severity, f.UAClass, f.Count})
			}
			sortEvaded(got)
			sortEvaded(tt.want)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func sortEvaded(s []evaded) {
	slices.SortFunc(s, func(a, b evaded) int {
		return cmpstd.Compare(a.Rule+"\x00"+a.SrcIP+"\x00"+a.Severity, b.Rule+"\x00"+b.SrcIP+"\x00"+b.Severity)
	})
}
