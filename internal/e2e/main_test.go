//go:build integration

package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// Set by TestMain.
var (
	dynamoURL   string // ANONWATCH_TEST_DYNAMODB
	snsURL      string // ANONWATCH_TEST_SNS
	emulator    string // $ANONWATCH_BIN/aws-lambda-rie
	functionDir string // holds bootstrap, the amd64 detector
	cliPath     string // the anonwatch CLI, for the replay cross-check
	repoRoot    string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse() // for testing.Verbose
	var missing []string
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"ANONWATCH_TEST_DYNAMODB", &dynamoURL},
		{"ANONWATCH_TEST_SNS", &snsURL},
		{"ANONWATCH_BIN", &emulator},
	} {
		*v.dst = os.Getenv(v.name)
		if *v.dst == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %s not set: these tests need dynalite, goaws and aws-lambda-rie (run them with scripts/test.sh)\n", strings.Join(missing, ", "))
		return 1
	}
	emulator = filepath.Join(emulator, "aws-lambda-rie")
	if _, err := os.Stat(emulator); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: ANONWATCH_BIN: %v (scripts/tools.sh installs aws-lambda-rie)\n", err)
		return 1
	}
	var err error
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	tmp, err := os.MkdirTemp("", "anonwatch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// One go build for both: they share every compiled dependency.
	began := time.Now()
	if functionDir, cliPath, err = emu.BuildDetector(repoRoot, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built bootstrap and CLI in %v\n", time.Since(began).Round(time.Millisecond))
	}
	return m.Run()
}

// functionEnv is the detector's environment under the emulator, against
// the shared emulators (see emu.DetectorEnv).
func functionEnv(table, topic string) []string {
	return emu.DetectorEnv(dynamoURL, snsURL, table, topic)
}

// withoutVar returns env less the variable name.
func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// startFunction starts the amd64 detector under the emulator with env.
func startFunction(t testing.TB, env []string) *rie.Instance {
	t.Helper()
	return startIn(t, functionDir, env)
}

// startIn starts the emulator in dir, running command (default
// ./bootstrap), and stops it when the test ends (see emu.StartFunction).
func startIn(t testing.TB, dir string, env []string, command ...string) *rie.Instance {
	t.Helper()
	return emu.StartFunction(t, rie.Config{Emulator: emulator, Dir: dir, Command: command, Env: env})
}
