package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestMain runs main instead of the tests when a test re-executes the test
// binary to watch the real start-up fail.
func TestMain(m *testing.M) {
	if os.Getenv("SLACK_NOTIFIER_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// fakeSSM is an SSM endpoint (JSON 1.1 protocol) that answers GetParameter
// with status and body, and records the requests.
type fakeSSM struct {
	status int
	body   string
	mu     sync.Mutex
	reqs   []map[string]any
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(b, &in)
	f.mu.Lock()
	f.reqs = append(f.reqs, in)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(f.status)
	io.WriteString(w, f.body)
}

func parameterBody(typ, value string) string {
	b, _ := json.Marshal(map[string]any{"Parameter": map[string]any{
		"Name": "/anonwatch/slack-webhook", "Type": typ, "Value": value, "Version": 1,
	}})
	return string(b)
}

const notFoundBody = `{"__type":"ParameterNotFound","message":"Parameter /anonwatch/slack-webhook not found."}`

// awsEnv points the SDK at endpoint with static credentials and no shared
// configuration, so no test reaches a real AWS service.
func awsEnv(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SSM":        endpoint,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

func TestSetup(t *testing.T) {
	var slackBodies []string
	slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		slackBodies = append(slackBodies, string(b))
	}))
	defer slackSrv.Close()
	hook := slackSrv.URL + "/services/T0/B0/SECRET"

	tests := []struct {
		name     string
		param    string
		ssm      *fakeSSM
		wantErr  string
		wantPost bool
	}{
		{"ok", "/anonwatch/slack-webhook", &fakeSSM{status: 200, body: parameterBody("SecureString", hook)}, "", true},
		{"no parameter name", "", &fakeSSM{status: 200, body: parameterBody("SecureString", hook)}, "WEBHOOK_PARAMETER is not set", false},
		{"parameter missing", "/anonwatch/slack-webhook", &fakeSSM{status: 400, body: notFoundBody}, `"/anonwatch/slack-webhook" does not exist`, false},
		{"plain String", "/anonwatch/slack-webhook", &fakeSSM{status: 200, body: parameterBody("String", hook)}, "SecureString", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.ssm)
			defer srv.Close()
			for k, v := range awsEnv(srv.URL) {
				t.Setenv(k, v)
			}
			env := map[string]string{"WEBHOOK_PARAMETER": tt.param}
			var logs bytes.Buffer
			n, err := setup(context.Background(), func(k string) string { return env[k] }, newLogger(&logs, ""))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("setup() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("setup() = %v, want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("setup() error %q leaks the webhook URL", err)
			}
			if tt.param != "" {
				if len(tt.ssm.reqs) == 0 || tt.ssm.reqs[0]["Name"] != tt.param || tt.ssm.reqs[0]["WithDecryption"] != true {
					t.Errorf("GetParameter requests = %v, want Name %q with WithDecryption true", tt.ssm.reqs, tt.param)
				}
			}
			if !tt.wantPost {
				return
			}
			// The notifier posts to the URL the parameter held.
			slackBodies = nil
			ev := events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{
				MessageID: "m-1",
				Message:   `{"finding_id":"f-1","rule":"anonymous-scan","severity":"high","cluster_name":"demo","count":3,"window":"5m0s","first_seen":"2026-03-01T10:00:00Z","last_seen":"2026-03-01T10:01:00Z","summary":"s"}`,
			}}}}
			if err := n.Handle(context.Background(), ev); err != nil {
				t.Fatalf("Handle() = %v", err)
			}
			if len(slackBodies) != 1 || !json.Valid([]byte(slackBodies[0])) {
				t.Errorf("Slack got %q, want one JSON post", slackBodies)
			}
		})
	}
}

