package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// replayFindings runs replay over files and returns its findings, each
// without its log_group after checking that it is logGroup, and the counts
// of its summary.
func replayFindings(t *testing.T, logGroup string, files ...string) (findings []string, counts string) {
	t.Helper()
	// Formats that carry no owner get the fixtures': findings name it.
	code, out, stderr := runCLI(t, "", append([]string{"replay", "--cluster", fixtureCluster, "--account", fixtureOwner}, files...)...)
	if code != exitOK {
		t.Fatalf("replay %v: exit %d:\n%s", files, code, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("replay %v: finding %q: %v", files, line, err)
		}
		if got, _ := f["log_group"].(string); got != logGroup {
			t.Errorf("replay %v: finding %v names log group %q, want %q", files, f["finding_id"], got, logGroup)
		}
		delete(f, "log_group")
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		findings = append(findings, string(b))
	}
	return findings, summaryCounts(stderr)
}

// summaryCounts returns what the summary line counts, from the events on,
// leaving out the batches (a CONTROL_MESSAGE is one) and the time taken.
var summaryCountsRE = regexp.MustCompile(`(?m)(\d+ events: .*) \([^()]*\)$`)

func summaryCounts(stderr string) string {
	m := summaryCountsRE.FindStringSubmatch(stderr)
	if m == nil {
		return "no summary in:\n" + stderr
	}
	return m[1]
}

// backfillFormat is a format of testdata/backfill (see
// backfill_fixtures_test.go): its files, the JSON lines that give the same
// findings, and the log group the findings name.
type backfillFormat struct {
	name     string
	files    []string
	like     []string
	logGroup string
}

