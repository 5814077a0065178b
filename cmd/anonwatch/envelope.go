package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// envelopeOwner is the account id written into generated events: AWS's
// documentation example account, never a real one.
const envelopeOwner = "123456789012"

func envelopeCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	group := fs.String("log-group", "", "log group, e.g. /aws/eks/demo/cluster (required)")
	stream := fs.String("log-stream", "kube-apiserver-audit-0f1e2d3c4b5a69788796a5b4c3d2e1f0", "log stream")
	control := fs.Bool("control", false, "make a CONTROL_MESSAGE (the input is ignored)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anonwatch envelope --log-group GROUP [--log-stream NAME] [--control] FILE")
		fmt.Fprintln(stderr, "Wraps each line of FILE (JSON lines; - for stdin), as it stands, into one CloudWatch Logs subscription event.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *group == "" || fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	var r io.Reader = stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch envelope:", err)
			return exitUsage
		}
		defer f.Close()
		r = f
	}
	b, err := envelopeBatch(r, *group, *stream, *control)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch envelope:", err)
		return exitUsage
	}
	out, err := cwlogs.Encode(b)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch envelope:", err)
		return exitError
	}
	stdout.Write(out)
	io.WriteString(stdout, "\n")
	return exitOK
}

// envelopeBatch reads lines as they stand — malformed or truncated lines
// included, since those are test cases too — and gives each a CloudWatch
// style id and a timestamp from its requestReceivedTimestamp when it has one.
func envelopeBatch(r io.Reader, group, stream string, control bool) (cwlogs.Batch, error) {
	b := cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		Owner:       envelopeOwner,
		LogGroup:    group,
		LogStream:   stream,
		Cluster:     cwlogs.ClusterName(group),
	}
	if control {
		// CloudWatch sends this when a subscription is created, to check
		// that the destination is reachable.
		b.MessageType = cwlogs.ControlMessage
		b.Owner = "CloudwatchLogs"
		b.LogGroup, b.LogStream = "", ""
		b.Events = []cwlogs.LogEvent{{ID: "", Timestamp: 1764403200000, Message: []byte("CWL CONTROL MESSAGE: Checking health of destination Firehose.")}}
		return b, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var last int64
	for n := 0; sc.Scan(); {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ts := lineTime(line)
		if ts == 0 {
			ts = last
		}
		last = ts
		b.Events = append(b.Events, cwlogs.LogEvent{
			ID:        logEventID(ts, n),
			Timestamp: ts,
			Message:   bytes.Clone(line),
		})
		n++
	}
	return b, sc.Err()
}

func lineTime(line []byte) int64 {
	var probe struct {
		T string `json:"requestReceivedTimestamp"`
	}
	if json.Unmarshal(line, &probe) != nil {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, probe.T)
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}

// logEventID makes a 56-digit id shaped like CloudWatch's, from the
// timestamp and position, so generated fixtures are stable.
func logEventID(ts int64, n int) string {
	return fmt.Sprintf("%020d%036d", ts, n)
}
