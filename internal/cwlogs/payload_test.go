package cwlogs

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

var payloadSeeds = []string{
	`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/a/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":5,"message":"{\"kind\":\"Event\"}"}]}`,
	`{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":0,"message":"CWL CONTROL MESSAGE"}]}`,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"a\ud83d\ude00\ud800\u00e9\n\"x\\"},{"message":""},{},{"extractedFields":{"a":[1,2.5e3,null,true]}}]}`,
	"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"caf\xc3 \xff\"}]}",
	`{"MessageType":"DATA_MESSAGE","logEvents":[{"ID":"x","Message":"y"}]}`,
	`{"messageType":"DATA_MESSAGE","messageType":"CONTROL_MESSAGE"}`,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"a"}],"logEvents":[{"id":"b"}]}`,
	`{"messageType":"DATA_MESSAGE","owner":null,"logEvents":[{"timestamp":-0,"message":null},null]}`,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1e3}]}`,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":99999999999999999999}]}`,
	`{"messag\u0065Type":"DATA_MESSAGE"}`,
	`{"meſſageType":"DATA_MESSAGE"}`,
	` { "messageType" : "DATA_MESSAGE" , "logEvents" : [ ] } `,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":-5,"message":""},{"id":"2","timestamp":7,"message":"a\"b\\"},{"id":"3","timestamp":8,"message":"c","extractedFields":{}}]}`,
	`[]`, `null`, `"x"`, `{`, `{"messageType":"DATA_MESSAGE"} x`,
}

// FuzzDecodePayload checks the streaming decoder against encoding/json on
// any payload (see checkAgainstRef): through windows of several sizes, with
// the default budget and with one small enough to cut lines or refuse the
// events, and with a keep function.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for k, sz := range testSizes {
			lim := Limits{}
			if k%2 == 1 {
				lim.MaxDecompressed = int64(len(payload))/4 + 80
			}
			b, _ := checkAgainstRef(t, payload, lim, sz)
			for i, e := range b.Events {
				if !e.Cut && e.Size != len(e.Message) || e.Cut && (e.Size <= len(e.Message) || len(e.Message) > CutPrefix) {
					t.Fatalf("event %d: %d bytes, size %d, cut %v", i, len(e.Message), e.Size, e.Cut)
				}
			}
		}
		checkKeep(t, payload)
	})
}

// checkKeep checks the streaming decoder with a keep function against
// itself without: the same outcome, and each event with a message kept
// whole or dropped as keep said when it saw the message, escaped. A
// payload that needs the fallback keeps every line.
func checkKeep(t *testing.T, payload []byte) {
	t.Helper()
	var seen [][]byte
	keep := func(escaped []byte) bool {
		seen = append(seen, bytes.Clone(escaped))
		return len(seen)%2 == 0
	}
	got, whole, err := decodeBytes(payload, Limits{}, keep, defaultSizes)
	all, allWhole, allErr := decodeBytes(payload, Limits{}, nil, defaultSizes)
	if (err == nil) != (allErr == nil) || whole != allWhole {
		t.Fatalf("with keep: whole %v, error %v; without: whole %v, error %v", whole, err, allWhole, allErr)
	}
	if err != nil {
		return
	}
	if whole || all.MessageType == ControlMessage {
		if diff := cmp.Diff(all, got); diff != "" {
			t.Fatalf("decoded whole, with keep (-want +got):\n%s", diff)
		}
		return
	}
	var k int // index into seen
	for i, e := range all.Events {
		g := got.Events[i]
		if e.Message == nil {
			if diff := cmp.Diff(e, g); diff != "" {
				t.Fatalf("event %d without a message differs with keep (-want +got):\n%s", i, diff)
			}
			continue
		}
		if k >= len(seen) {
			t.Fatalf("keep saw %d messages; event %d has one", len(seen), i)
		}
		if want := string(jsonscan.AppendUnescaped(nil, seen[k])); want != string(e.Message) {
			t.Fatalf("event %d: keep saw %q, which decodes to %q, not the message %q", i, seen[k], want, e.Message)
		}
		k++
		want := e
		if k%2 != 0 {
			want.Message, want.Dropped, want.Size = nil, true, len(seen[k-1])
		}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Fatalf("event %d with keep (-want +got):\n%s", i, diff)
		}
	}
	if k != len(seen) {
		t.Fatalf("keep saw %d messages, the batch has %d", len(seen), k)
	}
}

func TestMaxEvents(t *testing.T) {
	tests := map[string]int{
		`{"a":[1,[2,3],{}],"logEvents":[{},null],"b":{"c":[1]},"d":[]}`: 5,
		` { "logEvents" : [ {"id":"1"} ] } `:                            1,
		`{}`:                                                            0,
		`[{},{}]`:                                                       0,
		`{"logEvents":[{},{}]`:                                          0, // invalid: encoding/json allocates nothing
	}
	for payload, want := range tests {
		if got := maxEvents([]byte(payload)); got != want {
			t.Errorf("maxEvents(%s) = %d, want %d", payload, got, want)
		}
	}
}

func TestPayloadSeedsAgree(t *testing.T) {
	for _, s := range payloadSeeds {
		for _, sz := range testSizes {
			checkAgainstRef(t, []byte(s), Limits{}, sz)
		}
		checkKeep(t, []byte(s))
	}
	// The streaming decoder must take the common shape itself, not fall
	// back.
	for _, k := range []int{0, 2} {
		if _, whole, err := decodeBytes([]byte(payloadSeeds[k]), Limits{}, nil, defaultSizes); err != nil || whole {
			t.Errorf("seed %d: whole %v, error %v; want it streamed", k, whole, err)
		}
	}
}
