package render

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoAWSSDK keeps rendering, and what it imports, free of the AWS SDK:
// the core of anonwatch must build and test without it.
func TestNoAWSSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "../enrich").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/aws/aws-sdk-go-v2") {
			t.Errorf("depends on %s", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/anonwatch/anonwatch/internal/detect") {
		t.Errorf("go list printed no dependency list:\n%s", out)
	}
}
