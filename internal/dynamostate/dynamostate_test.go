package dynamostate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// stub answers the SDK's HTTP requests in memory, so these tests run a real
// client (serialization, error decoding, retries) without a network.
type stub struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []stubReq
	respond func(n int, op string, body map[string]any) (int, string)
}

type stubReq struct {
	Op   string
	Body map[string]any
}

func (s *stub) Do(r *http.Request) (*http.Response, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		s.t.Errorf("request body is not JSON: %v", err)
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if err := unusedPlaceholders(body); err != nil {
		// DynamoDB answers such a request with a ValidationException.
		s.t.Errorf("%s: %v", op, err)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, stubReq{op, body})
	n := len(s.reqs)
	s.mu.Unlock()
	status, resp := s.respond(n, op, body)
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(resp)),
		Request:    r,
	}, nil
}

// unusedPlaceholders reports a name or value placeholder that no expression
// of the request uses, which DynamoDB rejects.
func unusedPlaceholders(body map[string]any) error {
	var exprs []string
	for _, k := range []string{"UpdateExpression", "ConditionExpression", "KeyConditionExpression", "FilterExpression", "ProjectionExpression"} {
		if e, ok := body[k].(string); ok {
			exprs = append(exprs, e)
		}
	}
	all := strings.Join(exprs, " ")
	for _, k := range []string{"ExpressionAttributeNames", "ExpressionAttributeValues"} {
		m, _ := body[k].(map[string]any)
		for p := range m {
			if !regexp.MustCompile(regexp.QuoteMeta(p) + `\b`).MatchString(all) {
				return fmt.Errorf("placeholder %s unused in %q", p, all)
			}
		}
	}
	return nil
}

func (s *stub) ops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reqs {
		out = append(out, r.Op)
	}
	return out
}

func newStubClient(t *testing.T, respond func(n int, op string, body map[string]any) (int, string)) (*dynamodb.Client, *stub) {
	st := &stub{t: t, respond: respond}
	opts := append(ClientOptions(), func(o *dynamodb.Options) {
		o.Region = "us-east-1"
		o.BaseEndpoint = aws.String("http://dynamodb.test")
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}, nil
		})
		o.HTTPClient = st
	})
	return dynamodb.New(dynamodb.Options{}, opts...), st
}

func awsError(typ, msg string) string {
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + typ, "message": msg})
	return string(b)
}

var (
	t0    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	clock = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
)

func testAgg() detect.Aggregate {
	b := func(m int) detect.Bucket {
		s := t0.Add(time.Duration(m) * time.Minute)
		return detect.Bucket{Start: s, Count: 2, First: s.Add(time.Second), Last: s.Add(2 * time.Second)}
	}
	return detect.Aggregate{Key: "probe#203.0.113.7", Window: 5 * time.Minute, Buckets: []detect.Bucket{b(0), b(1)}}
}

