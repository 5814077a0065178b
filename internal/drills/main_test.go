//go:build integration

package drills

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
)

var update = flag.Bool("update", false, "rewrite the fault matrix in docs/reliability.md")

// Set by TestMain.
var (
	repoRoot    string
	emulatorBin string // aws-lambda-rie
	goawsBin    string
	nodeBin     string
	dynaliteCLI string
	functionDir string // holds bootstrap, the amd64 detector
	cliPath     string // the anonwatch CLI
	settings    functionSettings

	// sharedDynamo and sharedSNS serve every drill that does not kill its
	// emulator; each drill makes its own table, topic and queue there.
	sharedDynamo *emu.Server
	sharedSNS    *emu.Server
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "anonwatch-drills-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	began := time.Now()
	if functionDir, cliPath, err = emu.BuildDetector(repoRoot, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 1
	}
	if sharedDynamo, err = startDynalite(filepath.Join(tmp, "dynalite.log"), ""); err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 1
	}
	defer sharedDynamo.Stop()
	if sharedSNS, err = emu.StartGoaws(goawsBin, tmp, "shared", nil); err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 1
	}
	defer sharedSNS.Stop()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "drills: built the function and started dynalite and goaws in %v\n", time.Since(began).Round(time.Millisecond))
	}
	return m.Run()
}

// setup finds the tools and reads the function's settings from the
// template, failing when a tool is missing: with the integration tag the
// drills must run, not skip.
func setup() error {
	var err error
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return err
	}
	bin := os.Getenv("ANONWATCH_BIN")
	if bin == "" {
		return errors.New("ANONWATCH_BIN is not set: the drills need aws-lambda-rie and goaws from it (scripts/tools.sh installs them into .bin; scripts/drills.sh sets it)")
	}
	emulatorBin, goawsBin = filepath.Join(bin, "aws-lambda-rie"), filepath.Join(bin, "goaws")
	dynaliteCLI = os.Getenv("ANONWATCH_DYNALITE_CLI")
	if dynaliteCLI == "" {
		dynaliteCLI = filepath.Join(repoRoot, "tools", "node", "node_modules", "dynalite", "cli.js")
	}
	for _, p := range []string{emulatorBin, goawsBin, dynaliteCLI} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%v (scripts/tools.sh installs the emulators)", err)
		}
	}
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("dynalite needs node: %w", err)
	}
	settings, err = readSettings(filepath.Join(repoRoot, "template.yaml"))
	return err
}

// functionSettings are the detector's settings in template.yaml that the
// drills emulate: RIE knows nothing of them.
type functionSettings struct {
	// Timeout and MemorySize are the function's; the emulator enforces
	// the timeout and only reports the memory size, so the drills
	// compare peak memory with it themselves.
	Timeout    time.Duration
	MemorySize int // MB
	// MaxRetryAttempts and OnFailure are EventInvokeConfig's: how often
	// Lambda retries a failed asynchronous invocation, and where the
	// record of one that failed every attempt goes.
	MaxRetryAttempts int
	OnFailureType    string
	// OnFailure is the destination's resource and attribute, as in
	// !GetAtt DeadLetterQueue.Arn; OnFailureResourceType is that
	// resource's type.
	OnFailure             string
	OnFailureResourceType string
}

// readSettings reads DetectorFunction's settings from the template with
// goformation's YAML reader, which turns short-form intrinsics (!GetAtt)
// into their JSON form; nothing is resolved, so the destination stays a
// reference to the queue resource.
func readSettings(path string) (functionSettings, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return functionSettings{}, err
	}
	js, err := intrinsics.ProcessYAML(src, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return functionSettings{}, fmt.Errorf("%s: %w", path, err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				Timeout           *int
				MemorySize        *int
				EventInvokeConfig *struct {
					MaximumRetryAttempts *int
					DestinationConfig    struct {
						OnFailure struct {
							Type        string
							Destination json.RawMessage
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(js, &tmpl); err != nil {
		return functionSettings{}, fmt.Errorf("%s: %w", path, err)
	}
	fn, ok := tmpl.Resources["DetectorFunction"]
	p := fn.Properties
	switch {
	case !ok || fn.Type != "AWS::Serverless::Function":
		return functionSettings{}, fmt.Errorf("%s: no AWS::Serverless::Function DetectorFunction", path)
	case p.Timeout == nil || p.MemorySize == nil || p.EventInvokeConfig == nil || p.EventInvokeConfig.MaximumRetryAttempts == nil:
		return functionSettings{}, fmt.Errorf("%s: DetectorFunction lacks Timeout, MemorySize or EventInvokeConfig.MaximumRetryAttempts, which the drills emulate", path)
	}
	// !GetAtt Queue.Arn reads as {"Fn::GetAtt": "Queue.Arn"}, the long
	// form as {"Fn::GetAtt": ["Queue", "Arn"]}.
	var dest struct {
		GetAtt json.RawMessage `json:"Fn::GetAtt"`
	}
	onFailure := p.EventInvokeConfig.DestinationConfig.OnFailure
	var target string
	var parts []string
	if err := json.Unmarshal(onFailure.Destination, &dest); err == nil {
		if json.Unmarshal(dest.GetAtt, &target) != nil && json.Unmarshal(dest.GetAtt, &parts) == nil && len(parts) == 2 {
			target = strings.Join(parts, ".")
		}
	}
	if target == "" {
		return functionSettings{}, fmt.Errorf("%s: DetectorFunction's OnFailure destination %s is not a GetAtt", path, onFailure.Destination)
	}
	resource, _, _ := strings.Cut(target, ".")
	return functionSettings{
		Timeout:          time.Duration(*p.Timeout) * time.Second,
		MemorySize:       *p.MemorySize,
		MaxRetryAttempts: *p.EventInvokeConfig.MaximumRetryAttempts,
		OnFailureType:    onFailure.Type,
		OnFailure:        target,
		// Empty when the resource is missing, which the drill reports.
		OnFailureResourceType: tmpl.Resources[resource].Type,
	}, nil
}
