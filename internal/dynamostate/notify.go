package dynamostate

import (
	"context"
	"errors"
	"fmt"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Claim grants c when no finding for c.Key suppresses it and no other batch
// holds a live claim on c.Key, with one conditional UpdateItem; a failed
// condition is a refusal, not an error.
func (s *State) Claim(ctx context.Context, c detect.Claim) (bool, error) {
	if err := memstate.CheckClaim(c); err != nil {
		return false, err
	}
	now := s.now()
	until := now.Add(s.lease)
	e := newExpr()
	su, sev := e.name(attrSuppressUntil), e.name(attrSeverity)
	cb, cu := e.name(attrClaimBatch), e.name(attrClaimUntil)
	batch := e.value(attrS(c.Batch))
	update := fmt.Sprintf("SET %s = %s, %s = %s, %s = %s, %s = %s",
		cb, batch,
		e.name(attrClaimFinding), e.value(attrS(c.FindingID)),
		cu, e.value(attrN(unixNanos(until))),
		e.name(TTLAttribute), e.value(attrN(expiry(c.SuppressUntil, until))))
	// Suppression compares event times only, the lease wall times only.
	cond := fmt.Sprintf("(attribute_not_exists(%s) OR %s <= %s OR %s < %s) AND (attribute_not_exists(%s) OR %s = %s OR %s <= %s)",
		su, su, e.value(attrN(unixNanos(c.At))), sev, e.value(attrNum(int(c.Severity))),
		cb, cb, batch, cu, e.value(attrN(unixNanos(now))))
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(c.Key, skNotify),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &failed):
		return false, nil
	default:
		return false, fmt.Errorf("claim %s key %q: %w", s.table, c.Key, err)
	}
}

// MarkSent records c as the last finding sent for c.Key and releases
// c.Batch's claim if it still holds it. That takes one UpdateItem, or two
// when another batch took the claim over meanwhile (its lease had run out):
// the second records the finding and leaves that batch's claim alone.
func (s *State) MarkSent(ctx context.Context, c detect.Claim) error {
	if err := memstate.CheckClaim(c); err != nil {
		return err
	}
	err := s.markSent(ctx, c, true)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = s.markSent(ctx, c, false)
	}
	if err != nil {
		return fmt.Errorf("mark sent %s key %q: %w", s.table, c.Key, err)
	}
	return nil
}

// markSent records c; with release it also drops the pending claim, on
// condition that the claim is c.Batch's or absent.
func (s *State) markSent(ctx context.Context, c detect.Claim, release bool) error {
	e := newExpr()
	update := fmt.Sprintf("SET %s = %s, %s = %s, %s = %s, %s = %s, %s = %s",
		e.name(attrSuppressUntil), e.value(attrN(unixNanos(c.SuppressUntil))),
		e.name(attrSeverity), e.value(attrNum(int(c.Severity))),
		e.name(attrFindingID), e.value(attrS(c.FindingID)),
		e.name(attrSentBatch), e.value(attrS(c.Batch)),
		e.name(TTLAttribute), e.value(attrN(expiry(c.SuppressUntil, s.now()))))
	in := &dynamodb.UpdateItemInput{Key: itemKey(c.Key, skNotify)}
	if release {
		cb := e.name(attrClaimBatch)
		update += fmt.Sprintf(" REMOVE %s, %s, %s", cb, e.name(attrClaimFinding), e.name(attrClaimUntil))
		in.ConditionExpression = aws.String(fmt.Sprintf("attribute_not_exists(%s) OR %s = %s", cb, cb, e.value(attrS(c.Batch))))
	}
	in.UpdateExpression = aws.String(update)
	in.ExpressionAttributeNames = e.names
	in.ExpressionAttributeValues = e.values
	_, err := s.update(ctx, in)
	return err
}
