//go:build integration

// The integration test builds the function as it is deployed (bootstrap,
// -tags lambda.norpc) and runs it under the Lambda Runtime Interface
// Emulator, with httptest stand-ins for SSM and Slack. It takes the emulator
// from ANONWATCH_BIN/aws-lambda-rie (scripts/tools.sh installs it) and fails
// when ANONWATCH_BIN is not set.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// build compiles the function into dir/bootstrap, as `sam build` would.
func build(t *testing.T, dir string) {
	t.Helper()
	if err := emu.BuildBootstrap(".", ".", runtime.GOARCH, dir); err != nil {
		t.Fatal(err)
	}
}

// startRIE runs bootstrap in dir under the emulator with env and stops the
// emulator when the test ends (see emu.StartFunction).
func startRIE(t *testing.T, dir string, env map[string]string) *rie.Instance {
	t.Helper()
	binDir := os.Getenv("ANONWATCH_BIN")
	if binDir == "" {
		t.Fatal("ANONWATCH_BIN is not set: the integration test needs aws-lambda-rie (scripts/tools.sh installs it in .bin)")
	}
	cfg := rie.Config{Emulator: filepath.Join(binDir, "aws-lambda-rie"), Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}}
	for k, v := range env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	return emu.StartFunction(t, cfg)
}

// invoke sends event to the function and returns the answer, failing the
// test unless the emulator answered 200 (also its answer to a handler
// error).
func invoke(t *testing.T, fn *rie.Instance, event []byte) string {
	t.Helper()
	code, body := post(t, fn, event)
	if code != http.StatusOK {
		t.Fatalf("invoke answered %d %s", code, body)
	}
	return body
}

func post(t *testing.T, fn *rie.Instance, event []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := fn.Invoke(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, string(resp.Body)
}

func TestUnderEmulator(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)

	var mu sync.Mutex
	var posts []string
	slackStatus := http.StatusOK
	slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, string(b))
		w.WriteHeader(slackStatus)
		io.WriteString(w, "no_service")
	}))
	defer slackSrv.Close()
	ssmSrv := httptest.NewServer(&fakeSSM{status: 200, body: parameterBody("SecureString", slackSrv.URL+"/services/T0/B0/SECRET")})
	defer ssmSrv.Close()

	env := awsEnv(ssmSrv.URL)
	env["WEBHOOK_PARAMETER"] = "/anonwatch/slack-webhook"
	fn := startRIE(t, dir, env)

	event, err := os.ReadFile(filepath.Join("..", "..", "internal", "slack", "testdata", "sns-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := invoke(t, fn, event); got != "null" {
		t.Errorf("invoke = %s, want null", got)
	}
	mu.Lock()
	if len(posts) != 1 || !strings.Contains(posts[0], `"blocks"`) {
		t.Errorf("Slack got %q, want one Block Kit post", posts)
	}
	posts, slackStatus = nil, http.StatusNotFound
	mu.Unlock()

	// A message that is not a finding is dropped: no error, no post.
	bad := []byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"MessageId":"m-bad","Message":"hello"}}]}`)
	if got := invoke(t, fn, bad); got != "null" {
		t.Errorf("invoke(bad message) = %s, want null", got)
	}
	// A revoked webhook fails the invocation, so Lambda retries it.
	got := invoke(t, fn, event)
	var fnErr struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal([]byte(got), &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, "404") {
		t.Errorf("invoke with Slack answering 404 = %s, want an error naming the 404", got)
	}
	if strings.Contains(got, "SECRET") {
		t.Errorf("function error leaks the webhook URL: %s", got)
	}
	mu.Lock()
	if len(posts) != 1 {
		t.Errorf("%d posts after the bad message and the 404, want 1", len(posts))
	}
	mu.Unlock()

	// Every line the function wrote is JSON with the request id. The
	// emulator's output reaches the buffer a little after its answers.
	deadline := time.Now().Add(5 * time.Second)
	for out := fn.Output(); !strings.Contains(out, "posted finding to slack") || !strings.Contains(out, "dropped an SNS message"); out = fn.Output() {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks the function's lines for the posted and the dropped message:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var fnLines int
	for _, line := range strings.Split(fn.Output(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the emulator's own lines
		}
		fnLines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["requestId"] == nil {
			t.Errorf("log line is not JSON with a requestId: %s", line)
		}
	}
	if fnLines < 2 {
		t.Errorf("%d function log lines, want one per handled record:\n%s", fnLines, fn.Output())
	}
	if strings.Contains(fn.Output(), "SECRET") {
		t.Errorf("log leaks the webhook URL:\n%s", fn.Output())
	}
}

func TestUnderEmulatorBadConfig(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)
	fn := startRIE(t, dir, awsEnv("http://127.0.0.1:1")) // no WEBHOOK_PARAMETER
	// The emulator answers 502 when the function's init failed.
	if code, body := post(t, fn, []byte(`{"Records":[]}`)); code != http.StatusBadGateway {
		t.Errorf("invoke answered %d %s, want 502 for a failed init", code, body)
	}
	// The emulator's output reaches the buffer a little after its answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := fn.Output()
		if strings.Contains(out, `"error":"WEBHOOK_PARAMETER is not set`) && strings.Contains(out, "Runtime.ExitError") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want the JSON init error line and an exit at init; log:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// templateFunction returns what template.yaml gives the function resource
