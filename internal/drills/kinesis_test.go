//go:build integration

package drills

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/esm"
	"github.com/anonwatch/anonwatch/internal/faultproxy"
)

// TestKinesisRedeliveryDrill is the fault drill of the organization
// deployment: the matrix's payload arrives as a record of a CloudWatch Logs
// destination's stream (kinesalite), the event source mapping
// (internal/esm) delivers it to the bootstrap under the emulator, and a
// DynamoDB or SNS call fails at a position, for good (every SDK retry of
// it too), so that the function reports the record failed. The mapping
// delivers it again until it goes through; then a mapping that lost its
// checkpoints delivers the whole stream once more. Whatever failed and
// however often it was delivered, the table must hold the fault-free
// counts and the topic must have delivered the three findings, each ID
// once, or twice only where the publish's response was lost (the one
// window detect.State documents).
func TestKinesisRedeliveryDrill(t *testing.T) {
	dir := t.TempDir()
	kin, err := emu.StartKinesalite(nodeBin, filepath.Join(repoRoot, "tools", "node", "kinesalite-loopback.js"), filepath.Join(dir, "kinesalite.log"))
	if err != nil {
		t.Fatalf("%v (scripts/tools.sh installs kinesalite)", err)
	}
	t.Cleanup(kin.Stop)
	// A goaws of its own: lost responses and dropped connections are
	// injected in front of it, and whatever they do to it stays here.
	snsSrv, err := emu.StartGoaws(goawsBin, dir, "kinesis", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snsSrv.Stop)
	kc := kinesis.New(kinesis.Options{Region: "eu-west-1", BaseEndpoint: aws.String(kin.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}})
	var env struct{ AWSLogs struct{ Data string } }
	if err := json.Unmarshal(emu.ReadEvent(t, repoRoot, matrixEvent), &env); err != nil {
		t.Fatal(err)
	}
	gz, err := base64.StdEncoding.DecodeString(env.AWSLogs.Data)
	if err != nil {
		t.Fatal(err)
	}

	var baseline map[string]int64
	retried := 0 // cells in which the record was delivered again for a failure
	cells := []cell{{}}
	for _, k := range []faultKind{serverError, throttling, droppedConnection, responseLost} {
		// The payload makes three publishes and dozens of DynamoDB calls.
		for _, at := range []struct {
			svc       service
			positions []int
		}{{dynamoDB, []int{1, 4, 9}}, {sns, []int{1, 2, 3}}} {
			for _, pos := range at.positions {
				cells = append(cells, cell{kind: k, svc: at.svc, pos: pos, persistent: true})
			}
		}
	}
	for _, c := range cells {
		name := "baseline"
		if c.pos > 0 {
			name = c.String()
		}
		t.Run(name, func(t *testing.T) {
			counts, published, st := kinesisCell(t, kc, snsSrv, gz, c)
			if c.pos == 0 {
				baseline = counts
			} else if diff := cmp.Diff(baseline, counts); diff != "" {
				t.Errorf("counts differ from the fault-free run (-baseline +this):\n%s", diff)
			}
			if st.Retries > 0 {
				retried++
			}
			t.Logf("%d invocations, %d retries", st.Invocations, st.Retries)
			seen := map[string]int{}
			var distinct []outcome
			for _, f := range published {
				if seen[f.ID]++; seen[f.ID] == 1 {
					distinct = append(distinct, outcome{Rule: f.Rule, SrcIP: f.SrcIP, Severity: f.Severity, Count: f.Count})
				}
			}
			if diff := cmp.Diff(matrixFindings, sortOutcomes(distinct)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			for id, n := range seen {
				if n > 1 && !(c.kind == responseLost && c.svc == sns) {
					t.Errorf("finding %s delivered %d times", id, n)
				}
			}
		})
	}
	t.Logf("%d of %d faults made the function report the record failed and the mapping deliver it again", retried, len(cells)-1)
	if len(baseline) == 0 || retried < len(cells)-1 {
		t.Errorf("baseline of %d buckets, %d cells retried: the drill tests too little", len(baseline), retried)
	}
}

// kinesisCell runs one cell and returns the table's bucket counts, the
// findings the topic delivered and what the mappings did.
func kinesisCell(t *testing.T, kc *kinesis.Client, snsSrv *emu.Server, data []byte, c cell) (map[string]int64, []outcomeFinding, esm.Stats) {
	t.Helper()
	ctx := context.Background()
	table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
	topic, q := newTopicAndQueue(t, snsSrv.URL())
	stream := uniqueName(t, "stream")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	})
	for range 100 {
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: data}); err != nil {
		t.Fatal(err)
	}

	pd := faultproxy.New(sharedDynamo.URL())
	defer pd.Close()
	ps := faultproxy.New(snsSrv.URL())
	defer ps.Close()
	ps.SetProtocol(faultproxy.AWSQuery)
	inj := map[service]*injector{dynamoDB: {svc: dynamoDB}, sns: {svc: sns}}
	if c.pos > 0 {
		in := inj[c.svc]
		in.kind, in.pos, in.persistent = c.kind, int64(c.pos), c.persistent
	}
	pd.SetRule(inj[dynamoDB].rule)
	ps.SetRule(inj[sns].rule)
	fn := startFunction(t, append(functionEnv(pd.URL(), ps.URL(), table, topic), "QUALIFY_CLUSTERS=true"))
	iv := &drillInvoker{fn: fn}
	mapping := func() *esm.Mapping {
		return esm.New(kc, iv, esm.Config{Stream: stream, Region: "eu-west-1", BatchSize: 10, MaxRetries: settings.MaxRetryAttempts,
			StreamARN: "arn:aws:kinesis:eu-west-1:" + emu.GoawsAccount + ":stream/" + stream})
	}
	// The fault lasts for the first invocation, as in the matrix.
	if c.pos > 0 {
		iv.after = func() {
			if err := inj[c.svc].Recover(); err != nil {
				t.Error(err)
			}
		}
	}
	st, err := mapping().Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := mapping().Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Invocations == 0 {
		t.Fatal("the redelivery delivered nothing")
	}
	st.Invocations += again.Invocations
	if st.GivenUp > 0 {
		t.Errorf("%d batches given up", st.GivenUp)
	}
	var fs []outcomeFinding
	for _, f := range delivered(t, emu.MustReceive(t, q)) {
		fs = append(fs, outcomeFinding{ID: f.ID, Rule: f.Rule, SrcIP: f.SrcIP, Severity: f.Severity, Count: f.Count})
	}
	return bucketCounts(scanTable(t, sharedDynamo.URL(), table)), fs, st
}

// outcomeFinding is a delivered finding as the drill compares it.
type outcomeFinding struct {
	ID, Rule, SrcIP, Severity string
	Count                     int64
}

// drillInvoker invokes the function for the mapping, one invocation at a
// time, and runs after once the first returned.
type drillInvoker struct {
	fn    *rie.Instance
	mu    sync.Mutex
	after func()
	n     int
}

func (d *drillInvoker) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		if d.n++; d.n == 1 && d.after != nil {
			d.after()
		}
	}()
	iv, err := invoke(ctx, d.fn, event)
	if err != nil {
		return nil, err
	}
	if !iv.OK() && iv.Err.Type != "" {
		return nil, fmt.Errorf("%s: %s", iv.Err.Type, iv.Err.Message)
	}
	if iv.Resp.Status != http.StatusOK {
		return nil, fmt.Errorf("emulator answered %d", iv.Resp.Status)
	}
	return iv.Resp.Body, nil
}
