package perf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// The service limits the deliveries are built against (AWS documentation,
// as of 2026; docs/performance.md cites the pages):
//
//   - Lambda Invoke: an asynchronous invocation, which is how a CloudWatch
//     Logs subscription calls its function, carries at most 1 MB (256 KB
//     until October 2025); a synchronous one, such as an invoke through the
//     emulator or `sam local invoke`, at most 6 MB.
//   - CloudWatch Logs PutLogEvents: one log event is at most 1 MB (256 KB
//     until April 2025); a call is at most 10,000 events and 1,048,576
//     bytes, counted as the messages' UTF-8 bytes plus 26 per event.
//
// AWS documents no bound on how many events one subscription delivery
// holds or how far its payload inflates; the invocation limit is the only
// one. So the largest delivery is the one whose whole Lambda event is just
// under asyncInvokeLimit, built from the most compressible content that
// is still a real audit log.
const (
	// asyncInvokeLimit is the largest asynchronous invocation event. The
	// old 256 KB limit was 262,144 bytes, so 1 MB is taken as 2^20.
	asyncInvokeLimit = 1 << 20
	// syncInvokeLimit is the largest synchronous invocation event.
	syncInvokeLimit = 6 << 20
	// maxLogEvent is the largest log event CloudWatch Logs accepts: a
	// PutLogEvents call of one event, less its 26 bytes of overhead.
	maxLogEvent = 1<<20 - 26
)

// gomemlimit is a soft memory limit a user might set in the function's
// environment, which replaces the one it derives from its memory size
// (internal/memlimit).
const gomemlimit = "100MiB"

// budgetKiB returns the peak resident set a delivery that CloudWatch Logs
// can send may cost: three quarters of the function's MemorySize (MB, as
// Lambda counts it, taken as MiB), leaving a quarter for what these
// measurements do not see (the variation between runs, and in process:
// the AWS SDK clients and their connections).
func budgetKiB(memorySize int) int64 { return int64(memorySize) << 10 * 3 / 4 }

// memorySize reads DetectorFunction's MemorySize from the template.
func memorySize(path string) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	js, err := intrinsics.ProcessYAML(src, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Properties struct{ MemorySize *int }
		}
	}
	if err := json.Unmarshal(js, &tmpl); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	m := tmpl.Resources["DetectorFunction"].Properties.MemorySize
	if m == nil {
		return 0, fmt.Errorf("%s: DetectorFunction has no MemorySize", path)
	}
	return *m, nil
}

// logGroup and logStream are where every delivery comes from: cluster
// "perf", one API server's audit stream.
const (
	logGroup  = "/aws/eks/perf/cluster"
	logStream = "kube-apiserver-audit-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
)

// start is the time of each delivery's first event.
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// delivery is one subscription event whose memory is measured.
type delivery struct {
	name string
	// what says, for the tables, what it holds.
	what string
	// lines returns the audit lines of the first n events; more lines
	// than fit are asked for, so lines must accept any n.
	lines func(n int) [][]byte
	// fit decides n: the most events for which the Lambda event stays
	// within eventLimit and the decompressed payload within
	// payloadLimit (0: no bound of its own).
	eventLimit, payloadLimit int64
	// fixed, when not zero, is n instead.
	fixed int
	// overBound reports that the delivery's lines total more than the
	// decoder keeps (cwlogs.Limits.MaxDecompressed): it cuts the lines past
	// the bound to a prefix, which the detector reports as damaged, and
	// processes the rest. (It used to refuse the whole delivery.)
	overBound bool
	// async reports that CloudWatch Logs could deliver it: its Lambda
	// event is within asyncInvokeLimit. Only these are held to the
	// memory budget.
	async bool
	// aggregates and findings, when not zero, are what the delivery must
	// make on fresh state: the groups bound (detect.DefaultMaxGroups)
	// holds a sweep to 3 rules × 200 sources + 3 sweep groups.
	aggregates, findings int
	// withLimit asks for a second measurement with GOMEMLIMIT set to
	// gomemlimit, the setting docs/performance.md proposes.
	withLimit bool
}

