// Package emu is the harness the integration tests share for running
// anonwatch's functions against local stand-ins for AWS: building a
// bootstrap as it is deployed, the environment a function gets under the
// Lambda Runtime Interface Emulator (package rie), DynamoDB on dynalite, SNS
// and SQS on goaws, CloudWatch Logs and S3 on moto for replay's sources, and
// starting private dynalite and goaws processes that a test may kill and
// restart.
//
// It is an ordinary package, without build tags, so that it compiles and is
// vetted with the rest of the module, but only tests import it: nothing in it
// belongs in a deployed function. Everything talks to 127.0.0.1 only.
package emu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// lambdaBuild is how the deployed bootstrap is built (see the Makefile's
// build-DetectorFunction), less GOOS and GOARCH, which BuildLambda sets.
var lambdaBuild = []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// BuildLambda builds pkgs, relative to srcDir, for linux/arch as the
// deployment does, into outDir, each named as go build names it (after its
// directory). One call for several packages shares their compiled
// dependencies.
func BuildLambda(srcDir, outDir, arch string, pkgs ...string) error {
	args := append(append([]string{}, lambdaBuild...), "-o", outDir+string(filepath.Separator))
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOARCH=%s go %s: %v\n%s", arch, strings.Join(cmd.Args[1:], " "), err, out)
	}
	return nil
}

// BuildBootstrap builds the function package pkg, relative to srcDir, for
// linux/arch as the deployment does, into functionDir/bootstrap, the name
// the provided.al2023 runtime runs.
func BuildBootstrap(srcDir, pkg, arch, functionDir string) error {
	tmp, err := os.MkdirTemp(functionDir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := BuildLambda(srcDir, tmp, arch, pkg); err != nil {
		return err
	}
	built, err := filepath.Glob(filepath.Join(tmp, "*"))
	if err != nil {
		return err
	}
	if len(built) != 1 {
		return fmt.Errorf("go build %s wrote %d files, want one", pkg, len(built))
	}
	return os.Rename(built[0], filepath.Join(functionDir, "bootstrap"))
}

// BuildDetector builds the detector for amd64, to run here, and the
// anonwatch CLI in one go build, so they share compiled packages, under
// dir. It returns the detector's function folder, which holds bootstrap,
// and the CLI's path.
func BuildDetector(repoRoot, dir string) (functionDir, cliPath string, err error) {
	if err := BuildLambda(repoRoot, dir, "amd64", "./functions/detector", "./cmd/anonwatch"); err != nil {
		return "", "", err
	}
	functionDir = filepath.Join(dir, "function")
	if err := os.Mkdir(functionDir, 0o755); err != nil {
		return "", "", err
	}
	if err := os.Rename(filepath.Join(dir, "detector"), filepath.Join(functionDir, "bootstrap")); err != nil {
		return "", "", err
	}
	return functionDir, filepath.Join(dir, "anonwatch"), nil
}

// AWSEnv is the AWS part of a process's environment against the emulators:
// static credentials, us-east-1, and nothing from this process but PATH,
// so that no developer profile, endpoint or retry setting leaks in. Callers
// append the endpoints.
func AWSEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// DetectorEnv is the detector's environment under the emulator: AWSEnv,
// the DynamoDB and SNS endpoints (emulators or proxies in front of them),
// JSON logs, and the function's table and topic.
func DetectorEnv(dynamoURL, snsURL, table, topic string) []string {
	return append(AWSEnv(),
		"AWS_ENDPOINT_URL_DYNAMODB="+dynamoURL,
		"AWS_ENDPOINT_URL_SNS="+snsURL,
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_NAME=anonwatch-detector",
		"TABLE_NAME="+table,
		"TOPIC_ARN="+topic,
	)
}

// outputLogLimit bounds the emulator output StartFunction logs for a failed
// test: hostile input can make the function log megabytes.
const outputLogLimit = 20000

// StartFunction starts cfg's function under the emulator and stops it when
// the test ends. When the test failed, it logs the emulator's output (the
// beginning, up to 20,000 bytes), since that is where the function's own
// log lines are.
func StartFunction(t testing.TB, cfg rie.Config) *rie.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fn, err := rie.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fn.Stop()
		if t.Failed() {
			out := fn.Output()
			if len(out) > outputLogLimit {
				out = fmt.Sprintf("%s\n... (%d more bytes)", out[:outputLogLimit], len(out)-outputLogLimit)
			}
			t.Logf("emulator output:\n%s", out)
		}
	})
	return fn
}

// Invoke sends event to fn and, when the emulator answered 200, waits for
// its REPORT line for the request, which it writes after the function's
// own lines, so that those are in fn.Output when Invoke returns.
func Invoke(ctx context.Context, fn *rie.Instance, event []byte) (*rie.Response, error) {
	resp, err := fn.Invoke(ctx, event)
	if err != nil {
		return nil, err
	}
	if resp.Status == http.StatusOK {
		if err := fn.WaitOutput(ctx, "REPORT RequestId: "+resp.RequestID); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// LogLines returns the function's JSON log lines in out, in order, decoded:
// the objects with a level, as opposed to the emulator's own text lines and
// the function's EMF metrics. With requestID it returns only that request's
// lines; lambdacontext's logger tags a line with requestId only when it is
// given the request's context.
func LogLines(out, requestID string) []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if _, ok := m["level"]; !ok {
			continue
		}
		if requestID == "" || m["requestId"] == requestID {
			lines = append(lines, m)
		}
	}
	return lines
}

// ReadFindings decodes the findings `anonwatch replay` prints, one JSON
// object after another.
func ReadFindings(r io.Reader) ([]detect.Finding, error) {
	var out []detect.Finding
	dec := json.NewDecoder(r)
	for dec.More() {
		var f detect.Finding
		if err := dec.Decode(&f); err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}
