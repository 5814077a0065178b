package cwlogs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCloudWatchHead checks which events take the CloudWatch-shaped path,
// and that every one, taken or not, decodes as encoding/json decodes it.
func TestCloudWatchHead(t *testing.T) {
	tests := []struct {
		event string
		fast  bool // cloudWatchHead takes it
	}{
		{`{"id":"123","timestamp":5,"message":"a\"b\\c"}`, true},
		{`{"id":"","timestamp":-7,"message":""}`, true},
		{`{"id":"1","timestamp":0,"message":"\u00e9\n"}`, true},
		{`{"id":"a1","timestamp":5,"message":"x"}`, false},
		{`{"id":"\u0031","timestamp":5,"message":"x"}`, false},
		{`{ "id":"1","timestamp":5,"message":"x"}`, false},
		{`{"id":"1", "timestamp":5,"message":"x"}`, false},
		{`{"timestamp":5,"id":"1","message":"x"}`, false},
		// The head is CloudWatch's; what follows the message is parsed
		// as any object's members.
		{`{"id":"1","timestamp":5,"message":"x" }`, true},
		{`{"id":"1","timestamp":5,"message":"x","extractedFields":{"a":"b"}}`, true},
		{`{"id":"1","timestamp":5,"message":"x","message":"y"}`, true},
		{`{"id":"1","timestamp":5,"Message":"x"}`, false},
		{`{"id":"1","timestamp":1.5,"message":"x"}`, false},
		{`{"id":"1","timestamp":1e3,"message":"x"}`, false},
		{`{"id":"1","timestamp":9223372036854775808,"message":"x"}`, false},
		{`{"id":"1","timestamp":05,"message":"x"}`, false},
		{`{"id":"1","timestamp":5,"message":"\x"}`, true},
		{`{"id":"1","timestamp":5,"message":null}`, false},
		{`{"id":"1","timestamp":5,"message":"x`, true},
	}
	for _, tt := range tests {
		payload := `{"messageType":"DATA_MESSAGE","logEvents":[` + tt.event + `]}`
		start := len(`{"messageType":"DATA_MESSAGE","logEvents":[`)
		if _, _, _, fast := cloudWatchHead([]byte(payload), start); fast != tt.fast {
			t.Errorf("cloudWatchHead(%s) took it = %v, want %v", tt.event, fast, tt.fast)
		}
		for _, sz := range testSizes {
			checkAgainstRef(t, []byte(payload), Limits{}, sz)
		}
	}
}

