//go:build integration

package perf

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/handler"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// The fan-in load generator (docs/scale.md): N simulated busy clusters in
// a few accounts, some of one name in several accounts, deliver their
// audit logs through a CloudWatch Logs destination's Kinesis stream, and
// the records, batched as the event source mapping batches them, go
// through the real handler (handler.Handler.Invoke, from the Lambda
// event's JSON) with the detector as the organization's function builds
// it: the default rules, Qualify, MarkLive, EKSOnly, and dynamostate over
// a dynalite the benchmark starts on a free port. Findings go to a
// publisher that counts them (no SNS: its time is not in the figures).
//
// Each cluster writes a busy cluster's traffic (archiveMix: 10 million
// events a day, 0.1% anonymous from 254 background scanner addresses and
// kube-probe) from two API server streams, each delivered every 5 s, and
// one address (faninScanner) scans every cluster at once, one refused
// request a second to each.
//
//	ANONWATCH_DYNALITE_CLI   dynalite's cli.js (default tools/node/node_modules/dynalite/cli.js)
//	ANONWATCH_FANIN_CLUSTERS clusters, comma-separated runs (default 1,10,50)
//	ANONWATCH_FANIN_RECORDS  Kinesis records (deliveries) per run (default 600)
//	ANONWATCH_FANIN_BATCH    records per invocation (default 100)
//	ANONWATCH_FANIN_LANES    invocations at once (default 1: one shard's)
//	ANONWATCH_FANIN_DELAY    added to every DynamoDB call (default 0), such as
//	                         10ms: the growth in time per record over a run
//	                         without it, divided by it, is how many calls
//	                         a record waits for one after another
//
// make bench-fanin (scripts/bench-fanin.sh) runs it.
const (
	faninRegionName = "eu-west-1"
	// faninScanner scans every cluster: one refused request a second to
	// each, from one address. Outside archiveMix's background scanners.
	faninScanner   = "192.0.2.200"
	faninProbeRate = time.Second
	faninSpan      = 5 * time.Second // each stream's delivery interval
	// faninMaxEvent is what Lambda hands a function at most: the event
	// source mapping caps a batch at the 6 MB of a synchronous invoke.
	faninMaxEvent = 6 << 20
	// faninWindow is the simulated time over which a key's busiest rate
	// is taken.
	faninWindow = 30 * time.Second
)

// faninScannerNet is the scanner's network as the default rules group
// it (rules.DefaultNetwork); archiveMix's scanners 192.0.2.1 to .84 share it.
var faninScannerNet = rules.DefaultNetwork.Of(faninScanner)

var faninSimStart = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// faninAccounts are the member accounts; cluster i is in account i mod 4
// and is named faninNames[i/4], so every name but the last few is in
// four accounts.
var (
	faninAccounts = []string{"111111111111", "222222222222", "333333333333", "444444444444"}
	faninNames    = []string{"prod", "staging", "dev", "ci", "data", "payments", "search", "ml", "edge", "batch", "web", "api", "ops"}
)

type faninCluster struct {
	account, name string
}

func (c faninCluster) logGroup() string { return "/aws/eks/" + c.name + "/cluster" }
func (c faninCluster) ref() string {
	return detect.ClusterRef(c.name, detect.Scope{Account: c.account, Region: faninRegionName})
}

func faninClusters(n int) []faninCluster {
	cs := make([]faninCluster, n)
	for i := range cs {
		cs[i] = faninCluster{account: faninAccounts[i%len(faninAccounts)], name: faninNames[i/len(faninAccounts)]}
	}
	return cs
}

// faninRecord is one delivery as the destination wrote it to the stream.
type faninRecord struct {
	at       time.Time // when CloudWatch Logs delivered it: its span's end
	cluster  int
	events   int
	payload  int // the subscription payload, uncompressed
	messages int // the audit lines in it
	rec      events.KinesisEventRecord
}

