//go:build integration

// The integration test runs Publisher against goaws v0.4.5, an SNS and SQS
// emulator, and checks what each kind of subscriber receives. It starts its
// own goaws from ANONWATCH_GOAWS_BIN, or ANONWATCH_BIN/goaws
// (scripts/goaws.sh install and scripts/tools.sh put one in .bin/goaws), on
// a free loopback port, with a configuration written from
// testdata/goaws.yaml.tmpl. Generating the configuration lets the HTTP
// subscription name the test's own httptest server, whose port is only known
// at run time, and gives every run an empty emulator that no other
// package's test publishes to.

package snspub

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

const (
	goawsAccount = "100010001000"
	goawsTopic   = "arn:aws:sns:us-east-1:" + goawsAccount + ":anonwatch-findings"
)

// goaws is one running emulator.
type goaws struct {
	url    string // http://127.0.0.1:port
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startGoaws starts goaws with the test configuration, its HTTP
// subscription aimed at httpEndpoint, and stops it when the test ends.
func startGoaws(t *testing.T, httpEndpoint string) *goaws {
	t.Helper()
	bin := goawsBinary(t)
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "goaws.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	// The free port is found by listening and closing, so another process
	// can take it before goaws does; then goaws exits and we try again.
	for try := 1; ; try++ {
		port := freePort(t)
		cfg := filepath.Join(t.TempDir(), "goaws.yaml")
		f, err := os.Create(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tmpl.Execute(f, map[string]string{"Port": port, "HTTPEndpoint": httpEndpoint}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		g := &goaws{url: "http://127.0.0.1:" + port, exited: make(chan struct{}), log: filepath.Join(filepath.Dir(cfg), "goaws.log")}
		logf, err := os.Create(g.log)
		if err != nil {
			t.Fatal(err)
		}
		g.cmd = exec.Command(bin, "-config", cfg, "Local")
		g.cmd.Stdout, g.cmd.Stderr = logf, logf
		if err := g.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go func() { g.cmd.Wait(); logf.Close(); close(g.exited) }()
		t.Cleanup(g.stop)
		if err := g.waitHealthy(10 * time.Second); err != nil {
			g.stop()
			if try < 3 {
				t.Logf("goaws on port %s: %v; trying another port", port, err)
				continue
			}
			t.Fatalf("goaws did not start: %v\n%s", err, g.logText())
		}
		return g
	}
}

// goawsBinary returns ANONWATCH_GOAWS_BIN, or goaws in the ANONWATCH_BIN
// folder that scripts/test.sh exports, and fails the test when neither is
// set: with the integration tag the test must run, not skip.
func goawsBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ANONWATCH_GOAWS_BIN"); bin != "" {
		return bin
	}
	if dir := os.Getenv("ANONWATCH_BIN"); dir != "" {
		return filepath.Join(dir, "goaws")
	}
	t.Fatal("neither ANONWATCH_GOAWS_BIN nor ANONWATCH_BIN is set: the integration test needs the goaws v0.4.5 binary (scripts/goaws.sh install puts it in .bin/goaws)")
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func (g *goaws) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			return errors.New("goaws exited")
		default:
		}
		resp, err := http.Get(g.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no healthy answer from %s/health within %v", g.url, limit)
}

// stop kills goaws and waits for it; calling it again does nothing.
func (g *goaws) stop() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
}

func (g *goaws) logText() string {
	b, _ := os.ReadFile(g.log)
	return string(b)
}

