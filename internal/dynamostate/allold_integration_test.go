//go:build integration

package dynamostate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/detect/statetest"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// allOld makes dynalite behave like DynamoDB for
// ReturnValuesOnConditionCheckFailure=ALL_OLD: a failed conditional write
// carries the item (read right after the failure).
type allOld struct{ *dynamodb.Client }

func (a allOld) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opt ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := a.Client.UpdateItem(ctx, in, opt...)
	var failed *types.ConditionalCheckFailedException
	if err != nil && errors.As(err, &failed) && in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld {
		q, qerr := a.Client.Query(ctx, &dynamodb.QueryInput{
			TableName:              in.TableName,
			KeyConditionExpression: aws.String("pk = :pk AND sk = :sk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": in.Key["pk"], ":sk": in.Key["sk"],
			},
			ConsistentRead: aws.Bool(true),
		})
		if qerr == nil && len(q.Items) == 1 {
			failed.Item = q.Items[0]
		}
	}
	return out, err
}

// TestPropertyItemOnConditionFailure runs the property test with the item
// returned on a failed condition, as DynamoDB does and dynalite does not,
// so the path that learns a bucket without a read is checked too; with one
// and two batches per shard, so it meets full shards.
func TestPropertyItemOnConditionFailure(t *testing.T) {
	client := newClient(endpoint)
	for _, perItem := range []int{1, 2} {
		t.Run(fmt.Sprintf("BatchesPerItem=%d", perItem), func(t *testing.T) {
			t.Parallel()
			cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 15, Seed: 7, Workers: 6, Events: 40})
			statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
				return dynamostate.New(allOld{client}, newTable(t, client), now,
					dynamostate.WithLease(statetest.Lease), dynamostate.WithBatchesPerItem(perItem))
			}, cfg)
		})
	}
}