// shardJSON is a stored bucket item in DynamoDB's JSON.
func shardJSON(start time.Time, shard, count int, batches ...string) map[string]any {
	item := map[string]any{
		"pk":    map[string]any{"S": "probe#203.0.113.7"},
		"sk":    map[string]any{"S": bucketSK(start, shard)},
		"count": map[string]any{"N": strconv.Itoa(count)},
		"first": map[string]any{"S": start.Add(time.Second).Format(timeFmt)},
		"last":  map[string]any{"S": start.Add(2 * time.Second).Format(timeFmt)},
	}
	if len(batches) > 0 {
		item["batches"] = map[string]any{"SS": batches}
	}
	return item
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// echoUpdate answers an UpdateItem with the item its key names, holding the
// batch it records, as ALL_NEW would.
func echoUpdate(body map[string]any) string {
	k := body["Key"].(map[string]any)
	sk := k["sk"].(map[string]any)["S"].(string)
	start, _ := time.Parse(skTimeFmt, strings.TrimSuffix(strings.TrimPrefix(sk, skBucket), "#000"))
	return mustJSON(map[string]any{"Attributes": shardJSON(start, 0, 2, batchHash("batch-1"))})
}

func TestApplyNoAggregatesMakesNoCalls(t *testing.T) {
	client, st := newStubClient(t, func(int, string, map[string]any) (int, string) {
		t.Error("unexpected call")
		return 500, "{}"
	})
	s := New(client, "state", clock)
	got, err := s.Apply(context.Background(), "batch-1", nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("Apply(nil) = %v, %v; want no windows, no error", got, err)
	}
	if s.Calls() != 0 || len(st.ops()) != 0 {
		t.Errorf("Calls() = %d, requests %v; want none", s.Calls(), st.ops())
	}
}

// A batch writes its buckets first and reads the window once, afterwards:
// of two invocations writing to one window at once, the later reader sees
// both. The read reaches one window past the batch's last bucket, because a
// late batch can complete a window that ends at a bucket stored earlier.
func TestApplyWritesThenQueriesOncePerAggregate(t *testing.T) {
	client, st := newStubClient(t, func(_ int, op string, body map[string]any) (int, string) {
		if op == "Query" {
			return 200, mustJSON(map[string]any{"Items": []any{shardJSON(t0, 0, 2, batchHash("batch-1")), shardJSON(t0.Add(time.Minute), 0, 2, batchHash("batch-1"))}})
		}
		return 200, echoUpdate(body)
	})
	s := New(client, "state", clock)
	got, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{testAgg()})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"UpdateItem", "UpdateItem", "Query"}, st.ops()); d != "" {
		t.Errorf("operations (-want +got):\n%s", d)
	}
	if s.Calls() != 3 {
		t.Errorf("Calls() = %d, want 3", s.Calls())
	}
	q := st.reqs[2].Body
	gotQuery := map[string]any{
		"TableName":      q["TableName"],
		"ConsistentRead": q["ConsistentRead"],
		"lo":             q["ExpressionAttributeValues"].(map[string]any)[":lo"],
		"hi":             q["ExpressionAttributeValues"].(map[string]any)[":hi"],
	}
	wantQuery := map[string]any{
		"TableName":      "state",
		"ConsistentRead": true,
		"lo":             map[string]any{"S": "b#2024-05-01T11:56:00Z"},   // the 5-minute window ending at 12:00
		"hi":             map[string]any{"S": "b#2024-05-01T12:05:00Z#~"}, // the one starting at 12:01
	}
	if d := cmp.Diff(wantQuery, gotQuery); d != "" {
		t.Errorf("query (-want +got):\n%s", d)
	}
	u := st.reqs[0].Body
	if u["ReturnValuesOnConditionCheckFailure"] != "ALL_OLD" || !strings.Contains(u["ConditionExpression"].(string), "NOT contains(") {
		t.Errorf("update lacks ALL_OLD on failure or the batch condition: %v", u)
	}
	if sk := u["Key"].(map[string]any)["sk"]; !cmp.Equal(sk, map[string]any{"S": "b#2024-05-01T12:00:00Z#000"}) {
		t.Errorf("update key sk = %v", sk)
	}
	if len(got) != 1 || len(got[0].Buckets) != 2 || got[0].Buckets[0].Count != 2 {
		t.Errorf("window = %+v, want two buckets from the read", got)
	}
}

// A retried batch finds its buckets merged: each write's condition fails,
// and the bucket, read (dynalite) or returned with the failure (DynamoDB),
// shows the batch, so nothing is written twice.
func TestApplySkipsBucketsTheBatchAlreadyMerged(t *testing.T) {
	merged := func(start time.Time) map[string]any { return shardJSON(start, 0, 2, batchHash("batch-1")) }
	tests := []struct {
		name    string
		withOld bool // the failure carries the item, as DynamoDB's ALL_OLD does
		want    []string
	}{
		{"read after each failed write", false, []string{"UpdateItem", "Query", "UpdateItem", "Query", "Query"}},
		{"item returned with the failure", true, []string{"UpdateItem", "UpdateItem", "Query"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, st := newStubClient(t, func(_ int, op string, body map[string]any) (int, string) {
				if op == "Query" {
					return 200, mustJSON(map[string]any{"Items": []any{merged(t0), merged(t0.Add(time.Minute))}})
				}
				sk := body["Key"].(map[string]any)["sk"].(map[string]any)["S"].(string)
				start, _ := time.Parse(skTimeFmt, strings.TrimSuffix(strings.TrimPrefix(sk, skBucket), "#000"))
				e := map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}
				if tc.withOld {
					e["Item"] = merged(start)
				}
				return 400, mustJSON(e)
			})
			s := New(client, "state", clock)
			if _, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{testAgg()}); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, st.ops()); d != "" {
				t.Errorf("operations (-want +got):\n%s", d)
			}
		})
	}
}

