//go:build integration

package drills

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// hostileStart is when the hostile drill's valid requests happen.
var hostileStart = time.Date(2026, 3, 14, 11, 0, 0, 0, time.UTC)

// validPart is the valid part every hostile batch carries: three refused
// anonymous requests from one address to three paths, which make one
// medium eks-cluster-scan finding (3 distinct paths) and nothing else.
func validPart() [][]byte {
	var lines [][]byte
	for i, path := range []string{"/api/v1/secrets", "/apis", "/.env"} {
		lines = append(lines, synth.Probe{At: hostileStart.Add(time.Duration(i) * time.Second), SrcIP: "203.0.113.200", UserAgent: "zgrab/0.x", URI: path}.Line())
	}
	return lines
}

var validFinding = outcome{Rule: "eks-cluster-scan", SrcIP: "203.0.113.200", Severity: "medium", Count: 3}

// probe returns one refused anonymous request from ip as an audit line,
// after edit changes its decoded JSON.
func probe(ip string, edit func(map[string]any)) []byte {
	line := synth.Probe{At: hostileStart.Add(30 * time.Second), SrcIP: ip, UserAgent: "curl/8.5.0", URI: "/api/v1/configmaps"}.Line()
	if edit == nil {
		return line
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		panic(err)
	}
	edit(m)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// envelope encodes lines as a subscription event from stream.
func envelope(t testing.TB, stream string, lines [][]byte) []byte {
	t.Helper()
	ev, err := cwlogs.Encode(synth.Batch(lines, drillLogGroup, stream, 1))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// bigBatch wraps many lines in a batch from stream, as synth.Batch does, but
// gives each event the id and timestamp of its position rather than
// reading its time from the line, which costs seconds over 100,000 lines
// under the race detector.
func bigBatch(stream string, lines [][]byte) cwlogs.Batch {
	b := cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: drillLogGroup, LogStream: stream, Events: make([]cwlogs.LogEvent, len(lines))}
	ms := hostileStart.UnixMilli()
	for i, l := range lines {
		b.Events[i] = cwlogs.LogEvent{ID: fmt.Sprintf("%020d%036d", ms+int64(i), i+1), Timestamp: ms + int64(i), Message: l}
	}
	return b
}

// encodeFast encodes b as cwlogs.Encode does, with gzip's fast level 2 (its
// default level takes six times as long on 50 MB under the race detector),
// and fails unless cwlogs.DefaultLimits admit the result.
func encodeFast(t testing.TB, b cwlogs.Batch) []byte {
	t.Helper()
	p, err := cwlogs.EncodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, 2)
	zw.Write(p)
	zw.Close()
	if lim := cwlogs.DefaultLimits; int64(len(p)) > lim.MaxDecompressed || int64(gz.Len()) > lim.MaxCompressed {
		t.Fatalf("payload of %d bytes, %d compressed: beyond cwlogs.DefaultLimits %+v, which the case expects to admit it", len(p), gz.Len(), lim)
	}
	return wrap(gz.Bytes())
}

// wrap makes a subscription event of raw gzip bytes.
func wrap(gz []byte) []byte {
	return wrapData(base64.StdEncoding.EncodeToString(gz))
}