// deliveries are the measured cases, in the order of the tables.
var deliveries = []delivery{
	{
		name:       "flood-one-source",
		what:       "refused anonymous probes from one address to 50 paths: the most compressible real traffic",
		lines:      floodOneSource,
		eventLimit: asyncInvokeLimit,
		async:      true,
		aggregates: 8, // 4 per-source rules, 3 per-cluster campaign rules, 1 per-network rule
		findings:   6, // all but anonymous-campaign (20 sources) and anonymous-network-rotation (3)
	},
	{
		name:       "flood-distributed",
		what:       "refused anonymous probes, each from its own address to its own path: the most sources; each rule tracks 200 and counts the rest as a sweep",
		lines:      floodDistributed,
		eventLimit: asyncInvokeLimit,
		async:      true,
		// 4 per-source rules × (200 + a sweep), 3 per-cluster rules, and
		// anonymous-network-rotation's 58 /24s of 14,782 addresses.
		aggregates: 865,
		// 200 sources of eks-cluster-scan (threshold 1), 4 sweeps, 3
		// campaigns, 58 networks.
		findings: 265,
	},
	{
		name:       "flood-distributed-2000",
		what:       "the first 2,000 of those probes",
		lines:      floodDistributed,
		fixed:      2000,
		eventLimit: asyncInvokeLimit,
		async:      true,
		aggregates: 815, // 8 /24s
		findings:   215,
	},
	{
		name:       "max-size-events",
		what:       "anonymous probes with requestURIs that make each line 1 MB, as many as the decoder keeps whole (it keeps room for short lines and the prefixes of cut ones)",
		lines:      maxSizeProbes,
		fixed:      26,
		eventLimit: asyncInvokeLimit,
		async:      true,
		withLimit:  true,
	},
	{
		name:       "max-size-events-over-bound",
		what:       "the same 1 MB lines, 40 of them: more than MaxDecompressed, so the lines past it are cut and reported",
		lines:      maxSizeProbes,
		fixed:      40,
		eventLimit: asyncInvokeLimit,
		overBound:  true,
		async:      true,
	},
	{
		name:       "max-size-watches",
		what:       "1 MB anonymous watches (long-running: counted by request identity), as many as the decoder keeps whole",
		lines:      maxSizeWatches,
		fixed:      26,
		eventLimit: asyncInvokeLimit,
		async:      true,
	},
	{
		name:         "decoder-bound-anonymous",
		what:         "synthetic anonymous traffic, as much as the decoder keeps whole (its lines and their events' overhead within seven eighths of MaxDecompressed); only a synchronous invoke or the CLI can carry it",
		lines:        anonymousTraffic,
		eventLimit:   syncInvokeLimit,
		payloadLimit: cwlogs.DefaultLimits.MaxDecompressed * 29 / 32,
		withLimit:    true,
	},
}

// The line builders return the first n lines of an endless sequence, so
// that fewer lines are a prefix of more.

// floodOneSource returns n refused requests from one scanner, cycling
// through 50 namespaces' secrets, 90 ms apart (some 13,000 in twenty
// minutes).
func floodOneSource(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = synth.Probe{
			At:        start.Add(time.Duration(i) * 90 * time.Millisecond),
			SrcIP:     "198.51.100.77",
			UserAgent: "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
			URI:       fmt.Sprintf("/api/v1/namespaces/ns-%02d/secrets", i%50),
		}.Line()
	}
	return lines
}

// floodDistributed returns n refused requests 20 ms apart, each from its
// own address in 198.18.0.0/15 (RFC 2544, benchmarking) to its own path:
// a botnet's scan, which gives every event its own group.
func floodDistributed(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = synth.Probe{
			At:        start.Add(time.Duration(i) * 20 * time.Millisecond),
			SrcIP:     fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&0xff, i&0xff),
			UserAgent: "Mozilla/5.0 zgrab/0.x",
			URI:       fmt.Sprintf("/api/v1/namespaces/team-%d/configmaps", i),
		}.Line()
	}
	return lines
}

// maxSizeWatches is maxSizeProbes as watches: each a long-running request,
// counted by its identity, which must not cost a copy of its URI per rule.
func maxSizeWatches(n int) [][]byte {
	lines := maxSizeProbes(n)
	for i := range lines {
		lines[i] = bytes.Replace(lines[i], []byte(`"verb":"list"`), []byte(`"verb":"watch"`), 1)
	}
	return lines
}