// A failed condition most often means the SDK retried a write that had
// already succeeded; Apply must read again and carry on, not fail.
func TestApplyTranslatesConditionFailure(t *testing.T) {
	client, st := newStubClient(t, func(n int, op string, body map[string]any) (int, string) {
		switch {
		case op == "UpdateItem" && n == 1:
			return 400, awsError("ConditionalCheckFailedException", "The conditional request failed")
		case op == "Query":
			return 200, mustJSON(map[string]any{"Items": []any{shardJSON(t0, 0, 2, batchHash("batch-1")), shardJSON(t0.Add(time.Minute), 0, 2, batchHash("batch-1"))}})
		default:
			return 200, echoUpdate(body)
		}
	})
	s := New(client, "state", clock)
	got, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{testAgg()})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if d := cmp.Diff([]string{"UpdateItem", "Query", "UpdateItem", "Query"}, st.ops()); d != "" {
		t.Errorf("operations (-want +got):\n%s", d)
	}
	if len(got[0].Buckets) != 2 {
		t.Errorf("window has %d buckets, want 2", len(got[0].Buckets))
	}
}

// first and last are the min and max of what was merged. The blind write
// keeps first and sets last on condition that the batch widens neither the
// other way; when it does, the write is made again knowing the stored times,
// setting only what the batch widens, on condition nobody widened it more.
func TestApplyWidensFirstAndLast(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	stored := func(first, last time.Time) map[string]any {
		item := shardJSON(t0, 0, 3, batchHash("other"))
		item["first"] = map[string]any{"S": formatTime(first)}
		item["last"] = map[string]any{"S": formatTime(last)}
		return item
	}
	a := testAgg()
	a.Buckets = a.Buckets[:1] // first 12:00:01, last 12:00:02
	const (
		blindFirst = "first = if_not_exists(first, S:2024-05-01T12:00:01.000000000Z)"
		setLast    = "last = S:2024-05-01T12:00:02.000000000Z" // blind or not
		condFirst  = "(attribute_not_exists(first) OR first <= S:2024-05-01T12:00:01.000000000Z)"
		condLast   = "(attribute_not_exists(last) OR last <= S:2024-05-01T12:00:02.000000000Z)"
		setFirst   = "first = S:2024-05-01T12:00:01.000000000Z"
		ifFirst    = "first > S:2024-05-01T12:00:01.000000000Z"
		ifLast     = "last < S:2024-05-01T12:00:02.000000000Z"
	)
	tests := []struct {
		name   string
		stored map[string]any // nil: the blind write succeeds
		want   [][]string     // per write, the clauses on first and last
	}{
		{"in order: one write", nil, [][]string{{blindFirst, setLast, condFirst, condLast}}},
		{"delivered late: lowers first", stored(at(30_000), at(50_000)), [][]string{
			{blindFirst, setLast, condFirst, condLast}, {setFirst, ifFirst}}},
		{"around what is stored: lowers first, raises last", stored(at(1500), at(1500)), [][]string{
			{blindFirst, setLast, condFirst, condLast}, {setLast, setFirst, ifFirst, ifLast}}},
		{"inside what is stored: keeps both", stored(at(0), at(50_000)), [][]string{
			{blindFirst, setLast, condFirst, condLast}, {}}},
	}
	clauses := []string{blindFirst, setLast, condFirst, condLast, setFirst, ifFirst, ifLast}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, st := newStubClient(t, func(n int, op string, body map[string]any) (int, string) {
				switch {
				case op == "Query":
					return 200, `{"Items":[]}`
				case n == 1 && tc.stored != nil:
					return 400, mustJSON(map[string]any{
						"__type":  "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
						"message": "The conditional request failed",
						"Item":    tc.stored,
					})
				default:
					return 200, `{}`
				}
			})
			s := New(client, "state", clock)
			if _, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{a}); err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, r := range st.reqs {
				if r.Op != "UpdateItem" {
					continue
				}
				names := r.Body["ExpressionAttributeNames"].(map[string]any)
				vals := r.Body["ExpressionAttributeValues"].(map[string]any)
				text := expand(r.Body["UpdateExpression"].(string), names, vals) + " if " + expand(r.Body["ConditionExpression"].(string), names, vals)
				present := []string{}
				for _, c := range clauses {
					if strings.Contains(text, c+",") || strings.Contains(text, c+" ") || strings.HasSuffix(text, c) {
						present = append(present, c)
					}
				}
				got = append(got, present)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("clauses on first and last per write (-want +got):\n%s", d)
			}
		})
	}
}