// TestSetupPolicy checks that SLACK_MAX_ATTEMPTS and SLACK_RETRY_BUDGET
// reach the poster: the critical function's settings wait out a 429 storm
// that the defaults give up on, and a bad setting fails the init before
// the parameter is read.
func TestSetupPolicy(t *testing.T) {
	tests := []struct {
		name             string
		attempts, budget string
		storm            int    // 429s before Slack takes the post
		wantSetupErr     string // "" means setup succeeds
		wantPosted       bool
	}{
		{"defaults give up after 4 attempts", "", "", 5, "", false},
		{"defaults get through 3 refusals", "", "", 3, "", true},
		{"more attempts get through", "6", "180s", 5, "", true},
		{"attempts not a number", "many", "", 0, `SLACK_MAX_ATTEMPTS, SLACK_RETRY_BUDGET: max attempts "many"`, false},
		{"budget without unit", "", "180", 0, `retry budget "180"`, false},
		{"past Lambda's longest timeout", "90", "5m", 0, "longer than the 15m0s", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			// Retry-After 0 keeps the storm from taking real time.
			slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				requests++
				if requests <= tt.storm {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusTooManyRequests)
				}
			}))
			defer slackSrv.Close()
			ssm := &fakeSSM{status: 200, body: parameterBody("SecureString", slackSrv.URL+"/services/T0/B0/SECRET")}
			ssmSrv := httptest.NewServer(ssm)
			defer ssmSrv.Close()
			for k, v := range awsEnv(ssmSrv.URL) {
				t.Setenv(k, v)
			}
			env := map[string]string{
				"WEBHOOK_PARAMETER":  "/anonwatch/slack-webhook",
				"SLACK_MAX_ATTEMPTS": tt.attempts,
				"SLACK_RETRY_BUDGET": tt.budget,
			}
			n, err := setup(context.Background(), func(k string) string { return env[k] }, newLogger(io.Discard, ""))
			if tt.wantSetupErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantSetupErr) {
					t.Fatalf("setup() = %v, want an error containing %q", err, tt.wantSetupErr)
				}
				if len(ssm.reqs) != 0 {
					t.Errorf("setup read the parameter %d times before refusing its own settings", len(ssm.reqs))
				}
				return
			}
			if err != nil {
				t.Fatalf("setup() = %v", err)
			}
			ev := events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{
				MessageID: "m-1",
				Message:   `{"finding_id":"f-1","rule":"anonymous-secret-read","severity":"critical","cluster_name":"demo","count":1,"window":"1h0m0s","first_seen":"2026-03-01T10:00:00Z","last_seen":"2026-03-01T10:00:00Z","summary":"s"}`,
			}}}}
			err = n.Handle(context.Background(), ev)
			if posted := err == nil; posted != tt.wantPosted {
				t.Errorf("Handle() = %v; posted %v, want %v", err, posted, tt.wantPosted)
			}
		})
	}
}

// TestMainFailsAtInit runs the real main with a bad configuration and
// checks it exits 1 with one JSON error line on stderr, before serving any
// request.
func TestMainFailsAtInit(t *testing.T) {
	ssmSrv := httptest.NewServer(&fakeSSM{status: 400, body: notFoundBody})
	defer ssmSrv.Close()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"no WEBHOOK_PARAMETER", map[string]string{}, "WEBHOOK_PARAMETER is not set"},
		{"SSM parameter missing", map[string]string{"WEBHOOK_PARAMETER": "/anonwatch/slack-webhook"}, "does not exist"},
		{"bad retry budget", map[string]string{"WEBHOOK_PARAMETER": "/anonwatch/slack-webhook", "SLACK_RETRY_BUDGET": "forever"}, "SLACK_RETRY_BUDGET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = []string{"SLACK_NOTIFIER_RUN_MAIN=1"}
			for k, v := range awsEnv(ssmSrv.URL) {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("main exited with %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("stderr has %d lines, want 1:\n%s", len(lines), stderr.String())
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatalf("stderr line is not JSON: %q", lines[0])
			}
			if rec["level"] != "ERROR" || !strings.Contains(rec["error"].(string), tt.wantErr) {
				t.Errorf("stderr = %v, want level ERROR and an error containing %q", rec, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		name, level string
		logInfo     bool
		wantLines   int
	}{
		{"default level logs info", "", true, 1},
		{"WARN drops info", "WARN", true, 0},
		{"lower case accepted", "debug", true, 1},
		{"unknown level means info", "LOUD", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, tt.level).With("fn", "slack-notifier")
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-123"})
			log.InfoContext(ctx, "posted finding to slack", "finding_id", "f-1")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d: %q", len(lines), tt.wantLines, buf.String())
			}
			if tt.wantLines == 0 {
				return
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]any{"requestId": "req-123", "message": "posted finding to slack", "finding_id": "f-1", "fn": "slack-notifier", "level": "INFO"} {
				if rec[k] != want {
					t.Errorf("%s = %v, want %v (record %v)", k, rec[k], want, rec)
				}
			}
			if _, ok := rec["timestamp"]; !ok {
				t.Errorf("record has no timestamp: %v", rec)
			}
		})
	}
	// Without a Lambda context (at init) there is no requestId.
	var buf bytes.Buffer
	newLogger(&buf, "").Info("init")
	if strings.Contains(buf.String(), "requestId") {
		t.Errorf("init log has a requestId: %s", buf.String())
	}
}