// faninTraffic generates the deliveries of clusters, spans×5 s of each
// with an audit line every step, each cluster on its own generator
// (seeded by its index) and its own offset within the 5 s, on every core,
// and returns them in stream order.
func faninTraffic(clusters []faninCluster, spans int, step time.Duration) []faninRecord {
	per := make([][]faninRecord, len(clusters))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				per[i] = faninClusterTraffic(i, clusters[i], spans, step)
			}
		})
	}
	for i := range clusters {
		next <- i
	}
	close(next)
	wg.Wait()
	var all []faninRecord
	for _, rs := range per {
		all = append(all, rs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	rng := rand.New(rand.NewPCG(uint64(len(clusters)), 7))
	for i := range all {
		r := &all[i].rec
		seq := fmt.Sprintf("4963%052d", i+1)
		r.EventID = "shardId-000000000000:" + seq
		r.Kinesis.SequenceNumber = seq
		// The member accounts' policies distribute at random.
		r.Kinesis.PartitionKey = fmt.Sprintf("%016x", rng.Uint64())
	}
	return all
}

func faninClusterTraffic(i int, c faninCluster, spans int, step time.Duration) []faninRecord {
	rng := rand.New(rand.NewPCG(uint64(i), 11))
	offset := time.Duration(rng.Int64N(int64(faninSpan)))
	start := faninSimStart.Add(offset)
	g := synth.New(uint64(1000+i), start, step, archiveMix())
	streams := [2]string{
		fmt.Sprintf("kube-apiserver-audit-%016x", rng.Uint64()),
		fmt.Sprintf("kube-apiserver-audit-%016x", rng.Uint64()),
	}
	var out []faninRecord
	n := 0 // lines generated so far
	id := 1
	for s := range spans {
		lo, hi := start.Add(time.Duration(s)*faninSpan), start.Add(time.Duration(s+1)*faninSpan)
		var own [2][]cwlogs.LogEvent
		add := func(stream int, at time.Time, line []byte) {
			ms := at.UnixMilli()
			own[stream] = append(own[stream], cwlogs.LogEvent{ID: fmt.Sprintf("%020d%036d", ms, id), Timestamp: ms, Message: line})
			id++
		}
		for ; ; n++ {
			at := start.Add(time.Duration(n) * step)
			if !at.Before(hi) {
				break
			}
			add(n%2, at, g.Next())
		}
		for k := time.Duration(0); k < faninSpan; k += faninProbeRate {
			at := lo.Add(k + 250*time.Millisecond)
			p := synth.Probe{At: at, SrcIP: faninScanner, UserAgent: "masscan/1.3", URI: faninPaths[(s*int(faninSpan/faninProbeRate)+int(k/faninProbeRate))%len(faninPaths)]}
			add(int(k/faninProbeRate)%2, at, p.Line())
		}
		for st := range own {
			b := cwlogs.Batch{
				MessageType: cwlogs.DataMessage,
				Owner:       c.account,
				LogGroup:    c.logGroup(),
				LogStream:   streams[st],
				Events:      own[st],
			}
			payload, err := cwlogs.EncodePayload(b)
			if err != nil {
				panic(err)
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(payload)
			zw.Close()
			msgs := 0
			for _, e := range own[st] {
				msgs += len(e.Message)
			}
			out = append(out, faninRecord{
				at: hi, cluster: i, events: len(own[st]), payload: len(payload), messages: msgs,
				rec: events.KinesisEventRecord{
					AwsRegion:      faninRegionName,
					EventName:      "aws:kinesis:record",
					EventSource:    "aws:kinesis",
					EventSourceArn: "arn:aws:kinesis:" + faninRegionName + ":999999999999:stream/anonwatch-audit",
					EventVersion:   "1.0",
					Kinesis: events.KinesisRecord{
						ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: hi},
						Data:                        gz.Bytes(),
						KinesisSchemaVersion:        "1.0",
					},
				},
			})
		}
	}
	return out
}

// faninPaths are what the scanner asks every cluster for, in turn.
var faninPaths = func() []string {
	var ps []string
	for _, r := range []string{"secrets", "configmaps", "pods", "serviceaccounts"} {
		for _, ns := range []string{"default", "kube-system", "kube-public", "monitoring", "argocd"} {
			ps = append(ps, "/api/v1/namespaces/"+ns+"/"+r)
		}
	}
	return append(ps, "/api/v1/nodes", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "/api/v1/secrets", "/openapi/v2")
}()

// faninInvocation is one batch: the Lambda event's JSON and what it holds.
type faninInvocation struct {
	event   []byte
	records []int // indexes into the traffic
	at      time.Time
}

// faninBatches cuts the stream into invocations of at most batch records
// and faninMaxEvent bytes, in order, as one shard's mapping does when it
// is behind.
func faninBatches(traffic []faninRecord, batch int) ([]faninInvocation, error) {
	var out []faninInvocation
	var cur []int
	size := 0
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		ev := handler.Event{Records: make([]events.KinesisEventRecord, len(cur))}
		for i, r := range cur {
			ev.Records[i] = traffic[r].rec
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		out = append(out, faninInvocation{event: raw, records: cur, at: traffic[cur[0]].at})
		cur, size = nil, 0
		return nil
	}
	for i := range traffic {
		n := len(traffic[i].rec.Kinesis.Data)*4/3 + 600 // base64 and the record's fields
		if len(cur) == batch || size+n > faninMaxEvent {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		cur = append(cur, i)
		size += n
	}
	return out, flush()
}

// simAtKey and clusterKey carry the simulated time and the cluster of
// the record a call is made for, so the counting client can place it.
type (
	simAtKey   struct{}
	clusterKey struct{}
)

// keyCount is what one partition key saw.
type keyCount struct {
	queries, updates, conditionFailed int64
	rcu, wcu                          float64
	perWindow                         map[int64]int64 // calls per faninWindow of simulated time
	wcuPerWindow                      map[int64]float64
	clusters                          map[string]bool // whose deliveries made the calls
	sks                               map[string]bool // item kinds: b, n, g, live
}

// countingDynamo is dynamostate.API counting calls and capacity per
// partition key.
type countingDynamo struct {
	api                      dynamostate.API
	delay                    time.Duration // added to every call
	mu                       sync.Mutex
	keys                     map[string]*keyCount
	queries, updates, failed atomic.Int64
	callNanos                atomic.Int64
}

func (c *countingDynamo) entry(ctx context.Context, pk string) (*keyCount, int64) {
	at, _ := ctx.Value(simAtKey{}).(time.Time)
	k := c.keys[pk]
	if k == nil {
		k = &keyCount{perWindow: map[int64]int64{}, wcuPerWindow: map[int64]float64{}, clusters: map[string]bool{}, sks: map[string]bool{}}
		c.keys[pk] = k
	}
	if ref, ok := ctx.Value(clusterKey{}).(string); ok {
		k.clusters[ref] = true
	}
	return k, int64(at.Sub(faninSimStart) / faninWindow)
}

func skKind(sk string) string {
	if i := strings.IndexByte(sk, '#'); i > 0 {
		return sk[:i]
	}
	return sk
}

func (c *countingDynamo) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	t := time.Now()
	time.Sleep(c.delay)
	out, err := c.api.Query(ctx, in, optFns...)
	c.callNanos.Add(int64(time.Since(t)))
	c.queries.Add(1)
	pk, _ := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS)
	c.mu.Lock()
	defer c.mu.Unlock()
	k, m := c.entry(ctx, pk.Value)
	k.queries++
	k.perWindow[m]++
	if err == nil && out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
		k.rcu += *out.ConsumedCapacity.CapacityUnits
	}
	if lo, ok := in.ExpressionAttributeValues[":lo"].(*types.AttributeValueMemberS); ok {
		k.sks[skKind(lo.Value)] = true
	} else if sk, ok := in.ExpressionAttributeValues[":sk"].(*types.AttributeValueMemberS); ok {
		k.sks[skKind(sk.Value)] = true
	}
	return out, err
}

