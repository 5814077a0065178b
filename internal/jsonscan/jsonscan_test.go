package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// seeds are documents of the shapes the callers meet, odd but valid ones,
// and near misses; the fuzzers start from them and TestSkipValue checks
// them all.
var seeds = []string{
	`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/a/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":5,"message":"{\"kind\":\"Event\"}"}]}`,
	`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"a\ud83d\ude00\ud800\u00e9\n\"x\\"},{"message":""},{},{"extractedFields":{"a":[1,2.5e3,null,true]}}]}`,
	"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"caf\xc3 \xff\"}]}",
	`{"kind":"Event","apiVersion":"audit.k8s.io/v1","responseStatus":{"code":4e2}}`,
	`{"kind":"Event","apiVersion":"audit.k8s.io/v1","responseStatus":{"code":-0},"user":null}`,
	`{"ki\u006ed":"Event","apiVersion":"audit.k8s.io/v1"}`,
	`{"ſtage":"x","kind":"Event","apiVersion":"audit.k8s.io/v1"}`,
	` { "a" : [ 1 , -2.5E+3 , 0.0e-1 , "" , { } , [ ] , false ] } `,
	`0`, `-0`, `1e5`, `"x"`, `true`, `false`, `null`, `[]`, `{}`,
	`01`, `1.`, `.5`, `1e`, `-`, `+1`, `1e+`, `0x10`, `NaN`,
	`tru`, `nul`, `falsey`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", `"unterminated`,
	`{`, `[`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`, `]`, `}`,
	`{"messageType":"DATA_MESSAGE"} x`, `1 2`, ``, ` `,
}

// addSeeds adds the seeds and the documents in testdata.
func addSeeds(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no seed files in testdata")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// valid reports whether b is one JSON value, as SkipValue sees it.
func valid(b []byte) bool {
	end, ok := SkipValue(b, SkipSpace(b, 0), 0)
	return ok && SkipSpace(b, end) == len(b)
}

func TestSkipValue(t *testing.T) {
	for _, s := range seeds {
		if got, want := valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("SkipValue(%q) valid = %v, json.Valid = %v", s, got, want)
		}
	}
}

// FuzzSkipValue checks the validator against json.Valid.
func FuzzSkipValue(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("SkipValue says valid = %v, json.Valid says %v", got, want)
		}
	})
}

func TestSkipValueDepth(t *testing.T) {
	for _, depth := range []int{1, 64, 65, MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closer := map[string]string{"[": "]", `{"a":`: "}"}[open]
			b := []byte(strings.Repeat(open, depth) + "0" + strings.Repeat(closer, depth))
			end, ok := SkipValue(b, 0, 0)
			got := ok && end == len(b)
			if want := json.Valid(b); got != want {
				t.Errorf("depth %d of %q: SkipValue valid = %v, json.Valid = %v", depth, open, got, want)
			}
		}
	}
	// A caller already inside containers passes their number on.
	b := []byte("[[0]]")
	if _, ok := SkipValue(b, 0, MaxDepth-2); !ok {
		t.Errorf("SkipValue(%s, depth %d) refused %d levels", b, MaxDepth-2, MaxDepth)
	}
	if _, ok := SkipValue(b, 0, MaxDepth-1); ok {
		t.Errorf("SkipValue(%s, depth %d) allowed %d levels", b, MaxDepth-1, MaxDepth+1)
	}
}

func TestKey(t *testing.T) {
	type result struct {
		Key   string
		Next  int
		Plain bool
		OK    bool
	}
	tests := []struct {
		in   string
		want result
	}{
		{`"kind":"Event"`, result{"kind", 7, true, true}},
		{`"kind" :  1`, result{"kind", 10, true, true}},
		{`"KIND":1`, result{"KIND", 7, true, true}},
		{`"ki\u006ed":1`, result{`ki\u006ed`, 12, false, true}},
		{`"ſtage":1`, result{"ſtage", 9, false, true}},
		{`"a\"b":1`, result{`a\"b`, 7, false, true}},
		{`"kind"`, result{}},
		{`"kind" 1`, result{}},
		{`kind:1`, result{}},
		{`"kind:1`, result{}},
		{``, result{}},
	}
	for _, tt := range tests {
		k, next, plain, ok := Key([]byte(tt.in), 0)
		got := result{string(k), next, plain, ok}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Key(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNext(t *testing.T) {
	type result struct {
		Next int
		Done bool
		OK   bool
	}
	tests := []struct {
		in     string
		closer byte
		want   result
	}{
		{`,"b"`, '}', result{1, false, true}},
		{` ,  "b"`, '}', result{4, false, true}},
		{` } ,`, '}', result{2, true, true}},
		{`]`, ']', result{1, true, true}},
		{`]`, '}', result{}},
		{`:`, '}', result{}},
		{`  `, '}', result{}},
	}
	for _, tt := range tests {
		next, done, ok := Next([]byte(tt.in), 0, tt.closer)
		if diff := cmp.Diff(tt.want, result{next, done, ok}); diff != "" {
			t.Errorf("Next(%q, %q) mismatch (-want +got):\n%s", tt.in, tt.closer, diff)
		}
	}
}

func TestDecodeString(t *testing.T) {
	tests := []struct {
		lit  string
		want string
	}{
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"{\"kind\":\"Event\"}"`, `{"kind":"Event"}`},
		{`"\b\f\n\r\t\/\\"`, "\b\f\n\r\t/\\"},
		{`"\u0000\u00e9\u20AC"`, "\x00é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud800x"`, "\uFFFDx"},
		{`"\ud800\u0041"`, "\uFFFDA"},
		{`"\udc00\ud800"`, "\uFFFD\uFFFD"},
		{"\"a\xffb\"", "a\uFFFDb"},
		{"\"\xe2\x82\"", "\uFFFD\uFFFD"},
		{"\"\xff\\n\"", "\uFFFD\n"},
	}
	for _, tt := range tests {
		got, err := decodeAll([]byte(tt.lit))
		if err != nil {
			t.Errorf("%s: %v", tt.lit, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DecodeString(%s) mismatch (-want +got):\n%s", tt.lit, diff)
		}
	}
}

// decodeAll decodes the string literal lit with each decoder and returns
// the result, or an error saying how the decoders disagree.
func decodeAll(lit []byte) (string, error) {
	end, esc, ok := SkipString(lit, 0)
	if !ok || end != len(lit) {
		return "", errors.New("SkipString refused it")
	}
	s := lit[1 : len(lit)-1]
	got := DecodeString(s, esc)
	// A prefix checks that AppendUnescaped appends.
	if a := string(AppendUnescaped([]byte("x"), s)); a != "x"+got {
		return "", fmt.Errorf("AppendUnescaped gives %q after the prefix, DecodeString %q", a, got)
	}
	if utf8.Valid(s) {
		if p := string(UnescapeInPlace(bytes.Clone(s))); p != got {
			return "", fmt.Errorf("UnescapeInPlace gives %q, DecodeString %q", p, got)
		}
	}
	return got, nil
}

// FuzzDecodeString checks the string decoders against encoding/json.
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud83d\ude00"`, `"\ud800\u0041"`, "\"\xff\\n\"", `"{\"a\":\"b\\\\\"}"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var want string
		if json.Unmarshal(lit, &want) != nil || lit[0] != '"' || lit[len(lit)-1] != '"' {
			return
		}
		got, err := decodeAll(lit)
		if err != nil {
			t.Fatalf("%q: %v", lit, err)
		}
		if got != want {
			t.Fatalf("decoding %q gives %q, encoding/json gives %q", lit, got, want)
		}
	})
}