// name: its environment variables with literal values (those set by a Ref
// are left out) and its timeout in seconds.
func templateFunction(t *testing.T, name string) (map[string]string, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Properties struct {
				Timeout     int
				Environment struct{ Variables map[string]any }
			}
		}
	}
	if err := json.Unmarshal(js, &tpl); err != nil {
		t.Fatal(err)
	}
	fn, ok := tpl.Resources[name]
	if !ok {
		t.Fatalf("template.yaml has no %s", name)
	}
	env := map[string]string{}
	for k, v := range fn.Properties.Environment.Variables {
		if s, ok := v.(string); ok {
			env[k] = s
		}
	}
	return env, fn.Properties.Timeout
}

// TestCriticalPathOutlastsRateLimit runs the notifier with each of the
// template's two configurations against a Slack that is rate-limited for
// five posts in a row, as it is while a flood of findings keeps the
// webhook at its limit. The configuration for findings below critical gives
// up, and Lambda would retry the invocation later; the critical path's
// waits it out and posts the finding in the same invocation. Both wait as
// long as Slack asks, and not less: a client that keeps posting while
// rate-limited risks having the webhook disabled.
func TestCriticalPathOutlastsRateLimit(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)
	const storm = 5 // 429s, each with Retry-After: 1
	finding := `{"finding_id":"f-secret-0001","rule":"anonymous-secret-read","severity":"critical","cluster_name":"prod-eu","src_ip":"203.0.113.7","count":1,"window":"1h0m0s","first_seen":"2026-03-01T10:00:03Z","last_seen":"2026-03-01T10:00:03Z","summary":"Anonymous request allowed."}`
	event, err := json.Marshal(events.SNSEvent{Records: []events.SNSEventRecord{{
		EventSource: "aws:sns",
		SNS: events.SNSEntity{
			MessageID:         "m-critical",
			Message:           finding,
			MessageAttributes: map[string]any{"severity": map[string]any{"Type": "String", "Value": "critical"}},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		function   string
		wantPosted bool
	}{
		{"SlackNotifierFunction", false},
		{"SlackCriticalNotifierFunction", true},
	}
	for _, tt := range tests {
		t.Run(tt.function, func(t *testing.T) {
			var mu sync.Mutex
			var at []time.Time
			var posted []string
			slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				at = append(at, time.Now())
				if len(at) <= storm {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					io.WriteString(w, "rate_limited")
					return
				}
				posted = append(posted, string(b))
				io.WriteString(w, "ok")
			}))
			defer slackSrv.Close()
			ssmSrv := httptest.NewServer(&fakeSSM{status: 200, body: parameterBody("SecureString", slackSrv.URL+"/services/T0/B0/SECRET")})
			defer ssmSrv.Close()

			tplEnv, timeout := templateFunction(t, tt.function)
			env := awsEnv(ssmSrv.URL)
			for _, k := range []string{"SLACK_MAX_ATTEMPTS", "SLACK_RETRY_BUDGET"} {
				v, ok := tplEnv[k]
				if !ok {
					t.Fatalf("template.yaml sets no %s for %s", k, tt.function)
				}
				env[k] = v
			}
			env["WEBHOOK_PARAMETER"] = "/anonwatch/slack-webhook"
			// The emulator stops the function at the deployed timeout.
			env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = fmt.Sprint(timeout)
			fn := startRIE(t, dir, env)

			got := invoke(t, fn, event)
			mu.Lock()
			defer mu.Unlock()
			if tt.wantPosted {
				if got != "null" {
					t.Errorf("invoke = %s, want null: the finding posted", got)
				}
				if len(posted) != 1 || !strings.Contains(posted[0], "f-secret-0001") {
					t.Errorf("Slack took %q, want the one critical finding", posted)
				}
				if len(at) != storm+1 {
					t.Errorf("%d requests, want %d", len(at), storm+1)
				}
			} else {
				var fnErr struct{ ErrorMessage string }
				if err := json.Unmarshal([]byte(got), &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, "429") {
					t.Errorf("invoke = %s, want an error naming the 429, so that Lambda retries", got)
				}
				if len(posted) != 0 {
					t.Errorf("Slack took %q, want nothing", posted)
				}
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap < 900*time.Millisecond {
					t.Errorf("request %d came %v after the one Slack answered Retry-After: 1", i+1, gap)
				}
			}
			t.Logf("%s (%s attempts, %s budget, timeout %d s): %d requests over %v",
				tt.function, env["SLACK_MAX_ATTEMPTS"], env["SLACK_RETRY_BUDGET"], timeout, len(at), at[len(at)-1].Sub(at[0]).Round(time.Millisecond))
		})
	}
}