func (c *countingDynamo) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	t := time.Now()
	time.Sleep(c.delay)
	out, err := c.api.UpdateItem(ctx, in, optFns...)
	c.callNanos.Add(int64(time.Since(t)))
	c.updates.Add(1)
	pk, _ := in.Key["pk"].(*types.AttributeValueMemberS)
	sk, _ := in.Key["sk"].(*types.AttributeValueMemberS)
	var ccf *types.ConditionalCheckFailedException
	failed := errors.As(err, &ccf)
	if failed {
		c.failed.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, m := c.entry(ctx, pk.Value)
	k.updates++
	k.perWindow[m]++
	if failed {
		k.conditionFailed++
	}
	if err == nil && out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
		k.wcu += *out.ConsumedCapacity.CapacityUnits
		k.wcuPerWindow[m] += *out.ConsumedCapacity.CapacityUnits
	}
	if sk != nil {
		k.sks[skKind(sk.Value)] = true
	}
	return out, err
}

// countingPublisher stands in for SNS: it counts and drops findings.
type countingPublisher struct {
	mu      sync.Mutex
	n       int
	byRule  map[string]int
	scanner map[string]int // findings naming faninScanner, by cluster ref
}

func (p *countingPublisher) Publish(_ context.Context, f *detect.Finding) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.byRule[f.Rule]++
	if f.SrcIP == faninScanner {
		p.scanner[detect.ClusterRef(f.ClusterName, detect.Scope{Account: f.Account, Region: f.Region})]++
	}
	return nil
}

// summing adds up every batch's detect.Result.
type summing struct {
	p  handler.Processor
	mu sync.Mutex
	r  detect.Result
}