func TestApplyWrapsOtherErrors(t *testing.T) {
	client, _ := newStubClient(t, func(_ int, op string, _ map[string]any) (int, string) {
		if op == "Query" {
			return 200, `{"Items":[]}`
		}
		return 400, awsError("ValidationException", "Item size has exceeded the maximum allowed size")
	})
	s := New(client, "state-table", clock)
	_, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{testAgg()})
	var apiErr smithy.APIError
	if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Fatalf("Apply error = %v, want a wrapped ValidationException", err)
	}
	for _, want := range []string{"state-table", "probe#203.0.113.7", "2024-05-01T12:0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		failures   int // UpdateItem attempts that fail before one succeeds
		status     int
		body       string
		wantErr    bool
		wantWrites int // UpdateItem requests the server sees
	}{
		{"two 500s then success", 2, 500, awsError("InternalServerError", "boom"), false, 3},
		{"throttled once", 1, 400, awsError("ThrottlingException", "slow down"), false, 2},
		{"500 on every attempt", 100, 500, awsError("InternalServerError", "boom"), true, MaxAttempts},
		{"validation errors are not retried", 100, 400, awsError("ValidationException", "bad"), true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			writes := 0
			client, _ := newStubClient(t, func(_ int, op string, body map[string]any) (int, string) {
				if op == "Query" {
					return 200, `{"Items":[]}`
				}
				mu.Lock()
				defer mu.Unlock()
				writes++
				if writes <= tc.failures {
					return tc.status, tc.body
				}
				return 200, echoUpdate(body)
			})
			s := New(client, "state", clock)
			a := testAgg()
			a.Buckets = a.Buckets[:1]
			_, err := s.Apply(context.Background(), "batch-1", []detect.Aggregate{a})
			if (err != nil) != tc.wantErr {
				t.Errorf("Apply error = %v, want error: %v", err, tc.wantErr)
			}
			if writes != tc.wantWrites {
				t.Errorf("server saw %d UpdateItem requests, want %d", writes, tc.wantWrites)
			}
			// One write, then the read unless the write failed for good.
			wantCalls := int64(2)
			if tc.wantErr {
				wantCalls = 1
			}
			if s.Calls() != wantCalls {
				t.Errorf("Calls() = %d, want %d: retries inside one operation do not count", s.Calls(), wantCalls)
			}
		})
	}
}

func testClaim() detect.Claim {
	return detect.Claim{
		Key: "probe#203.0.113.7", FindingID: "f1", Batch: "batch-1", Severity: rules.High,
		Period: t0, PeriodEnd: t0.Add(time.Hour),
	}
}