// backfillFormats returns each format AWS archives the fixtures' events in,
// and the JSON lines of each stream in a file of its own. A format that
// names its log streams gives a batch per stream, as those files do; one
// that does not gives one batch, as one file of every line does. Findings
// name the log group where the format does.
func backfillFormats(t *testing.T) (formats []backfillFormat, perStream []string) {
	t.Helper()
	dir := backfillDir
	perStream = []string{dir + "/lines/" + fixtureStreamA + ".jsonl", dir + "/lines/" + fixtureStreamB + ".jsonl"}
	oneFile := filepath.Join(t.TempDir(), "audit.jsonl")
	var all []byte
	for _, p := range perStream {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if err := os.WriteFile(oneFile, all, 0o644); err != nil {
		t.Fatal(err)
	}
	export := dir + "/export/" + fixtureTask + "/"
	return []backfillFormat{
		{"create-export-task, out of time order, a chunk in two members", []string{export + fixtureStreamA + "/000000.gz", export + fixtureStreamB + "/000000.gz"}, perStream, ""},
		{"Firehose, gzip records back to back", []string{dir + "/firehose/records"}, perStream, fixtureGroup},
		{"Firehose, gzip records in a gzip object", []string{dir + "/firehose/records.gz"}, perStream, fixtureGroup},
		{"Firehose decompressing, payloads back to back", []string{dir + "/firehose/decompressed"}, perStream, fixtureGroup},
		{"Firehose decompressing, a payload a line", []string{dir + "/firehose/decompressed-newlines"}, perStream, fixtureGroup},
		{"Firehose extracting messages, a message a line", []string{dir + "/firehose/messages"}, []string{oneFile}, ""},
		{"Firehose extracting messages, back to back", []string{dir + "/firehose/messages-concatenated"}, []string{oneFile}, ""},
		{"filter-log-events, two streams interleaved", []string{dir + "/filter-log-events.json"}, perStream, ""},
		{"get-log-events, a file per stream, pages back to back", []string{dir + "/get-log-events/" + fixtureStreamA + ".json", dir + "/get-log-events/" + fixtureStreamB + ".json"}, perStream, ""},
		{"JSON lines, gzip members cut inside a line", []string{dir + "/lines-members.jsonl.gz"}, []string{oneFile}, ""},
	}, perStream
}

// TestBackfillFormats replays the same audit events in each format AWS
// archives them in and checks that each gives exactly the findings, finding
// ids included, and the counts of replaying the events as JSON lines.
func TestBackfillFormats(t *testing.T) {
	formats, _ := backfillFormats(t)
	for _, tt := range formats {
		t.Run(tt.name, func(t *testing.T) {
			replayLike(t, tt.like, tt.logGroup, tt.files...)
		})
	}
}

// replayLike checks that replaying args gives exactly the findings, finding
// ids included, and the summary counts of the JSON-lines replay of like,
// each finding naming logGroup.
func replayLike(t *testing.T, like []string, logGroup string, args ...string) {
	t.Helper()
	want, wantCounts := replayFindings(t, "", like...)
	if len(want) < 5 {
		t.Fatalf("the JSON-lines replay gives %d findings; the fixture shows little", len(want))
	}
	got, gotCounts := replayFindings(t, logGroup, args...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings differ from the JSON-lines replay (-want +got):\n%s", diff)
	}
	if gotCounts != wantCounts {
		t.Errorf("summary counts %q, want %q", gotCounts, wantCounts)
	}
}

// TestBackfillOrder checks that the fixtures are not in time order where
// AWS does not promise it, so that TestBackfillFormats proves replay does
// not need it.
func TestBackfillOrder(t *testing.T) {
	evs := backfillEvents(t)
	for _, d := range [][][]fixtureEvent{deliveries(evs), {byContent(ofStream(evs, fixtureStreamB))}} {
		var ts []int64
		for _, part := range d {
			for _, e := range part {
				ts = append(ts, e.timestamp)
			}
		}
		if slices.IsSorted(ts) {
			t.Errorf("events in time order: %v", ts)
		}
	}
}

// TestBackfillDamagedLines replays a stream's damaged lines (cut, marked
// cut, not JSON) in each format. The detector counts a damaged line from an
// audit log stream as an audit event, and dates one without a time of its
// own by its CloudWatch timestamp: so each format must give the findings
// of the Lambda event that carries what the format does, and extracted
// messages, which carry neither, those of JSON lines.
func TestBackfillDamagedLines(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	evs := fixtureEvents(t, "../../events/src/truncated-and-malformed.jsonl")
	lambdaEvent := func(stream string) []byte {
		b := cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: fixtureOwner, LogGroup: fixtureGroup, LogStream: stream}
		for _, e := range evs {
			b.Events = append(b.Events, cwlogs.LogEvent{ID: e.id, Timestamp: e.timestamp, Message: []byte(e.message)})
		}
		env, err := cwlogs.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	for i := range evs {
		evs[i].stream = fixtureStreamA
	}
	export := "export/" + fixtureTask + "/" + fixtureStreamA + "/000000.gz"
	fh := firehose(t, [][]fixtureEvent{evs})
	files := map[string][]byte{
		"lambda-event.json":       lambdaEvent(fixtureStreamA),
		"lambda-event-named.json": lambdaEvent(path("get-log-events.json")),
		"audit.jsonl":             jsonLines(evs),
		export:                    exportObject(t, byContent(evs), len(evs)),
		"firehose-records":        fh["records"],
		"firehose-messages":       fh["messages"],
		"filter-log-events.json":  filterLogEvents(t, evs),
		"get-log-events.json":     getLogEvents(t, evs, len(evs)),
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path(name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromStream, _ := replayFindings(t, fixtureGroup, path("lambda-event.json"))
	// get-log-events names no stream: replay names it after the file.
	fromFile, _ := replayFindings(t, fixtureGroup, path("lambda-event-named.json"))
	fromLines, _ := replayFindings(t, "", path("audit.jsonl"))
	if cmp.Equal(fromStream, fromFile) || cmp.Equal(fromFile, fromLines) {
		t.Fatal("the references give the same findings: the test shows nothing")
	}
	tests := []struct {
		name     string
		file     string
		want     []string
		logGroup string
	}{
		{"create-export-task names the stream in its key", export, fromStream, ""},
		{"a Firehose record names it", "firehose-records", fromStream, fixtureGroup},
		{"filter-log-events names it", "filter-log-events.json", fromStream, ""},
		{"get-log-events does not", "get-log-events.json", fromFile, ""},
		{"extracted messages have neither stream nor timestamps", "firehose-messages", fromLines, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := replayFindings(t, tt.logGroup, path(tt.file))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}
