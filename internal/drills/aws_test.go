//go:build integration

package drills

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

// loopback is the client for the drills' own calls to the emulators: never
// an environment proxy, and bounded.
var loopback = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}

// uniqueName returns a name for a test's own table, topic or queue: in
// [A-Za-z0-9-] and at most 79 characters, which all three accept (SQS
// allows 80).
func uniqueName(t testing.TB, kind string) string {
	var b [4]byte
	rand.Read(b[:])
	name := nameUnsafe.ReplaceAllString(t.Name()+"-"+kind, "-")
	if len(name) > 64 {
		name = name[len(name)-64:]
	}
	return "drill-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9]+`)

// dynamoClient returns a DynamoDB client for an emulator, straight, not
// through a proxy: the drills read and set up state beside the function.
func dynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   loopback,
	})
}

// createTable creates a state table as `anonwatch table create` does.
// dynalite has no TTL, which CreateTable reports and no drill relies on.
func createTable(ctx context.Context, endpoint, name string) error {
	if err := dynamostate.CreateTable(ctx, dynamoClient(endpoint), name); err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		return err
	}
	return nil
}

// newTable creates a table for the test.
func newTable(t testing.TB, endpoint string) string {
	t.Helper()
	name := uniqueName(t, "table")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createTable(ctx, endpoint, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// item is one table item as plain values, less expires_at, which follows
// the wall clock and so differs between two runs of the same events.
type item = map[string]any

// scan returns every item of table, sorted by key.
func scan(ctx context.Context, endpoint, table string) ([]item, error) {
	var items []item
	p := dynamodb.NewScanPaginator(dynamoClient(endpoint), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		var got []item
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &got); err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range got {
			delete(it, dynamostate.TTLAttribute)
			items = append(items, it)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["pk"], "\x00", items[i]["sk"]) < fmt.Sprint(items[j]["pk"], "\x00", items[j]["sk"])
	})
	return items, nil
}

func scanTable(t testing.TB, endpoint, table string) []item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, err := scan(ctx, endpoint, table)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// bucketCounts sums the count of every bucket item (all shards of a
// bucket) by "pk sk-without-shard".
func bucketCounts(items []item) map[string]int64 {
	out := map[string]int64{}
	for _, it := range items {
		sk, _ := it["sk"].(string)
		if !strings.HasPrefix(sk, "b#") {
			continue
		}
		if i := strings.LastIndexByte(sk, '#'); i > 1 {
			sk = sk[:i]
		}
		n, _ := it["count"].(float64)
		out[fmt.Sprint(it["pk"], " ", sk)] += int64(n)
	}
	return out
}

