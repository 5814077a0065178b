package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/anonwatch/anonwatch/internal/detect"
)

var _ detect.LiveMarks = (*State)(nil)

// A live-mark item holds detect.LiveMarks for one stream of one cluster:
//
//	pk       S  "live#" + the cluster (detect.ClusterRef)
//	sk       S  "s#" + the log stream: no other kind of item has it
//	since_ms N  the earliest log event time the function applied, Unix ms
//
// It has no TTL: a backfill needs it for as long as the table keeps state.
// A cluster has an item per stream the function was delivered (two or
// three API servers' audit streams, new ones as API servers are replaced).
const (
	pkLive        = "live#"
	skLive        = "s#"
	attrLiveSince = "since_ms"
)

// MarkLive lowers the stream's mark to at in one conditional UpdateItem; a
// failed condition means an earlier mark is stored, which is no error.
func (s *State) MarkLive(ctx context.Context, cluster, stream string, at time.Time) error {
	e := newExpr()
	since, v := e.name(attrLiveSince), e.value(attrNum(at.UnixMilli()))
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(pkLive+cluster, skLive+stream),
		UpdateExpression:          aws.String("SET " + since + " = " + v),
		ConditionExpression:       aws.String(fmt.Sprintf("attribute_not_exists(%s) OR %s > %s", since, since, v)),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("mark %s cluster %q stream %q live: %w", s.table, cluster, stream, err)
	}
	return nil
}

// LiveSince reads the marks of cluster's streams with a strongly
// consistent Query, page by page.
func (s *State) LiveSince(ctx context.Context, cluster string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	in := &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :sk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": attrS(pkLive + cluster), ":sk": attrS(skLive),
		},
		ConsistentRead: aws.Bool(true),
	}
	for {
		page, err := s.query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read %s cluster %q live marks: %w", s.table, cluster, err)
		}
		for _, it := range page.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			n, ok := it[attrLiveSince].(*types.AttributeValueMemberN)
			if sk == nil || !ok {
				return nil, fmt.Errorf("%s cluster %q: a live mark without %s", s.table, cluster, attrLiveSince)
			}
			ms, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s cluster %q live mark: %w", s.table, cluster, err)
			}
			out[strings.TrimPrefix(sk.Value, skLive)] = time.UnixMilli(ms).UTC()
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
