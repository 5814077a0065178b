//go:build integration

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/esm"
	"github.com/anonwatch/anonwatch/internal/faultproxy"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// The organization deployment, end to end: member accounts' log groups
// write subscription payloads to a CloudWatch Logs destination's stream
// (kinesalite), the event source mapping (internal/esm) reads it the way
// Lambda does and invokes the real bootstrap under the emulator, with
// QUALIFY_CLUSTERS=true, against dynalite and goaws.

const (
	faninRegion  = "eu-west-1"
	accountA     = "111111111111"
	accountB     = "222222222222"
	faninScanner = "203.0.113.77"
)

var faninStart = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// kinesisClient returns a client of the kinesalite scripts/test.sh starts.
func kinesisClient(t *testing.T) *kinesis.Client {
	t.Helper()
	url := os.Getenv("ANONWATCH_TEST_KINESIS")
	if url == "" {
		t.Fatal("ANONWATCH_TEST_KINESIS is not set: run the tests with scripts/test.sh, which starts kinesalite (scripts/kinesalite.sh)")
	}
	return kinesis.New(kinesis.Options{
		Region: faninRegion, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second},
	})
}

// newStream creates a stream of shards and waits until it is active.
func newStream(t *testing.T, c *kinesis.Client, shards int32) string {
	t.Helper()
	ctx := context.Background()
	name := emu.UniqueName("e2e-", t.Name(), "stream")
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)}) })
	for range 100 {
		d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			return name
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("stream %s never became active", name)
	return ""
}

// payload is one subscription payload a destination writes: lines from an
// account's cluster's audit stream, gzipped.
func payload(t *testing.T, account, cluster string, firstID int, lines [][]byte) []byte {
	t.Helper()
	b := synth.Batch(lines, "/aws/eks/"+cluster+"/cluster", "kube-apiserver-audit-9a8b7c6d5e4f", firstID)
	b.Owner = account
	p, err := cwlogs.EncodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(p)
	zw.Close()
	return gz.Bytes()
}

// scan returns n refused anonymous requests from the scanner, one path each,
// a second apart from at.
func scan(at time.Time, n int) [][]byte {
	var lines [][]byte
	for i := range n {
		lines = append(lines, synth.Probe{At: at.Add(time.Duration(i) * time.Second), SrcIP: faninScanner, UserAgent: "zgrab/0.x",
			URI: fmt.Sprintf("/api/v1/namespaces/ns-%d/secrets", i)}.Line())
	}
	return lines
}

// record is one record to put: its partition key and data.
type record struct {
	key  string
	data []byte
}

// faninRecords is the traffic the tests put: a scanner sweeping prod in two
// accounts, written one request per payload in reverse time order to one
// shard per account (the key), so each shard sees its records out of
// order; a staging cluster of account A below every threshold but one; and
// a poison record in the middle of A's shard.
func faninRecords(t *testing.T) []record {
	t.Helper()
	var out []record
	for _, acct := range []string{accountA, accountB} {
		lines := scan(faninStart, 12)
		for i := len(lines) - 1; i >= 0; i-- {
			out = append(out, record{key: acct + "-prod", data: payload(t, acct, "prod", 1000*i+1, lines[i:i+1])})
			if acct == accountA && i == 6 {
				out = append(out, record{key: acct + "-prod", data: []byte("\x1f\x8b not really gzip")})
			}
		}
	}
	out = append(out, record{key: accountA + "-staging", data: payload(t, accountA, "staging", 1, scan(faninStart.Add(time.Hour), 1))})
	return out
}

// put writes recs to the stream in order.
func put(t *testing.T, c *kinesis.Client, stream string, recs []record) {
	t.Helper()
	for _, r := range recs {
		if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(r.key), Data: r.data}); err != nil {
			t.Fatal(err)
		}
	}
}

// invoker invokes the function under the emulator for the mapping: a
// function error is an error, as Lambda's mapping sees it. The emulator
// runs one invocation at a time (Lambda would run an instance per shard),
// so the shards take turns.
type invoker struct {
	fn *rie.Instance
	mu *sync.Mutex
}