func wrapData(data string) []byte {
	b, _ := json.Marshal(map[string]any{"awslogs": map[string]string{"data": data}})
	return b
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// gzipBomb returns about 2 MB of gzip that inflates to 2 GiB: the start of
// a subscription payload whose one message is 2 GiB of "A", as 256 gzip
// members of 8 MiB each (Go, like gunzip, reads concatenated members as one
// stream), closed by a small member. The small member's trailer is the one
// a reader sees last, so it also announces a tiny size: the decoder cannot
// size its buffer from it and must grow it.
func gzipBomb() []byte {
	var out bytes.Buffer
	out.Write(gzipped([]byte(`{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"` + drillLogGroup + `","logStream":"bomb","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":1,"message":"`)))
	chunk := gzipped(bytes.Repeat([]byte("A"), 8<<20))
	for range 256 {
		out.Write(chunk)
	}
	out.Write(gzipped([]byte(`"}]}`)))
	return out.Bytes()
}

// rawPayload encodes lines as a payload, then replaces every occurrence of
// marker in it with raw, bytes no JSON encoder writes (invalid UTF-8).
func rawPayload(t testing.TB, stream string, lines [][]byte, marker, raw string) []byte {
	t.Helper()
	p, err := cwlogs.EncodePayload(synth.Batch(lines, drillLogGroup, stream, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(p, []byte(marker)) {
		t.Fatalf("payload lacks the marker %q", marker)
	}
	return wrap(gzipped(bytes.ReplaceAll(p, []byte(marker), []byte(raw))))
}

// nestedMarker stands for deeply nested JSON in a probe until withNested
// puts it in: encoding/json refuses to write more than 10,000 levels.
const nestedMarker = "@@NESTED@@"

// withNested replaces the quoted nestedMarker in line with arrays nested
// depth deep.
func withNested(line []byte, depth int) []byte {
	marker := []byte(`"` + nestedMarker + `"`)
	if !bytes.Contains(line, marker) {
		panic("withNested: no marker in " + string(line))
	}
	return bytes.Replace(line, marker, []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)), 1)
}

// filler returns n authenticated audit lines of a node's readiness reads,
// which no rule's pre-filter lets through.
func filler(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		// Short lines: 100,000 of them must fit the decoder's 32 MiB
		// payload bound.
		lines[i] = fmt.Appendf(nil, `{"apiVersion":"audit.k8s.io/v1","auditID":"%d","stage":"ResponseComplete","requestURI":"/readyz","verb":"get","user":{"username":"system:node:n1"},"sourceIPs":["10.0.1.2"]}`, i)
	}
	return lines
}

// scan100 returns n refused anonymous requests from 198.51.100.77 over ten
// minutes, to 50 paths in turn.
func scan100(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = synth.Probe{
			At:        hostileStart.Add(time.Duration(i) * 10 * time.Minute / time.Duration(n)),
			SrcIP:     "198.51.100.77",
			UserAgent: "nuclei",
			URI:       fmt.Sprintf("/api/v1/namespaces/ns-%02d/secrets", i%50),
		}.Line()
	}
	return lines
}

// floodEvents is the number of probes in largestEvent: as many as fit in
// Lambda's 1 MB limit for an asynchronous invocation.
const floodEvents = 13800

// asyncLimit is the largest event Lambda accepts for an asynchronous
// invocation, which is how CloudWatch Logs invokes the function.
const asyncLimit = 1 << 20

var floodIPs = []string{"198.51.100.81", "198.51.100.82", "198.51.100.83", "198.51.100.84"}

// largestEvent is floodEvents refused requests from floodIPs in turn, over
// twenty minutes, to 50 paths in turn.
func largestEvent(t testing.TB) []byte {
	lines := make([][]byte, floodEvents)
	for i := range lines {
		lines[i] = synth.Probe{
			At:        hostileStart.Add(time.Duration(i) * 20 * time.Minute / floodEvents),
			SrcIP:     floodIPs[i%len(floodIPs)],
			UserAgent: "masscan/1.3",
			URI:       fmt.Sprintf("/api/v1/namespaces/ns-%02d/secrets", i%50),
		}.Line()
	}
	ev, err := cwlogs.Encode(bigBatch("flood", lines))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) > asyncLimit {
		t.Fatalf("the flood event is %d bytes, above Lambda's %d for an asynchronous invocation", len(ev), asyncLimit)
	}
	return ev
}

// floodFindings are largestEvent's findings: from each address, requests
// to 50 paths (eks-cluster-scan at medium, anonymous-enumeration), all
// refused within 30 minutes (unauthenticated-403-burst), 48 or more in a
// day (anonymous-slow-scan); from all of them, 30 or more paths
// (anonymous-path-campaign) and 100 or more refusals
// (unauthenticated-refusal-campaign) in the first minute. Each is the
// window of the first bucket that reaches the severity: the first minute,
// or for anonymous-slow-scan's 24h window the first 24-minute bucket
// (detect.BucketWidthFor): the finding in-order processing sends
// (docs/semantics.md).
func floodFindings() []outcome {
	firstMinute := map[string]int64{}
	firstSlow := map[string]int64{}
	slowBucket := hostileStart.Truncate(24 * time.Minute)
	var all int64
	for i := range floodEvents {
		at := hostileStart.Add(time.Duration(i) * 20 * time.Minute / floodEvents)
		if at.Sub(hostileStart) < time.Minute {
			firstMinute[floodIPs[i%len(floodIPs)]]++
			all++
		}
		if at.Truncate(24 * time.Minute).Equal(slowBucket) {
			firstSlow[floodIPs[i%len(floodIPs)]]++
		}
	}
	var out []outcome
	for _, ip := range floodIPs {
		for _, rule := range []string{"anonymous-enumeration", "eks-cluster-scan", "unauthenticated-403-burst"} {
			out = append(out, outcome{Rule: rule, SrcIP: ip, Severity: "medium", Count: firstMinute[ip]})
		}
		out = append(out, outcome{Rule: "anonymous-slow-scan", SrcIP: ip, Severity: "medium", Count: firstSlow[ip]})
	}
	// The addresses share a /24: anonymous-network-rotation, at medium in
	// the first minute like the per-cluster rules.
	return append(out,
		outcome{Rule: "anonymous-network-rotation", Severity: "medium", Count: all},
		outcome{Rule: "anonymous-path-campaign", Severity: "medium", Count: all},
		outcome{Rule: "unauthenticated-refusal-campaign", Severity: "medium", Count: all})
}

