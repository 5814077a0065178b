//go:build integration

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
)

// uniqueName returns a name for the test's own table, topic or queue:
// readable in an emulator's log, and distinct across tests and runs that
// share the emulators. It keeps to [A-Za-z0-9-], which all three accept.
func uniqueName(t testing.TB, kind string) string {
	var b [4]byte
	rand.Read(b[:])
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return "e2e-" + kind + "-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

// dynamoClient returns a DynamoDB client for dynalite.
func dynamoClient() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(dynamoURL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// newTable creates a state table for the test, as `anonwatch table create`
// does. dynalite has no TTL, which CreateTable reports and which no test
// depends on.
func newTable(t testing.TB) string {
	t.Helper()
	name := uniqueName(t, "table")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dynamostate.CreateTable(ctx, dynamoClient(), name); err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		t.Fatal(err)
	}
	return name
}

// scanTable returns every item of the table, sorted by key, as plain
// values, so two scans compare with cmp.Diff.
func scanTable(t testing.TB, table string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var items []map[string]any
	p := dynamodb.NewScanPaginator(dynamoClient(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		var got []map[string]any
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &got); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		items = append(items, got...)
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["pk"], "\x00", items[i]["sk"]) < fmt.Sprint(items[j]["pk"], "\x00", items[j]["sk"])
	})
	return items
}

// goaws speaks SNS's and SQS's query protocol (form POST, XML answers).
// The SNS SDK speaks it too, but the current SQS SDK does not, so both are
// driven by hand here, the same way.
func goaws(t testing.TB, form url.Values, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, snsURL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("goaws %s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("goaws %s: %v", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("goaws %s: %s\n%s", form.Get("Action"), resp.Status, body)
	}
	if out != nil {
		if err := xml.Unmarshal(body, out); err != nil {
			t.Fatalf("goaws %s: decode %q: %v", form.Get("Action"), body, err)
		}
	}
}

// newTopic creates a topic for the test.
func newTopic(t testing.TB) string {
	t.Helper()
	var out struct {
		ARN string `xml:"CreateTopicResult>TopicArn"`
	}
	goaws(t, url.Values{"Action": {"CreateTopic"}, "Name": {uniqueName(t, "topic")}}, &out)
	if out.ARN == "" {
		t.Fatal("goaws CreateTopic returned no TopicArn")
	}
	t.Cleanup(func() { goaws(t, url.Values{"Action": {"DeleteTopic"}, "TopicArn": {out.ARN}}, nil) })
	return out.ARN
}

// queue is an SQS queue in goaws.
type queue struct {
	URL, ARN string
}

// subscribeQueue creates a queue and subscribes it to topic. filterPolicy,
// when not empty, is the subscription's filter policy.
func subscribeQueue(t testing.TB, topic string, raw bool, filterPolicy string) queue {
	t.Helper()
	var created struct {
		URL string `xml:"CreateQueueResult>QueueUrl"`
	}
	goaws(t, url.Values{"Action": {"CreateQueue"}, "QueueName": {uniqueName(t, "queue")}}, &created)
	var attrs struct {
		Attrs []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"GetQueueAttributesResult>Attribute"`
	}
	goaws(t, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {created.URL}, "AttributeName.1": {"QueueArn"}}, &attrs)
	q := queue{URL: created.URL}
	for _, a := range attrs.Attrs {
		if a.Name == "QueueArn" {
			q.ARN = a.Value
		}
	}
	if q.URL == "" || q.ARN == "" {
		t.Fatalf("goaws queue without URL or ARN: %+v", q)
	}
	t.Cleanup(func() { goaws(t, url.Values{"Action": {"DeleteQueue"}, "QueueUrl": {q.URL}}, nil) })
	form := url.Values{
		"Action":   {"Subscribe"},
		"TopicArn": {topic},
		"Protocol": {"sqs"},
		"Endpoint": {q.ARN},
	}
	n := 0
	attr := func(k, v string) {
		n++
		form.Set("Attributes.entry."+strconv.Itoa(n)+".key", k)
		form.Set("Attributes.entry."+strconv.Itoa(n)+".value", v)
	}
	attr("RawMessageDelivery", strconv.FormatBool(raw))
	if filterPolicy != "" {
		attr("FilterPolicy", filterPolicy)
	}
	goaws(t, form, nil)
	return q
}

// message is one SQS message.
type message struct {
	Body       string
	Attributes map[string]string // message attributes, by name
}

// receive drains q: it returns every message now in it and deletes them.
// goaws delivers inside Publish, so once an invoke has returned, all its
// deliveries are already queued. The queue's depth is read first so that
// an empty queue is never long-polled.
func receive(t testing.TB, q queue) []message {
	t.Helper()
	var msgs []message
	for {
		var attrs struct {
			Attrs []struct {
				Name  string `xml:"Name"`
				Value string `xml:"Value"`
			} `xml:"GetQueueAttributesResult>Attribute"`
		}
		goaws(t, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {q.URL}, "AttributeName.1": {"All"}}, &attrs)
		depth := map[string]int{}
		for _, a := range attrs.Attrs {
			depth[a.Name], _ = strconv.Atoi(a.Value)
		}
		if depth["ApproximateNumberOfMessages"]-depth["ApproximateNumberOfMessagesNotVisible"] <= 0 {
			return msgs
		}
		var out struct {
			Messages []struct {
				Body          string `xml:"Body"`
				ReceiptHandle string `xml:"ReceiptHandle"`
				Attrs         []struct {
					Name  string `xml:"Name"`
					Value string `xml:"Value>StringValue"`
				} `xml:"MessageAttribute"`
			} `xml:"ReceiveMessageResult>Message"`
		}
		goaws(t, url.Values{"Action": {"ReceiveMessage"}, "QueueUrl": {q.URL}, "MaxNumberOfMessages": {"10"}, "WaitTimeSeconds": {"1"}}, &out)
		if len(out.Messages) == 0 {
			t.Fatalf("queue %s reports messages but ReceiveMessage returned none", q.URL)
		}
		for _, m := range out.Messages {
			msg := message{Body: m.Body, Attributes: map[string]string{}}
			for _, a := range m.Attrs {
				msg.Attributes[a.Name] = a.Value
			}
			msgs = append(msgs, msg)
			goaws(t, url.Values{"Action": {"DeleteMessage"}, "QueueUrl": {q.URL}, "ReceiptHandle": {m.ReceiptHandle}}, nil)
		}
	}
}

// notification is SNS's JSON envelope, what a queue subscribed without raw
// delivery receives.
type notification struct {
	Type              string
	TopicArn          string
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
}

// delivered is one finding as a subscriber got it.
type delivered struct {
	Subject    string
	Attributes map[string]string
	Finding    detect.Finding
	Raw        string // the finding's JSON as delivered
}

// findings decodes the envelopes on a queue subscribed without raw
// delivery.
func findings(t testing.TB, msgs []message) []delivered {
	t.Helper()
	var out []delivered
	for _, m := range msgs {
		var n notification
		if err := json.Unmarshal([]byte(m.Body), &n); err != nil {
			t.Fatalf("queue message is not an SNS notification: %v\n%s", err, m.Body)
		}
		d := delivered{Subject: n.Subject, Attributes: map[string]string{}, Raw: n.Message}
		for k, v := range n.MessageAttributes {
			d.Attributes[k] = v.Value
		}
		if err := json.Unmarshal([]byte(n.Message), &d.Finding); err != nil {
			t.Fatalf("notification's Message is not a finding: %v\n%s", err, n.Message)
		}
		out = append(out, d)
	}
	return out
}
