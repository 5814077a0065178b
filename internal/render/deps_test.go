package render

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps rendering, and what it imports, free of the AWS SDK and
// of the detection pipeline. The core of anonwatch must build and test
// without the SDK, and the Slack notifier, which links render, must not
// link the rule engine and CEL just to reformat a finding.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "../enrich").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/aws/aws-sdk-go-v2",
		"github.com/anonwatch/anonwatch/internal/detect",
		"github.com/anonwatch/anonwatch/internal/rules",
		"github.com/anonwatch/anonwatch/internal/audit",
		"github.com/anonwatch/anonwatch/internal/cwlogs",
		"cel.dev/cel-go",
		"github.com/google/cel-go",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("depends on %s", dep)
			}
		}
	}
	if !strings.Contains(string(out), "github.com/anonwatch/anonwatch/internal/finding") {
		t.Errorf("go list printed no dependency list:\n%s", out)
	}
}