func (s *summing) Process(ctx context.Context, b *cwlogs.Batch) (detect.Result, error) {
	// The calls made for this record are placed at its delivery: its
	// last log event's time.
	var last int64
	for i := range b.Events {
		last = max(last, b.Events[i].Timestamp)
	}
	ctx = context.WithValue(ctx, simAtKey{}, time.UnixMilli(last))
	ctx = context.WithValue(ctx, clusterKey{}, detect.ClusterRef(cwlogs.ClusterName(b.LogGroup), detect.Scope{Account: b.Owner, Region: b.Region}))
	res, err := s.p.Process(ctx, b)
	s.mu.Lock()
	s.r.Events += res.Events
	s.r.Filtered += res.Filtered
	s.r.Parsed += res.Parsed
	s.r.Matched += res.Matched
	s.r.Aggregates += res.Aggregates
	s.r.Due += res.Due
	s.r.Suppressed += res.Suppressed
	s.r.Published += res.Published
	s.r.Held += res.Held
	s.r.Digests += res.Digests
	s.mu.Unlock()
	return res, err
}

// faninEnv is a dynalite of the benchmark's own.
type faninEnv struct {
	url string
}

func startDynalite(tb testing.TB) faninEnv {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	cli := os.Getenv("ANONWATCH_DYNALITE_CLI")
	if cli == "" {
		cli = filepath.Join(root, "tools", "node", "node_modules", "dynalite", "cli.js")
	}
	if _, err := os.Stat(cli); err != nil {
		tb.Fatalf("%v (make tools installs dynalite; or set ANONWATCH_DYNALITE_CLI)", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("dynalite needs node: %v", err)
	}
	port := freePort(tb)
	startServer(tb, filepath.Join(tb.TempDir(), "dynalite.log"), "", node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	waitListening(tb, port)
	return faninEnv{url: "http://127.0.0.1:" + strconv.Itoa(port)}
}

func faninEnvInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// BenchmarkFanin drives N clusters' deliveries through the handler and
// logs a table per N: throughput, DynamoDB calls and capacity per record,
// latency per invocation, and the hottest partition keys. One run per N:
// use -benchtime 1x.
func BenchmarkFanin(b *testing.B) {
	ns := []int{1, 10, 50}
	if s := os.Getenv("ANONWATCH_FANIN_CLUSTERS"); s != "" {
		ns = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 || n > len(faninAccounts)*len(faninNames) {
				b.Fatalf("ANONWATCH_FANIN_CLUSTERS=%q: want numbers from 1 to %d", s, len(faninAccounts)*len(faninNames))
			}
			ns = append(ns, n)
		}
	}
	records := faninEnvInt(b, "ANONWATCH_FANIN_RECORDS", 600)
	batch := faninEnvInt(b, "ANONWATCH_FANIN_BATCH", 100)
	lanes := faninEnvInt(b, "ANONWATCH_FANIN_LANES", 1)
	var delay time.Duration
	if s := os.Getenv("ANONWATCH_FANIN_DELAY"); s != "" {
		var err error
		if delay, err = time.ParseDuration(s); err != nil || delay < 0 {
			b.Fatalf("ANONWATCH_FANIN_DELAY=%q: want a duration such as 10ms", s)
		}
	}
	env := startDynalite(b)
	set, err := rules.Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range ns {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			r := faninRun(b, env, set, faninOpts{clusters: n, records: records, batch: batch, lanes: lanes, step: archiveStep, delay: delay, inMemory: true})
			r.log()
			b.ReportMetric(r.recordsPerSec(), "records/s")
			b.ReportMetric(r.eventsPerSec(), "events/s")
			b.ReportMetric(float64(r.queries)/float64(r.records), "queries/record")
			b.ReportMetric(float64(r.updates)/float64(r.records), "updates/record")
			b.ReportMetric(r.p(0.50), "p50-ms")
			b.ReportMetric(r.p(0.99), "p99-ms")
			if len(r.hot) > 0 {
				b.ReportMetric(r.hot[0].peak, "hottest-key-calls/s")
			}
		})
	}
}

// faninOpts is what a run drives: records deliveries of clusters, an
// audit line every step in each, batch records per invocation, lanes
// invocations at once; inMemory runs them again with in-memory state.
type faninOpts struct {
	clusters, records, batch, lanes int
	step, delay                     time.Duration
	inMemory                        bool
}

// faninResult is one run's measurements.
type faninResult struct {
	clusters, records, invocations, lanes, batch int
	events, gz, payload, messages                int64
	sim, wall, genTook, cpu                      time.Duration
	memWall, memCPU                              time.Duration // the same with in-memory state
	delay                                        time.Duration
	lat                                          []time.Duration // sorted
	queries, updates, failed                     int64
	rcu, wcu                                     float64
	callMean                                     time.Duration
	res                                          detect.Result
	published                                    int
	scannerFindings                              map[string]int
	byRule                                       map[string]int
	byKind                                       map[string]*kindSum
	keys                                         int
	hot                                          []hotKey
	itemFailures                                 int
	perCluster                                   map[string]int // records of each cluster
}

