package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Claim grants c unless a finding of c.Severity or higher was sent for
// (c.Key, c.Period) or another batch holds a live claim there of c.Severity
// or higher, with one conditional UpdateItem; a failed condition is a
// refusal, not an error.
func (s *State) Claim(ctx context.Context, c detect.Claim) (detect.Grant, error) {
	if err := memstate.CheckClaim(c); err != nil {
		return detect.Grant{}, err
	}
	now := s.now()
	until := now.Add(s.lease)
	e := newExpr()
	sev, cb, cs, cu := e.name(attrSeverity), e.name(attrClaimBatch), e.name(attrClaimSeverity), e.name(attrClaimUntil)
	batch, level := e.value(attrS(c.Batch)), e.value(attrNum(int(c.Severity)))
	update := fmt.Sprintf("SET %s = %s, %s = %s, %s = %s, %s = %s, %s = %s",
		cb, batch,
		cs, level,
		e.name(attrClaimFinding), e.value(attrS(c.FindingID)),
		cu, e.value(attrN(unixNanos(until))),
		e.name(TTLAttribute), e.value(attrN(expiry(c.PeriodEnd, until))))
	// The sent and held severities are per period of event time; the
	// lease is wall time.
	held := e.name(attrHeldSeverity)
	cond := fmt.Sprintf("(attribute_not_exists(%s) OR %s < %s) AND (attribute_not_exists(%s) OR %s < %s) AND (attribute_not_exists(%s) OR %s = %s OR %s <= %s OR %s < %s)",
		sev, sev, level, held, held, level,
		cb, cb, batch, cu, e.value(attrN(unixNanos(now))), cs, level)
	out, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(c.Key, notifySK(c.Period)),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		// The severity sent before: whether this claim is a rise.
		ReturnValues: types.ReturnValueAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		g := detect.Grant{OK: true}
		if v, ok := out.Attributes[attrSeverity]; ok {
			n, err := number(v)
			if err != nil {
				return detect.Grant{}, fmt.Errorf("claim %s key %q: stored severity: %v", s.table, c.Key, err)
			}
			g.Sent = rules.Severity(n)
		}
		return g, nil
	case errors.As(err, &failed):
		return detect.Grant{}, nil
	default:
		return detect.Grant{}, fmt.Errorf("claim %s key %q: %w", s.table, c.Key, err)
	}
}

// Spend takes one of d.Limit places in the budget item of (d.Key,
// d.Period) for d.FindingID with one conditional UpdateItem: the places are
// a string set of finding IDs, added to only while it is smaller than the
// limit or already holds the ID, so concurrent writers can never take more
// than d.Limit and a retry of a granted finding is granted again.
func (s *State) Spend(ctx context.Context, d detect.Draw) (bool, error) {
	if err := memstate.CheckDraw(d); err != nil {
		return false, err
	}
	e := newExpr()
	places, id := e.name(attrPlaces), e.value(attrS(d.FindingID))
	update := fmt.Sprintf("ADD %s %s SET %s = %s",
		places, e.value(attrSS([]string{d.FindingID})),
		e.name(TTLAttribute), e.value(attrN(expiry(d.PeriodEnd, s.now()))))
	cond := fmt.Sprintf("attribute_not_exists(%s) OR contains(%s, %s) OR size(%s) < %s",
		places, places, id, places, e.value(attrNum(d.Limit)))
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(d.Key, skBudget+d.Period.UTC().Format(skTimeFmt)),
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
		return false, fmt.Errorf("spend budget %s key %q: %w", s.table, d.Key, err)
	}
}

// MarkSent records c as sent for (c.Key, c.Period), keeping the higher of
// the recorded severity and c's, and releases c.Batch's claim if it still
// holds it. DynamoDB has no max(), so each step is a condition: one
// UpdateItem when c is the highest so far and its claim is still c.Batch's
// (the usual case), up to three when a higher claim overtook it.
func (s *State) MarkSent(ctx context.Context, c detect.Claim) error {
	if err := memstate.CheckClaim(c); err != nil {
		return err
	}
	steps := []struct{ record, release bool }{{true, true}, {true, false}, {false, true}}
	var failed *types.ConditionalCheckFailedException
	for _, st := range steps {
		err := s.markSent(ctx, c, st.record, st.release)
		if err == nil {
			// Step 2 succeeding means step 1 failed on the claim alone:
			// it is another batch's, so there is nothing to release.
			return nil
		}
		if !errors.As(err, &failed) {
			return fmt.Errorf("mark sent %s key %q: %w", s.table, c.Key, err)
		}
	}
	// A higher severity is recorded and the claim is not c.Batch's: nothing
	// is left to do.
	return nil
}

// markSent records c's severity (record, on condition that no higher or
// equal one is recorded) and drops the pending claim (release, on
// condition that it is c.Batch's or absent).
func (s *State) markSent(ctx context.Context, c detect.Claim, record, release bool) error {
	e := newExpr()
	var sets, conds []string
	switch {
	case record && c.Held:
		// Held for a digest: suppresses the finding, but is no rise base.
		held, level := e.name(attrHeldSeverity), e.value(attrNum(int(c.Severity)))
		sets = append(sets,
			held+" = "+level,
			e.name(TTLAttribute)+" = "+e.value(attrN(expiry(c.PeriodEnd, s.now()))))
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s < %s)", held, held, level))
	case record:
		sev, level := e.name(attrSeverity), e.value(attrNum(int(c.Severity)))
		sets = append(sets,
			sev+" = "+level,
			e.name(attrFindingID)+" = "+e.value(attrS(c.FindingID)),
			e.name(attrSentBatch)+" = "+e.value(attrS(c.Batch)),
			e.name(TTLAttribute)+" = "+e.value(attrN(expiry(c.PeriodEnd, s.now()))))
		conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s < %s)", sev, sev, level))
	}
	update := ""
	if len(sets) > 0 {
		update = "SET " + strings.Join(sets, ", ")
	}
	if release {
		cb := e.name(attrClaimBatch)
		update += fmt.Sprintf(" REMOVE %s, %s, %s, %s", cb, e.name(attrClaimSeverity), e.name(attrClaimFinding), e.name(attrClaimUntil))
		batch := e.value(attrS(c.Batch))
		if record {
			conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s = %s)", cb, cb, batch))
		} else {
			// Only a claim of c.Batch's is released; absent, nothing to do.
			conds = append(conds, fmt.Sprintf("%s = %s", cb, batch))
		}
	}
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       itemKey(c.Key, notifySK(c.Period)),
		UpdateExpression:          aws.String(strings.TrimSpace(update)),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	return err
}
