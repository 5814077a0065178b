package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// batchIDs reads src as the input name would be read and returns the ids
// of its batches.
func batchIDs(t *testing.T, name, src string) []string {
	t.Helper()
	rd := &reader{cluster: "local", lim: cwlogs.DefaultLimits, maxLine: audit.DefaultMaxSize}
	var ids []string
	err := rd.each(name, strings.NewReader(src), func(b *cwlogs.Batch) error {
		if want := fileStream(name); b.LogStream != want {
			t.Errorf("log stream %q, want the input name %q without its extensions", b.LogStream, want)
		}
		ids = append(ids, detect.BatchID(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestReplayBatchIDs checks that a replayed file's batch ids follow its
// content, not its name and line numbers: two runs of `replay --table` on
// different files of the same name must not take the second for a batch
// the first already merged, and the same file replayed again must.
func TestReplayBatchIDs(t *testing.T) {
	const (
		a = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.1"]}`
		b = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"b","stage":"ResponseComplete","requestURI":"/apis","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.2"]}`
	)
	tests := []struct {
		name          string
		first, second string
		same          bool
	}{
		{"same content", a + "\n" + b + "\n", a + "\n" + b + "\n", true},
		{"same content, blank lines between", a + "\n" + b + "\n", "\n" + a + "\n\n" + b, true},
		{"other content, same line count", a + "\n", b + "\n", false},
		{"a line more", a + "\n", a + "\n" + b + "\n", false},
		{"lines reordered", a + "\n" + b + "\n", b + "\n" + a + "\n", false},
		{"pretty-printed document", "{\n  \"kind\": \"Event\",\n  \"auditID\": \"a\"\n}\n", "{\n  \"kind\": \"Event\",\n  \"auditID\": \"b\"\n}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := batchIDs(t, "audit.jsonl", tt.first)
			second := batchIDs(t, "audit.jsonl", tt.second)
			if len(first) == 0 || len(second) == 0 {
				t.Fatalf("no batches: %q, %q", first, second)
			}
			if got := cmp.Equal(first, second); got != tt.same {
				t.Errorf("batch ids %q and %q: equal %v, want %v", first, second, got, tt.same)
			}
		})
	}
}

// TestReplayRepeatedLine checks that a line repeated in one file is counted
// once and the repeat as duplicate_id, since its id is its content's.
func TestReplayRepeatedLine(t *testing.T) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["203.0.113.1"],"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-11-28T10:30:00Z","stageTimestamp":"2026-11-28T10:30:00Z"}`
	code, _, stderr := runCLI(t, line+"\n"+line+"\n", "replay", "--report", "-")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"2 events", "1 parsed", "1 skipped (duplicate_id 1)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}

// TestReadRecord checks how JSON lines split into records: at line ends,
// and between JSON objects back to back, nowhere else.
func TestReadRecord(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lines", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"objects back to back", `{"a":1}{"b":2}{"c":3}`, []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		{"white space between", "{\"a\":1} \t{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"braces in strings", `{"a":"}{"}{"b":"\"}{"}`, []string{`{"a":"}{"}`, `{"b":"\"}{"}`}},
		{"escaped backslash before a quote", `{"a":"\\"}{"b":2}`, []string{`{"a":"\\"}`, `{"b":2}`}},
		{"nested", `{"a":{"b":[{}]}}{"c":[]}`, []string{`{"a":{"b":[{}]}}`, `{"c":[]}`}},
		{"text after an object stays", "{\"a\":1} and more {\"b\":2}\nx", []string{`{"a":1} and more {"b":2}`, "x"}},
		{"a line not starting with an object stays", "text {\"a\":1}{\"b\":2}\n", []string{`text {"a":1}{"b":2}`}},
		{"a cut line ends at its line end", "{\"a\":\"cu\n{\"b\":2}\n", []string{`{"a":"cu`, `{"b":2}`}},
		{"a marked line", "{\"a\":[Truncated...]\n{\"b\":2}", []string{`{"a":[Truncated...]`, `{"b":2}`}},
		{"line ends as readLine leaves them", "{\"a\":1}  \r\n\r\n", []string{`{"a":1}  `, ""}},
		{"leading white space", "  {\"a\":1}{\"b\":2}", []string{`  {"a":1}`, `{"b":2}`}},
		{"cut past max", `{"a":"` + strings.Repeat("x", 40) + `"}{"b":2}`, []string{`{"a":"` + strings.Repeat("x", 26), `{"b":2}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{16, 4096} { // records across buffer refills, and not
				br := bufio.NewReaderSize(strings.NewReader(tt.in), size)
				var got []string
				for {
					rec, err := readRecord(br, 31)
					if len(rec) > 0 || err == nil {
						got = append(got, string(rec))
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("buffer %d: records (-want +got):\n%s", size, diff)
				}
			}
		})
	}
}

// TestSniff checks how replay tells a format from the head of its input.
func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		head string
		want format
	}{
		{"empty", "", formatLines},
		{"JSON lines", "{\"kind\":\"Event\"}\n{\"kind\":\"Event\"}\n", formatLines},
		{"objects back to back", `{"kind":"Event"}{"kind":"Event"}`, formatLines},
		{"a line not JSON", "hello\n", formatLines},
		{"a cut first line", "{\"kind\":\"Ev\n{\"kind\":\"Event\"}\n", formatLines},
		{"a marked first line", "{\"kind\":\"Event\",\"objectRef\":[Truncated...]\n{}\n", formatLines},
		{"a first line longer than the head", `{"kind":"Event","requestURI":"/api`, formatLines},
		{"pretty-printed", "{\n  \"kind\": \"Event\"\n}\n", formatDocuments},
		{"Lambda event", `{"awslogs":{"data":"H4sI"}}`, formatDocuments},
		{"payload", `{"messageType":"DATA_MESSAGE","logEvents":[]}`, formatDocuments},
		{"payload, Firehose's key order", `{"owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"messageType":"DATA_MESSAGE","logEvents":[]}{"owner":"1"}`, formatDocuments},
		{"filter-log-events", "{\n    \"events\": [\n", formatDocuments},
		{"get-log-events, tokens first", "{\"nextForwardToken\": \"f/1\", \"events\": [", formatDocuments},
		{"an audit event with an empty messageType", `{"messageType":"","kind":"Event"}`, formatLines},
		{"export", "2026-11-28T10:00:01.104Z {\"kind\":\"Event\"}\n", formatExport},
		{"export, white space first", "\n2026-11-28T10:00:01.104Z text\n", formatExport},
		{"not a timestamp", "2026-11-28 10:00:01 text\n", formatLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sniff([]byte(tt.head)); got != tt.want {
				t.Errorf("sniff(%q) = %v, want %v", tt.head, got, tt.want)
			}
		})
	}
}

func TestExportStream(t *testing.T) {
	tests := []struct{ name, want string }{
		{"exportedlogs/5d3f0b1c/kube-apiserver-audit-0f1e/000000.gz", "kube-apiserver-audit-0f1e"},
		{"/tmp/x/kube-apiserver-audit-0f1e/000012.gz", "kube-apiserver-audit-0f1e"},
		{"kube-apiserver-audit-0f1e/000000", "kube-apiserver-audit-0f1e"},
		{"000000.gz", ""},
		{"-", ""},
		{"dir/audit.jsonl.gz", ""},
		{"dir/00a000.gz", ""},
	}
	for _, tt := range tests {
		if got := exportStream(filepath.FromSlash(tt.name)); got != tt.want {
			t.Errorf("exportStream(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestBatcherBounds interleaves more events than a batch holds from
// several streams: every batch is of one stream and at most linesPerBatch
// events, what is held at once never more, and every event is sent once.
func TestBatcherBounds(t *testing.T) {
	const streams, events = 7, 3*linesPerBatch + 123
	sent := map[string]int{}
	bt := &batcher{maxBytes: 1 << 30}
	bt.fn = func(b *cwlogs.Batch) error {
		if len(b.Events) == 0 || len(b.Events) > linesPerBatch {
			t.Fatalf("batch of %d events", len(b.Events))
		}
		for _, e := range b.Events {
			if !strings.HasPrefix(e.ID, b.LogStream+"/") {
				t.Fatalf("event %s in a batch of stream %s", e.ID, b.LogStream)
			}
			sent[e.ID]++
		}
		return nil
	}
	for i := range events {
		s := fmt.Sprintf("s%d", i*i%streams)
		if err := bt.add(origin{logStream: s}, cwlogs.LogEvent{ID: fmt.Sprintf("%s/%d", s, i), Message: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if bt.events >= linesPerBatch {
			t.Fatalf("%d events held", bt.events)
		}
	}
	if err := bt.flush(); err != nil {
		t.Fatal(err)
	}
	if len(sent) != events {
		t.Errorf("%d events sent, want %d", len(sent), events)
	}
	for id, n := range sent {
		if n != 1 {
			t.Errorf("event %s sent %d times", id, n)
		}
	}

	// Bytes bound a batch as well.
	var sizes []int
	bt = &batcher{maxBytes: 100, fn: func(b *cwlogs.Batch) error { sizes = append(sizes, len(b.Events)); return nil }}
	for range 25 {
		bt.add(origin{}, cwlogs.LogEvent{Message: make([]byte, 10)})
	}
	bt.flush()
	if diff := cmp.Diff([]int{10, 10, 5}, sizes); diff != "" {
		t.Errorf("batch sizes with 10-byte messages and 100 bytes a batch (-want +got):\n%s", diff)
	}
}

// TestGunzipMembers reads gzip members back to back, and with the newline
// Firehose's AppendDelimiterToRecord writes after each.
func TestGunzipMembers(t *testing.T) {
	member := func(s string) []byte { return gz(t, []byte(s)) }
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr bool
	}{
		{"back to back", slices.Concat(member("a"), member("b"), member("c")), "abc", false},
		{"a newline after each", slices.Concat(member("a"), []byte("\n"), member("b"), []byte("\r\n")), "ab", false},
		{"something else after", slices.Concat(member("a"), []byte("junk")), "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newGunzip(bufio.NewReader(bytes.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(g)
			if string(got) != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("read %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzValueScan checks that where valueScan ends a value, and why, does not
// depend on how its input is cut into pieces, and that it ends a valid JSON
// object or array exactly at its end.
func FuzzValueScan(f *testing.F) {
	for _, s := range []string{`{"a":"}\"{"}`, `[1,{"b":[]}]`, `"x\\"`, `123,`, `{"a":1}{"b":2}`, `{"a":"\\\\"}`, "{\"a\":\"b\\\n\"}", "{\"a\n\":1}"} {
		f.Add([]byte(s), uint8(3), false)
		f.Add([]byte(s), uint8(5), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, piece uint8, lines bool) {
		whole := valueScan{lines: lines}
		want := whole.scan(in)
		pieces := valueScan{lines: lines}
		got, off, n := -1, 0, int(piece)%7+1
		for off < len(in) && got < 0 {
			end := min(off+n, len(in))
			if e := pieces.scan(in[off:end]); e >= 0 {
				got = off + e
			}
			off = end
		}
		if got != want || pieces.newline != whole.newline {
			t.Errorf("scan(%q) whole: %d (newline %v), in pieces of %d: %d (%v)", in, want, whole.newline, n, got, pieces.newline)
		}
		if whole.newline && (want < 0 || in[want] != '\n') {
			t.Errorf("scan(%q) = %d, reported a newline there", in, want)
		}
		value := bytes.TrimRight(in, " \t\r\n")
		if !lines && len(in) > 0 && (in[0] == '{' || in[0] == '[') && json.Valid(in) && want != len(value) {
			t.Errorf("scan(%q) = %d, want the end of the value, %d", in, want, len(value))
		}
	})
}

// FuzzReader reads anything as replay does: it must not panic, and every
// batch holds at most linesPerBatch events, none longer than a line may be.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"{\"kind\":\"Event\"}\n", `{"a":1}{"b":2}`, "{\n\"events\":[{\"message\":\"m\",\"timestamp\":1}]}",
		`{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/x/cluster","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"m"}]}{"owner":"o","messageType":"DATA_MESSAGE","logEvents":[]}`,
		"2026-11-28T10:00:01.104Z {\"kind\":\"Event\"}\nno stamp\n", "{\n \"kind\": \"Event\"\n}{\"kind\":1}",
		`{"awslogs":{"data":"x"}}`, "\x1f\x8b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine = 64
		rd := &reader{cluster: "c", lim: cwlogs.Limits{MaxCompressed: 1 << 16, MaxDecompressed: 1 << 16, MaxInflated: 1 << 20}, maxLine: maxLine}
		rd.each("f", bytes.NewReader(in), func(b *cwlogs.Batch) error {
			if len(b.Events) > linesPerBatch {
				t.Fatalf("batch of %d events", len(b.Events))
			}
			return nil
		})
	})
}

// FuzzReadRecord checks that the records of an input do not depend on how
// much of it is buffered: a line found whole takes a shortcut.
func FuzzReadRecord(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n{\"b\":2}\n", `{"a":"}{"}{"b":2}`, "{\"a\":1} x {\"b\":2}\n", "  {} {}\r\n\n{\"a\":\"\n", `{"a":"\\"}{}`} {
		f.Add([]byte(s))
	}
	records := func(in []byte, size int) []string {
		br := bufio.NewReaderSize(bytes.NewReader(in), size)
		var out []string
		for {
			rec, err := readRecord(br, 40)
			out = append(out, string(rec))
			if err != nil {
				return out
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if diff := cmp.Diff(records(in, 1<<16), records(in, 16)); diff != "" {
			t.Errorf("records of %q, buffered whole and by 16 bytes (-whole +16):\n%s", in, diff)
		}
	})
}

// TestEachReturnsFnError checks that an error from fn (state, publishing)
// comes back as fn returned it, whatever the format, not as an input error.
func TestEachReturnsFnError(t *testing.T) {
	sentinel := errors.New("state failed")
	inputs := map[string]string{
		"JSON lines": "{\"kind\":\"Event\"}\n",
		"export":     "2026-11-28T10:00:01.104Z {\"kind\":\"Event\"}\n",
		"payload":    `{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"m"}]}`,
		"log events": `{"events":[{"timestamp":1,"message":"m"}]}`,
	}
	for name, in := range inputs {
		rd := &reader{cluster: "local", lim: cwlogs.DefaultLimits, maxLine: audit.DefaultMaxSize}
		err := rd.each("in", strings.NewReader(in), func(*cwlogs.Batch) error { return sentinel })
		if err != sentinel {
			t.Errorf("%s: each returned %v, want fn's error as it is", name, err)
		}
	}
}

// TestReplayBatchIDsIgnoreFolder: the same file replayed again into a
// table must make the same batches however its path is spelled (relative
// or absolute, from S3 or from a copy synced down), or the second backfill
// counts every event again (docs/backfill.md: "The same backfill twice
// changes nothing").
func TestReplayBatchIDsIgnoreFolder(t *testing.T) {
	const line = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.1"]}` + "\n"
	ids := func(name string) []string {
		rd := &reader{cluster: "local", lim: cwlogs.DefaultLimits, maxLine: audit.DefaultMaxSize}
		var out []string
		if err := rd.each(name, strings.NewReader(line), func(b *cwlogs.Batch) error {
			out = append(out, detect.BatchID(b))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := ids("audit.jsonl")
	for _, name := range []string{"export/audit.jsonl", "./export/audit.jsonl", "/home/me/export/audit.jsonl", "s3://archive/export/audit.jsonl"} {
		if got := ids(name); !cmp.Equal(got, want) {
			t.Errorf("%s: batch ids %q, %s's %q", name, got, "audit.jsonl", want)
		}
	}
}