// maxSizeProbes returns n refused requests whose requestURI is padded
// with a repeated query so that each line is maxLogEvent bytes: the
// largest line CloudWatch Logs accepts and the parser reads (its bound is
// 1 MiB), all of it text an anonymous client chooses.
func maxSizeProbes(n int) [][]byte {
	base := synth.Probe{At: start, SrcIP: "203.0.113.66", UserAgent: "curl/8.5.0", URI: "/api/v1/pods?labelSelector="}.Line()
	pad := maxLogEvent - len(base)
	lines := make([][]byte, n)
	for i := range lines {
		uri := "/api/v1/pods?labelSelector=" + strings.Repeat("app%3Dx,", pad/8) + strings.Repeat("x", pad%8)
		lines[i] = synth.Probe{
			At:        start.Add(time.Duration(i) * time.Second),
			SrcIP:     "203.0.113.66",
			UserAgent: "curl/8.5.0",
			URI:       uri,
		}.Line()
	}
	return lines
}

// anonymousTraffic returns n lines of the synthetic generator's anonymous
// traffic (scanners and health probes), 20 ms apart.
func anonymousTraffic(n int) [][]byte {
	g := synth.New(7, start, 20*time.Millisecond, synth.Mix{Anonymous: 1})
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = g.Next()
	}
	return lines
}

// failer is the part of testing.TB that building a delivery uses, so that
// a child process, which has no testing.TB, can build them too.
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// exitFailer is a failer for a child process: it reports on stderr and
// exits with status 1.
type exitFailer struct{}

func (exitFailer) Helper() {}

func (exitFailer) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"perf child:"}, args...)...)
	os.Exit(1)
}

func (exitFailer) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "perf child: "+format+"\n", args...)
	os.Exit(1)
}

// built is one delivery as the function receives it.
type built struct {
	event        []byte // {"awslogs":{"data":"..."}}
	events       int    // log events in it
	payloadBytes int64  // the decompressed payload
	gzipBytes    int64
	lineBytes    int64 // the audit lines alone
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]*built{}
)

// build returns d's event, built once per test binary.
func build(tb failer, d delivery) *built {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := buildCache[d.name]; ok {
		return b
	}
	n := d.fixed
	if n == 0 {
		n = fit(tb, d)
	}
	b, err := encode(d.lines(n))
	if err != nil {
		tb.Fatalf("%s: %v", d.name, err)
	}
	if int64(len(b.event)) > d.eventLimit {
		tb.Fatalf("%s: the event is %d bytes, over the %d a delivery can be", d.name, len(b.event), d.eventLimit)
	}
	if d.async != (len(b.event) <= asyncInvokeLimit) {
		tb.Fatalf("%s: the event is %d bytes; async is %v but the limit is %d", d.name, len(b.event), d.async, asyncInvokeLimit)
	}
	if over := b.payloadBytes > cwlogs.DefaultLimits.MaxDecompressed; over != d.overBound {
		tb.Fatalf("%s: the payload is %d bytes; overBound is %v but MaxDecompressed is %d", d.name, b.payloadBytes, d.overBound, cwlogs.DefaultLimits.MaxDecompressed)
	}
	buildCache[d.name] = b
	return b
}

// encode wraps lines in a subscription event as CloudWatch Logs sends it.
func encode(lines [][]byte) (*built, error) {
	batch := synth.Batch(lines, logGroup, logStream, 1)
	payload, err := cwlogs.EncodePayload(batch)
	if err != nil {
		return nil, err
	}
	ev, err := cwlogs.Encode(batch)
	if err != nil {
		return nil, err
	}
	var parsed events.CloudwatchLogsEvent
	if err := json.Unmarshal(ev, &parsed); err != nil {
		return nil, err
	}
	b := &built{event: ev, events: len(lines), payloadBytes: int64(len(payload)), gzipBytes: int64(len(parsed.AWSLogs.Data)) * 3 / 4}
	for _, l := range lines {
		b.lineBytes += int64(len(l))
	}
	return b, nil
}