func (iv invoker) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	resp, err := emu.Invoke(ctx, iv.fn, event)
	if err != nil {
		return nil, err
	}
	if fe, ok := resp.FunctionError(); ok {
		return nil, fmt.Errorf("%s: %s", fe.Type, fe.Message)
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("emulator answered %d: %s", resp.Status, resp.Body)
	}
	return resp.Body, nil
}

// fanin is one organization stack under test.
type fanin struct {
	table, topic, stream string
	queue                emu.Queue
	fn                   *rie.Instance
	mapping              func() *esm.Mapping
}

// newFanin starts the detector as the central stack configures it, with
// DynamoDB behind dynamo (dynalite or a proxy in front of it).
func newFanin(t *testing.T, c *kinesis.Client, dynamo string, shards int32, retries int) *fanin {
	t.Helper()
	f := &fanin{topic: newTopic(t), stream: newStream(t, c, shards)}
	f.queue = subscribeQueue(t, f.topic, true, "")
	f.table = emu.NewTable(t, dynamoURL, "e2e-")
	env := append(emu.DetectorEnv(dynamo, snsURL, f.table, f.topic), "QUALIFY_CLUSTERS=true", "AWS_LAMBDA_FUNCTION_TIMEOUT=60")
	f.fn = startFunction(t, env)
	arn := "arn:aws:kinesis:" + faninRegion + ":999999999999:stream/" + f.stream
	f.mapping = func() *esm.Mapping {
		return esm.New(c, invoker{f.fn, &sync.Mutex{}}, esm.Config{Stream: f.stream, StreamARN: arn, Region: faninRegion, BatchSize: 5, MaxRetries: retries,
			OnFailure: func(shard string, _ []types.Record, err error) { t.Logf("shard %s: batch given up: %v", shard, err) }})
	}
	return f
}

