//go:build integration

package dynamostate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// event is one matching request, as far as the state cares.
type event struct {
	at        time.Time
	userAgent string
	path      string
}

// aggregate builds what detect hands to State for one (rule, group) and a
// batch of events, within detect's caps: per bucket, DistinctCap hashes and
// BucketValuesCap values of at most StoredValueLen bytes per field. Hashes
// are memstate.MaxHashLen hex characters, the longest the state keeps, so
// item sizes measured with them are worst cases.
func aggregate(key string, window time.Duration, evs []event) detect.Aggregate {
	a := detect.Aggregate{Key: key, Window: window}
	byStart := make(map[time.Time][]event)
	for _, e := range evs {
		s := e.at.Truncate(detect.BucketWidth)
		byStart[s] = append(byStart[s], e)
	}
	starts := make([]time.Time, 0, len(byStart))
	for s := range byStart {
		starts = append(starts, s)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for _, s := range starts {
		es := byStart[s]
		b := detect.Bucket{Start: s, Count: int64(len(es)), First: es[0].at, Last: es[0].at}
		fields := map[string][]string{}
		for _, e := range es {
			if e.at.Before(b.First) {
				b.First = e.at
			}
			if e.at.After(b.Last) {
				b.Last = e.at
			}
			fields["user_agent"] = append(fields["user_agent"], e.userAgent)
			fields["path"] = append(fields["path"], e.path)
		}
		b.Distinct = map[string][]string{}
		b.Values = map[string][]string{}
		for f, vs := range fields {
			hs := uniqueSorted(vs, hash)
			if len(hs) > detect.DistinctCap {
				hs = hs[:detect.DistinctCap]
				b.Saturated = append(b.Saturated, f)
			}
			b.Distinct[f] = hs
			vals := uniqueSorted(vs, func(v string) string { return memstate.Clip(v, detect.StoredValueLen) })
			if len(vals) > detect.BucketValuesCap {
				vals = vals[:detect.BucketValuesCap]
				b.ValuesTruncated = true
			}
			b.Values[f] = vals
		}
		slices.Sort(b.Saturated)
		a.Buckets = append(a.Buckets, b)
		a.Count += b.Count
	}
	return a
}

func hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])[:memstate.MaxHashLen]
}

func uniqueSorted(vs []string, f func(string) string) []string {
	set := make(map[string]bool, len(vs))
	for _, v := range vs {
		set[f(v)] = true
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// itemSize is an item's size as DynamoDB counts it against the 400 KB
// limit: each attribute name's UTF-8 length plus its value's size, a
// string's UTF-8 length, a number's about one byte per two significant
// digits plus one, a set the sum of its elements, a Boolean one byte.
func itemSize(item map[string]types.AttributeValue) int {
	size := 0
	for name, v := range item {
		size += len(name) + valueSize(v)
	}
	return size
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	}
	panic("itemSize: unexpected attribute type")
}

func numberSize(s string) int {
	digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(s), "0")
	return int(math.Ceil(float64(len(digits))/2)) + 1
}
