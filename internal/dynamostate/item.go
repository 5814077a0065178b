package dynamostate

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names. Expressions always refer to them through placeholders,
// so DynamoDB's reserved words (count, first, last) are harmless.
const (
	attrPK         = "pk"
	attrSK         = "sk"
	attrCount      = "count"
	attrFirst      = "first"
	attrLast       = "last"
	attrBatches    = "batches"
	attrMarks      = "marks"
	attrSaturated  = "saturated"
	attrOffered    = "offered"
	attrEvOffered  = "eoffered"
	attrTruncated  = "truncated"
	prefixDistinct = "d:"
	prefixValues   = "v:"
	prefixEvidence = "e:"

	attrSuppressUntil = "suppress_until_ns"
	attrSeverity      = "severity"
	attrFindingID     = "finding_id"
	attrSentBatch     = "sent_batch"
	attrClaimBatch    = "claim_batch"
	attrClaimFinding  = "claim_finding"
	attrClaimSeverity = "claim_severity"
	attrClaimUntil    = "claim_until_ns"
	attrPlaces        = "places"
	attrHeldSeverity  = "held_severity"

	skNotify    = "n#"
	skBucket    = "b#"
	skBudget    = "g#"
	skTimeFmt   = "2006-01-02T15:04:05Z"
	skShardFmt  = "%03d"
	skHighGuard = "#~" // sorts after every "#<shard>" suffix
)

// batchHash is what a bucket stores for a batch id: fixed-size whatever the
// id's length, so the batches set stays bounded.
func batchHash(batch string) string {
	sum := sha256.Sum256([]byte(batch))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// notifySK is the sort key of the notify item of the suppression period
// that starts at period.
func notifySK(period time.Time) string {
	return skNotify + period.UTC().Format(skTimeFmt)
}

func bucketSK(start time.Time, shard int) string {
	return skBucket + start.UTC().Format(skTimeFmt) + "#" + fmt.Sprintf(skShardFmt, shard)
}

// skRange returns the sort-key bounds that select every shard of every
// bucket with Start in [from, to].
func skRange(from, to time.Time) (lo, hi string) {
	return skBucket + from.UTC().Format(skTimeFmt), skBucket + to.UTC().Format(skTimeFmt) + skHighGuard
}

// unixNanos renders t as Unix nanoseconds in decimal. big.Int keeps years
// outside int64 nanoseconds (before 1678, after 2262) exact and ordered.
func unixNanos(t time.Time) string {
	n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(t.Nanosecond()))).String()
}

// shard is one decoded bucket item.
type shard struct {
	start    time.Time
	index    int
	count    int64
	first    time.Time
	last     time.Time
	hasFirst bool
	// firstRaw and lastRaw are the stored strings: a condition on an item
	// an earlier release wrote (RFC 3339 without trailing zeros, which does
	// not order like timeFmt) compares them for equality instead.
	firstRaw, lastRaw string
	batches           map[string]bool
	marks             []int
	saturated         []string
	distinct          map[string][]string
	values            map[string][]string
	offered           int64
	evidence          map[string][]string
	evOffered         int64
	truncated         bool
}

func decodeShard(item map[string]types.AttributeValue) (shard, error) {
	var sh shard
	sk, ok := item[attrSK].(*types.AttributeValueMemberS)
	if !ok {
		return sh, fmt.Errorf("item without string %s", attrSK)
	}
	rest, ok := strings.CutPrefix(sk.Value, skBucket)
	if !ok {
		return sh, fmt.Errorf("sort key %q is not a bucket", sk.Value)
	}
	ts, idx, ok := strings.Cut(rest, "#")
	if !ok {
		return sh, fmt.Errorf("sort key %q has no shard", sk.Value)
	}
	var err error
	if sh.start, err = time.Parse(skTimeFmt, ts); err != nil {
		return sh, fmt.Errorf("sort key %q: %w", sk.Value, err)
	}
	if sh.index, err = strconv.Atoi(idx); err != nil {
		return sh, fmt.Errorf("sort key %q: %w", sk.Value, err)
	}
	sh.batches = make(map[string]bool)
	for name, v := range item {
		if err := sh.decodeAttr(name, v); err != nil {
			return sh, fmt.Errorf("sort key %q attribute %q: %w", sk.Value, name, err)
		}
	}
	return sh, nil
}