// TestDecodeKeep checks the keep contract: keep sees each message escaped,
// a line it rejects comes back Dropped without a Message, and a payload
// that needs the encoding/json fallback keeps every line, whatever keep
// said while the streaming decoder was trying it.
func TestDecodeKeep(t *testing.T) {
	events := `{"id":"1","timestamp":1,"message":"keep \"me\""},` +
		`{"id":"2","timestamp":2,"message":"drop \"me\""},` +
		`{"id":"3","timestamp":3},` +
		`{"id":"4","timestamp":4,"message":""},` +
		`{ "id" : "5" , "timestamp" : 5 , "message" : "keep\u0021" }`
	tests := []struct {
		name    string
		payload string
		seen    []string // what keep is called with, in order
		want    []LogEvent
	}{{
		name:    "streaming",
		payload: `{"messageType":"DATA_MESSAGE","logEvents":[` + events + `]}`,
		seen:    []string{`keep \"me\"`, `drop \"me\"`, ``, `keep\u0021`},
		want: []LogEvent{
			{ID: "1", Timestamp: 1, Message: []byte(`keep "me"`), Size: 9},
			{ID: "2", Timestamp: 2, Dropped: true, Size: len(`drop \"me\"`)},
			{ID: "3", Timestamp: 3},
			{ID: "4", Timestamp: 4, Dropped: true},
			{ID: "5", Timestamp: 5, Message: []byte(`keep!`), Size: 5},
		},
	}, {
		// A key in another case is left to encoding/json, once the
		// events before it have been seen.
		name:    "fallback",
		payload: `{"messageType":"DATA_MESSAGE","logEvents":[` + events + `,{"ID":"6"}]}`,
		seen:    []string{`keep \"me\"`, `drop \"me\"`, ``, `keep\u0021`},
		want: []LogEvent{
			{ID: "1", Timestamp: 1, Message: []byte(`keep "me"`), Size: 9},
			{ID: "2", Timestamp: 2, Message: []byte(`drop "me"`), Size: 9},
			{ID: "3", Timestamp: 3},
			{ID: "4", Timestamp: 4, Message: []byte{}},
			{ID: "5", Timestamp: 5, Message: []byte(`keep!`), Size: 5},
			{ID: "6"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			keep := func(escaped []byte) bool {
				seen = append(seen, string(escaped))
				return bytes.HasPrefix(escaped, []byte("keep"))
			}
			b, _, err := decodeBytes([]byte(tt.payload), Limits{}, keep, defaultSizes)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.seen, seen); diff != "" {
				t.Errorf("keep saw (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, b.Events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// keepEnvelope returns awslogs.data for lines of which every tenth is
// "keep <n>" and the others "drop <n>", with the batch keep returns for
// them.
func keepEnvelope(t *testing.T, tag string, n int) (string, []LogEvent) {
	t.Helper()
	var b Batch
	b.MessageType, b.LogGroup = DataMessage, "/aws/eks/"+tag+"/cluster"
	var want []LogEvent
	for i := range n {
		e := LogEvent{ID: fmt.Sprint(i + 1), Timestamp: int64(i)}
		verb := "drop"
		if i%10 == 0 {
			verb = "keep"
		}
		// Escapes, so that the kept messages are unescaped in place.
		e.Message = []byte(fmt.Sprintf(`%s %s "%d" %s`, verb, tag, i, strings.Repeat("x", 100)))
		b.Events = append(b.Events, e)
		e.Size = len(e.Message)
		if verb == "drop" {
			e.Message, e.Dropped = nil, true
			e.Size += 2 // the quotes, escaped
		}
		want = append(want, e)
	}
	env, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ AWSLogs struct{ Data string } }
	if err := json.Unmarshal(env, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.AWSLogs.Data, want
}

func keepPrefix(escaped []byte) bool { return bytes.HasPrefix(escaped, []byte("keep")) }

// TestDecodeDataKeepReuse decodes batches one after another, as warm
// invocations do, and checks that reusing a window never changes a batch
// already returned.
func TestDecodeDataKeepReuse(t *testing.T) {
	var batches [][]LogEvent
	var wants [][]LogEvent
	for i := range 6 {
		data, want := keepEnvelope(t, fmt.Sprint("cluster-", i%3), 400)
		b, err := DecodeDataKeep(data, Limits{}, keepPrefix)
		if err != nil {
			t.Fatal(err)
		}
		batches, wants = append(batches, b.Events), append(wants, want)
	}
	for i := range batches {
		if diff := cmp.Diff(wants[i], batches[i]); diff != "" {
			t.Errorf("batch %d after the later ones (-want +got):\n%s", i, diff)
		}
	}
}

// TestDecodeDataKeepConcurrent decodes from several goroutines at once, to
// let the race detector see the buffers change hands.
func TestDecodeDataKeepConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		data, want := keepEnvelope(t, fmt.Sprint("g", g), 300)
		wg.Go(func() {
			for range 5 {
				b, err := DecodeDataKeep(data, Limits{}, keepPrefix)
				if err != nil {
					t.Error(err)
					return
				}
				if diff := cmp.Diff(want, b.Events); diff != "" {
					t.Errorf("goroutine %d (-want +got):\n%s", g, diff)
					return
				}
			}
		})
	}
	wg.Wait()
}
