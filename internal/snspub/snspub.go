// Package snspub publishes findings to an Amazon SNS topic.
//
// Each finding is one Publish call with MessageStructure "json": render.SNS
// builds the per-protocol document (the finding JSON under "default", which
// SQS, Lambda and HTTP subscribers get, the e-mail text under "email", the
// Amazon Q chat notification under "https"), and the message attributes
// carry the fields that subscription filter policies select on.
//
// Delivery is at least once. A failed publish returns an error so that Lambda
// retries the batch; the SDK itself retries a publish whose response was lost
// (see NewClient). Either can deliver a finding twice, with the same
// finding_id, which is how a consumer drops the duplicate.
//
// The SNS Developer Guide (sns-message-attributes) says message attributes
// are "sent only when the message structure is String, not JSON". goaws
// delivers them either way, and no real topic was at hand to check, so a
// subscriber should read severity and the rest from the finding JSON, not
// from delivered attributes. Whether filter policies on these attributes
// hold with MessageStructure "json" on real SNS is likewise unverified here.
package snspub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

var _ detect.Publisher = (*Publisher)(nil)

// API is the part of the SNS client that Publisher uses; *sns.Client
// satisfies it.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// ErrTopicNotFound reports that the topic does not exist (or is not visible
// to the caller). Retrying will not help until the deployment is fixed.
var ErrTopicNotFound = errors.New("SNS topic not found")

// Message attribute names. Subscription filter policies select on them, so
// they are part of the published contract.
const (
	AttrSeverity    = "severity"
	AttrRule        = "rule"
	AttrClusterName = "cluster_name"
	AttrSrcIP       = "src_ip"
	AttrCount       = "count"
)

// Limits SNS puts on a publish.
const (
	// MaxMessageBytes is the most a message body plus its attributes may
	// take on a topic with the default MaximumMessageSize.
	MaxMessageBytes = 256 * 1024
	// MaxNumber is the largest value SNS accepts in a Number attribute.
	MaxNumber = 1_000_000_000
	// maxSubject is one less than SNS's limit: a subject must be shorter
	// than 100 characters.
	maxSubject = 99
)

// Publisher publishes findings to one SNS topic. It is safe for concurrent
// use.
type Publisher struct {
	client API
	topic  string
	calls  atomic.Int64
}

// New returns a Publisher that sends to the topic with ARN topicARN through
// client, normally a client from NewClient.
func New(client API, topicARN string) *Publisher {
	return &Publisher{client: client, topic: topicARN}
}

// Calls returns the number of Publish API calls made so far, failed ones
// included (one per finding; SDK retries inside a call are not counted).
func (p *Publisher) Calls() int64 { return p.calls.Load() }

// Publish sends f in a single Publish call.
//
// Message attributes: severity, rule, cluster_name and src_ip are Strings and
// count is a Number. An attribute whose value is empty is omitted rather than
// sent as a placeholder, because SNS rejects empty String values and a
// placeholder such as "none" could be mistaken for data by a filter policy;
// a policy that wants findings without an address uses
// {"src_ip": [{"exists": false}]}. count is capped at MaxNumber, the largest
// Number SNS accepts; the body carries the exact count.
//
// render.SNS cuts a large finding's values until the message fits, so an
// oversized finding is still delivered (marked values_truncated) rather than
// failing the batch on every retry.
func (p *Publisher) Publish(ctx context.Context, f *detect.Finding) error {
	msg, attrs, err := message(f)
	if err != nil {
		return fmt.Errorf("publish finding %s to %s: %v", f.ID, p.topic, err)
	}
	in := &sns.PublishInput{
		TopicArn:          aws.String(p.topic),
		Message:           aws.String(msg.Body),
		MessageStructure:  aws.String("json"),
		MessageAttributes: attrs,
	}
	if s := subject(msg.Subject); s != "" {
		in.Subject = aws.String(s)
	}
	p.calls.Add(1)
	if _, err := p.client.Publish(ctx, in); err != nil {
		if notFound(err) {
			err = ErrTopicNotFound
		}
		// %w: callers tell ErrTopicNotFound and context cancellation apart
		// from a failed service.
		return fmt.Errorf("publish finding %s to %s: %w", f.ID, p.topic, err)
	}
	return nil
}

