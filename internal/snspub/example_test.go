package snspub_test

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/snspub"
)

// printAPI stands in for *sns.Client and prints what would be published.
type printAPI struct{}

func (printAPI) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	fmt.Println("topic:", aws.ToString(in.TopicArn))
	fmt.Println("structure:", aws.ToString(in.MessageStructure))
	fmt.Println("subject:", aws.ToString(in.Subject))
	names := make([]string, 0, len(in.MessageAttributes))
	for name := range in.MessageAttributes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := in.MessageAttributes[name]
		fmt.Printf("attribute %s (%s): %s\n", name, aws.ToString(v.DataType), aws.ToString(v.StringValue))
	}
	return &sns.PublishOutput{}, nil
}

func Example() {
	// In the function: snspub.New(snspub.NewClient(cfg), topicARN).
	p := snspub.New(printAPI{}, "arn:aws:sns:us-east-1:123456789012:anonwatch-findings")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	err := p.Publish(context.Background(), &detect.Finding{
		ID: "f-1", Rule: "anonymous-request-allowed", Title: "Anonymous request allowed", Severity: "high",
		ClusterName: "demo", Count: 3, Window: "5m0s", FirstSeen: at, LastSeen: at, Summary: "3 requests",
	})
	fmt.Println("error:", err, "calls:", p.Calls())
	// Output:
	// topic: arn:aws:sns:us-east-1:123456789012:anonwatch-findings
	// structure: json
	// subject: [HIGH] anonymous-request-allowed on demo from unknown address
	// attribute cluster_name (String): demo
	// attribute count (Number): 3
	// attribute rule (String): anonymous-request-allowed
	// attribute severity (String): high
	// error: <nil> calls: 1
}
