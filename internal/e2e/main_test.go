//go:build integration

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// lambdaBuild is how the deployed bootstrap is built (see the Makefile's
// build-DetectorFunction), less GOARCH, which each build sets.
var lambdaBuild = []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

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
	functionDir = filepath.Join(tmp, "function")
	cliPath = filepath.Join(tmp, "anonwatch")
	// One go build for both: they share every compiled dependency.
	began := time.Now()
	if err := buildLambda(tmp, "amd64", "./functions/detector", "./cmd/anonwatch"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := os.Mkdir(functionDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := os.Rename(filepath.Join(tmp, "detector"), filepath.Join(functionDir, "bootstrap")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built bootstrap and CLI in %v\n", time.Since(began).Round(time.Millisecond))
	}
	return m.Run()
}

// buildLambda builds pkgs for linux/arch as the deployment does, into dir.
func buildLambda(dir, arch string, pkgs ...string) error {
	args := append(append([]string{}, lambdaBuild...), "-o", dir+string(filepath.Separator))
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOARCH=%s go %s: %v\n%s", arch, strings.Join(cmd.Args[1:], " "), err, out)
	}
	return nil
}

// functionEnv is the detector's environment under the emulator: the
// emulators' endpoints, static credentials, JSON logs, and nothing from
// this process but PATH, so no developer profile or real endpoint leaks in.
func functionEnv(table, topic string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + dynamoURL,
		"AWS_ENDPOINT_URL_SNS=" + snsURL,
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_NAME=anonwatch-detector",
		"TABLE_NAME=" + table,
		"TOPIC_ARN=" + topic,
	}
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
// ./bootstrap), and stops it when the test ends. On failure the emulator's
// output is logged, since that is where the function's own log lines are.
func startIn(t testing.TB, dir string, env []string, command ...string) *rie.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := rie.Start(ctx, rie.Config{Emulator: emulator, Dir: dir, Command: command, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("emulator output:\n%s", in.Output())
		}
	})
	return in
}