// goawsCall sends one query-protocol action to goaws and decodes the XML
// answer into out. goaws speaks SNS's and SQS's query protocol; the current
// SQS SDK does not, so both are driven by hand.
func goawsCall(ctx context.Context, endpoint string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := loopback.Do(req)
	if err != nil {
		return fmt.Errorf("goaws %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("goaws %s: %w", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("goaws %s: %s\n%s", form.Get("Action"), resp.Status, body)
	}
	if out != nil {
		if err := xml.Unmarshal(body, out); err != nil {
			return fmt.Errorf("goaws %s: decode %q: %w", form.Get("Action"), body, err)
		}
	}
	return nil
}

// findingsQueue is where a drill reads what the topic delivered: a queue
// subscribed to it with raw delivery, so each message body is a finding's
// JSON.
type findingsQueue struct {
	Endpoint string // the goaws holding it
	URL      string
}

// createTopicAndQueue creates a topic named name and a raw-delivery queue
// subscribed to it on endpoint.
func createTopicAndQueue(ctx context.Context, endpoint, name string) (string, findingsQueue, error) {
	var topic struct {
		ARN string `xml:"CreateTopicResult>TopicArn"`
	}
	if err := goawsCall(ctx, endpoint, url.Values{"Action": {"CreateTopic"}, "Name": {name}}, &topic); err != nil {
		return "", findingsQueue{}, err
	}
	if topic.ARN == "" {
		return "", findingsQueue{}, errors.New("goaws CreateTopic returned no TopicArn")
	}
	q, err := createQueue(ctx, endpoint, name)
	if err != nil {
		return "", findingsQueue{}, err
	}
	arn, err := queueARN(ctx, q)
	if err != nil {
		return "", findingsQueue{}, err
	}
	err = goawsCall(ctx, endpoint, url.Values{
		"Action": {"Subscribe"}, "TopicArn": {topic.ARN}, "Protocol": {"sqs"}, "Endpoint": {arn},
		"Attributes.entry.1.key": {"RawMessageDelivery"}, "Attributes.entry.1.value": {"true"},
	}, nil)
	return topic.ARN, q, err
}

// newTopicAndQueue creates a topic and a raw-delivery queue subscribed to
// it for the test.
func newTopicAndQueue(t testing.TB, endpoint string) (string, findingsQueue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, q, err := createTopicAndQueue(ctx, endpoint, uniqueName(t, "topic"))
	if err != nil {
		t.Fatal(err)
	}
	return topic, q
}

// createQueue creates a queue on endpoint.
func createQueue(ctx context.Context, endpoint, name string) (findingsQueue, error) {
	var created struct {
		URL string `xml:"CreateQueueResult>QueueUrl"`
	}
	if err := goawsCall(ctx, endpoint, url.Values{"Action": {"CreateQueue"}, "QueueName": {name}}, &created); err != nil {
		return findingsQueue{}, err
	}
	if created.URL == "" {
		return findingsQueue{}, errors.New("goaws CreateQueue returned no QueueUrl")
	}
	return findingsQueue{Endpoint: endpoint, URL: created.URL}, nil
}

func queueARN(ctx context.Context, q findingsQueue) (string, error) {
	var attrs struct {
		Attrs []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"GetQueueAttributesResult>Attribute"`
	}
	if err := goawsCall(ctx, q.Endpoint, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {q.URL}, "AttributeName.1": {"QueueArn"}}, &attrs); err != nil {
		return "", err
	}
	for _, a := range attrs.Attrs {
		if a.Name == "QueueArn" {
			return a.Value, nil
		}
	}
	return "", fmt.Errorf("goaws queue %s has no QueueArn", q.URL)
}

// configQueue is the queue a goaws configuration declares (see
// goawsTopology); its URL follows goaws's scheme.
func configQueue(s *server, name string) findingsQueue {
	return findingsQueue{Endpoint: s.URL(), URL: s.URL() + "/" + goawsAccount + "/" + name}
}

// configTopic is the ARN of the topic a goaws configuration declares.
func configTopic(name string) string {
	return "arn:aws:sns:us-east-1:" + goawsAccount + ":" + name
}

// sqsMessage is one message received from a queue.
type sqsMessage struct {
	MessageID, ReceiptHandle, MD5OfBody, Body string
}

// receive drains q: it returns every message now in it and deletes them.
// goaws delivers inside Publish, so once an invoke has returned its
// deliveries are queued. The depth is read first so that an empty queue is
// never long-polled; the loop is bounded by maxMessages.
func receive(ctx context.Context, q findingsQueue) ([]sqsMessage, error) {
	const maxMessages = 10000
	var msgs []sqsMessage
	for len(msgs) < maxMessages {
		var attrs struct {
			Attrs []struct {
				Name  string `xml:"Name"`
				Value string `xml:"Value"`
			} `xml:"GetQueueAttributesResult>Attribute"`
		}
		if err := goawsCall(ctx, q.Endpoint, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {q.URL}, "AttributeName.1": {"All"}}, &attrs); err != nil {
			return msgs, err
		}
		depth := map[string]int{}
		for _, a := range attrs.Attrs {
			depth[a.Name], _ = strconv.Atoi(a.Value)
		}
		if depth["ApproximateNumberOfMessages"]-depth["ApproximateNumberOfMessagesNotVisible"] <= 0 {
			return msgs, nil
		}
		var out struct {
			Messages []sqsMessage `xml:"ReceiveMessageResult>Message"`
		}
		if err := goawsCall(ctx, q.Endpoint, url.Values{"Action": {"ReceiveMessage"}, "QueueUrl": {q.URL}, "MaxNumberOfMessages": {"10"}, "WaitTimeSeconds": {"0"}}, &out); err != nil {
			return msgs, err
		}
		if len(out.Messages) == 0 {
			return msgs, fmt.Errorf("queue %s reports messages but ReceiveMessage returned none", q.URL)
		}
		for _, m := range out.Messages {
			msgs = append(msgs, m)
			if err := goawsCall(ctx, q.Endpoint, url.Values{"Action": {"DeleteMessage"}, "QueueUrl": {q.URL}, "ReceiptHandle": {m.ReceiptHandle}}, nil); err != nil {
				return msgs, err
			}
		}
	}
	return msgs, fmt.Errorf("queue %s: more than %d messages", q.URL, maxMessages)
}

func mustReceive(t testing.TB, q findingsQueue) []sqsMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := receive(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// delivered decodes raw-delivery messages into findings.
func delivered(t testing.TB, msgs []sqsMessage) []detect.Finding {
	t.Helper()
	fs, err := decodeFindings(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// outcome is what a drill compares a finding by: worked out by hand from the
// events and internal/rules/default.yaml, and read back from deliveries.
type outcome struct {
	Rule     string
	SrcIP    string
	Severity string
	Count    int64
}

// outcomes returns the outcomes of fs, sorted.
func outcomes(fs []detect.Finding) []outcome {
	out := make([]outcome, 0, len(fs))
	for _, f := range fs {
		out = append(out, outcome{Rule: f.Rule, SrcIP: f.SrcIP, Severity: f.Severity, Count: f.Count})
	}
	return sortOutcomes(out)
}

// sortOutcomes sorts o in place by rule, address and count, and returns it.
func sortOutcomes(out []outcome) []outcome {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.SrcIP != b.SrcIP {
			return a.SrcIP < b.SrcIP
		}
		return a.Count < b.Count
	})
	return out
}

// decodeFindings decodes raw-delivery messages into findings.
func decodeFindings(msgs []sqsMessage) ([]detect.Finding, error) {
	var out []detect.Finding
	for _, m := range msgs {
		var f detect.Finding
		if err := json.Unmarshal([]byte(m.Body), &f); err != nil {
			return nil, fmt.Errorf("queue message is not a finding: %v\n%.500s", err, m.Body)
		}
		out = append(out, f)
	}
	return out, nil
}