// hostileCase is one hostile or broken event and what the function must do
// with it.
type hostileCase struct {
	name  string
	event func(t testing.TB) []byte
	// errType is the errorType the function must fail with ("" for
	// success), errText a part of its message.
	errType, errText string
	// counters are attributes the summary line must have.
	counters map[string]int
	// skipped are the skip counts by reason (nil: none skipped).
	skipped map[string]int
	// warn is a skip reason a "skipped log event" warning must name.
	warn string
	// damaged is the damage a "damaged audit line" warning must name: the
	// line was salvaged and matched, not skipped.
	damaged  string
	findings []outcome
	// check looks further at the deliveries.
	check func(t *testing.T, fs []detect.Finding)
	// twice sends the event a second time.
	twice bool
	// maxMiB bounds the function's peak RSS; 0 means the template's
	// MemorySize, which every event Lambda can deliver asynchronously (at
	// most 1 MB), and every event the function refuses, must fit in.
	maxMiB int
}

func with(lines [][]byte, more ...[]byte) [][]byte {
	return append(append([][]byte(nil), lines...), more...)
}

var hostileCases = []hostileCase{
	{
		name:    "gzip bomb",
		event:   func(t testing.TB) []byte { return wrap(gzipBomb()) },
		errType: "EnvelopeError", errText: "inflates past",
	},
	{
		name:    "base64 garbage",
		event:   func(t testing.TB) []byte { return wrapData("H4sI%%%%not*base64~~" + strings.Repeat("\x7f!", 100)) },
		errType: "EnvelopeError", errText: "not base64",
	},
	{
		name: "truncated gzip",
		event: func(t testing.TB) []byte {
			var ev struct{ AWSLogs struct{ Data string } }
			json.Unmarshal(envelope(t, "truncated", validPart()), &ev)
			gz, _ := base64.StdEncoding.DecodeString(ev.AWSLogs.Data)
			return wrap(gz[:len(gz)/2])
		},
		errType: "EnvelopeError", errText: "not a gzip stream",
	},
	{
		name:     "empty logEvents",
		event:    func(t testing.TB) []byte { return envelope(t, "empty", nil) },
		counters: map[string]int{"events": 0, "parsed": 0, "findings_published": 0, "dynamodb_calls": 0, "sns_calls": 0},
	},
	{
		// The largest event Lambda hands an asynchronously invoked
		// function (1 MB): a flood of probes from four addresses, which
		// compresses about 20x, so some 14 MB of payload.
		name:     "largest asynchronous event",
		event:    largestEvent,
		counters: map[string]int{"events": floodEvents, "parsed": floodEvents, "findings_published": 19},
		findings: floodFindings(),
	},
	{
		// 98,997 routine lines, 1,000 requests of a scan and the valid
		// part: 30.3 MiB of payload, inside cwlogs.DefaultLimits (32 MiB
		// inflated, 6 MiB compressed), as encodeFast checks.
		name: "100,000 log events",
		event: func(t testing.TB) []byte {
			return encodeFast(t, bigBatch("many", with(append(filler(100000-1000-3), scan100(1000)...), validPart()...)))
		},
		counters: map[string]int{"events": 100000, "filtered": 100000 - 1003, "parsed": 1003, "findings_published": 7},
		// The event is over 1 MB: only a synchronous invoke (6 MB) can
		// carry it, never CloudWatch Logs (asynchronous, 1 MB). Even so
		// it must fit the function's MemorySize.
		maxMiB: 128,
		// The scan's 100 requests a minute reach medium in its first
		// minute: the window each finding shows; with the valid part's 3,
		// the cluster's first minute holds 53 paths and 103 refusals. Its
		// 1,000 requests in 10 minutes all fall in one of
		// anonymous-slow-scan's 24-minute buckets.
		findings: []outcome{
			{Rule: "anonymous-enumeration", SrcIP: "198.51.100.77", Severity: "medium", Count: 100},
			{Rule: "eks-cluster-scan", SrcIP: "198.51.100.77", Severity: "medium", Count: 100},
			{Rule: "unauthenticated-403-burst", SrcIP: "198.51.100.77", Severity: "medium", Count: 100},
			{Rule: "anonymous-slow-scan", SrcIP: "198.51.100.77", Severity: "medium", Count: 1000},
			{Rule: "anonymous-path-campaign", Severity: "medium", Count: 103},
			{Rule: "unauthenticated-refusal-campaign", Severity: "medium", Count: 103},
			validFinding,
		},
	},
	{
		// 10^6 bytes of requestURI: the line stays under the parser's
		// 1 MiB bound and counts; the finding shows a cut value.
		name: "1 MB requestURI",
		event: func(t testing.TB) []byte {
			return envelope(t, "uri-1mb", with(validPart(), probe("198.51.100.61", func(m map[string]any) {
				m["requestURI"] = "/" + strings.Repeat("a", 1_000_000-1)
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "198.51.100.61", Severity: "low", Count: 1}, validFinding},
		check: func(t *testing.T, fs []detect.Finding) {
			for _, f := range fs {
				for _, v := range f.Values["request_uri"] {
					if len(v) > detect.StoredValueLen {
						t.Errorf("finding %s carries a request_uri of %d bytes, want at most %d", f.Rule, len(v), detect.StoredValueLen)
					}
				}
			}
		},
	},
	{
		// 1 MiB of requestURI: the line is over the parser's bound, so it
		// is salvaged whole (it is valid JSON) and reported as damaged:
		// it still counts as the anonymous request it is.
		name: "1 MiB requestURI",
		event: func(t testing.TB) []byte {
			return envelope(t, "uri-1mib", with(validPart(), probe("198.51.100.61", func(m map[string]any) {
				m["requestURI"] = "/" + strings.Repeat("a", 1<<20)
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "damaged": 1, "findings_published": 3},
		damaged:  detect.DamageTooLarge,
		findings: []outcome{
			{Rule: "audit-event-unreadable", SrcIP: "198.51.100.61", Severity: "high", Count: 1},
			{Rule: "eks-cluster-scan", SrcIP: "198.51.100.61", Severity: "low", Count: 1},
			validFinding,
		},
	},
	{
		// Deeper than encoding/json's limit of 10,000: malformed.
		name: "JSON nested 100,000 deep",
		event: func(t testing.TB) []byte {
			return envelope(t, "deep", with(validPart(), withNested(probe("198.51.100.66", func(m map[string]any) {
				m["requestObject"] = nestedMarker
			}), 100000)))
		},
		// The members before requestObject survive whole; the map's
		// keys are written in order, so sourceIPs and user come after it
		// and are lost: high, with no address.
		counters: map[string]int{"events": 4, "parsed": 4, "damaged": 1, "findings_published": 2},
		damaged:  detect.DamageMalformed,
		findings: []outcome{{Rule: "audit-event-unreadable", Severity: "high", Count: 1}, validFinding},
	},
	{
		// Within the limit, in the body of an allowed rolebinding patch
		// that also grants system:unauthenticated: anonymous-access-granted
		// decodes the body and walks past the deep element to the grant.
		name: "requestObject nested 9,000 deep",
		event: func(t testing.TB) []byte {
			return envelope(t, "deep-rb", with(validPart(), withNested(probe("10.0.3.4", func(m map[string]any) {
				m["user"] = map[string]any{"username": "alice@example.com", "groups": []string{"system:authenticated"}}
				m["verb"] = "patch"
				m["requestURI"] = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/view"
				m["objectRef"] = map[string]any{"resource": "rolebindings", "namespace": "default", "name": "view", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}
				m["responseStatus"] = map[string]any{"code": 200}
				m["annotations"] = map[string]any{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
				m["requestObject"] = []any{
					map[string]any{"op": "add", "path": "/x", "value": nestedMarker},
					map[string]any{"op": "add", "path": "/subjects/-", "value": map[string]any{"kind": "Group", "name": "system:unauthenticated"}},
				}
			}), 9000)))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2, "rule_eval_errors": 0},
		findings: []outcome{{Rule: "anonymous-access-granted", SrcIP: "", Severity: "critical", Count: 1}, validFinding},
	},
	{
		// Raw bytes that are not UTF-8 in the payload: CloudWatch would
		// not send them, but they must not break the batch. The user
		// agent is decoded with U+FFFD.
		name: "invalid UTF-8",
		event: func(t testing.TB) []byte {
			return rawPayload(t, "utf8", with(validPart(), probe("198.51.100.62", func(m map[string]any) {
				m["userAgent"] = "scanner-@@RAW@@"
			})), "@@RAW@@", "\xff\xfe\xc0")
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "198.51.100.62", Severity: "low", Count: 1}, validFinding},
		check: func(t *testing.T, fs []detect.Finding) {
			for _, f := range fs {
				if f.SrcIP == "198.51.100.62" && !strings.Contains(f.UserAgent+strings.Join(f.Values["user_agent"], ""), "scanner-\uFFFD") {
					t.Errorf("finding %s user agent %q, values %v: want scanner- and U+FFFD", f.Rule, f.UserAgent, f.Values["user_agent"])
				}
			}
		},
	},
	{
		// An escaped NUL is valid JSON: the event counts, the NUL travels
		// escaped in the finding.
		name: "NUL escaped",
		event: func(t testing.TB) []byte {
			return envelope(t, "nul", with(validPart(), probe("198.51.100.63", func(m map[string]any) {
				m["userAgent"] = "scanner\x00nul"
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "198.51.100.63", Severity: "low", Count: 1}, validFinding},
	},
	{
		// A raw NUL inside a string of the audit line is not JSON.
		name: "NUL raw",
		event: func(t testing.TB) []byte {
			line := bytes.Replace(probe("198.51.100.63", nil), []byte("curl/8.5.0"), []byte("curl\x00raw"), 1)
			return envelope(t, "nul-raw", with(validPart(), line))
		},
		// Salvaged: everything before userAgent survives (the map's keys
		// are written in order), the address and user among them.
		counters: map[string]int{"events": 4, "parsed": 4, "damaged": 1, "findings_published": 3},
		damaged:  detect.DamageMalformed,
		findings: []outcome{
			{Rule: "audit-event-unreadable", SrcIP: "198.51.100.63", Severity: "high", Count: 1},
			{Rule: "eks-cluster-scan", SrcIP: "198.51.100.63", Severity: "low", Count: 1},
			validFinding,
		},
	},
	{
		name: "IPv6 source",
		event: func(t testing.TB) []byte {
			return envelope(t, "ipv6", with(validPart(), probe("2001:db8:5c4::17", nil)))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "2001:db8:5c4::17", Severity: "low", Count: 1}, validFinding},
	},
	{
		// No address: the request still counts, grouped under no
		// address; the finding has no src_ip.
		name: "empty sourceIPs",
		event: func(t testing.TB) []byte {
			return envelope(t, "no-ip", with(validPart(), probe("198.51.100.68", func(m map[string]any) {
				m["sourceIPs"] = []string{}
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "", Severity: "low", Count: 1}, validFinding},
	},
	{
		// The trusted (last) entry is not an address: as if there were
		// none. The forged first entry is kept only as a claim.
		name: "sourceIPs not an IP",
		event: func(t testing.TB) []byte {
			return envelope(t, "bad-ip", with(validPart(), probe("198.51.100.69", func(m map[string]any) {
				m["sourceIPs"] = []string{"192.0.2.1", "not-an-ip"}
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 4, "findings_published": 2},
		findings: []outcome{{Rule: "eks-cluster-scan", SrcIP: "", Severity: "low", Count: 1}, validFinding},
		check: func(t *testing.T, fs []detect.Finding) {
			for _, f := range fs {
				if f.SrcIP == "" && !cmp.Equal(f.ForwardedFor, []string{"192.0.2.1"}) {
					t.Errorf("finding %s forwarded_for %v, want [192.0.2.1]", f.Rule, f.ForwardedFor)
				}
			}
		},
	},
	{
		// Outside detect.ValidEventTime, and so is the ingestion time
		// synth.Batch reads from the line: no usable time, skipped.
		// (CloudWatch's own ingestion time would stand in.)
		name: "timestamp far in the future",
		event: func(t testing.TB) []byte {
			return envelope(t, "future", with(validPart(), probe("198.51.100.64", func(m map[string]any) {
				m["requestReceivedTimestamp"] = "9999-12-31T23:59:59.999999Z"
				m["stageTimestamp"] = "9999-12-31T23:59:59.999999Z"
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 3, "findings_published": 1},
		skipped:  map[string]int{detect.SkipBadTime: 1},
		warn:     detect.SkipBadTime,
		findings: []outcome{validFinding},
	},
	{
		name: "timestamp far in the past",
		event: func(t testing.TB) []byte {
			return envelope(t, "past", with(validPart(), probe("198.51.100.65", func(m map[string]any) {
				m["requestReceivedTimestamp"] = "0001-01-01T00:00:01.000000Z"
				m["stageTimestamp"] = "0001-01-01T00:00:01.000000Z"
			})))
		},
		counters: map[string]int{"events": 4, "parsed": 3, "findings_published": 1},
		skipped:  map[string]int{detect.SkipBadTime: 1},
		warn:     detect.SkipBadTime,
		findings: []outcome{validFinding},
	},
	{
		// The first event again, id and all: counted once.
		name: "duplicate log event ids",
		event: func(t testing.TB) []byte {
			b := synth.Batch(validPart(), drillLogGroup, "dup", 1)
			b.Events = append(b.Events, b.Events[0])
			ev, err := cwlogs.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		},
		counters: map[string]int{"events": 4, "parsed": 3, "findings_published": 1},
		skipped:  map[string]int{detect.SkipDuplicate: 1},
		warn:     detect.SkipDuplicate,
		findings: []outcome{validFinding},
	},
	{
		// The second delivery counts nothing and publishes nothing.
		name:     "same envelope twice",
		event:    func(t testing.TB) []byte { return envelope(t, "twice", validPart()) },
		twice:    true,
		counters: map[string]int{"events": 3, "parsed": 3, "findings_published": 1},
		findings: []outcome{validFinding},
	},
}

// TestHostileInput sends each hostile or broken event to a fresh function
// and checks what it returned, its summary line (and warnings), what it
// delivered, that its peak memory (VmHWM) stays within the template's
// MemorySize, and that it survives: the same process then handles a valid
// event. A batch whose envelope cannot be decoded fails whole with
// EnvelopeError (Lambda retries it, then dead-letters it); a batch that
// decodes drops its bad lines, counts them by reason, and reports the rest.
func TestHostileInput(t *testing.T) {
	var (
		mu   sync.Mutex
		rows []string
	)
	for _, tc := range hostileCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			event := tc.event(t)
			table := emu.NewTable(t, sharedDynamo.URL(), "drill-")
			topic, q := newTopicAndQueue(t, sharedSNS.URL())
			fn := startFunction(t, functionEnv(sharedDynamo.URL(), sharedSNS.URL(), table, topic))

			iv := mustInvoke(t, fn, event)
			pid, err := fn.FunctionPID()
			if err != nil {
				t.Fatal(err)
			}
			result := "ok"
			switch {
			case tc.errType == "" && !iv.OK():
				t.Fatalf("HTTP %d %.500s, want success", iv.Resp.Status, iv.Resp.Body)
			case tc.errType != "" && (iv.Err.Type != tc.errType || !strings.Contains(iv.Err.Message, tc.errText)):
				t.Fatalf("HTTP %d %.500s, want errorType %s with %q", iv.Resp.Status, iv.Resp.Body, tc.errType, tc.errText)
			case tc.errType != "":
				result = tc.errType
			}
			if iv.Summary == nil {
				t.Fatalf("no summary line; output:\n%s", tail(fn.Output(), 4000))
			}
			wantMsg, wantLevel := "batch processed", "INFO"
			if tc.errType != "" {
				wantMsg, wantLevel = "invocation failed", "ERROR"
				if e, _ := iv.Summary["error"].(string); !strings.Contains(e, tc.errText) {
					t.Errorf("summary error %q does not say %q", e, tc.errText)
				}
			}
			if iv.Summary["message"] != wantMsg || iv.Summary["level"] != wantLevel {
				t.Errorf("summary line %v, want %s %q", iv.Summary, wantLevel, wantMsg)
			}
			got := map[string]int{}
			for k := range tc.counters {
				got[k] = counter(iv.Summary, k)
			}
			if diff := cmp.Diff(tc.counters, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("summary counters (-want +got):\n%s", diff)
			}
			gotSkipped := map[string]int{}
			if m, ok := iv.Summary["skipped_by_reason"].(map[string]any); ok {
				for k, v := range m {
					gotSkipped[k] = int(v.(float64))
				}
			}
			if diff := cmp.Diff(tc.skipped, gotSkipped, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("skipped_by_reason (-want +got):\n%s", diff)
			}
			if tc.warn != "" && !hasWarning(fn.Output(), tc.warn) {
				t.Errorf("no \"skipped log event\" warning with reason %s", tc.warn)
			}
			if tc.damaged != "" && !hasDamaged(fn.Output(), tc.damaged) {
				t.Errorf("no \"damaged audit line\" warning with damage %s", tc.damaged)
			}

			if tc.twice {
				before := scanTable(t, sharedDynamo.URL(), table)
				again := mustInvoke(t, fn, event)
				if !again.OK() || again.Summary == nil || counter(again.Summary, "findings_published") != 0 || counter(again.Summary, "findings_suppressed") != len(tc.findings) {
					t.Errorf("second delivery: HTTP %d %s, summary %v; want success, nothing published, %d suppressed", again.Resp.Status, again.Resp.Body, again.Summary, len(tc.findings))
				}
				if diff := cmp.Diff(before, scanTable(t, sharedDynamo.URL(), table)); diff != "" {
					t.Errorf("second delivery changed the table (-before +after):\n%s", diff)
				}
			}

			fs := delivered(t, emu.MustReceive(t, q))
			if diff := cmp.Diff(sortOutcomes(tc.findings), outcomes(fs), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, fs)
			}
			if tc.errType != "" {
				if items := scanTable(t, sharedDynamo.URL(), table); len(items) != 0 {
					t.Errorf("a failed envelope wrote %d items", len(items))
				}
			}

			// Peak memory, read before the next invoke adds to it.
			// Lambda's MB are MiB.
			hwm, err := vmHWM(pid)
			if err != nil {
				t.Fatal(err)
			}
			bound := tc.maxMiB
			if bound == 0 {
				bound = settings.MemorySize
				if len(event) > asyncLimit && tc.errType == "" {
					t.Fatalf("the %d-byte event is above Lambda's asynchronous limit: give the case its own bound", len(event))
				}
			}
			if hwm > bound<<10 {
				t.Errorf("peak RSS %d KiB, above the bound of %d MiB", hwm, bound)
			}

			// The same process serves the next event.
			next := mustInvoke(t, fn, envelope(t, "next", [][]byte{probe("203.0.113.201", nil)}))
			if !next.OK() || next.Summary == nil || counter(next.Summary, "findings_published") != 1 {
				t.Errorf("next event: HTTP %d %s, summary %v; want success, one finding", next.Resp.Status, next.Resp.Body, next.Summary)
			}
			if after, err := fn.FunctionPID(); err != nil || after != pid {
				t.Errorf("function process %d, then %d (%v): it was restarted", pid, after, err)
			}
			mu.Lock()
			rows = append(rows, fmt.Sprintf("| %s | %d | %s | %d | %d | %d |", tc.name, len(event)/1024, result, hwm>>10, bound, iv.Resp.Latency.Milliseconds()))
			mu.Unlock()
		})
	}
	t.Logf("peak RSS (VmHWM) per case; MemorySize %d MB:\n| case | event KiB | result | peak MiB | bound MiB | invoke ms |\n|---|---|---|---|---|---|\n%s", settings.MemorySize, strings.Join(rows, "\n"))
}

// hasWarning reports whether the function warned that it skipped a log
// event for reason.
func hasWarning(out, reason string) bool {
	for _, l := range emu.LogLines(out, "") {
		if l["message"] == "skipped log event" && l["reason"] == reason && l["level"] == "WARN" {
			return true
		}
	}
	return false
}

// hasDamaged reports whether the function logged a "damaged audit line"
// warning with the given damage.
func hasDamaged(out, damage string) bool {
	for _, l := range emu.LogLines(out, "") {
		if l["message"] == "damaged audit line" && l["damage"] == damage && l["level"] == "WARN" {
			return true
		}
	}
	return false
}
