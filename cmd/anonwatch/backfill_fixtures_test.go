package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// This file builds testdata/backfill: the same audit events in each format
// replay reads history from, laid out as AWS lays it out. The events are
// every line of events/src but truncated-and-malformed.jsonl (damaged lines
// have a test of their own, TestBackfillDamagedLines), in time order, put
// alternately in two log streams of the log group /aws/eks/demo/cluster,
// as two API servers write them. TestBackfillFixtures checks the files are
// what this code builds, and rewrites them with -update.

const (
	fixtureGroup   = "/aws/eks/demo/cluster"
	fixtureCluster = "demo"
	fixtureOwner   = envelopeOwner
	fixtureStreamA = "kube-apiserver-audit-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	fixtureStreamB = "kube-apiserver-audit-8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"
	fixtureTask    = "5d3f0b1c-7a2e-4f6d-9c8b-1e0a2d3c4b5f"
	fixtureFilter  = "anonwatch-archive"
	backfillDir    = "testdata/backfill"
)

// fixtureEvent is a log event as CloudWatch Logs stored it.
type fixtureEvent struct {
	stream    string
	id        string
	timestamp int64
	ingestion int64
	message   string
}

// fixtureEvents reads the lines of srcs (events/src files), orders them by
// time and gives each a stream, an id and CloudWatch's times: the event's
// requestReceivedTimestamp, and its ingestion a little later.
func fixtureEvents(t *testing.T, srcs ...string) []fixtureEvent {
	t.Helper()
	var evs []fixtureEvent
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := envelopeBatch(bytes.NewReader(b), fixtureGroup, "", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch.Events {
			evs = append(evs, fixtureEvent{timestamp: e.Timestamp, message: string(e.Message)})
		}
	}
	slices.SortStableFunc(evs, func(a, b fixtureEvent) int { return int(a.timestamp - b.timestamp) })
	for i := range evs {
		e := &evs[i]
		e.stream = fixtureStreamA
		if i%2 == 1 {
			e.stream = fixtureStreamB
		}
		e.id = logEventID(e.timestamp, i)
		e.ingestion = e.timestamp + 600 + int64(i%7)*53
	}
	return evs
}

// backfillEvents are the events of testdata/backfill.
func backfillEvents(t *testing.T) []fixtureEvent {
	t.Helper()
	srcs, err := filepath.Glob("../../events/src/*.jsonl")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no event sources: %v", err)
	}
	srcs = slices.DeleteFunc(srcs, func(s string) bool { return strings.HasSuffix(s, "/truncated-and-malformed.jsonl") })
	return fixtureEvents(t, srcs...)
}

func ofStream(evs []fixtureEvent, stream string) []fixtureEvent {
	return slices.DeleteFunc(slices.Clone(evs), func(e fixtureEvent) bool { return e.stream != stream })
}