func TestClaim(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    bool
		wantErr bool
	}{
		{"granted", 200, `{}`, true, false},
		{"condition failed means refused", 400, awsError("ConditionalCheckFailedException", "The conditional request failed"), false, false},
		{"other errors are returned", 400, awsError("ResourceNotFoundException", "no table"), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, st := newStubClient(t, func(int, string, map[string]any) (int, string) { return tc.status, tc.body })
			s := New(client, "state", clock, WithLease(time.Minute))
			got, err := s.Claim(context.Background(), testClaim())
			if got.OK != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("Claim = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "probe#203.0.113.7") {
				t.Errorf("error %q does not name the key", err)
			}
			body := st.reqs[0].Body
			vals := body["ExpressionAttributeValues"].(map[string]any)
			names := body["ExpressionAttributeNames"].(map[string]any)
			cond := expand(body["ConditionExpression"].(string), names, vals)
			want := "(attribute_not_exists(severity) OR severity < N:3) AND " +
				"(attribute_not_exists(held_severity) OR held_severity < N:3) AND " +
				"(attribute_not_exists(claim_batch) OR claim_batch = S:batch-1 OR claim_until_ns <= N:1893456000000000000 OR claim_severity < N:3)"
			if cond != want {
				t.Errorf("condition\n got %s\nwant %s", cond, want)
			}
			update := expand(body["UpdateExpression"].(string), names, vals)
			if !strings.Contains(update, "claim_until_ns = N:1893456060000000000") || !strings.Contains(update, "claim_severity = N:3") {
				t.Errorf("update %s does not set the lease to now + 1m and the claim's severity", update)
			}
			if sk := body["Key"].(map[string]any)["sk"]; !cmp.Equal(sk, map[string]any{"S": "n#2024-05-01T12:00:00Z"}) {
				t.Errorf("claim key sk = %v, want the period's notify item", sk)
			}
		})
	}
}

// expand replaces placeholders with attribute names and typed values, so a
// test can read an expression as DynamoDB evaluates it.
func expand(e string, names, vals map[string]any) string {
	var pairs []string
	for p, n := range names {
		pairs = append(pairs, p, n.(string))
	}
	for p, v := range vals {
		for typ, x := range v.(map[string]any) {
			pairs = append(pairs, p, typ+":"+strings.Trim(mustJSON(x), `"`))
		}
	}
	// Longest placeholders first, so #n1 does not eat into #n10.
	r := strings.NewReplacer(sortLongestFirst(pairs)...)
	return r.Replace(e)
}

func sortLongestFirst(pairs []string) []string {
	type kv struct{ k, v string }
	var kvs []kv
	for i := 0; i < len(pairs); i += 2 {
		kvs = append(kvs, kv{pairs[i], pairs[i+1]})
	}
	for i := range kvs {
		for j := i + 1; j < len(kvs); j++ {
			if len(kvs[j].k) > len(kvs[i].k) {
				kvs[i], kvs[j] = kvs[j], kvs[i]
			}
		}
	}
	var out []string
	for _, p := range kvs {
		out = append(out, p.k, p.v)
	}
	return out
}

