// Command fanin is `make local`'s organization mode (FANIN=1): it writes the
// sample audit events as several accounts' clusters to a local Kinesis
// stream, as CloudWatch Logs destinations do, and delivers the stream to the
// detector under the Lambda Runtime Interface Emulator the way Lambda's
// event source mapping does (internal/esm).
//
//	fanin -kinesis URL -invoke URL [-stream NAME] [-accounts A,B] [-clusters prod,staging] FILE.jsonl...
//
// Every account gets every cluster, and every cluster every file's lines,
// so the same cluster name shows up in two accounts: the detector, with
// QUALIFY_CLUSTERS=true, must keep them apart. Each file becomes one
// subscription payload per account and cluster, written with a random
// partition key (the destination's Random distribution), in shuffled
// order.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/esm"
	"github.com/anonwatch/anonwatch/internal/synth"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fanin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fanin", flag.ContinueOnError)
	kin := fs.String("kinesis", "", "Kinesis endpoint (kinesalite)")
	invoke := fs.String("invoke", "", "the emulator's invoke URL")
	stream := fs.String("stream", "anonwatch-fanin", "stream name")
	shards := fs.Int("shards", 2, "shards of the stream, when it is created")
	region := fs.String("region", "eu-west-1", "the stream's region, as each record names it")
	accounts := fs.String("accounts", "111111111111,222222222222", "member accounts")
	clusters := fs.String("clusters", "prod,staging", "cluster names, each in every account")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kin == "" || *invoke == "" || fs.NArg() == 0 {
		return errors.New("usage: fanin -kinesis URL -invoke URL FILE.jsonl…")
	}
	c := kinesis.New(kinesis.Options{
		Region: *region, BaseEndpoint: aws.String(*kin),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	if err := ensureStream(ctx, c, *stream, int32(*shards)); err != nil {
		return err
	}
	recs, err := records(fs.Args(), strings.Split(*accounts, ","), strings.Split(*clusters, ","))
	if err != nil {
		return err
	}
	for _, r := range recs {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: stream, PartitionKey: aws.String(r.key), Data: r.data}); err != nil {
			return fmt.Errorf("put record: %w", err)
		}
	}
	fmt.Fprintf(out, "wrote %d subscription payloads (%d files × %d accounts × %d clusters) to %s, %d shards\n",
		len(recs), fs.NArg(), len(strings.Split(*accounts, ",")), len(strings.Split(*clusters, ",")), *stream, *shards)
	fn := &httpInvoker{url: *invoke, out: out}
	m := esm.New(c, fn, esm.Config{
		Stream: *stream, Region: *region, BatchSize: 10, MaxRetries: 2,
		StreamARN: "arn:aws:kinesis:" + *region + ":000000000000:stream/" + *stream,
		OnFailure: func(shard string, batch []types.Record, err error) {
			fmt.Fprintf(out, "  %s: %d records given up (the on-failure destination): %v\n", shard, len(batch), err)
		},
	})
	st, err := m.Drain(ctx)
	fmt.Fprintf(out, "delivered: %d invocations, %d of them retries, %d records, %d batches given up\n", st.Invocations, st.Retries, st.Records, st.GivenUp)
	return err
}

// ensureStream creates the stream unless it exists, and waits for it.
func ensureStream(ctx context.Context, c *kinesis.Client, name string, shards int32) error {
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	for range 200 {
		d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("stream %s never became active", name)
}

type record struct {
	key  string
	data []byte
}

// records makes one gzipped payload per file, account and cluster, in
// shuffled order, each with a random partition key.
func records(files, accounts, clusters []string) ([]record, error) {
	var out []record
	now := time.Now().UnixMilli()
	for fi, f := range files {
		lines, err := readLines(f)
		if err != nil {
			return nil, err
		}
		stream := "kube-apiserver-audit-" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		for _, acct := range accounts {
			for _, cl := range clusters {
				b := synth.Batch(lines, "/aws/eks/"+cl+"/cluster", stream, fi*100000)
				b.Owner = acct
				for i := range b.Events {
					// CloudWatch dates every line, those cut before their
					// stageTimestamp too.
					if b.Events[i].Timestamp == 0 {
						b.Events[i].Timestamp = now
					}
				}
				p, err := cwlogs.EncodePayload(b)
				if err != nil {
					return nil, err
				}
				var gz bytes.Buffer
				zw := gzip.NewWriter(&gz)
				zw.Write(p)
				zw.Close()
				key := make([]byte, 8)
				rand.Read(key)
				out = append(out, record{key: hex.EncodeToString(key), data: gz.Bytes()})
			}
		}
	}
	mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

func readLines(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			lines = append(lines, bytes.Clone(l))
		}
	}
	return lines, sc.Err()
}

// httpInvoker posts each event to the emulator, one at a time (it runs one
// invocation at a time), and prints what came back.
type httpInvoker struct {
	url string
	out io.Writer
	mu  sync.Mutex
}

func (h *httpInvoker) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ev events.KinesisEvent
	json.Unmarshal(event, &ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	shard := ""
	if len(ev.Records) > 0 {
		shard, _, _ = strings.Cut(ev.Records[0].EventID, ":")
	}
	var fe struct{ ErrorType, ErrorMessage string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &fe) == nil && fe.ErrorType != "" {
		fmt.Fprintf(h.out, "  %s: %d records: function error %s %s\n", shard, len(ev.Records), fe.ErrorType, fe.ErrorMessage)
		return nil, fmt.Errorf("function error: HTTP %d %s", resp.StatusCode, body)
	}
	fmt.Fprintf(h.out, "  %s: %d records: %s\n", shard, len(ev.Records), body)
	return body, nil
}