type kindSum struct {
	keys                 int
	calls, queries, upds int64
	maxPerKey            float64 // calls per simulated second, the key's busiest window
	rcu, wcu             float64
	maxClusters          int // clusters whose deliveries called one key
}

type hotKey struct {
	pk, kind, rule, cluster, items string
	calls, queries, updates        int64
	avg, peak                      float64 // calls per simulated second: over the run, in the busiest window
	wcu, wcuPeak                   float64 // WCU per simulated second, likewise
	rcu                            float64
	condFailed                     int64
	clusters                       int
}

func (r *faninResult) recordsPerSec() float64 { return float64(r.records) / r.wall.Seconds() }
func (r *faninResult) eventsPerSec() float64  { return float64(r.events) / r.wall.Seconds() }
func (r *faninResult) p(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	i = max(0, min(i, len(r.lat)-1))
	return float64(r.lat[i].Microseconds()) / 1000
}

func faninRun(b testing.TB, env faninEnv, set *rules.Set, o faninOpts) *faninResult {
	n, batch, lanes := o.clusters, o.batch, o.lanes
	clusters := faninClusters(n)
	spans := (o.records + 2*n - 1) / (2 * n)
	t0 := time.Now()
	traffic := faninTraffic(clusters, spans, o.step)
	invs, err := faninBatches(traffic, batch)
	if err != nil {
		b.Fatal(err)
	}
	r := &faninResult{clusters: n, records: len(traffic), invocations: len(invs), lanes: lanes, batch: batch, delay: o.delay,
		sim: time.Duration(spans) * faninSpan, genTook: time.Since(t0)}
	for i := range traffic {
		r.events += int64(traffic[i].events)
		r.gz += int64(len(traffic[i].rec.Kinesis.Data))
		r.payload += int64(traffic[i].payload)
		r.messages += int64(traffic[i].messages)
	}

	client := dynamodb.New(dynamodb.Options{
		Region:       faninRegionName,
		BaseEndpoint: aws.String(env.url),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		// dynalite is one Node.js process: on a loaded machine requests
		// queue there past the production per-attempt timeout, and the
		// retries would distort the count (as in dynamostate's
		// benchmarks). The retryer is the production one's.
		HTTPClient: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: time.Minute},
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = dynamostate.MaxAttempts
			so.MaxBackoff = dynamostate.MaxBackoff
		}),
	})
	ctx := context.Background()
	table := fmt.Sprintf("fanin-%d-%d", n, time.Now().UnixNano())
	if err := dynamostate.CreateTable(ctx, client, table); err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		b.Fatal(err)
	}
	cnt := &countingDynamo{api: client, delay: o.delay, keys: map[string]*keyCount{}}
	state := dynamostate.New(cnt, table, time.Now, dynamostate.WithConsumedCapacity())
	pub := &countingPublisher{byRule: map[string]int{}, scanner: map[string]int{}}
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	det, err := detect.New(detect.Config{Rules: set, State: state, Publisher: pub, Logger: discard, MarkLive: true, Qualify: true})
	if err != nil {
		b.Fatal(err)
	}
	sum := &summing{p: det}
	h := &handler.Handler{
		Processor:     sum,
		Log:           discard,
		Metrics:       io.Discard,
		Limits:        cwlogs.DefaultLimits,
		Keep:          det.Keep,
		Now:           time.Now,
		Region:        faninRegionName,
		EKSOnly:       true,
		DynamoDBCalls: state.Calls,
		SNSCalls:      func() int64 { return 0 },
	}

	runtime.GC()
	lat := make([]time.Duration, len(invs))
	var failures atomic.Int64
	var firstErr error
	var errOnce sync.Once
	next := make(chan int)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	bench, _ := b.(*testing.B)
	if bench != nil {
		bench.ResetTimer()
	}
	start := time.Now()
	for range lanes {
		wg.Go(func() {
			for i := range next {
				t := time.Now()
				var ev handler.Event
				if err := json.Unmarshal(invs[i].event, &ev); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				resp, err := h.Invoke(ctx, ev)
				lat[i] = time.Since(t)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				} else if len(resp.BatchItemFailures) > 0 {
					failures.Add(int64(len(resp.BatchItemFailures)))
				}
			}
		})
	}
	for i := range invs {
		next <- i
	}
	close(next)
	wg.Wait()
	r.wall = time.Since(start)
	if bench != nil {
		bench.StopTimer()
	}
	r.cpu = processCPU() - cpu0
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	r.itemFailures = int(failures.Load())
	slices.Sort(lat)
	r.lat = lat
	r.queries, r.updates, r.failed = cnt.queries.Load(), cnt.updates.Load(), cnt.failed.Load()
	r.rcu, r.wcu = state.ConsumedReadWrite()
	if calls := r.queries + r.updates; calls > 0 {
		r.callMean = time.Duration(cnt.callNanos.Load() / calls)
	}
	r.res = sum.r
	r.published = pub.n
	r.scannerFindings = pub.scanner
	r.byRule = pub.byRule
	r.keys = len(cnt.keys)
	r.byKind, r.hot = hotKeys(cnt.keys, faninKeyNames(set, clusters), r.sim)
	r.perCluster = map[string]int{}
	for i := range traffic {
		r.perCluster[clusters[traffic[i].cluster].ref()]++
	}
	if o.inMemory {
		r.memWall, r.memCPU = faninInMemory(b, set, invs)
	}
	return r
}

