package archtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// core lists the packages that must stay free of the AWS SDK: decoding,
// the audit model, rules, aggregation, enrichment, rendering and the
// in-memory state. Only the adapters and the mains may import it.
var core = []string{
	"github.com/anonwatch/anonwatch/internal/audit",
	"github.com/anonwatch/anonwatch/internal/cwlogs",
	"github.com/anonwatch/anonwatch/internal/rules",
	"github.com/anonwatch/anonwatch/internal/enrich",
	"github.com/anonwatch/anonwatch/internal/detect",
	"github.com/anonwatch/anonwatch/internal/render",
	"github.com/anonwatch/anonwatch/internal/memstate",
	"github.com/anonwatch/anonwatch/internal/jsonlpub",
	"github.com/anonwatch/anonwatch/internal/jsonscan",
}

// stdlibOnly lists the packages that import nothing but the standard
// library: the JSON scanner both decoders share.
var stdlibOnly = []string{
	"github.com/anonwatch/anonwatch/internal/jsonscan",
}

func TestStdlibOnly(t *testing.T) {
	for _, pkg := range stdlibOnly {
		t.Run(pkg[strings.LastIndex(pkg, "/")+1:], func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
			}
			if diff := cmp.Diff([]string{pkg}, strings.Fields(string(out))); diff != "" {
				t.Errorf("packages outside the standard library in go list -deps %s (-want +got):\n%s", pkg, diff)
			}
		})
	}
}

func TestCoreImportsNoAWSSDK(t *testing.T) {
	for _, pkg := range core {
		t.Run(pkg[strings.LastIndex(pkg, "/")+1:], func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list -deps %s listed %d packages; expected the package and its deps", pkg, len(deps))
			}
			for _, d := range deps {
				if strings.HasPrefix(d, "github.com/aws/aws-sdk-go-v2") || strings.HasPrefix(d, "github.com/aws/smithy-go") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		})
	}
}

// TestAdaptersDoImportSDK keeps the check above honest: the same command
// does see the SDK where it is used.
func TestAdaptersDoImportSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/anonwatch/anonwatch/internal/dynamostate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/aws/aws-sdk-go-v2/service/dynamodb") {
		t.Error("go list -deps dynamostate does not show the DynamoDB SDK")
	}
}
