//go:build integration

package drills

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// functionEnv is the detector's environment under the emulator: endpoints
// (the proxies, in most drills), static credentials, JSON logs, the
// template's timeout and memory size, and nothing from this process but
// PATH, so no developer profile, endpoint or retry setting leaks in.
func functionEnv(dynamoURL, snsURL, table, topic string) []string {
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
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(settings.Timeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(settings.MemorySize),
		"TABLE_NAME=" + table,
		"TOPIC_ARN=" + topic,
	}
}

// startFunction starts the detector under the emulator with env and stops
// it when the test ends, logging the emulator's output if the test failed.
func startFunction(t testing.TB, env []string) *rie.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fn, err := rie.Start(ctx, rie.Config{Emulator: emulatorBin, Dir: functionDir, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fn.Stop()
		if t.Failed() {
			t.Logf("emulator output:\n%.20000s", fn.Output())
		}
	})
	return fn
}

// invocation is what one invoke returned and logged.
type invocation struct {
	Resp *rie.Response
	// Err is the handler's error as Lambda reports it; empty Type when
	// the handler succeeded.
	Err rie.FunctionError
	// TimedOut reports that the emulator ended the invocation at the
	// function's timeout.
	TimedOut bool
	// Summary is the invocation's "batch processed" or "invocation
	// failed" log line, when it wrote one.
	Summary map[string]any
}

// OK reports whether the handler succeeded.
func (iv *invocation) OK() bool {
	return iv.Resp.Status == http.StatusOK && string(iv.Resp.Body) == "null"
}

// invoke sends event and waits for the emulator's REPORT line for it, so
// that the function's log lines for the request are in the output. It is
// bounded by the function's timeout and a margin.
func invoke(ctx context.Context, fn *rie.Instance, event []byte) (*invocation, error) {
	ctx, cancel := context.WithTimeout(ctx, settings.Timeout+30*time.Second)
	defer cancel()
	resp, err := fn.Invoke(ctx, event)
	if err != nil {
		return nil, err
	}
	iv := &invocation{Resp: resp}
	iv.Err, _ = resp.FunctionError()
	iv.TimedOut = bytes.HasPrefix(resp.Body, []byte("Task timed out after"))
	if resp.Status == http.StatusOK {
		if err := fn.WaitOutput(ctx, "REPORT RequestId: "+resp.RequestID); err != nil {
			return nil, err
		}
	}
	for _, l := range logLines(fn.Output(), resp.RequestID) {
		if m := l["message"]; m == "batch processed" || m == "invocation failed" {
			iv.Summary = l
		}
	}
	return iv, nil
}

func mustInvoke(t testing.TB, fn *rie.Instance, event []byte) *invocation {
	t.Helper()
	iv, err := invoke(context.Background(), fn, event)
	if err != nil {
		t.Fatal(err)
	}
	return iv
}

// logLines returns the function's JSON log lines, in order, decoded: those
// of one request when requestID is not empty, else all. lambdacontext's
// logger tags a line with requestId only when it is given the request's
// context, which the detector's per-line warnings are not.
func logLines(out, requestID string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if _, ok := m["level"]; !ok {
			continue // an EMF metrics line
		}
		if requestID == "" || m["requestId"] == requestID {
			lines = append(lines, m)
		}
	}
	return lines
}

// counter reads a numeric attribute of a log line as an int.
func counter(l map[string]any, key string) int {
	f, _ := l[key].(float64)
	return int(f)
}

// vmHWM returns the peak resident set size of a process in KiB: what
// Lambda's "Max Memory Used" reports.
func vmHWM(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// readEvent returns a sample subscription event from events/.
func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