// faninInMemory sends the same invocations through a handler like the
// one measured, with in-memory state instead (no network, no SDK), one
// lane, and returns its wall and CPU time: the handler's own share.
func faninInMemory(b testing.TB, set *rules.Set, invs []faninInvocation) (wall, cpu time.Duration) {
	pub := &countingPublisher{byRule: map[string]int{}, scanner: map[string]int{}}
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	det, err := detect.New(detect.Config{Rules: set, State: memstate.New(time.Now, 0), Publisher: pub, Logger: discard, MarkLive: true, Qualify: true})
	if err != nil {
		b.Fatal(err)
	}
	h := &handler.Handler{Processor: det, Log: discard, Metrics: io.Discard, Limits: cwlogs.DefaultLimits, Keep: det.Keep,
		Now: time.Now, Region: faninRegionName, EKSOnly: true}
	runtime.GC()
	cpu0, start := processCPU(), time.Now()
	for i := range invs {
		var ev handler.Event
		if err := json.Unmarshal(invs[i].event, &ev); err != nil {
			b.Fatal(err)
		}
		if resp, err := h.Invoke(context.Background(), ev); err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("in memory: %v, %v", err, resp)
		}
	}
	return time.Since(start), processCPU() - cpu0
}

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// faninKeyNames names the partition keys the run can write that belong
// to a cluster: each cluster's per-cluster groups, sweeps, budgets,
// digests and live mark, and the groups of the scanner that scans them
// all.
func faninKeyNames(set *rules.Set, clusters []faninCluster) map[string]string {
	names := map[string]string{}
	for _, c := range clusters {
		names["live#"+c.ref()] = c.ref()
		for _, rl := range set.Rules() {
			g := detect.Group{ClusterName: c.name, Account: c.account, Region: faninRegionName}
			sweep := g
			sweep.Sweep = true
			names[detect.GroupKey(rl.ID, &sweep)] = c.ref()
			for _, sev := range []rules.Severity{rules.Low, rules.Medium, rules.High, rules.Critical} {
				names[detect.BudgetKey(rl.ID, c.ref(), sev)] = c.ref()
				names[detect.DigestKey(rl.ID, c.ref(), sev)] = c.ref()
			}
			for _, f := range rl.GroupBy {
				switch f {
				case rules.FieldSrcIP:
					g.SrcIP = faninScanner
				case rules.FieldSrcNet:
					g.SrcNet = faninScannerNet
				case rules.FieldUser:
					g.User = "system:anonymous"
				case rules.FieldGroups:
					g.Groups = []string{"system:unauthenticated"}
				case rules.FieldUserAgent:
					g.UserAgent = "masscan/1.3"
				}
			}
			names[detect.GroupKey(rl.ID, &g)] = c.ref()
		}
	}
	return names
}

// keyKind tells a partition key's kind from its shape (detect.GroupKey,
// BudgetKey, DigestKey; dynamostate's live marks).
func keyKind(pk string) (kind, rule string) {
	if strings.HasPrefix(pk, "live#") {
		return "live mark", "-"
	}
	parts := strings.SplitN(pk, "#", 3)
	rule = parts[0]
	switch {
	case strings.Contains(pk, "#~budget-"):
		return "budget", rule
	case strings.Contains(pk, "#~digest-"):
		return "digest", rule
	case len(parts) < 3:
		return "other", rule
	case parts[1] == "*":
		return "sweep", rule
	case parts[1] == "":
		return "per-cluster group", rule
	case parts[1] == faninScanner:
		return "scanner group", rule
	case parts[1] == faninScannerNet:
		return "scanner's network", rule
	}
	return "per-source group", rule
}