// counts returns the table's bucket counts (all shards of a bucket
// summed) by "pk sk-without-shard".
func counts(t *testing.T, table string) map[string]int64 {
	t.Helper()
	items, err := emu.Scan(context.Background(), dynamoURL, table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, it := range items {
		sk, _ := it["sk"].(string)
		if !strings.HasPrefix(sk, "b#") {
			continue
		}
		n, _ := it["count"].(float64)
		out[fmt.Sprint(it["pk"], " ", sk[:strings.LastIndexByte(sk, '#')])] += int64(n)
	}
	return out
}

// highest returns the highest severity published per rule, account,
// region, cluster and source, from raw deliveries; and the finding ids.
func highest(t *testing.T, msgs []emu.Message) (map[string]string, map[string]int) {
	t.Helper()
	fs, err := emu.ReadFindings(strings.NewReader(joinBodies(msgs)))
	if err != nil {
		t.Fatal(err)
	}
	rank := map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
	out, ids := map[string]string{}, map[string]int{}
	for _, f := range fs {
		ids[f.ID]++
		k := strings.Join([]string{f.Rule, f.Account, f.Region, f.ClusterName, f.SrcIP}, " ")
		if cur, ok := out[k]; !ok || rank[f.Severity] > rank[cur] {
			out[k] = f.Severity
		}
	}
	return out, ids
}

func joinBodies(msgs []emu.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestFanIn puts the traffic of two accounts, each with a cluster named
// prod, into a two-shard stream, records out of order and a poison record
// among them, and drains it through the function. The two prods must not
// share counts or suppression, the poison record must not hold its shard
// back, every finding must name its account and region, and a second
// delivery of the whole stream (a mapping that lost its checkpoints) must
// change no count and publish nothing.
func TestFanIn(t *testing.T) {
	c := kinesisClient(t)
	f := newFanin(t, c, dynamoURL, 2, 3)
	put(t, c, f.stream, faninRecords(t))
	st, err := f.mapping().Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drained: %+v", st)
	if st.GivenUp != 0 || st.Retries != 0 {
		t.Errorf("%d batches given up, %d retried: the poison record held its shard back", st.GivenUp, st.Retries)
	}
	if out := f.fn.Output(); !strings.Contains(out, "poison record skipped") {
		t.Error("the function did not report the poison record")
	}
	got, ids := highest(t, emu.MustReceive(t, f.queue))
	want := map[string]string{}
	for _, acct := range []string{accountA, accountB} {
		for rule, sev := range map[string]string{"eks-cluster-scan": "medium", "anonymous-enumeration": "medium", "unauthenticated-403-burst": "medium", "eks-pod-scan": ""} {
			if sev != "" {
				want[strings.Join([]string{rule, acct, faninRegion, "prod", faninScanner}, " ")] = sev
			}
		}
	}
	for k, sev := range want {
		if got[k] != sev {
			t.Errorf("%s: highest severity %q, want %q", k, got[k], sev)
		}
	}
	for k := range got {
		if !strings.Contains(k, " "+faninRegion+" ") || (!strings.Contains(k, accountA) && !strings.Contains(k, accountB)) {
			t.Errorf("finding %q does not name its account and region", k)
		}
	}
	if t.Failed() {
		t.Logf("published: %v", got)
	}
	before := counts(t, f.table)
	// Each prod counts its own twelve requests, never the other's.
	perKey := map[string]int64{}
	for k, n := range before {
		if strings.HasPrefix(k, "eks-cluster-scan#"+faninScanner+"#") {
			perKey[strings.Fields(k)[0]] += n
		}
	}
	// And staging its one.
	if got := slices.Sorted(maps.Values(perKey)); !slices.Equal(got, []int64{1, 12, 12}) {
		t.Errorf("eks-cluster-scan counts of the scanner per key %v: want one key per cluster, 12 for each prod and 1 for staging", perKey)
	}

	// Redelivered from the start: Lambda's mapping does that after a
	// checkpoint is lost; nothing may change.
	again, err := f.mapping().Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again.Invocations == 0 {
		t.Fatal("the second mapping delivered nothing: the test redelivers nothing")
	}
	if diff := cmp.Diff(before, counts(t, f.table)); diff != "" {
		t.Errorf("redelivery changed the counts (-before +after):\n%s", diff)
	}
	if msgs := emu.MustReceive(t, f.queue); len(msgs) != 0 {
		t.Errorf("redelivery published %d findings", len(msgs))
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("finding %s published %d times", id, n)
		}
	}
}

// TestFanInRetry fails DynamoDB for a while in the middle of the drain, so
// that the function reports records failed and the mapping delivers them
// again: the table must end as a drain without faults leaves it, and no
// finding may be published twice.
func TestFanInRetry(t *testing.T) {
	c := kinesisClient(t)
	recs := faninRecords(t)

	clean := newFanin(t, c, dynamoURL, 1, 3)
	put(t, c, clean.stream, recs)
	if _, err := clean.mapping().Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, _ := highest(t, emu.MustReceive(t, clean.queue))

	proxy := faultproxy.New(dynamoURL)
	defer proxy.Close()
	proxy.SetProtocol(faultproxy.AWSJSON)
	var n atomic.Int64
	// Requests 40 to 119 fail: more than the SDK's own retries, so a
	// record fails and the mapping retries it.
	proxy.SetRule(func(i int64, _ *http.Request) faultproxy.Fault {
		if c := n.Add(1); c >= 40 && c < 120 {
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		}
		return faultproxy.Fault{}
	})
	faulty := newFanin(t, c, proxy.URL(), 1, 20)
	put(t, c, faulty.stream, recs)
	st, err := faulty.mapping().Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drained with faults: %+v, %d requests, %d failed", st, proxy.Requests(), proxy.Injected())
	if st.Retries == 0 || proxy.Injected() == 0 {
		t.Fatalf("nothing was retried (%d faults injected): the test tests nothing", proxy.Injected())
	}
	if st.GivenUp != 0 {
		t.Errorf("%d batches given up", st.GivenUp)
	}
	got, ids := highest(t, emu.MustReceive(t, faulty.queue))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings with faults (-without +with):\n%s", diff)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("finding %s published %d times", id, n)
		}
	}
	if diff := cmp.Diff(counts(t, clean.table), counts(t, faulty.table)); diff != "" {
		t.Errorf("counts with faults differ from those without (-without +with):\n%s", diff)
	}
	if len(counts(t, clean.table)) == 0 {
		t.Fatal("no counts: the comparison compares nothing")
	}
}
