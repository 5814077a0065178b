package archtest

import (
	"os/exec"
	"slices"
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
	"github.com/anonwatch/anonwatch/internal/finding",
	"github.com/anonwatch/anonwatch/internal/detect",
	"github.com/anonwatch/anonwatch/internal/render",
	"github.com/anonwatch/anonwatch/internal/memstate",
	"github.com/anonwatch/anonwatch/internal/jsonlpub",
	"github.com/anonwatch/anonwatch/internal/jsonscan",
}

// stdlibOnly lists the packages that import nothing but the standard
// library: the JSON scanner both decoders share, and the finding document,
// which every consumer of findings links.
var stdlibOnly = []string{
	"github.com/anonwatch/anonwatch/internal/jsonscan",
	"github.com/anonwatch/anonwatch/internal/finding",
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

// pipeline names, by import path, what produces findings: the decoders, the
// rule engine and the CEL library its rules compile to. CEL is listed under
// both module paths it is published at (go.mod requires cel.dev/cel-go).
var pipeline = []pathGroup{
	{"detect", []string{"github.com/anonwatch/anonwatch/internal/detect"}},
	{"rules", []string{"github.com/anonwatch/anonwatch/internal/rules"}},
	{"audit", []string{"github.com/anonwatch/anonwatch/internal/audit"}},
	{"cwlogs", []string{"github.com/anonwatch/anonwatch/internal/cwlogs"}},
	{"CEL", []string{"cel.dev/cel-go", "github.com/google/cel-go"}},
}

// pathGroup is a named set of import paths.
type pathGroup struct {
	name  string
	paths []string
}

// has reports whether the import path dep is one of g's paths or lies
// below one.
func (g pathGroup) has(dep string) bool {
	return slices.ContainsFunc(g.paths, func(path string) bool {
		return dep == path || strings.HasPrefix(dep, path+"/")
	})
}

// deps returns go list -deps of pkg.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// TestNotifierLinksNoPipeline keeps the Slack notifier small: it reformats
// one finding, so it links the finding document and the renderings, not
// the pipeline that produced the finding. Each of those packages it linked
// made its binary larger and its cold start slower.
func TestNotifierLinksNoPipeline(t *testing.T) {
	const notifier = "github.com/anonwatch/anonwatch/functions/slack-notifier"
	ds := deps(t, notifier)
	if !slices.Contains(ds, "github.com/anonwatch/anonwatch/internal/render") {
		t.Fatalf("go list -deps %s does not list internal/render; the check below would see nothing:\n%s", notifier, strings.Join(ds, "\n"))
	}
	for _, p := range pipeline {
		var linked []string
		for _, d := range ds {
			if p.has(d) {
				linked = append(linked, d)
			}
		}
		switch len(linked) {
		case 0:
		case 1:
			t.Errorf("%s links %s: %s", notifier, p.name, linked[0])
		default:
			t.Errorf("%s links %s: %s and %d more", notifier, p.name, linked[0], len(linked)-1)
		}
	}
}

// TestDetectorLinksPipeline keeps the check above honest: the same paths do
// match packages the detector links, so none is misspelt or moved.
func TestDetectorLinksPipeline(t *testing.T) {
	ds := deps(t, "github.com/anonwatch/anonwatch/functions/detector")
	for _, p := range pipeline {
		if !slices.ContainsFunc(ds, p.has) {
			t.Errorf("go list -deps of the detector lists nothing under %v (%s)", p.paths, p.name)
		}
	}
}