// MarkSent keeps the higher severity (DynamoDB has no max) and releases
// only its own claim: one call usually, up to three when another batch's
// higher claim overtook it.
func TestMarkSent(t *testing.T) {
	const (
		record  = "SET severity = N:3, finding_id = S:f1, sent_batch = S:batch-1, expires_at = N:1893542400"
		release = "REMOVE claim_batch, claim_severity, claim_finding, claim_until_ns"
		lower   = "(attribute_not_exists(severity) OR severity < N:3)"
		mine    = "claim_batch = S:batch-1"
	)
	tests := []struct {
		name  string
		fails int // leading calls whose condition fails
		want  []string
	}{
		{"highest so far, own claim: one call", 0, []string{
			record + " " + release + " if " + lower + " AND (attribute_not_exists(claim_batch) OR " + mine + ")"}},
		{"another batch's claim: record without releasing", 1, []string{
			record + " " + release + " if " + lower + " AND (attribute_not_exists(claim_batch) OR " + mine + ")",
			record + " if " + lower}},
		{"a higher severity recorded: only release", 2, []string{
			record + " " + release + " if " + lower + " AND (attribute_not_exists(claim_batch) OR " + mine + ")",
			record + " if " + lower,
			release + " if " + mine}},
		{"higher recorded and another's claim: nothing to do", 3, []string{
			record + " " + release + " if " + lower + " AND (attribute_not_exists(claim_batch) OR " + mine + ")",
			record + " if " + lower,
			release + " if " + mine}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, st := newStubClient(t, func(n int, _ string, _ map[string]any) (int, string) {
				if n <= tc.fails {
					return 400, awsError("ConditionalCheckFailedException", "The conditional request failed")
				}
				return 200, `{}`
			})
			s := New(client, "state", clock)
			if err := s.MarkSent(context.Background(), testClaim()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range st.reqs {
				names := r.Body["ExpressionAttributeNames"].(map[string]any)
				vals := r.Body["ExpressionAttributeValues"].(map[string]any)
				got = append(got, expand(r.Body["UpdateExpression"].(string), names, vals)+" if "+expand(r.Body["ConditionExpression"].(string), names, vals))
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
		})
	}
}

func TestCreateTable(t *testing.T) {
	active := mustJSON(map[string]any{"Table": map[string]any{
		"TableName":   "state",
		"TableStatus": "ACTIVE",
		"KeySchema":   []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}, map[string]any{"AttributeName": "sk", "KeyType": "RANGE"}},
	}})
	wrongKeys := strings.Replace(active, `"sk"`, `"other"`, 1)
	tests := []struct {
		name      string
		create    string // error type, or "" for success
		describe  string
		ttlStatus int
		ttlBody   string
		check     func(error) bool
	}{
		{"all supported", "", active, 200, `{}`, func(err error) bool { return err == nil }},
		{"dynalite: no TTL", "", active, 400, awsError("UnknownOperationException", "UnknownError"), func(err error) bool { return errors.Is(err, ErrTTLUnsupported) }},
		{"table exists, TTL already on", "ResourceInUseException", active, 400, awsError("ValidationException", "TimeToLive is already enabled"), func(err error) bool { return err == nil }},
		{"table exists with other keys", "ResourceInUseException", wrongKeys, 200, `{}`, func(err error) bool { return err != nil && !errors.Is(err, ErrTTLUnsupported) }},
		{"TTL fails otherwise", "", active, 400, awsError("AccessDeniedException", "no"), func(err error) bool { return err != nil && !errors.Is(err, ErrTTLUnsupported) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, st := newStubClient(t, func(_ int, op string, body map[string]any) (int, string) {
				switch op {
				case "CreateTable":
					if body["BillingMode"] != "PAY_PER_REQUEST" || !cmp.Equal(body["SSESpecification"], map[string]any{"Enabled": true}) {
						t.Errorf("CreateTable input %v: want on-demand billing and SSE", body)
					}
					if tc.create != "" {
						return 400, awsError(tc.create, "exists")
					}
					return 200, `{}`
				case "DescribeTable":
					return 200, tc.describe
				case "UpdateTimeToLive":
					spec := body["TimeToLiveSpecification"].(map[string]any)
					if spec["AttributeName"] != TTLAttribute || spec["Enabled"] != true {
						t.Errorf("TTL spec %v", spec)
					}
					return tc.ttlStatus, tc.ttlBody
				}
				t.Errorf("unexpected %s", op)
				return 500, `{}`
			})
			err := CreateTable(context.Background(), client, "state")
			if !tc.check(err) {
				t.Errorf("CreateTable error = %v (requests %v)", err, st.ops())
			}
		})
	}
}

