package cwlogs

import (
	"bytes"
	"errors"
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

// FuzzDecodePayload checks the fast path against encoding/json on any
// payload: the same Batch, or both an error.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := decodePayloadWith(bytes.Clone(payload), true, nil)
		want, wantErr := decodePayloadWith(bytes.Clone(payload), false, nil)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("fast path error = %v, encoding/json error = %v", err, wantErr)
		}
		if err != nil && !errors.Is(err, ErrPayload) {
			t.Fatalf("error %v does not wrap ErrPayload", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("fast path differs from encoding/json (-want +got):\n%s", diff)
		}
		for i, e := range got.Events {
			if len(e.Message) != cap(e.Message) {
				t.Fatalf("event %d: message has len %d, cap %d; appending would overwrite the next", i, len(e.Message), cap(e.Message))
			}
		}
		checkKeep(t, payload)
	})
}

// checkKeep checks the fast path with a keep function against the fast
// path without: the same outcome, and each event with a message is kept
// whole or dropped as keep said when it saw the message, escaped.
func checkKeep(t *testing.T, payload []byte) {
	t.Helper()
	var seen [][]byte
	keep := func(escaped []byte) bool {
		seen = append(seen, bytes.Clone(escaped))
		return len(seen)%2 == 0
	}
	got, ok := parsePayload(bytes.Clone(payload), keep)
	all, allOK := parsePayload(bytes.Clone(payload), nil)
	if ok != allOK {
		t.Fatalf("fast path with keep ok = %v, without %v", ok, allOK)
	}
	if !ok {
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
			want.Message, want.Dropped = nil, true
		}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Fatalf("event %d with keep (-want +got):\n%s", i, diff)
		}
	}
	if k != len(seen) {
		t.Fatalf("keep saw %d messages, the batch has %d", len(seen), k)
	}
}

func TestPayloadSeedsAgree(t *testing.T) {
	// The fast path must take the common shape itself, not fall back.
	if _, ok := parsePayload([]byte(payloadSeeds[0]), nil); !ok {
		t.Errorf("parsePayload() fell back on a plain CloudWatch payload")
	}
	if _, ok := parsePayload([]byte(payloadSeeds[2]), nil); !ok {
		t.Errorf("parsePayload() fell back on escapes and extra fields")
	}
}
