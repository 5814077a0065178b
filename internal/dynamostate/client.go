package dynamostate

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Retry settings for the DynamoDB client; ClientOptions explains them.
const (
	// MaxAttempts is how often one operation is tried, the first included.
	MaxAttempts = 5
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff = 2 * time.Second
	// AttemptTimeout bounds one attempt, from sending to the whole response.
	AttemptTimeout = 3 * time.Second
)

// ClientOptions returns the options the detector's DynamoDB client is built
// with, for dynamodb.NewFromConfig(cfg, ClientOptions()...).
//
// The SDK's standard retryer retries throttling, 5xx and dropped
// connections; every State operation is safe to repeat (Apply's writes are
// conditional on the batch, Claim and MarkSent converge), so retrying a
// write whose response was lost only costs a read. Five attempts (the
// DynamoDB default is four) ride out the short throttling an on-demand table
// shows while it doubles its capacity for a sudden attack. Backoff is capped
// at two seconds and each attempt at three, so one operation gives up within
// about 23 s: failing the invocation then is better than holding it, because
// Lambda retries the whole batch and Apply is idempotent. The retry quota
// (token bucket) is kept, so during an outage the client fails fast instead
// of multiplying the load.
func ClientOptions() []func(*dynamodb.Options) {
	return []func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = MaxAttempts
			so.MaxBackoff = MaxBackoff
			so.BaseDelay = 25 * time.Millisecond // the SDK's DynamoDB default
		})
		// The SDK sets no overall timeout per attempt; a connection that
		// stalls without failing would otherwise hang until Lambda kills
		// the invocation.
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(AttemptTimeout)
	}}
}