func TestUnixNanos(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0"},
		{time.Unix(1714564800, 123), "1714564800000000123"},
		{time.Unix(-1, 999999999), "-1"},
		{time.Time{}, "-62135596800000000000"},
		{time.Date(3000, 1, 1, 0, 0, 0, 1, time.UTC), "32503680000000000001"},
	}
	for _, tc := range tests {
		if got := unixNanos(tc.t); got != tc.want {
			t.Errorf("unixNanos(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}
}

func TestMergedShards(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	shards := []shard{
		{start: t0, index: 0, count: 3, first: at(10), hasFirst: true, last: at(20), offered: 30,
			distinct: map[string][]string{"path": {"b", "a"}}, values: map[string][]string{"path": {"/a"}}, marks: []int{2}},
		{start: t0, index: 1, count: 4, first: at(5), hasFirst: true, last: at(15), truncated: true, saturated: []string{"verb"},
			distinct: map[string][]string{"path": {"c"}}, values: map[string][]string{"path": {"/b"}, "user_agent": {"curl"}}, marks: []int{0, 2}},
	}
	want := detect.Bucket{
		Start: t0, Count: 7, First: at(5), Last: at(20), // earliest and latest, whichever shard
		Distinct:        map[string][]string{"path": {"a", "b", "c"}},
		Saturated:       []string{"verb"},
		Marks:           []int{0, 2},
		Values:          map[string][]string{"path": {"/a", "/b"}, "user_agent": {"curl"}},
		ValuesTruncated: true,
	}
	if d := cmp.Diff(want, merged(shards)); d != "" {
		t.Errorf("merged (-want +got):\n%s", d)
	}
}

func TestDecodeShardRejectsForeignItems(t *testing.T) {
	for _, sk := range []string{"notify", "b#2024-05-01T12:00:00Z", "b#yesterday#000", "b#2024-05-01T12:00:00Z#x"} {
		if _, err := decodeShard(itemKey("k", sk)); err == nil {
			t.Errorf("decodeShard(sk %q) succeeded", sk)
		}
	}
}

// What a State read or wrote of a bucket and can only stay true shapes the
// first write of a later batch: once the values budget is spent and a
// distinct set is at its cap, and the stored times already lie beyond the
// batch's, the write carries no values, no hashes and no conditions that
// could fail, so a busy minute's batch costs one write, not three calls.
func TestApplyUsesWhatItKnowsOfABucket(t *testing.T) {
	full := shardJSON(t0, 0, 60, batchHash("earlier"))
	full["offered"] = map[string]any{"N": "40"}
	full["first"] = map[string]any{"S": formatTime(t0)}
	full["last"] = map[string]any{"S": formatTime(t0.Add(50 * time.Second))}
	var hs []string
	for i := range detect.DistinctCap {
		hs = append(hs, fmt.Sprintf("h%03d", i))
	}
	full["d:path"] = map[string]any{"SS": hs}
	client, st := newStubClient(t, func(_ int, op string, _ map[string]any) (int, string) {
		if op == "Query" {
			return 200, mustJSON(map[string]any{"Items": []any{full}})
		}
		return 200, `{}`
	})
	s := New(client, "state", clock)
	b := detect.Bucket{Start: t0, Count: 1, First: t0.Add(10 * time.Second), Last: t0.Add(20 * time.Second),
		Distinct: map[string][]string{"path": {"new-hash"}}, Values: map[string][]string{"path": {"/new"}}}
	agg := detect.Aggregate{Key: "probe#203.0.113.7", Window: 5 * time.Minute, Buckets: []detect.Bucket{b}}
	for _, batch := range []string{"batch-1", "batch-2"} {
		if _, err := s.Apply(context.Background(), batch, []detect.Aggregate{agg}); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff([]string{"UpdateItem", "Query", "UpdateItem", "Query"}, st.ops()); d != "" {
		t.Fatalf("operations (-want +got):\n%s", d)
	}
	r := st.reqs[2].Body
	names := r["ExpressionAttributeNames"].(map[string]any)
	vals := r["ExpressionAttributeValues"].(map[string]any)
	update := expand(r["UpdateExpression"].(string), names, vals)
	cond := expand(r["ConditionExpression"].(string), names, vals)
	for _, absent := range []string{"v:path", "d:path", "offered <"} {
		if strings.Contains(update+" "+cond, absent) {
			t.Errorf("second write mentions %s: %s if %s", absent, update, cond)
		}
	}
	if strings.Contains(cond, "first") || strings.Contains(cond, "last") {
		t.Errorf("second write conditions on first or last: %s", cond)
	}
	for _, want := range []string{"truncated = BOOL:true", "ADD batches", "offered N:1"} {
		if !strings.Contains(update, want) {
			t.Errorf("second write lacks %q: %s", want, update)
		}
	}
}
