package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeAll returns the documents dec returns, and the error that ended
// them ("" at io.EOF).
func decodeAll(decode func(*json.RawMessage) error) ([]string, string) {
	var docs []string
	for range 1000 {
		var raw json.RawMessage
		err := decode(&raw)
		if err == io.EOF {
			return docs, ""
		}
		if err != nil {
			return docs, err.Error()
		}
		docs = append(docs, string(raw))
	}
	return docs, "more than 1000 documents"
}

// checkLikeJSONDecoder fails t unless documentDecoder reads src as
// json.Decoder does.
func checkLikeJSONDecoder(t *testing.T, src string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	wantDocs, wantErr := decodeAll(func(raw *json.RawMessage) error { return dec.Decode(raw) })
	gotDocs, gotErr := decodeAll(newDocumentDecoder(strings.NewReader(src)).Decode)
	if diff := cmp.Diff(wantDocs, gotDocs); diff != "" {
		t.Errorf("documents of %q mismatch (-json.Decoder +documentDecoder):\n%s", src, diff)
	}
	if gotErr != wantErr {
		t.Errorf("error after the documents of %q = %q, json.Decoder's %q", src, gotErr, wantErr)
	}
}

func TestDocumentDecoder(t *testing.T) {
	long := `{"awslogs":{"data":"` + strings.Repeat("QUJD", 200_000) + `"}}`
	tests := []string{
		"",
		"\n\n \n",
		`{"a":1}`,
		"{\"a\":1}\n{\"b\":2}\n",
		"{\"a\":1}\r\n\r\n  {\"b\":2}  \n",
		"1\n\"two\"\n[3]\nnull\ntrue\n",
		// Pretty-printed, then one per line again: json.Decoder reads the rest.
		"{\"a\":1}\n{\n  \"b\": 2\n}\n{\"c\":3}\n",
		"{\"a\":1} {\"b\":2}\n{\"c\":3}\n",
		"{\"a\":1}{\"b\":2}",
		// Broken.
		"{\"a\":1}\n{\"b\":\n",
		"{\"a\":1}\nnot json\n{\"c\":3}\n",
		"{\"a\":1}\n}\n",
		"{\"a\":\"\xff\"}\n",
		"{\"a\":\"\x01\"}\n",
		"\xef\xbb\xbf{\"a\":1}\n",
		long + "\n" + long,
		long[:len(long)/2],
	}
	for _, src := range tests {
		checkLikeJSONDecoder(t, src)
	}
}

func FuzzDocumentDecoder(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n{\"b\":2}\n", "{\n\"a\":[1,2]}\n3", "{\"a\":1} x", "[1,\n2]\n{}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkLikeJSONDecoder(t, src)
	})
}

func TestAWSLogsData(t *testing.T) {
	tests := []struct {
		doc  string
		want string
		ok   bool
	}{
		{`{"awslogs":{"data":"H4sIAAAA"}}`, "H4sIAAAA", true},
		{" {\n \"awslogs\" : { \"data\" : \"H4sI\" } }\n", "H4sI", true},
		{`{"awslogs":{"data":""}}`, "", true},
		// Anything else is for encoding/json.
		{`{"awslogs":{"data":"H4s\/I"}}`, "", false},
		{`{"AWSLogs":{"data":"H4sI"}}`, "", false},
		{`{"awslogs":{"Data":"H4sI"}}`, "", false},
		{`{"awslogs":{"data":"H4sI","more":1}}`, "", false},
		{`{"awslogs":{"data":"H4sI"},"more":1}`, "", false},
		{`{"awslogs":{"data":null}}`, "", false},
		{`{"awslogs":{"data":"H4sI"}}x`, "", false},
		{`{"awslogs":{"data":"H4sI"}`, "", false},
		{`{"messageType":"DATA_MESSAGE"}`, "", false},
		{`[]`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := awslogsData([]byte(tt.doc))
		if got != tt.want || ok != tt.ok {
			t.Errorf("awslogsData(%q) = %q, %v, want %q, %v", tt.doc, got, ok, tt.want, tt.ok)
		}
		if !ok {
			continue
		}
		// What encoding/json makes of it.
		var ev struct {
			AWSLogs struct {
				Data string `json:"data"`
			} `json:"awslogs"`
		}
		if err := json.Unmarshal([]byte(tt.doc), &ev); err != nil || ev.AWSLogs.Data != got {
			t.Errorf("awslogsData(%q) = %q; encoding/json: %q, %v", tt.doc, got, ev.AWSLogs.Data, err)
		}
	}
}

func FuzzAWSLogsData(f *testing.F) {
	f.Add(`{"awslogs":{"data":"H4sIAAAA"}}`)
	f.Add(`{"awslogs":{"data":"a\"b"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := awslogsData([]byte(doc))
		if !ok {
			return
		}
		var ev struct {
			AWSLogs *struct {
				Data string `json:"data"`
			} `json:"awslogs"`
			MessageType string `json:"messageType"`
		}
		if err := json.Unmarshal([]byte(doc), &ev); err != nil || ev.AWSLogs == nil || ev.AWSLogs.Data != got || ev.MessageType != "" {
			t.Errorf("awslogsData(%q) = %q; encoding/json: %s, %v", doc, got, fmt.Sprint(ev.AWSLogs), err)
		}
	})
}

func TestIsASCII(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"abc", true},
		{"H4sIAAAAAAAA/+1c", true},
		{"H4sIAAAAAAAA/+1c\x7f", true},
		{"H4sIAAAAAAAA/+1\x80", false},
		{"\xffH4sIAAAAAAAA/+1c", false},
		{"H4sI\xe9AAA", false},
	} {
		if got := isASCII([]byte(tt.s)); got != tt.want {
			t.Errorf("isASCII(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
