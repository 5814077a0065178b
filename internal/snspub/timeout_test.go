package snspub

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// TestNewClientAttemptTimeout checks that each try of a publish is bounded,
// so the retryer gets a stalled connection back as an error to retry
// (internal/drills' fault matrix shows the whole path: without the bound,
// one stalled publish held the invocation until Lambda's timeout).
func TestNewClientAttemptTimeout(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	hc, ok := NewClient(cfg).Options().HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTPClient is %T, want *awshttp.BuildableClient", NewClient(cfg).Options().HTTPClient)
	}
	if got := hc.GetTimeout(); got != AttemptTimeout {
		t.Errorf("HTTPClient timeout = %v, want AttemptTimeout (%v)", got, AttemptTimeout)
	}
}