// client returns an SNS client from NewClient aimed at url, with zero
// backoff so that retries against a stopped emulator do not slow the test.
func client(url string) *sns.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	return NewClient(cfg, func(o *sns.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = newRetryer(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
}

// sqsMessage is a message read from a goaws queue.
type sqsMessage struct {
	Body  string
	Attrs map[string]string // name -> "DataType:StringValue"
}

// receiveAll drains queue with plain form POSTs: goaws speaks only the SQS
// query protocol, and the current SQS SDK only the JSON one.
func (g *goaws) receiveAll(t *testing.T, queue string) []sqsMessage {
	t.Helper()
	var all []sqsMessage
	for {
		form := url.Values{
			"Action":              {"ReceiveMessage"},
			"QueueUrl":            {g.url + "/" + goawsAccount + "/" + queue},
			"MaxNumberOfMessages": {"10"},
			"WaitTimeSeconds":     {"0"},
		}
		resp, err := http.PostForm(g.url+"/", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ReceiveMessage on %s: %d %s", queue, resp.StatusCode, b)
		}
		var r struct {
			Messages []struct {
				Body  string `xml:"Body"`
				Attrs []struct {
					Name  string `xml:"Name"`
					Value struct {
						DataType    string `xml:"DataType"`
						StringValue string `xml:"StringValue"`
					} `xml:"Value"`
				} `xml:"MessageAttribute"`
			} `xml:"ReceiveMessageResult>Message"`
		}
		if err := xml.Unmarshal(b, &r); err != nil {
			t.Fatalf("ReceiveMessage on %s: %v\n%s", queue, err, b)
		}
		if len(r.Messages) == 0 {
			return all
		}
		for _, m := range r.Messages {
			msg := sqsMessage{Body: m.Body, Attrs: map[string]string{}}
			for _, a := range m.Attrs {
				msg.Attrs[a.Name] = a.Value.DataType + ":" + a.Value.StringValue
			}
			all = append(all, msg)
		}
	}
}

// envelope is SNS's JSON notification, as enveloped queues and HTTP
// subscribers get it.
type envelope struct {
	Type              string
	TopicArn          string
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
}

func (e envelope) attrs() map[string]string {
	m := map[string]string{}
	for k, v := range e.MessageAttributes {
		m[k] = v.Type + ":" + v.Value
	}
	return m
}

// httpSubscriber records what goaws POSTs to it.
type httpSubscriber struct {
	mu       sync.Mutex
	bodies   []string
	msgTypes []string
	topics   []string
}

func (h *httpSubscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, string(b))
	h.msgTypes = append(h.msgTypes, r.Header.Get("x-amz-sns-message-type"))
	h.topics = append(h.topics, r.Header.Get("x-amz-sns-topic-arn"))
}

// published is one finding as the test expects subscribers to see it.
type published struct {
	f     *detect.Finding
	msg   render.Message
	doc   map[string]string
	attrs map[string]string
}

func TestGoaws(t *testing.T) {
	hs := &httpSubscriber{}
	hsrv := httptest.NewServer(hs)
	defer hsrv.Close()
	g := startGoaws(t, hsrv.URL+"/sns")
	p := New(client(g.url), goawsTopic)

	// Publish order is delivery order: goaws delivers inside Publish.
	fs := loadFindings(t)
	var pubs []published
	for _, id := range []string{"f-scan-0001", "f-create-0002", "f-hostile-0003", "f-noip-0004"} {
		f := fs[id]
		if err := p.Publish(context.Background(), f); err != nil {
			t.Fatalf("Publish(%s): %v\ngoaws log:\n%s", id, err, g.logText())
		}
		msg, err := render.SNS(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]string
		if err := json.Unmarshal([]byte(msg.Body), &doc); err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, published{f: f, msg: msg, doc: doc, attrs: attrs(attributes(f))})
		t.Logf("%s: SNS Message %d bytes", id, len(msg.Body))
	}
	if got, want := p.Calls(), int64(len(pubs)); got != want {
		t.Errorf("Calls() = %d after %d findings, want one call per finding", got, want)
	}

	t.Run("raw queue gets the sqs message and the attributes", func(t *testing.T) {
		var want, got []sqsMessage
		for _, pb := range pubs {
			want = append(want, sqsMessage{Body: delivered(pb.doc, "sqs"), Attrs: pb.attrs})
		}
		got = g.receiveAll(t, "findings-raw")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("findings-raw (-want +got):\n%s", diff)
		}
		// The consumer's view: each body is the finding itself.
		for i, m := range got {
			var back detect.Finding
			if err := json.Unmarshal([]byte(m.Body), &back); err != nil {
				t.Fatalf("message %d is not a finding: %v", i, err)
			}
			if diff := cmp.Diff(pubs[i].f, &back); diff != "" {
				t.Errorf("message %d decodes to another finding (-published +received):\n%s", i, diff)
			}
		}
	})

	t.Run("enveloped queue gets the SNS notification", func(t *testing.T) {
		got := g.receiveAll(t, "findings-envelope")
		if len(got) != len(pubs) {
			t.Fatalf("%d messages, want %d", len(got), len(pubs))
		}
		for i, m := range got {
			var e envelope
			if err := json.Unmarshal([]byte(m.Body), &e); err != nil {
				t.Fatalf("message %d is not an SNS envelope: %v", i, err)
			}
			want := map[string]string{"Type": "Notification", "TopicArn": goawsTopic, "Subject": pubs[i].msg.Subject, "Message": delivered(pubs[i].doc, "sqs")}
			gotFields := map[string]string{"Type": e.Type, "TopicArn": e.TopicArn, "Subject": e.Subject, "Message": e.Message}
			if diff := cmp.Diff(want, gotFields); diff != "" {
				t.Errorf("envelope %d (-want +got):\n%s", i, diff)
			}
			if diff := cmp.Diff(pubs[i].attrs, e.attrs()); diff != "" {
				t.Errorf("envelope %d attributes (-want +got):\n%s", i, diff)
			}
		}
	})

	t.Run("filtered queue gets only high and critical", func(t *testing.T) {
		var want []sqsMessage
		for _, pb := range pubs {
			if pb.f.Severity == "high" || pb.f.Severity == "critical" {
				want = append(want, sqsMessage{Body: delivered(pb.doc, "sqs"), Attrs: pb.attrs})
			}
		}
		if len(want) != 2 {
			t.Fatalf("test data has %d high or critical findings, want 2", len(want))
		}
		if diff := cmp.Diff(want, g.receiveAll(t, "findings-urgent")); diff != "" {
			t.Errorf("findings-urgent (-want +got):\n%s", diff)
		}
	})

	t.Run("http subscriber gets the whole message structure", func(t *testing.T) {
		// goaws posts the whole MessageStructure document. Real SNS posts
		// the "https" key (for https endpoints; "http" or "default" for
		// http ones): render puts the Amazon Q chat notification there.
		hs.mu.Lock()
		defer hs.mu.Unlock()
		if len(hs.bodies) != len(pubs) {
			t.Fatalf("%d POSTs, want %d", len(hs.bodies), len(pubs))
		}
		for i, b := range hs.bodies {
			var e envelope
			if err := json.Unmarshal([]byte(b), &e); err != nil {
				t.Fatalf("POST %d is not an SNS envelope: %v", i, err)
			}
			want := map[string]string{"Type": "Notification", "TopicArn": goawsTopic, "Subject": pubs[i].msg.Subject, "Message": pubs[i].msg.Body,
				"header type": "Notification", "header topic": goawsTopic}
			got := map[string]string{"Type": e.Type, "TopicArn": e.TopicArn, "Subject": e.Subject, "Message": e.Message,
				"header type": hs.msgTypes[i], "header topic": hs.topics[i]}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("POST %d (-want +got):\n%s", i, diff)
			}
			if diff := cmp.Diff(pubs[i].attrs, e.attrs()); diff != "" {
				t.Errorf("POST %d attributes (-want +got):\n%s", i, diff)
			}
		}
	})

	t.Run("unknown topic", func(t *testing.T) {
		q := New(client(g.url), "arn:aws:sns:us-east-1:"+goawsAccount+":no-such-topic")
		err := q.Publish(context.Background(), fs["f-scan-0001"])
		if !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("Publish() = %v, want ErrTopicNotFound", err)
		}
		if !strings.Contains(err.Error(), "no-such-topic") || !strings.Contains(err.Error(), "f-scan-0001") {
			t.Errorf("Publish() = %q, want it to name the topic and the finding", err)
		}
	})

	t.Run("emulator stopped", func(t *testing.T) {
		g.stop()
		err := p.Publish(context.Background(), fs["f-scan-0001"])
		if err == nil {
			t.Fatal("Publish() to a stopped emulator = nil, want an error")
		}
		if errors.Is(err, ErrTopicNotFound) {
			t.Errorf("Publish() = %v, is ErrTopicNotFound", err)
		}
		t.Logf("stopped emulator: %v", err)
	})
}
