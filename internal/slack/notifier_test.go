package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/finding"
	"github.com/anonwatch/anonwatch/internal/render"
)

// loadFindings reads testdata/findings.json. The findings are synthetic;
// f-create-0002 restates, as a finding, the event in falcosecurity/falco @
// 7cac45e test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json
// (Apache-2.0): system:anonymous creating namespace foo, allowed.
func loadFindings(t *testing.T) []*finding.Finding {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*finding.Finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

// lambdaEvent is the event SNS sends the function for f: from the
// document render.SNS publishes with MessageStructure "json", the "lambda"
// key, or "default" when there is none.
func lambdaEvent(t *testing.T, f *finding.Finding) events.SNSEvent {
	t.Helper()
	msg, err := render.SNS(f)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(msg.Body), &doc); err != nil {
		t.Fatalf("render.SNS body is not a JSON object of strings: %v", err)
	}
	body, ok := doc["lambda"]
	if !ok {
		body = doc["default"]
	}
	return snsEvent(body)
}

func snsEvent(messages ...string) events.SNSEvent {
	var ev events.SNSEvent
	for i, m := range messages {
		ev.Records = append(ev.Records, events.SNSEventRecord{
			EventSource: "aws:sns",
			SNS: events.SNSEntity{
				Type:      "Notification",
				MessageID: "msg-" + string(rune('a'+i)),
				TopicArn:  "arn:aws:sns:us-east-1:123456789012:anonwatch-findings",
				Message:   m,
			},
		})
	}
	return ev
}

type testNotifier struct {
	n     *Notifier
	slack *fakeSlack
	logs  *bytes.Buffer
	waits *sleepRecorder
}

func newTestNotifier(t *testing.T, replies ...reply) testNotifier {
	t.Helper()
	fake := &fakeSlack{replies: replies}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	s := &sleepRecorder{}
	n := NewNotifier(New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep), slog.New(slog.NewJSONHandler(&logs, nil)))
	return testNotifier{n: n, slack: fake, logs: &logs, waits: s}
}

// TestHandlePostsRenderedFinding follows each test finding from render.SNS
// through the Lambda event to the Slack request.
func TestHandlePostsRenderedFinding(t *testing.T) {
	for _, f := range loadFindings(t) {
		t.Run(f.ID, func(t *testing.T) {
			tn := newTestNotifier(t, ok200)
			if err := tn.n.Handle(context.Background(), lambdaEvent(t, f)); err != nil {
				t.Fatalf("Handle() = %v", err)
			}
			want, err := render.SlackBlocks(f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{string(want)}, tn.slack.bodies); diff != "" {
				t.Errorf("posted bodies (-want +got):\n%s", diff)
			}
			if !strings.Contains(tn.logs.String(), `"finding_id":"`+f.ID+`"`) {
				t.Errorf("log does not name the posted finding:\n%s", tn.logs)
			}
		})
	}
}

// TestHandleEventFile decodes an SNS event as Lambda delivers it.
func TestHandleEventFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "sns-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SNSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	tn := newTestNotifier(t, ok200)
	if err := tn.n.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle() = %v", err)
	}
	want, err := render.SlackBlocks(&finding.Finding{
		ID: "f-scan-0001", Rule: "anonymous-scan", Title: "Anonymous scan of the Kubernetes API", Severity: "medium",
		ClusterName: "prod-eu", SrcIP: "203.0.113.7", Count: 57, Window: "10m0s",
		FirstSeen: time.Date(2026, 3, 1, 10, 0, 3, 0, time.UTC), LastSeen: time.Date(2026, 3, 1, 10, 7, 41, 0, time.UTC),
		Summary: "203.0.113.7 sent 57 anonymous requests on prod-eu.",
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{string(want)}, tn.slack.bodies); diff != "" {
		t.Errorf("posted bodies (-want +got):\n%s", diff)
	}
}

func TestHandleDropsNonFindings(t *testing.T) {
	tests := []struct {
		name, message, wantLog string
	}{
		{"plain text", "Anonymous scan on prod <!channel>", "not finding JSON"},
		{"message structure document", `{"default":"text","sqs":"{}"}`, "no finding_id"},
		{"empty object", `{}`, "no finding_id"},
		{"no rule", `{"finding_id":"f-1","severity":"high"}`, "no rule"},
		{"no severity", `{"finding_id":"f-1","rule":"r"}`, "no severity"},
		{"wrong type", `{"finding_id":"f-1","rule":"r","severity":"high","count":"many"}`, "not finding JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newTestNotifier(t, ok200)
			if err := tn.n.Handle(context.Background(), snsEvent(tt.message)); err != nil {
				t.Fatalf("Handle() = %v, want nil: retrying cannot fix a bad message", err)
			}
			if tn.slack.requests != 0 {
				t.Errorf("%d posts for a bad message, want 0", tn.slack.requests)
			}
			logs := tn.logs.String()
			if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, tt.wantLog) || !strings.Contains(logs, `"message_id":"msg-a"`) {
				t.Errorf("log = %s, want an ERROR naming the message and %q", logs, tt.wantLog)
			}
			if strings.Contains(logs, "<!channel>") {
				t.Errorf("log repeats the message text: %s", logs)
			}
		})
	}
}

func TestHandleMixedRecords(t *testing.T) {
	f := loadFindings(t)[1]
	good := lambdaEvent(t, f).Records[0].SNS.Message
	tn := newTestNotifier(t, ok200)
	if err := tn.n.Handle(context.Background(), snsEvent("not json", good)); err != nil {
		t.Fatalf("Handle() = %v", err)
	}
	if tn.slack.requests != 1 {
		t.Errorf("%d posts, want 1 (the good record)", tn.slack.requests)
	}
}

func TestHandleReturnsPostFailure(t *testing.T) {
	tests := []struct {
		name      string
		replies   []reply
		wantReqs  int
		wantInErr string
	}{
		{"permanent", []reply{{status: 404, body: "no_service"}}, 1, "404"},
		{"retries exhausted", []reply{{status: 500}}, MaxAttempts, "gave up"},
	}
	f := loadFindings(t)[0]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newTestNotifier(t, tt.replies...)
			err := tn.n.Handle(context.Background(), lambdaEvent(t, f))
			checkErr(t, err, tt.wantInErr)
			if err != nil && (!strings.Contains(err.Error(), f.ID) || !strings.Contains(err.Error(), "msg-a")) {
				t.Errorf("Handle() = %q, want it to name finding %s and message msg-a", err, f.ID)
			}
			if tn.slack.requests != tt.wantReqs {
				t.Errorf("%d requests, want %d", tn.slack.requests, tt.wantReqs)
			}
			if strings.Contains(tn.logs.String(), "SECRET") {
				t.Errorf("log leaks the webhook URL: %s", tn.logs)
			}
		})
	}
}
