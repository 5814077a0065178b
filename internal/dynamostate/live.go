package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/anonwatch/anonwatch/internal/detect"
)

var _ detect.LiveMarks = (*State)(nil)

// A live-mark item holds detect.LiveMarks for one cluster:
//
//	pk       S  "live#" + the cluster
//	sk       S  "live": no other kind of item has it
//	since_ms N  the earliest log event time the function applied, Unix ms
//
// It has no TTL: a backfill needs it for as long as the table keeps state.
const (
	pkLive        = "live#"
	skLive        = "live"
	attrLiveSince = "since_ms"
)

// MarkLive lowers cluster's mark to at in one conditional UpdateItem; a
// failed condition means an earlier mark is stored, which is no error.
func (s *State) MarkLive(ctx context.Context, cluster string, at time.Time) error {
	e := newExpr()
	since, v := e.name(attrLiveSince), e.value(attrNum(at.UnixMilli()))
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(pkLive+cluster, skLive),
		UpdateExpression:          aws.String("SET " + since + " = " + v),
		ConditionExpression:       aws.String(fmt.Sprintf("attribute_not_exists(%s) OR %s > %s", since, since, v)),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("mark %s cluster %q live: %w", s.table, cluster, err)
	}
	return nil
}

// LiveSince reads cluster's mark with a strongly consistent Query.
func (s *State) LiveSince(ctx context.Context, cluster string) (time.Time, error) {
	out, err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk = :sk"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": attrS(pkLive + cluster), ":sk": attrS(skLive),
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s cluster %q live mark: %w", s.table, cluster, err)
	}
	if len(out.Items) == 0 {
		return time.Time{}, nil
	}
	n, ok := out.Items[0][attrLiveSince].(*types.AttributeValueMemberN)
	if !ok {
		return time.Time{}, fmt.Errorf("%s cluster %q live mark: no %s", s.table, cluster, attrLiveSince)
	}
	ms, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s cluster %q live mark: %w", s.table, cluster, err)
	}
	return time.UnixMilli(ms).UTC(), nil
}
