package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// functionPackages is the Go package each function resource runs. The two
// Slack functions are one program, configured apart by the template.
var functionPackages = map[string]string{
	"DetectorFunction":              "./functions/detector",
	"SlackNotifierFunction":         "./functions/slack-notifier",
	"SlackCriticalNotifierFunction": "./functions/slack-notifier",
}

// TestMakefileBuildsEveryFunction checks what `sam build` relies on for a
// function with BuildMethod makefile: a Makefile target named
// build-<logical id>, which it runs with ARTIFACTS_DIR set and which must
// leave the function's bootstrap there, built for the function's
// architecture. A function added to the template without its target fails
// `sam build`, which no other test here runs. `make -n` prints the commands
// without running them.
func TestMakefileBuildsEveryFunction(t *testing.T) {
	l := load(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to check the Makefile's build targets (docs/deploy.md lists it): %v", err)
	}
	var names []string
	for name, r := range asMap(l.raw["Resources"]) {
		if asMap(r)["Type"] == "AWS::Serverless::Function" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var packaged []string
	for name := range functionPackages {
		packaged = append(packaged, name)
	}
	sort.Strings(packaged)
	if diff := cmp.Diff(packaged, names); diff != "" {
		t.Errorf("functions in template.yaml (-functionPackages +template):\n%s", diff)
	}
	// The central stack's functions are built by the same targets: the
	// same logical ids, the same architecture, and a CodeUri that is the
	// repository root, where the Makefile is (it is relative to the
	// template's folder).
	central := loadCentral(t)
	for name, r := range asMap(central.raw["Resources"]) {
		if asMap(r)["Type"] != "AWS::Serverless::Function" {
			continue
		}
		if _, ok := functionPackages[name]; !ok {
			t.Errorf("%s: function %s has no build target (functionPackages)", central.path, name)
			continue
		}
		if dir := codeDir(t, central, name); dir != "." {
			t.Errorf("%s: %s CodeUri names %s, want the repository root", central.path, name, dir)
		}
		if m := asMap(asMap(r)["Metadata"]); m["BuildMethod"] != "makefile" {
			t.Errorf("%s: %s Metadata = %v, want BuildMethod makefile", central.path, name, m)
		}
		if got, want := rawProperty(t, central, name, "Architectures"), rawProperty(t, l, name, "Architectures"); !cmp.Equal(got, want) {
			t.Errorf("%s: %s Architectures = %v, template.yaml's %v: one build target cannot serve both", central.path, name, got, want)
		}
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := rawResource(t, l, name)
			if m := asMap(r["Metadata"]); m["BuildMethod"] != "makefile" {
				t.Fatalf("Metadata = %v, want BuildMethod makefile", m)
			}
			arch := asStrings(rawProperty(t, l, name, "Architectures"))
			if len(arch) != 1 {
				t.Fatalf("Architectures = %v, want one", arch)
			}
			goarch := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[arch[0]]

			artifacts := t.TempDir()
			cmd := exec.Command("make", "-n", "--no-print-directory", "build-"+name, "ARTIFACTS_DIR="+artifacts)
			cmd.Dir = root
			// As sam build runs it: the Makefile's own defaults, not a
			// LAMBDA_ARCH this shell may have set.
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "LAMBDA_ARCH=") && !strings.HasPrefix(kv, "ARTIFACTS_DIR=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n build-%s: %v\n%s", name, err, out)
			}
			build := regexp.MustCompile(`(?m)^.*\bgo build\b.*$`).FindAllString(string(out), -1)
			if len(build) != 1 {
				t.Fatalf("make -n build-%s runs %d go builds, want 1:\n%s", name, len(build), out)
			}
			line := build[0]
			for _, want := range []string{
				"GOOS=linux", "GOARCH=" + goarch, "CGO_ENABLED=0",
				"-tags lambda.norpc",
				"-o " + filepath.Join(artifacts, "bootstrap") + " ",
			} {
				if !strings.Contains(line, want) {
					t.Errorf("build-%s: %q lacks %q", name, line, want)
				}
			}
			if !strings.HasSuffix(strings.TrimSpace(line), " "+functionPackages[name]) {
				t.Errorf("build-%s: %q does not build %s", name, line, functionPackages[name])
			}
		})
	}
}
