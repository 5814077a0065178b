//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
)

// goaws sends one query-protocol action to goaws (see emu.Query).
func goaws(t testing.TB, form url.Values, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emu.Query(ctx, snsURL, form, out); err != nil {
		t.Fatal(err)
	}
}

// newTopic creates a topic for the test.
func newTopic(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	arn, err := emu.CreateTopic(ctx, snsURL, emu.UniqueName("e2e-", t.Name(), "topic"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { goaws(t, url.Values{"Action": {"DeleteTopic"}, "TopicArn": {arn}}, nil) })
	return arn
}

// subscribeQueue creates a queue and subscribes it to topic. filterPolicy,
// when not empty, is the subscription's filter policy.
func subscribeQueue(t testing.TB, topic string, raw bool, filterPolicy string) emu.Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := emu.CreateQueue(ctx, snsURL, emu.UniqueName("e2e-", t.Name(), "queue"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { goaws(t, url.Values{"Action": {"DeleteQueue"}, "QueueUrl": {q.URL}}, nil) })
	if err := emu.Subscribe(ctx, topic, q, raw, filterPolicy); err != nil {
		t.Fatal(err)
	}
	return q
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
func findings(t testing.TB, msgs []emu.Message) []delivered {
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