// jsonLines writes each message on a line.
func jsonLines(evs []fixtureEvent) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		b.WriteString(e.message)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// gz compresses each of members into a gzip member of its own, back to back.
func gz(t *testing.T, members ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// exportObject is a create-export-task object: the events' lines, in the
// order given, in gzip members of at most chunk lines each.
func exportObject(t *testing.T, evs []fixtureEvent, chunk int) []byte {
	var members [][]byte
	for c := range slices.Chunk(evs, chunk) {
		var b bytes.Buffer
		for _, e := range c {
			b.Write(exportLine(e.timestamp, e.message))
			b.WriteByte('\n')
		}
		members = append(members, b.Bytes())
	}
	return gz(t, members...)
}

// byContent orders events by a hash of their content: an order that is
// not time order, as AWS does not promise it inside an export.
func byContent(evs []fixtureEvent) []fixtureEvent {
	out := slices.Clone(evs)
	key := func(e fixtureEvent) string { s := sha256.Sum256([]byte(e.message)); return string(s[:]) }
	slices.SortFunc(out, func(a, b fixtureEvent) int { return strings.Compare(key(a), key(b)) })
	return out
}

type wireEvent struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// cloudWatchPayload is a subscription payload as CloudWatch Logs writes
// it, key order included.
type cloudWatchPayload struct {
	MessageType         string      `json:"messageType"`
	Owner               string      `json:"owner"`
	LogGroup            string      `json:"logGroup"`
	LogStream           string      `json:"logStream"`
	SubscriptionFilters []string    `json:"subscriptionFilters"`
	LogEvents           []wireEvent `json:"logEvents"`
}

// firehosePayload is a payload as Firehose writes it once it decompressed
// it: the same members in another order (the Firehose developer guide,
// "Message extraction").
type firehosePayload struct {
	Owner               string      `json:"owner"`
	LogGroup            string      `json:"logGroup"`
	LogStream           string      `json:"logStream"`
	SubscriptionFilters []string    `json:"subscriptionFilters"`
	MessageType         string      `json:"messageType"`
	LogEvents           []wireEvent `json:"logEvents"`
}

func compactJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// cliJSON is JSON as the AWS CLI prints it: indented by four spaces,
// nothing escaped that JSON does not require.
func cliJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func wireEvents(evs []fixtureEvent) []wireEvent {
	out := make([]wireEvent, len(evs))
	for i, e := range evs {
		out[i] = wireEvent{ID: e.id, Timestamp: e.timestamp, Message: e.message}
	}
	return out
}

// deliveries cuts each stream's events in two and orders the halves as a
// Firehose object may hold them: the first delivery of stream A holds its
// later events, and the object is not in time order.
func deliveries(evs []fixtureEvent) [][]fixtureEvent {
	a, b := ofStream(evs, fixtureStreamA), ofStream(evs, fixtureStreamB)
	return [][]fixtureEvent{a[len(a)/2:], b[:len(b)/2], a[:len(a)/2], b[len(b)/2:]}
}

// firehose returns a Firehose object of a subscription that delivered ds,
// in each way Firehose writes one, by name. CloudWatch sends a
// CONTROL_MESSAGE, then each delivery as a gzip record; Firehose writes the
// records back to back, and may gzip the object again.
func firehose(t *testing.T, ds [][]fixtureEvent) map[string][]byte {
	t.Helper()
	records := [][]byte{compactJSON(t, cloudWatchPayload{
		MessageType: "CONTROL_MESSAGE", Owner: "CloudwatchLogs", SubscriptionFilters: []string{},
		LogEvents: []wireEvent{{Timestamp: ds[0][0].timestamp - 60000, Message: "CWL CONTROL MESSAGE: Checking health of destination Firehose."}},
	})}
	var decompressed, newlines, messages, concatenated bytes.Buffer
	for _, d := range ds {
		records = append(records, compactJSON(t, cloudWatchPayload{
			MessageType: "DATA_MESSAGE", Owner: fixtureOwner, LogGroup: fixtureGroup, LogStream: d[0].stream,
			SubscriptionFilters: []string{fixtureFilter}, LogEvents: wireEvents(d),
		}))
		// With decompression on, Firehose writes payloads, back to back
		// or, with the AppendDelimiterToRecord processor, a line each.
		p := compactJSON(t, firehosePayload{
			Owner: fixtureOwner, LogGroup: fixtureGroup, LogStream: d[0].stream,
			SubscriptionFilters: []string{fixtureFilter}, MessageType: "DATA_MESSAGE", LogEvents: wireEvents(d),
		})
		decompressed.Write(p)
		newlines.Write(p)
		newlines.WriteByte('\n')
		// With message extraction too, only the messages: a line each
		// with the delimiter, back to back without.
		for _, e := range d {
			messages.WriteString(e.message + "\n")
			concatenated.WriteString(e.message)
		}
	}
	out := map[string][]byte{
		"records":               gz(t, records...),
		"decompressed":          decompressed.Bytes(),
		"decompressed-newlines": newlines.Bytes(),
		"messages":              messages.Bytes(),
		"messages-concatenated": concatenated.Bytes(),
	}
	out["records.gz"] = gz(t, out["records"])
	return out
}

// filterLogEvents is what `aws logs filter-log-events` prints for evs,
// every page: the CLI merges them into one document.
func filterLogEvents(t *testing.T, evs []fixtureEvent) []byte {
	t.Helper()
	type event struct {
		LogStreamName string `json:"logStreamName"`
		Timestamp     int64  `json:"timestamp"`
		Message       string `json:"message"`
		IngestionTime int64  `json:"ingestionTime"`
		EventID       string `json:"eventId"`
	}
	type searched struct {
		LogStreamName      string `json:"logStreamName"`
		SearchedCompletely bool   `json:"searchedCompletely"`
	}
	var out struct {
		Events             []event    `json:"events"`
		SearchedLogStreams []searched `json:"searchedLogStreams"`
	}
	for _, e := range evs {
		out.Events = append(out.Events, event{e.stream, e.timestamp, e.message, e.ingestion, e.id})
		if !slices.ContainsFunc(out.SearchedLogStreams, func(s searched) bool { return s.LogStreamName == e.stream }) {
			out.SearchedLogStreams = append(out.SearchedLogStreams, searched{e.stream, true})
		}
	}
	return cliJSON(t, out)
}

// getLogEvents is what `aws logs get-log-events` prints for the events of
// one stream, a page of at most size events a call, each printed as it
// comes into one file, as a shell loop over --next-token writes them.
func getLogEvents(t *testing.T, evs []fixtureEvent, size int) []byte {
	t.Helper()
	type event struct {
		Timestamp     int64  `json:"timestamp"`
		Message       string `json:"message"`
		IngestionTime int64  `json:"ingestionTime"`
	}
	var out []byte
	n := 0
	for c := range slices.Chunk(evs, size) {
		p := struct {
			Events            []event `json:"events"`
			NextForwardToken  string  `json:"nextForwardToken"`
			NextBackwardToken string  `json:"nextBackwardToken"`
		}{NextForwardToken: fmt.Sprintf("f/%056d", n+len(c)), NextBackwardToken: fmt.Sprintf("b/%056d", n)}
		for _, e := range c {
			p.Events = append(p.Events, event{e.timestamp, e.message, e.ingestion})
		}
		out = append(out, cliJSON(t, p)...)
		n += len(c)
	}
	return out
}

// backfillFixtures returns the files of testdata/backfill, by path.
func backfillFixtures(t *testing.T) map[string][]byte {
	t.Helper()
	evs := backfillEvents(t)
	a, b := ofStream(evs, fixtureStreamA), ofStream(evs, fixtureStreamB)
	files := map[string][]byte{
		// What each API server wrote, as JSON lines: the reference.
		"lines/" + fixtureStreamA + ".jsonl": jsonLines(a),
		"lines/" + fixtureStreamB + ".jsonl": jsonLines(b),
		// Streams interleaved.
		"filter-log-events.json": filterLogEvents(t, evs),
		// A's events in two pages.
		"get-log-events/" + fixtureStreamA + ".json": getLogEvents(t, a, (len(a)+1)/2),
		"get-log-events/" + fixtureStreamB + ".json": getLogEvents(t, b, len(b)),
	}

	// create-export-task: one object per stream, out of time order; A's
	// in two chunks, the later first.
	files["export/"+fixtureTask+"/"+fixtureStreamA+"/000000.gz"] = exportObject(t, append(slices.Clone(a[len(a)/2:]), a[:len(a)/2]...), (len(a)+1)/2)
	files["export/"+fixtureTask+"/"+fixtureStreamB+"/000000.gz"] = exportObject(t, byContent(b), len(b))

	for name, obj := range firehose(t, deliveries(evs)) {
		files["firehose/"+name] = obj
	}

	// JSON lines gzipped in several members, as bgzip writes them: one
	// member ends inside a line.
	lines := jsonLines(evs)
	cut1 := bytes.IndexByte(lines, '\n') + 1
	cut2 := len(lines) / 2
	files["lines-members.jsonl.gz"] = gz(t, lines[:cut1], lines[cut1:cut2], lines[cut2:])
	return files
}

// inflate returns what b holds once every gzip layer is undone, and how
// many members its outer layer has.
func inflate(t *testing.T, b []byte) ([]byte, int) {
	t.Helper()
	isGz := func(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }
	members := 0
	if isGz(b) {
		br := bytes.NewReader(b)
		zr, err := gzip.NewReader(br)
		for ; err == nil; err = zr.Reset(br) {
			zr.Multistream(false)
			members++
			if _, err := io.Copy(io.Discard, zr); err != nil {
				t.Fatal(err)
			}
		}
		if err != io.EOF {
			t.Fatal(err)
		}
	}
	for isGz(b) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return b, members
}

// TestBackfillFixtures checks that testdata/backfill holds what
// backfillFixtures builds, comparing gzip files by what they hold (and
// their members), as compressors differ; -update rewrites them.
func TestBackfillFixtures(t *testing.T) {
	want := backfillFixtures(t)
	if *update {
		if err := os.RemoveAll(backfillDir); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			p := filepath.Join(backfillDir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	err := filepath.WalkDir(backfillDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, filepath.ToSlash(strings.TrimPrefix(p, backfillDir+string(filepath.Separator))))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), got); diff != "" {
		t.Fatalf("files in %s (-want +got):\n%s\nrun go test -run TestBackfillFixtures -update", backfillDir, diff)
	}
	for _, name := range got {
		b, err := os.ReadFile(filepath.Join(backfillDir, name))
		if err != nil {
			t.Fatal(err)
		}
		gotContent, gotMembers := inflate(t, b)
		wantContent, wantMembers := inflate(t, want[name])
		if gotMembers != wantMembers || !bytes.Equal(gotContent, wantContent) {
			t.Errorf("%s differs from what backfillFixtures builds; run go test -run TestBackfillFixtures -update", name)
		}
	}
}
