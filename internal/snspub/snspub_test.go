package snspub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

const testTopic = "arn:aws:sns:us-east-1:100010001000:anonwatch-test"

// loadFindings reads testdata/findings.json. The findings are synthetic;
// f-create-0002 restates, as a finding, the event in falcosecurity/falco @
// 7cac45e test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json
// (Apache-2.0): system:anonymous creating namespace foo, allowed.
func loadFindings(t testing.TB) map[string]*detect.Finding {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*detect.Finding
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]*detect.Finding, len(fs))
	for _, f := range fs {
		m[f.ID] = f
	}
	return m
}

// fakeAPI records every PublishInput and answers with err.
type fakeAPI struct {
	mu  sync.Mutex
	in  []*sns.PublishInput
	err error
}

func (a *fakeAPI) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.in = append(a.in, in)
	if a.err != nil {
		return nil, a.err
	}
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

// attrs flattens message attributes to "Type:Value" for comparison.
func attrs(m map[string]types.MessageAttributeValue) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
	}
	return out
}

func TestPublishInput(t *testing.T) {
	fs := loadFindings(t)
	tests := []struct {
		id        string
		wantAttrs map[string]string
	}{
		{"f-scan-0001", map[string]string{
			"severity": "String:medium", "rule": "String:anonymous-scan", "cluster_name": "String:prod-eu",
			"src_ip": "String:203.0.113.7", "count": "Number:57",
		}},
		{"f-create-0002", map[string]string{
			"severity": "String:critical", "rule": "String:anonymous-write-allowed", "cluster_name": "String:minikube",
			"src_ip": "String:192.168.99.1", "count": "Number:1",
		}},
		{"f-hostile-0003", map[string]string{
			"severity": "String:high", "rule": "String:anonymous-request-allowed", "cluster_name": "String:prod-us",
			"src_ip": "String:2001:db8::1", "count": "Number:3",
		}},
		// No address: src_ip is left out, not sent empty.
		{"f-noip-0004", map[string]string{
			"severity": "String:low", "rule": "String:anonymous-probe", "cluster_name": "String:prod-eu", "count": "Number:2",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := fs[tt.id]
			api := &fakeAPI{}
			p := New(api, testTopic)
			if err := p.Publish(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			if len(api.in) != 1 || p.Calls() != 1 {
				t.Fatalf("%d Publish calls, Calls() = %d; want 1 and 1", len(api.in), p.Calls())
			}
			want, err := render.SNS(f)
			if err != nil {
				t.Fatal(err)
			}
			in := api.in[0]
			got := map[string]string{
				"TopicArn":         aws.ToString(in.TopicArn),
				"MessageStructure": aws.ToString(in.MessageStructure),
				"Subject":          aws.ToString(in.Subject),
				"Message":          aws.ToString(in.Message),
			}
			wantIn := map[string]string{
				"TopicArn":         testTopic,
				"MessageStructure": "json",
				"Subject":          want.Subject,
				"Message":          want.Body,
			}
			if diff := cmp.Diff(wantIn, got); diff != "" {
				t.Errorf("PublishInput (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAttrs, attrs(in.MessageAttributes)); diff != "" {
				t.Errorf("MessageAttributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPublishCountCapped(t *testing.T) {
	tests := []struct {
		count int64
		want  string
	}{
		{0, "Number:0"},
		{MaxNumber, "Number:1000000000"},
		{MaxNumber + 1, "Number:1000000000"},
		{1 << 62, "Number:1000000000"},
	}
	for _, tt := range tests {
		api := &fakeAPI{}
		f := &detect.Finding{ID: "f", Rule: "r", Severity: "low", Count: tt.count}
		if err := New(api, testTopic).Publish(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		if got := attrs(api.in[0].MessageAttributes)["count"]; got != tt.want {
			t.Errorf("count %d: attribute = %q, want %q", tt.count, got, tt.want)
		}
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"[high] Anonymous scan on prod", "[high] Anonymous scan on prod"},
		{"  leading spaces", "leading spaces"},
		{"line\nbreak\r\tand tab", "line break  and tab"},
		{"caf\u00e9 \u2028 \x1b[31m 🚨", "caf? ? ?[31m ?"},
		{strings.Repeat("a", 150), strings.Repeat("a", 99)},
		{"", ""},
		{"\n\n", ""},
	}
	for _, tt := range tests {
		if got := subject(tt.in); got != tt.want {
			t.Errorf("subject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPublishError(t *testing.T) {
	f := &detect.Finding{ID: "f-err-1", Rule: "r", Severity: "high"}
	sentinel := errors.New("connection refused")
	api := &fakeAPI{err: sentinel}
	p := New(api, testTopic)
	err := p.Publish(context.Background(), f)
	if !errors.Is(err, sentinel) {
		t.Fatalf("Publish() error = %v, want it to wrap %v", err, sentinel)
	}
	for _, s := range []string{"f-err-1", testTopic} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Publish() error = %q, want it to name %q", err, s)
		}
	}
	if errors.Is(err, ErrTopicNotFound) {
		t.Errorf("Publish() error = %v, is ErrTopicNotFound", err)
	}
	if p.Calls() != 1 {
		t.Errorf("Calls() = %d, want 1", p.Calls())
	}
}

// stubSNS is an SNS query-protocol endpoint that answers the i-th request
// with replies[min(i, len-1)] and records the parsed forms.
type stubSNS struct {
	mu      sync.Mutex
	forms   []url.Values
	replies []stubReply
}

type stubReply struct {
	status int
	body   string
}

func (s *stubSNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	s.mu.Lock()
	i := len(s.forms)
	s.forms = append(s.forms, form)
	rep := s.replies[min(i, len(s.replies)-1)]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

const publishOK = `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult><ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata></PublishResponse>`

func errorXML(code, msg string) string {
	return fmt.Sprintf(`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>9a3b5b5c-0000-0000-0000-000000000000</RequestId></ErrorResponse>`, code, msg)
}

// stubClient is a real SDK client from NewClient aimed at srv, with the
// backoff set to zero so retries do not slow the test.
func stubClient(srv *httptest.Server) *sns.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return NewClient(cfg, func(o *sns.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = newRetryer(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
}

// TestPublishWire runs the real SDK client against a stub endpoint: it
// checks the request as SNS (and goaws) parse it, the translation of both
// spellings of "topic not found", and which failures the retryer retries.
func TestPublishWire(t *testing.T) {
	tests := []struct {
		name         string
		replies      []stubReply
		wantRequests int
		wantErr      bool
		wantNotFound bool
	}{
		{"ok", []stubReply{{200, publishOK}}, 1, false, false},
		{"real SNS NotFound", []stubReply{{404, errorXML("NotFound", "Topic does not exist")}}, 1, true, true},
		{"goaws NonExistentTopic", []stubReply{{400, errorXML("AWS.SimpleNotificationService.NonExistentTopic", "The specified topic does not exist for this wsdl version.")}}, 1, true, true},
		{"invalid parameter is not retried", []stubReply{{400, errorXML("InvalidParameter", "Invalid parameter: Subject")}}, 1, true, false},
		{"5xx retried then ok", []stubReply{{500, errorXML("InternalError", "x")}, {200, publishOK}}, 2, false, false},
		{"throttled retried then ok", []stubReply{{400, errorXML("Throttling", "Rate exceeded")}, {200, publishOK}}, 2, false, false},
		{"5xx until attempts run out", []stubReply{{503, errorXML("ServiceUnavailable", "x")}}, MaxAttempts, true, false},
	}
	f := loadFindings(t)["f-noip-0004"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &stubSNS{replies: tt.replies}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			p := New(stubClient(srv), testTopic)
			err := p.Publish(context.Background(), f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Publish() error = %v, want error %v", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrTopicNotFound); got != tt.wantNotFound {
				t.Errorf("errors.Is(%v, ErrTopicNotFound) = %v, want %v", err, got, tt.wantNotFound)
			}
			if len(stub.forms) != tt.wantRequests || p.Calls() != 1 {
				t.Errorf("%d requests, Calls() = %d; want %d and 1", len(stub.forms), p.Calls(), tt.wantRequests)
			}
			want, err := render.SNS(f)
			if err != nil {
				t.Fatal(err)
			}
			form := stub.forms[0]
			got := map[string]string{}
			for k := range form {
				got[k] = form.Get(k)
			}
			wantForm := map[string]string{
				"Action":           "Publish",
				"Version":          "2010-03-31",
				"TopicArn":         testTopic,
				"Message":          want.Body,
				"MessageStructure": "json",
				"Subject":          want.Subject,
			}
			// Attribute order on the wire is map order; compare by name.
			gotAttrs := map[string]string{}
			for i := 1; ; i++ {
				name := form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Name", i))
				if name == "" {
					break
				}
				for _, k := range []string{"Name", "Value.DataType", "Value.StringValue"} {
					delete(got, fmt.Sprintf("MessageAttributes.entry.%d.%s", i, k))
				}
				gotAttrs[name] = form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Value.DataType", i)) + ":" +
					form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Value.StringValue", i))
			}
			if diff := cmp.Diff(wantForm, got); diff != "" {
				t.Errorf("request form (-want +got):\n%s", diff)
			}
			wantAttrs := map[string]string{"severity": "String:low", "rule": "String:anonymous-probe", "cluster_name": "String:prod-eu", "count": "Number:2"}
			if diff := cmp.Diff(wantAttrs, gotAttrs); diff != "" {
				t.Errorf("attributes on the wire (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPublishCanceled(t *testing.T) {
	stub := &stubSNS{replies: []stubReply{{200, publishOK}}}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := New(stubClient(srv), testTopic).Publish(ctx, loadFindings(t)["f-scan-0001"])
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Publish() error = %v, want context.Canceled", err)
	}
}

// bigFinding is the largest finding detect can produce by its caps, with
// every value made of characters that JSON escapes to six bytes, which
// render escapes once more when it nests the finding JSON in the message
// document.
func bigFinding(uaLen int) *detect.Finding {
	f := &detect.Finding{
		ID: "f-big-0005", Rule: "anonymous-scan", Title: "Anonymous scan", Severity: "high",
		ClusterName: "prod-eu", SrcIP: "203.0.113.9", Count: 123456, Window: "10m0s",
		UserAgent: strings.Repeat("\x01", uaLen), Summary: "big",
		FirstSeen: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 3, 1, 10, 9, 0, 0, time.UTC),
		Values: map[string][]string{},
	}
	for _, field := range []string{"path", "request_uri", "user_agent", "verb", "code", "reason", "resource", "namespace", "name"} {
		vs := make([]string, detect.ReportValuesCap)
		for i := range vs {
			vs[i] = fmt.Sprintf("%03d", i) + strings.Repeat("\x01", detect.StoredValueLen-3)
		}
		f.Values[field] = vs
	}
	return f
}

// TestMessageSizes logs the size of every test finding's SNS message,
// including the largest finding detect's caps allow, and checks that each
// is published whole or, when render had to cut it, marked so.
func TestMessageSizes(t *testing.T) {
	fs := loadFindings(t)
	cases := []*detect.Finding{fs["f-scan-0001"], fs["f-create-0002"], fs["f-hostile-0003"], fs["f-noip-0004"], bigFinding(0), bigFinding(200_000)}
	for _, f := range cases {
		api := &fakeAPI{}
		if err := New(api, testTopic).Publish(context.Background(), f); err != nil {
			t.Fatalf("%s: %v", f.ID, err)
		}
		in := api.in[0]
		body := aws.ToString(in.Message)
		n := size(render.Message{Body: body}, in.MessageAttributes)
		var doc map[string]string
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		var sent detect.Finding
		if err := json.Unmarshal([]byte(delivered(doc, "sqs")), &sent); err != nil {
			t.Fatalf("%s: the sqs subscriber's message is not a finding: %v", f.ID, err)
		}
		t.Logf("%s (user agent %d bytes): SNS Message %d bytes, with attributes %d bytes, %d Publish call(s), values cut %v",
			f.ID, len(f.UserAgent), len(body), n, len(api.in), sent.ValuesTruncated && !f.ValuesTruncated)
		if n > MaxMessageBytes {
			t.Errorf("%s: %d bytes sent, above %d", f.ID, n, MaxMessageBytes)
		}
		if sent.ID != f.ID || sent.Count != f.Count || sent.Severity != f.Severity {
			t.Errorf("%s: sent finding has id %q count %d severity %q, want them unchanged", f.ID, sent.ID, sent.Count, sent.Severity)
		}
		if !sent.ValuesTruncated && !cmp.Equal(f.Values, sent.Values) {
			t.Errorf("%s: values changed without values_truncated", f.ID)
		}
	}
}

// delivered is what SNS hands a subscriber of protocol from a
// MessageStructure "json" document: its own key, else "default".
func delivered(doc map[string]string, protocol string) string {
	if m, ok := doc[protocol]; ok {
		return m
	}
	return doc["default"]
}

func TestPublishTooLarge(t *testing.T) {
	// render bounds the body; only an attribute can push the total over.
	// EKS cluster names are at most 100 characters, so this is a guard,
	// not a case production reaches.
	f := &detect.Finding{ID: "f-huge", Rule: "r", Severity: "low", ClusterName: strings.Repeat("c", 300_000)}
	api := &fakeAPI{}
	err := New(api, testTopic).Publish(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "above the SNS limit") {
		t.Fatalf("Publish() error = %v, want a size error", err)
	}
	if len(api.in) != 0 {
		t.Errorf("%d Publish calls for an oversized message, want 0", len(api.in))
	}
}

func TestNewClientRetryPolicy(t *testing.T) {
	// A configuration as AWS_MAX_ATTEMPTS=10 and AWS_RETRY_MODE=adaptive
	// would produce; NewClient keeps its own policy.
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 10,
		RetryMode:        aws.RetryModeAdaptive,
	}
	o := NewClient(cfg).Options()
	if got := o.Retryer.MaxAttempts(); got != MaxAttempts {
		t.Errorf("Retryer.MaxAttempts() = %d, want %d", got, MaxAttempts)
	}
	if o.RetryMaxAttempts != 0 {
		t.Errorf("RetryMaxAttempts = %d, want 0 so the client does not wrap the retryer", o.RetryMaxAttempts)
	}
	// The wait before a retry never exceeds MaxBackoff.
	for attempt := 1; attempt <= 10; attempt++ {
		d, err := o.Retryer.RetryDelay(attempt, errors.New("boom"))
		if err != nil || d > MaxBackoff {
			t.Errorf("RetryDelay(%d) = %v, %v; want at most %v", attempt, d, err, MaxBackoff)
		}
	}
}