// message renders f and builds its attributes. render.SNS keeps the body
// within render.MaxMessageBytes, which leaves room for the attributes; the
// check here catches an attribute too large for what is left.
func message(f *detect.Finding) (render.Message, map[string]types.MessageAttributeValue, error) {
	msg, err := render.SNS(f)
	if err != nil {
		return render.Message{}, nil, err
	}
	attrs := attributes(f)
	if n := size(msg, attrs); n > MaxMessageBytes {
		return render.Message{}, nil, fmt.Errorf("message and attributes are %d bytes, above the SNS limit of %d", n, MaxMessageBytes)
	}
	return msg, attrs, nil
}

// attributes returns f's message attributes, leaving out empty values.
func attributes(f *detect.Finding) map[string]types.MessageAttributeValue {
	attrs := make(map[string]types.MessageAttributeValue, 5)
	for _, a := range [...]struct{ name, value string }{
		{AttrSeverity, f.Severity},
		{AttrRule, f.Rule},
		{AttrClusterName, f.ClusterName},
		{AttrSrcIP, f.SrcIP},
	} {
		if a.value == "" {
			continue
		}
		attrs[a.name] = types.MessageAttributeValue{
			DataType:    aws.String("String"),
			StringValue: aws.String(strings.ToValidUTF8(a.value, "\uFFFD")),
		}
	}
	attrs[AttrCount] = types.MessageAttributeValue{
		DataType:    aws.String("Number"),
		StringValue: aws.String(strconv.FormatInt(min(max(f.Count, 0), MaxNumber), 10)),
	}
	return attrs
}

// size is what SNS counts against MaxMessageBytes: the body and every
// attribute's name, type and value.
func size(msg render.Message, attrs map[string]types.MessageAttributeValue) int {
	n := len(msg.Body)
	for name, v := range attrs {
		n += len(name) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
	return n
}

// subject makes s acceptable to SNS, which rejects the whole publish for a
// bad subject: printable ASCII only, no leading space, under 100
// characters. render already produces such subjects; this guards against a
// finding that would otherwise fail on every retry.
func subject(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == maxSubject {
			break
		}
		switch {
		case r == ' ' && b.Len() == 0:
		case r >= ' ' && r <= '~':
			b.WriteRune(r)
		case r == '\t' || r == '\n' || r == '\r':
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
		default:
			b.WriteByte('?')
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// notFound reports whether err says the topic does not exist: real SNS
// answers NotFound (a typed NotFoundException); goaws answers
// AWS.SimpleNotificationService.NonExistentTopic.
func notFound(err error) bool {
	var nf *types.NotFoundException
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "AWS.SimpleNotificationService.NonExistentTopic":
			return true
		}
	}
	return false
}

// Retry policy of clients from NewClient.
const (
	// MaxAttempts is the number of tries of one Publish call.
	MaxAttempts = 3
	// MaxBackoff bounds the wait between tries, so the retries of one
	// finding fit well inside the function's timeout.
	MaxBackoff = 2 * time.Second
	// AttemptTimeout bounds one try, from sending to the whole response.
	AttemptTimeout = 3 * time.Second
)

// NewClient returns an SNS client with the retry policy Publisher is built
// for: the SDK's standard retryer (throttling, 5xx and connection errors)
// with MaxAttempts tries of at most AttemptTimeout each and at most
// MaxBackoff between them, whatever AWS_MAX_ATTEMPTS or AWS_RETRY_MODE say.
// optFns run after that and may override it.
//
// The SDK sets no timeout of its own: without AttemptTimeout a connection
// that stalls without failing holds the publish, and the invocation, until
// Lambda's timeout, instead of being retried on a new connection.
//
// SNS Publish is not idempotent. When a publish reached SNS but its response
// was lost (a reset connection, a timeout), the retry publishes the finding
// again, so subscribers may receive it twice. That is part of the documented
// duplicate window: both copies carry the same finding_id.
func NewClient(cfg aws.Config, optFns ...func(*sns.Options)) *sns.Client {
	opts := append([]func(*sns.Options){func(o *sns.Options) {
		o.Retryer = newRetryer()
		o.RetryMaxAttempts = 0 // else the client wraps Retryer with the environment's value
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(AttemptTimeout)
	}}, optFns...)
	return sns.NewFromConfig(cfg, opts...)
}

func newRetryer(optFns ...func(*retry.StandardOptions)) aws.Retryer {
	return retry.NewStandard(append([]func(*retry.StandardOptions){func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
	}}, optFns...)...)
}