func hotKeys(keys map[string]*keyCount, names map[string]string, sim time.Duration) (map[string]*kindSum, []hotKey) {
	kinds := map[string]*kindSum{}
	var hot []hotKey
	secs := sim.Seconds()
	// The busiest complete window of simulated time; the records of the
	// last one arrive up to a span after it ends, so a window past the
	// run's end is not complete. A run shorter than a window is its own.
	windows := int64(sim / faninWindow)
	for pk, k := range keys {
		kind, rule := keyKind(pk)
		peak, wpeak := float64(k.queries+k.updates)/secs, k.wcu/secs
		if windows > 0 {
			peak, wpeak = 0, 0
			for w := range windows {
				peak = max(peak, float64(k.perWindow[w])/faninWindow.Seconds())
				wpeak = max(wpeak, k.wcuPerWindow[w]/faninWindow.Seconds())
			}
		}
		items := slices.Sorted(func(yield func(string) bool) {
			for s := range k.sks {
				if !yield(s) {
					return
				}
			}
		})
		cluster := names[pk]
		if cluster == "" {
			// A digest's level claims: the digest's key and "#level".
			if i := strings.LastIndexByte(pk, '#'); i > 0 {
				cluster = names[pk[:i]]
			}
		}
		h := hotKey{pk: pk, kind: kind, rule: rule, cluster: cluster, items: strings.Join(items, ","),
			calls: k.queries + k.updates, queries: k.queries, updates: k.updates,
			avg: float64(k.queries+k.updates) / secs, peak: peak,
			wcu: k.wcu / secs, wcuPeak: wpeak, rcu: k.rcu / secs, condFailed: k.conditionFailed, clusters: len(k.clusters)}
		hot = append(hot, h)
		s := kinds[kind]
		if s == nil {
			s = &kindSum{}
			kinds[kind] = s
		}
		s.keys++
		s.calls += h.calls
		s.queries += h.queries
		s.upds += h.updates
		s.wcu += k.wcu
		s.rcu += k.rcu
		s.maxPerKey = max(s.maxPerKey, h.peak)
		s.maxClusters = max(s.maxClusters, h.clusters)
	}
	sort.Slice(hot, func(i, j int) bool {
		if hot[i].peak != hot[j].peak {
			return hot[i].peak > hot[j].peak
		}
		return hot[i].pk < hot[j].pk
	})
	return kinds, hot
}

func (r *faninResult) log() {
	var w strings.Builder
	rec := float64(r.records)
	fmt.Fprintf(&w, "\n%d clusters (%d accounts), %s simulated, %d records (deliveries) of %d audit events, %d invocations of up to %d records, %d lane(s), %s added per DynamoDB call\n",
		r.clusters, min(r.clusters, len(faninAccounts)), r.sim, r.records, r.events, r.invocations, r.batch, r.lanes, r.delay)
	fmt.Fprintf(&w, "  traffic: %.0f events/s/cluster, %.2f records/s/cluster, %.1f KB gzip per record (%.2f KB/s/cluster into the stream), %.0f bytes per audit line, payload/gzip %.1fx; generated in %s\n",
		float64(r.events)/r.sim.Seconds()/float64(r.clusters), rec/r.sim.Seconds()/float64(r.clusters),
		float64(r.gz)/rec/1000, float64(r.gz)/r.sim.Seconds()/float64(r.clusters)/1000,
		float64(r.messages)/float64(r.events), float64(r.payload)/float64(r.gz), r.genTook.Round(time.Millisecond))
	fmt.Fprintf(&w, "  handler: %.0f records/s, %.0f events/s (wall %s, %.1fx simulated time); CPU of this process %s (%.2f ms per record)\n",
		r.recordsPerSec(), r.eventsPerSec(), r.wall.Round(time.Millisecond), r.sim.Seconds()/r.wall.Seconds(), r.cpu.Round(time.Millisecond),
		float64(r.cpu.Microseconds())/1000/rec)
	if r.memWall > 0 {
		fmt.Fprintf(&w, "  the same with in-memory state: %.0f records/s, %.0f events/s; CPU %.2f ms per record\n",
			rec/r.memWall.Seconds(), float64(r.events)/r.memWall.Seconds(), float64(r.memCPU.Microseconds())/1000/rec)
	}
	fmt.Fprintf(&w, "  per invocation (%.1f records): p50 %.1f ms, p99 %.1f ms, max %.1f ms; batch item failures %d\n",
		rec/float64(r.invocations), r.p(0.5), r.p(0.99), float64(r.lat[len(r.lat)-1].Microseconds())/1000, r.itemFailures)
	fmt.Fprintf(&w, "  DynamoDB: %.2f Query + %.2f UpdateItem per record (%.2f calls; %d conditional failures), %.2f RCU + %.2f WCU per record (dynalite's units), mean call %.2f ms\n",
		float64(r.queries)/rec, float64(r.updates)/rec, float64(r.queries+r.updates)/rec, r.failed, r.rcu/rec, r.wcu/rec, float64(r.callMean.Microseconds())/1000)
	fmt.Fprintf(&w, "  detector: %d parsed, %d (event, rule) matches, %d aggregates, %d findings due, %d published (%d digests), %d held, %d suppressed\n",
		r.res.Parsed, r.res.Matched, r.res.Aggregates, r.res.Due, r.published, r.res.Digests, r.res.Held, r.res.Suppressed)
	refs := slices.Sorted(func(yield func(string) bool) {
		for c := range r.scannerFindings {
			if !yield(c) {
				return
			}
		}
	})
	total := 0
	for _, c := range refs {
		total += r.scannerFindings[c]
	}
	fmt.Fprintf(&w, "  the scanner %s: %d findings over %d clusters\n", faninScanner, total, len(refs))
	fmt.Fprintf(&w, "  partition keys: %d\n", r.keys)
	fmt.Fprintf(&w, "    %-18s %6s %9s %9s %9s %9s %15s %13s\n", "kind", "keys", "Query", "Update", "RCU", "WCU", "max calls/s/key", "clusters/key")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.byKind {
			if !yield(k) {
				return
			}
		}
	}) {
		s := r.byKind[k]
		fmt.Fprintf(&w, "    %-18s %6d %9d %9d %9.0f %9.0f %15.3f %13d\n", k, s.keys, s.queries, s.upds, s.rcu, s.wcu, s.maxPerKey, s.maxClusters)
	}
	fmt.Fprintf(&w, "  hottest keys (calls and WCU per simulated second: busiest %s / whole run):\n", faninWindow)
	fmt.Fprintf(&w, "    %-17s %-32s %-34s %5s %6s %6s %13s %13s\n", "kind", "rule", "cluster", "items", "Query", "Update", "calls/s", "WCU/s")
	for _, h := range r.hot[:min(12, len(r.hot))] {
		cl := h.cluster
		if cl == "" {
			cl = "?"
		}
		fmt.Fprintf(&w, "    %-17s %-32s %-34s %5s %6d %6d %6.3f/%6.3f %6.2f/%6.2f\n", h.kind, h.rule, cl, h.items, h.queries, h.updates, h.peak, h.avg, h.wcuPeak, h.wcu)
	}
	// Printed, not logged: the testing package cuts a benchmark's log to
	// ten lines.
	fmt.Print(w.String())
}

