//go:build integration

package drills

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/faultproxy"
)

// functionARN is the ARN the emulated destination record names.
const functionARN = "arn:aws:lambda:us-east-1:" + emu.GoawsAccount + ":function:anonwatch-detector:$LATEST"

// replayFilter is the jq filter docs/reliability.md gives users to turn
// the dead-letter queue's messages, as `aws sqs receive-message` prints
// them, into events for `anonwatch replay`.
const replayFilter = `.Messages[].Body | fromjson | .requestPayload`

// invocationRecord is the record Lambda sends to an asynchronous
// invocation's on-failure destination ("Capturing records of Lambda
// asynchronous invocations", Lambda Developer Guide: the example record of
// an event that failed three processing attempts). For an SQS destination
// the record is the message body.
type invocationRecord struct {
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// asyncInvoke does what Lambda does with an asynchronous invocation, with
// the template's settings: it invokes the function, and again while it
// fails, up to 1+MaximumRetryAttempts times in all (Lambda waits a minute,
// then two, between them; the drill does not), and when every attempt
// failed it sends the invocation record to the on-failure queue. It
// returns the attempts made and whether the record was sent.
func asyncInvoke(t *testing.T, fn *rie.Instance, event []byte, dlq emu.Queue) (int, bool) {
	t.Helper()
	var first, last *invocation
	attempts := 0
	for attempts < 1+settings.MaxRetryAttempts {
		iv := mustInvoke(t, fn, event)
		attempts++
		if first == nil {
			first = iv
		}
		last = iv
		if iv.OK() {
			return attempts, false
		}
	}
	var rec invocationRecord
	rec.Version = "1.0"
	rec.Timestamp = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	// An asynchronous invocation keeps its request ID across retries.
	rec.RequestContext.RequestID = first.Resp.RequestID
	rec.RequestContext.FunctionARN = functionARN
	rec.RequestContext.Condition = "RetriesExhausted"
	rec.RequestContext.ApproximateInvokeCount = attempts
	rec.RequestPayload = event
	rec.ResponseContext.StatusCode = 200
	rec.ResponseContext.ExecutedVersion = "$LATEST"
	rec.ResponseContext.FunctionError = "Unhandled"
	rec.ResponsePayload = last.Resp.Body
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emu.Query(ctx, dlq.Endpoint, url.Values{"Action": {"SendMessage"}, "QueueUrl": {dlq.URL}, "MessageBody": {string(body)}}, nil); err != nil {
		t.Fatal(err)
	}
	return attempts, true
}

// receiveMessageOutput renders messages as `aws sqs receive-message`
// prints them, which is what a user pipes into jq.
func receiveMessageOutput(t *testing.T, msgs []emu.Message) []byte {
	t.Helper()
	type message struct {
		MessageID     string `json:"MessageId"`
		ReceiptHandle string `json:"ReceiptHandle"`
		MD5OfBody     string `json:"MD5OfBody"`
		Body          string `json:"Body"`
	}
	var out struct {
		Messages []message `json:"Messages"`
	}
	for _, m := range msgs {
		sum := md5.Sum([]byte(m.Body))
		if m.MD5OfBody != "" && m.MD5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("message %s: MD5OfBody %s does not match its body", m.MessageID, m.MD5OfBody)
		}
		out.Messages = append(out.Messages, message{m.MessageID, m.ReceiptHandle, hex.EncodeToString(sum[:]), m.Body})
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeadLetter fails an invocation for good (SNS answers every publish
// with a 500), lets the emulated asynchronous invocation retry it and
// dead-letter it, and checks the record: Lambda's format, the payload
// intact. Then, with SNS back, it replays the payload the two ways
// docs/reliability.md describes: `anonwatch replay --table` of what the
// documented jq filter extracts, which prints the findings, and invoking
// the function again with it, which delivers them; either way the counts
// stay those of one delivery of the event.
func TestDeadLetter(t *testing.T) {
	if settings.OnFailureType != "SQS" || settings.OnFailureResourceType != "AWS::SQS::Queue" {
		t.Fatalf("template.yaml: DetectorFunction's on-failure destination is %s %s (%q); the drill emulates an SQS queue", settings.OnFailureType, settings.OnFailure, settings.OnFailureResourceType)
	}
	event := emu.ReadEvent(t, repoRoot, matrixEvent)
	for _, how := range []string{"anonwatch replay", "invoke again"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
			topic, q := newTopicAndQueue(t, sharedSNS.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The template's DeadLetterQueue.
			dlq, err := emu.CreateQueue(ctx, sharedSNS.URL(), uniqueName(t, "DeadLetterQueue"))
			if err != nil {
				t.Fatal(err)
			}
			ps := faultproxy.New(sharedSNS.URL())
			defer ps.Close()
			ps.SetProtocol(faultproxy.AWSQuery)
			ps.SetRule(func(int64, *http.Request) faultproxy.Fault { return faultproxy.Fault{Kind: faultproxy.ServerError} })
			fn := startFunction(t, functionEnv(sharedDynamo.URL(), ps.URL(), table, topic))

			attempts, dead := asyncInvoke(t, fn, event, dlq)
			if !dead || attempts != 1+settings.MaxRetryAttempts {
				t.Fatalf("%d attempts, dead-lettered %v; want %d attempts, then the on-failure destination", attempts, dead, 1+settings.MaxRetryAttempts)
			}
			if msgs := emu.MustReceive(t, q); len(msgs) != 0 {
				t.Fatalf("%d findings delivered while SNS failed", len(msgs))
			}
			msgs := emu.MustReceive(t, dlq)
			if len(msgs) != 1 {
				t.Fatalf("%d messages in the dead-letter queue, want 1", len(msgs))
			}
			var rec invocationRecord
			if err := json.Unmarshal([]byte(msgs[0].Body), &rec); err != nil {
				t.Fatalf("dead-letter message is not an invocation record: %v", err)
			}
			if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != attempts || rec.RequestContext.FunctionARN != functionARN {
				t.Errorf("record's requestContext %+v", rec.RequestContext)
			}
			var fe struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(rec.ResponsePayload, &fe); err != nil || !strings.Contains(fe.ErrorMessage, "publish finding") {
				t.Errorf("record's responsePayload %s: want the function's error, a failed publish", rec.ResponsePayload)
			}
			t.Logf("dead-letter record: %d bytes, responsePayload %s", len(msgs[0].Body), rec.ResponsePayload)

			// The payload is intact: the same JSON, the same batch.
			payload := extractPayload(t, receiveMessageOutput(t, msgs))
			var want, got any
			json.Unmarshal(event, &want)
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatalf("extracted payload: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("dead-lettered payload differs from the event (-event +payload):\n%s", diff)
			}
			batchOf := func(ev []byte) string {
				b, err := cwlogs.DecodeEvent(ev, cwlogs.DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				return detect.BatchID(&b)
			}
			if batchOf(payload) != batchOf(event) {
				t.Fatal("the dead-lettered payload is another batch")
			}
			before := scanTable(t, sharedDynamo.URL(), table)

			// SNS is back.
			var fs []detect.Finding
			switch how {
			case "anonwatch replay":
				fs = replayTable(t, table, payload)
				if msgs := emu.MustReceive(t, q); len(msgs) != 0 {
					t.Errorf("replay delivered %d messages to the topic; it prints findings, it does not publish them", len(msgs))
				}
			case "invoke again":
				ps.SetRule(nil)
				iv := mustInvoke(t, fn, payload)
				if !iv.OK() {
					t.Fatalf("invoking the dead-lettered payload: HTTP %d %s", iv.Resp.Status, iv.Resp.Body)
				}
				fs = delivered(t, emu.MustReceive(t, q))
			}
			if diff := cmp.Diff(matrixFindings, outcomes(fs)); diff != "" {
				t.Errorf("findings from the dead-lettered payload (-want +got):\n%s", diff)
			}
			// The failed attempts applied the batch once; the replay
			// added nothing to the counts.
			after := scanTable(t, sharedDynamo.URL(), table)
			if diff := cmp.Diff(bucketCounts(before), bucketCounts(after)); diff != "" {
				t.Errorf("replay changed the counts (-before +after):\n%s", diff)
			}
			// Either way the findings are now recorded as sent: the
			// function, given the payload once more, publishes nothing.
			ps.SetRule(nil)
			iv := mustInvoke(t, fn, payload)
			if !iv.OK() || iv.Summary == nil || counter(iv.Summary, "findings_published") != 0 || counter(iv.Summary, "findings_suppressed") != len(matrixFindings) {
				t.Errorf("invoking the payload after the replay: HTTP %d %s, summary %v; want nothing published, %d suppressed", iv.Resp.Status, iv.Resp.Body, iv.Summary, len(matrixFindings))
			}
		})
	}
}

// extractPayload runs the documented jq filter on the receive-message
// output and returns what it printed: the events to replay. Without jq it
// extracts the same in Go and says so.
func extractPayload(t *testing.T, received []byte) []byte {
	t.Helper()
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Logf("jq is not installed: the documented filter %q was not run; extracting requestPayload in Go", replayFilter)
		var out struct{ Messages []struct{ Body string } }
		if err := json.Unmarshal(received, &out); err != nil || len(out.Messages) != 1 {
			t.Fatalf("receive-message output: %v", err)
		}
		var rec invocationRecord
		if err := json.Unmarshal([]byte(out.Messages[0].Body), &rec); err != nil {
			t.Fatal(err)
		}
		return rec.RequestPayload
	}
	cmd := exec.Command(jq, replayFilter)
	cmd.Stdin = bytes.NewReader(received)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq %q: %v\n%s", replayFilter, err, stderr.String())
	}
	return out
}

// replayTable runs `anonwatch replay --table table` on payload, saved as
// dlq.json, against dynalite, and returns the findings it prints.
func replayTable(t *testing.T, table string, payload []byte) []detect.Finding {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dlq.json")
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cliPath, "replay", "--table", table, path)
	cmd.Env = append(emu.AWSEnv(), "AWS_ENDPOINT_URL_DYNAMODB="+sharedDynamo.URL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("anonwatch replay --table %s: %v\n%s", table, err, stderr.String())
	}
	fs, err := emu.ReadFindings(&stdout)
	if err != nil {
		t.Fatalf("anonwatch replay output: %v", err)
	}
	t.Logf("anonwatch replay --table: %s", strings.TrimSpace(stderr.String()))
	return fs
}
