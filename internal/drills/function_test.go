//go:build integration

package drills

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// functionEnv is the detector's environment under the emulator (see
// emu.DetectorEnv), with the template's timeout and memory size, which the
// emulator would otherwise default.
func functionEnv(dynamoURL, snsURL, table, topic string) []string {
	return append(emu.DetectorEnv(dynamoURL, snsURL, table, topic),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(settings.Timeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(settings.MemorySize),
	)
}

// startFunction starts the detector under the emulator with env and stops
// it when the test ends (see emu.StartFunction).
func startFunction(t testing.TB, env []string) *rie.Instance {
	t.Helper()
	return emu.StartFunction(t, rie.Config{Emulator: emulatorBin, Dir: functionDir, Env: env})
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
	resp, err := emu.Invoke(ctx, fn, event)
	if err != nil {
		return nil, err
	}
	iv := &invocation{Resp: resp}
	iv.Err, _ = resp.FunctionError()
	iv.TimedOut = bytes.HasPrefix(resp.Body, []byte("Task timed out after"))
	for _, l := range emu.LogLines(fn.Output(), resp.RequestID) {
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
