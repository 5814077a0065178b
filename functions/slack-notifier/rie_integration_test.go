//go:build integration

// The integration test builds the function as it is deployed (bootstrap,
// -tags lambda.norpc) and runs it under the Lambda Runtime Interface
// Emulator, with httptest stand-ins for SSM and Slack. It takes the emulator
// from ANONWATCH_BIN/aws-lambda-rie (scripts/tools.sh installs it) and fails
// when ANONWATCH_BIN is not set.

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// build compiles the function into dir/bootstrap, as `sam build` would.
func build(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, "bootstrap"), ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rie runs bootstrap in dir under the emulator with env and returns the
// invoke URL. It stops the emulator when the test ends.
func rie(t *testing.T, dir string, env map[string]string) (invokeURL string, log *syncBuffer) {
	t.Helper()
	binDir := os.Getenv("ANONWATCH_BIN")
	if binDir == "" {
		t.Fatal("ANONWATCH_BIN is not set: the integration test needs aws-lambda-rie (scripts/tools.sh installs it in .bin)")
	}
	api, rapid := freeAddr(t), freeAddr(t)
	cmd := exec.Command(filepath.Join(binDir, "aws-lambda-rie"),
		"--runtime-interface-emulator-address", api, "--runtime-api-address", rapid, "./bootstrap")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", api)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatalf("emulator did not listen on %s:\n%s", api, log)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "http://" + api + "/2015-03-31/functions/function/invocations", log
}

// syncBuffer collects the emulator's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// invoke sends event to the function and returns the answer, failing the
// test unless the emulator answered 200 (also its answer to a handler
// error).
func invoke(t *testing.T, url string, event []byte) string {
	t.Helper()
	code, body := post(t, url, event)
	if code != http.StatusOK {
		t.Fatalf("invoke answered %d %s", code, body)
	}
	return body
}

func post(t *testing.T, url string, event []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
	url, log := rie(t, dir, env)

	event, err := os.ReadFile(filepath.Join("..", "..", "internal", "slack", "testdata", "sns-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := invoke(t, url, event); got != "null" {
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
	if got := invoke(t, url, bad); got != "null" {
		t.Errorf("invoke(bad message) = %s, want null", got)
	}
	// A revoked webhook fails the invocation, so Lambda retries it.
	got := invoke(t, url, event)
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
	for out := log.String(); !strings.Contains(out, "posted finding to slack") || !strings.Contains(out, "dropped an SNS message"); out = log.String() {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks the function's lines for the posted and the dropped message:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var fnLines int
	for _, line := range strings.Split(log.String(), "\n") {
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
		t.Errorf("%d function log lines, want one per handled record:\n%s", fnLines, log)
	}
	if strings.Contains(log.String(), "SECRET") {
		t.Errorf("log leaks the webhook URL:\n%s", log)
	}
}

func TestUnderEmulatorBadConfig(t *testing.T) {
	dir := t.TempDir()
	build(t, dir)
	url, log := rie(t, dir, awsEnv("http://127.0.0.1:1")) // no WEBHOOK_PARAMETER
	// The emulator answers 502 when the function's init failed.
	if code, body := post(t, url, []byte(`{"Records":[]}`)); code != http.StatusBadGateway {
		t.Errorf("invoke answered %d %s, want 502 for a failed init", code, body)
	}
	// The emulator's output reaches the buffer a little after its answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := log.String()
		if strings.Contains(out, `"error":"WEBHOOK_PARAMETER is not set`) && strings.Contains(out, "Runtime.ExitError") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want the JSON init error line and an exit at init; log:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