// faninCallsPerKeyDelivery bounds the calls one delivery makes on one
// partition key: a Query, an UpdateItem for each of the two minute buckets
// a 5 s delivery can touch, a write whose condition failed read and made
// again, a claim and up to three writes marking its finding sent.
const faninCallsPerKeyDelivery = 9

// TestFaninKeysStayPerCluster runs a small fan-in (4 clusters, each named
// prod, in 4 accounts; 30 s of deliveries; the scanner in all of them) through the handler against dynalite, two invocations at once, and
// checks what docs/scale.md's hot-key argument rests on: no partition key
// is called for the deliveries of more than one cluster, so a key's rate
// is bounded by its own cluster's deliveries whatever one address does to
// the others; and the calls per record stay near what was measured.
func TestFaninKeysStayPerCluster(t *testing.T) {
	env := startDynalite(t)
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	// A tenth of a busy cluster's lines (what the test checks is the
	// anonymous traffic's): the run takes seconds under the race detector.
	const n = 4
	r := faninRun(t, env, set, faninOpts{clusters: n, records: 2 * n * 6, batch: 10, lanes: 2, step: 10 * archiveStep})
	r.log()
	if r.itemFailures != 0 || r.res.Events != int(r.events) {
		t.Errorf("%d batch item failures, %d of %d events handled", r.itemFailures, r.res.Events, r.events)
	}
	if len(r.scannerFindings) != n {
		t.Errorf("the scanner has findings on %d clusters, want %d apart: %v", len(r.scannerFindings), n, r.scannerFindings)
	}
	if calls := float64(r.queries+r.updates) / float64(r.records); calls > 40 {
		t.Errorf("%.1f DynamoDB calls per record, want at most 40 (about 25 measured)", calls)
	}
	for _, h := range r.hot {
		if h.clusters > 1 {
			t.Errorf("key %s (%s, %s) called for the deliveries of %d clusters", h.pk, h.kind, h.rule, h.clusters)
		}
		if h.cluster != "" && h.calls > int64(faninCallsPerKeyDelivery*r.perCluster[h.cluster]) {
			t.Errorf("key %s (%s, %s): %d calls for the %d deliveries of %s", h.pk, h.kind, h.rule, h.calls, r.perCluster[h.cluster], h.cluster)
		}
	}
}
