//go:build integration

package dynamostate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

// TestPreviousReleaseTimeFormat: the previous release stored first and
// last as time.RFC3339Nano, which drops trailing zeros ("...:03Z"), and
// such a string does not order like the fixed-width ones. A merge into a
// bucket it wrote must still succeed and widen the times, or every retry
// of the delivery would fail the same way until the bucket expired.
func TestPreviousReleaseTimeFormat(t *testing.T) {
	ctx := context.Background()
	client := newClient(endpoint)
	table := newTable(t, client)
	key := "anonymous-request-allowed#203.0.113.7#0123456789abcdef"
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	// The item as the previous release left it: one batch, one request at
	// exactly 10:00:03.
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: key},
			"sk": &types.AttributeValueMemberS{Value: "b#2026-11-28T10:00:00Z#000"},
		},
		UpdateExpression: aws.String("SET #c = :c, #f = :t, #l = :t, #b = :b, #e = :e"),
		ExpressionAttributeNames: map[string]string{
			"#c": "count", "#f": "first", "#l": "last", "#b": "batches", "#e": "expires_at",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": &types.AttributeValueMemberN{Value: "1"},
			":t": &types.AttributeValueMemberS{Value: start.Add(3 * time.Second).Format(time.RFC3339Nano)},
			":b": &types.AttributeValueMemberSS{Value: []string{"oldbatch00000000"}},
			":e": &types.AttributeValueMemberN{Value: "4102444800"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := dynamostate.New(client, table, time.Now)
	tests := []struct {
		name        string
		first, last time.Time // of the batch
		want        detect.Bucket
	}{
		{"later in the same second", start.Add(3500 * time.Millisecond), start.Add(3500 * time.Millisecond),
			detect.Bucket{Start: start, Count: 2, First: start.Add(3 * time.Second), Last: start.Add(3500 * time.Millisecond)}},
		{"earlier in the minute", start.Add(time.Second), start.Add(2 * time.Second),
			detect.Bucket{Start: start, Count: 3, First: start.Add(time.Second), Last: start.Add(3500 * time.Millisecond)}},
	}
	for i, tc := range tests {
		agg := detect.Aggregate{Key: key, Window: time.Hour, Count: 1, FirstSeen: tc.first, LastSeen: tc.last,
			Buckets: []detect.Bucket{{Start: start, Count: 1, First: tc.first, Last: tc.last}}}
		ws, err := st.Apply(ctx, fmt.Sprintf("new-batch-%d", i), []detect.Aggregate{agg})
		if err != nil {
			t.Fatalf("%s: Apply: %v", tc.name, err)
		}
		if d := cmp.Diff([]detect.Bucket{tc.want}, ws[0].Buckets); d != "" {
			t.Errorf("%s: window (-want +got):\n%s", tc.name, d)
		}
	}
}
