package emu

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
)

func TestUniqueName(t *testing.T) {
	// SQS queue names allow 80 characters of [A-Za-z0-9_-]; DynamoDB
	// tables and SNS topics allow at least as many of these.
	valid := regexp.MustCompile(`^[A-Za-z0-9-]{1,80}$`)
	tests := []struct {
		prefix, testName, kind string
		wantPrefix             string
	}{
		{"e2e-", "TestSamples/anonymous-pod-scan.json", "table", "e2e-TestSamples-anonymous-pod-scan-json-table-"},
		{"drill-", "TestFaultMatrix", "DeadLetterQueue", "drill-TestFaultMatrix-DeadLetterQueue-"},
		// A long subtest name keeps its end, where subtests differ.
		{"drill-", strings.Repeat("x", 100) + "/cell-7", "topic", "drill-" + strings.Repeat("x", 51) + "-cell-7-topic-"},
	}
	for _, tt := range tests {
		got := UniqueName(tt.prefix, tt.testName, tt.kind)
		if !valid.MatchString(got) {
			t.Errorf("UniqueName(%q, %q, %q) = %q, not 1-80 of [A-Za-z0-9-]", tt.prefix, tt.testName, tt.kind, got)
		}
		if !strings.HasPrefix(got, tt.wantPrefix) || len(got) != len(tt.wantPrefix)+8 {
			t.Errorf("UniqueName(%q, %q, %q) = %q, want %q and 8 hex digits", tt.prefix, tt.testName, tt.kind, got, tt.wantPrefix)
		}
		if again := UniqueName(tt.prefix, tt.testName, tt.kind); again == got {
			t.Errorf("UniqueName(%q, %q, %q) returned %q twice", tt.prefix, tt.testName, tt.kind, got)
		}
	}
}

func TestLogLines(t *testing.T) {
	out := strings.Join([]string{
		`29 Nov 2026 10:09:05,017 [INFO] (rapid) exec '/var/runtime/bootstrap'`,
		`START RequestId: r1 Version: $LATEST`,
		`{"level":"INFO","message":"batch processed","requestId":"r1"}`,
		`{"_aws":{"Timestamp":1},"Skipped":1}`, // EMF metrics: no level
		`{"level":"WARN","message":"skipped a log event"}`,
		`{"level":"ERROR","message":"invocation failed","requestId":"r2"}`,
		`{not json`,
		`REPORT RequestId: r1 Duration: 3.1 ms`,
	}, "\n")
	tests := []struct {
		requestID string
		want      []string // messages
	}{
		{"", []string{"batch processed", "skipped a log event", "invocation failed"}},
		{"r1", []string{"batch processed"}},
		{"r2", []string{"invocation failed"}},
		{"r3", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, l := range LogLines(out, tt.requestID) {
			got = append(got, l["message"].(string))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("LogLines(out, %q) messages (-want +got):\n%s", tt.requestID, diff)
		}
	}
}

func TestReadFindings(t *testing.T) {
	in := `{"finding_id":"a","rule":"eks-pod-scan","severity":"medium"}
{"finding_id":"b","rule":"anonymous-request-allowed","severity":"critical"}
`
	got, err := ReadFindings(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []detect.Finding{
		{ID: "a", Rule: "eks-pod-scan", Severity: "medium"},
		{ID: "b", Rule: "anonymous-request-allowed", Severity: "critical"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadFindings (-want +got):\n%s", diff)
	}
	if _, err := ReadFindings(strings.NewReader(in + `{"finding_id":`)); err == nil {
		t.Error("ReadFindings of a truncated object: no error")
	}
}

func TestDetectorEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin")
	t.Setenv("AWS_PROFILE", "developer") // must not leak in
	got := DetectorEnv("http://127.0.0.1:1", "http://127.0.0.1:2", "tbl", "arn:aws:sns:us-east-1:1:t")
	want := []string{
		"PATH=/usr/bin",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:1",
		"AWS_ENDPOINT_URL_SNS=http://127.0.0.1:2",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_NAME=anonwatch-detector",
		"TABLE_NAME=tbl",
		"TOPIC_ARN=arn:aws:sns:us-east-1:1:t",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DetectorEnv (-want +got):\n%s", diff)
	}
}

// TestNotInProduction keeps the harness out of what is deployed: no
// function or command may depend on it, even indirectly.
func TestNotInProduction(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./functions/...", "./cmd/...")
	cmd.Dir = filepath.Join("..", "..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/anonwatch/anonwatch/internal/e2e") {
			t.Errorf("production code depends on %s", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/anonwatch/anonwatch/functions/detector") {
		t.Errorf("go list did not list the detector, so it checked nothing:\n%s", out)
	}
}