// fit returns the most events of d whose delivery stays within d's limits.
func fit(tb failer, d delivery) int {
	tb.Helper()
	if d.payloadLimit > 0 {
		return fitPayload(tb, d)
	}
	return fitEvent(tb, d)
}

// fitPayload fits d to its payload limit, which a payload's size, unlike
// its compressed size, allows to compute event by event: the payload is a
// fixed frame plus each event's JSON, joined by commas.
func fitPayload(tb failer, d delivery) int {
	tb.Helper()
	frame, err := cwlogs.EncodePayload(synth.Batch(nil, logGroup, logStream, 1))
	if err != nil {
		tb.Fatal(err)
	}
	sample := d.lines(16)
	var sampleBytes int
	for _, l := range sample {
		sampleBytes += len(l)
	}
	upper := int(float64(d.payloadLimit)/float64(sampleBytes)*float64(len(sample))) + 16
	lines := d.lines(upper)
	total := int64(len(frame)) - 1 // the first event has no comma
	for i, l := range lines {
		one, err := cwlogs.EncodePayload(synth.Batch([][]byte{l}, logGroup, logStream, 1+i))
		if err != nil {
			tb.Fatal(err)
		}
		total += int64(len(one)-len(frame)) + 1
		if total > d.payloadLimit {
			return i
		}
	}
	tb.Fatalf("%s: %d lines do not reach the payload limit %d", d.name, upper, d.payloadLimit)
	return 0
}

// fitEvent fits d to its event limit. The compressed size grows with the
// events but not in proportion, so it steps by the ratio of the limit to
// the size reached until the event fills 99.7% to 100% of the limit.
func fitEvent(tb failer, d delivery) int {
	tb.Helper()
	size := func(lines [][]byte) int64 {
		b, err := encode(lines)
		if err != nil {
			tb.Fatalf("%s: %v", d.name, err)
		}
		return int64(len(b.event))
	}
	const sampleN = 2000
	perEvent := float64(size(d.lines(sampleN))) / sampleN
	n := int(float64(d.eventLimit) / perEvent)
	all := d.lines(2 * n)
	for range 10 {
		s := size(all[:n])
		if s <= d.eventLimit && s*1000 >= d.eventLimit*997 {
			return n
		}
		n = int(float64(n) * float64(d.eventLimit) / float64(s) * 0.9985)
		if n > len(all) {
			all = d.lines(2 * n)
		}
	}
	tb.Fatalf("%s: no event count fills 99.7%% of %d bytes", d.name, d.eventLimit)
	return 0
}

// builtFile is a delivery written to a file, as the manifest lists it.
type builtFile struct {
	Name         string `json:"name"`
	What         string `json:"what"`
	Path         string `json:"path"`
	Events       int    `json:"events"`
	EventBytes   int    `json:"event_bytes"`
	GzipBytes    int64  `json:"gzip_bytes"`
	PayloadBytes int64  `json:"payload_bytes"`
	LineBytes    int64  `json:"line_bytes"`
}

// writeEvents writes each delivery's event to dir/<name>.json and returns
// what it wrote.
func writeEvents(tb failer, dir string) map[string]builtFile {
	tb.Helper()
	files := make(map[string]builtFile, len(deliveries))
	for _, d := range deliveries {
		b := build(tb, d)
		p := filepath.Join(dir, d.name+".json")
		if err := os.WriteFile(p, b.event, 0o644); err != nil {
			tb.Fatal(err)
		}
		files[d.name] = builtFile{Name: d.name, What: d.what, Path: p, Events: b.events, EventBytes: len(b.event),
			GzipBytes: b.gzipBytes, PayloadBytes: b.payloadBytes, LineBytes: b.lineBytes}
	}
	return files
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// describe is one line about a built delivery, for the test log.
func describe(f builtFile) string {
	return fmt.Sprintf("%s (%s): %d events, %d bytes of lines, Lambda event %d bytes, gzip %d bytes, payload %d bytes (%s MiB, %.1fx)",
		f.Name, f.What, f.Events, f.LineBytes, f.EventBytes, f.GzipBytes, f.PayloadBytes, mib(f.PayloadBytes), float64(f.PayloadBytes)/float64(f.GzipBytes))
}
