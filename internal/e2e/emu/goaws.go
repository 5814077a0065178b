package emu

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Query sends one query-protocol action (a form POST) to the goaws at
// endpoint and decodes its XML answer into out, when out is not nil. goaws
// speaks SNS's and SQS's query protocol; the current SQS SDK does not, so
// both are driven by hand, the same way.
func Query(ctx context.Context, endpoint string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := Loopback.Do(req)
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

// CreateTopic creates a topic named name on endpoint and returns its ARN.
func CreateTopic(ctx context.Context, endpoint, name string) (string, error) {
	var out struct {
		ARN string `xml:"CreateTopicResult>TopicArn"`
	}
	if err := Query(ctx, endpoint, url.Values{"Action": {"CreateTopic"}, "Name": {name}}, &out); err != nil {
		return "", err
	}
	if out.ARN == "" {
		return "", errors.New("goaws CreateTopic returned no TopicArn")
	}
	return out.ARN, nil
}

// Queue is an SQS queue in goaws.
type Queue struct {
	Endpoint string // the goaws holding it
	URL      string
	// ARN is the queue's ARN, which a subscription names. Queues that
	// ConfigQueue returns lack it.
	ARN string
}

// CreateQueue creates a queue named name on endpoint.
func CreateQueue(ctx context.Context, endpoint, name string) (Queue, error) {
	var created struct {
		URL string `xml:"CreateQueueResult>QueueUrl"`
	}
	if err := Query(ctx, endpoint, url.Values{"Action": {"CreateQueue"}, "QueueName": {name}}, &created); err != nil {
		return Queue{}, err
	}
	if created.URL == "" {
		return Queue{}, errors.New("goaws CreateQueue returned no QueueUrl")
	}
	q := Queue{Endpoint: endpoint, URL: created.URL}
	attrs, err := queueAttributes(ctx, q, "QueueArn")
	if err != nil {
		return Queue{}, err
	}
	if q.ARN = attrs["QueueArn"]; q.ARN == "" {
		return Queue{}, fmt.Errorf("goaws queue %s has no QueueArn", q.URL)
	}
	return q, nil
}

// queueAttributes returns q's attribute name ("All" for every one).
func queueAttributes(ctx context.Context, q Queue, name string) (map[string]string, error) {
	var out struct {
		Attrs []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"GetQueueAttributesResult>Attribute"`
	}
	if err := Query(ctx, q.Endpoint, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {q.URL}, "AttributeName.1": {name}}, &out); err != nil {
		return nil, err
	}
	attrs := make(map[string]string, len(out.Attrs))
	for _, a := range out.Attrs {
		attrs[a.Name] = a.Value
	}
	return attrs, nil
}

// Subscribe subscribes q to topic, with raw message delivery when raw and
// with filterPolicy as the subscription's filter policy when it is not
// empty.
func Subscribe(ctx context.Context, topic string, q Queue, raw bool, filterPolicy string) error {
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
	return Query(ctx, q.Endpoint, form, nil)
}

// Message is one message received from a queue.
type Message struct {
	MessageID, ReceiptHandle, MD5OfBody, Body string
	// Attributes are the message attributes' string values, by name.
	Attributes map[string]string
}

// maxMessages bounds Receive, so that a function publishing in a loop
// fails the test instead of hanging it.
const maxMessages = 10000

// Receive drains q: it returns every message now in it and deletes them.
// goaws delivers inside Publish, so once an invoke has returned, all its
// deliveries are already queued. The queue's depth is read first so that an
// empty queue is never long-polled.
func Receive(ctx context.Context, q Queue) ([]Message, error) {
	var msgs []Message
	for len(msgs) < maxMessages {
		attrs, err := queueAttributes(ctx, q, "All")
		if err != nil {
			return msgs, err
		}
		visible, _ := strconv.Atoi(attrs["ApproximateNumberOfMessages"])
		inFlight, _ := strconv.Atoi(attrs["ApproximateNumberOfMessagesNotVisible"])
		if visible-inFlight <= 0 {
			return msgs, nil
		}
		var out struct {
			Messages []struct {
				MessageID     string `xml:"MessageId"`
				ReceiptHandle string `xml:"ReceiptHandle"`
				MD5OfBody     string `xml:"MD5OfBody"`
				Body          string `xml:"Body"`
				Attrs         []struct {
					Name  string `xml:"Name"`
					Value string `xml:"Value>StringValue"`
				} `xml:"MessageAttribute"`
			} `xml:"ReceiveMessageResult>Message"`
		}
		if err := Query(ctx, q.Endpoint, url.Values{"Action": {"ReceiveMessage"}, "QueueUrl": {q.URL}, "MaxNumberOfMessages": {"10"}, "WaitTimeSeconds": {"0"}}, &out); err != nil {
			return msgs, err
		}
		if len(out.Messages) == 0 {
			return msgs, fmt.Errorf("queue %s reports messages but ReceiveMessage returned none", q.URL)
		}
		for _, m := range out.Messages {
			msg := Message{MessageID: m.MessageID, ReceiptHandle: m.ReceiptHandle, MD5OfBody: m.MD5OfBody, Body: m.Body, Attributes: map[string]string{}}
			for _, a := range m.Attrs {
				msg.Attributes[a.Name] = a.Value
			}
			msgs = append(msgs, msg)
			if err := Query(ctx, q.Endpoint, url.Values{"Action": {"DeleteMessage"}, "QueueUrl": {q.URL}, "ReceiptHandle": {m.ReceiptHandle}}, nil); err != nil {
				return msgs, err
			}
		}
	}
	return msgs, fmt.Errorf("queue %s: more than %d messages", q.URL, maxMessages)
}