func (sh *shard) decodeAttr(name string, v types.AttributeValue) error {
	var err error
	switch {
	case name == attrCount:
		sh.count, err = number(v)
	case name == attrOffered:
		sh.offered, err = number(v)
	case name == attrEvOffered:
		sh.evOffered, err = number(v)
	case name == attrFirst:
		sh.first, sh.firstRaw, err = timeAttr(v)
		sh.hasFirst = err == nil
	case name == attrLast:
		sh.last, sh.lastRaw, err = timeAttr(v)
	case name == attrTruncated:
		b, ok := v.(*types.AttributeValueMemberBOOL)
		if !ok {
			return fmt.Errorf("not BOOL")
		}
		sh.truncated = b.Value
	case name == attrBatches:
		ss, e := stringSet(v)
		for _, s := range ss {
			sh.batches[s] = true
		}
		err = e
	case name == attrSaturated:
		sh.saturated, err = stringSet(v)
	case name == attrMarks:
		ns, ok := v.(*types.AttributeValueMemberNS)
		if !ok {
			return fmt.Errorf("not NS")
		}
		for _, n := range ns.Value {
			m, e := strconv.Atoi(n)
			if e != nil {
				return e
			}
			sh.marks = append(sh.marks, m)
		}
	case strings.HasPrefix(name, prefixDistinct):
		if sh.distinct == nil {
			sh.distinct = make(map[string][]string)
		}
		sh.distinct[name[len(prefixDistinct):]], err = stringSet(v)
	case strings.HasPrefix(name, prefixValues):
		if sh.values == nil {
			sh.values = make(map[string][]string)
		}
		sh.values[name[len(prefixValues):]], err = stringSet(v)
	case strings.HasPrefix(name, prefixEvidence):
		if sh.evidence == nil {
			sh.evidence = make(map[string][]string)
		}
		sh.evidence[name[len(prefixEvidence):]], err = stringSet(v)
	}
	return err
}

func number(v types.AttributeValue) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("not N")
	}
	return strconv.ParseInt(n.Value, 10, 64)
}

func timeAttr(v types.AttributeValue) (time.Time, string, error) {
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		return time.Time{}, "", fmt.Errorf("not S")
	}
	t, err := time.Parse(time.RFC3339Nano, s.Value)
	return t.UTC(), s.Value, err
}

func stringSet(v types.AttributeValue) ([]string, error) {
	ss, ok := v.(*types.AttributeValueMemberSS)
	if !ok {
		return nil, fmt.Errorf("not SS")
	}
	return ss.Value, nil
}

// merged folds a bucket's shards, ascending by index, into what the bucket
// holds as one: counts add, First is the earliest and Last the latest of the
// shards', sets unite.
func merged(shards []shard) detect.Bucket {
	b := detect.Bucket{Start: shards[0].start}
	sat := make(map[string]bool)
	distinct := make(map[string]map[string]bool)
	values := make(map[string]map[string]bool)
	evidence := make(map[string]map[string]bool)
	marks := make(map[int]bool)
	firstSet := false
	for _, sh := range shards {
		b.Count += sh.count
		if sh.hasFirst && (!firstSet || sh.first.Before(b.First)) {
			b.First, firstSet = sh.first, true
		}
		if sh.last.After(b.Last) {
			b.Last = sh.last
		}
		b.ValuesTruncated = b.ValuesTruncated || sh.truncated
		for _, f := range sh.saturated {
			sat[f] = true
		}
		for _, m := range sh.marks {
			marks[m] = true
		}
		unite(distinct, sh.distinct)
		unite(values, sh.values)
		unite(evidence, sh.evidence)
	}
	memstate.ExportSets(&b, distinct, values, sat)
	b.Evidence = memstate.SortedSets(evidence)
	b.Marks = slices.Sorted(maps.Keys(marks))
	return b
}

func unite(dst map[string]map[string]bool, src map[string][]string) {
	for f, vs := range src {
		if len(vs) == 0 {
			continue
		}
		set := dst[f]
		if set == nil {
			set = make(map[string]bool, len(vs))
			dst[f] = set
		}
		for _, v := range vs {
			set[v] = true
		}
	}
}

// expr accumulates an update or condition expression with placeholders.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
	byName map[string]string
}

func newExpr() *expr {
	return &expr{
		names:  make(map[string]string),
		values: make(map[string]types.AttributeValue),
		byName: make(map[string]string),
	}
}

// name returns the placeholder for attribute a.
func (e *expr) name(a string) string {
	if p, ok := e.byName[a]; ok {
		return p
	}
	p := fmt.Sprintf("#n%d", len(e.names))
	e.names[p] = a
	e.byName[a] = p
	return p
}

// value returns a new placeholder for v.
func (e *expr) value(v types.AttributeValue) string {
	p := fmt.Sprintf(":v%d", len(e.values))
	e.values[p] = v
	return p
}

func attrS(v string) types.AttributeValue    { return &types.AttributeValueMemberS{Value: v} }
func attrN(v string) types.AttributeValue    { return &types.AttributeValueMemberN{Value: v} }
func attrSS(v []string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
func attrNum[I int | int64](v I) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(v), 10)}
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: attrS(pk), attrSK: attrS(sk)}
}

// timeFmt stores event times exactly, in UTC, at a fixed width, so that a
// condition comparing two stored times as strings compares them as times.
const timeFmt = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFmt) }

// ordered reports whether a stored time string has timeFmt's fixed width,
// so that comparing it as a string compares it as a time.
func ordered(raw string) bool {
	t, err := time.Parse(timeFmt, raw)
	return err == nil && t.Format(timeFmt) == raw
}

func unixTime(u int64) time.Time { return time.Unix(u, 0).UTC() }
