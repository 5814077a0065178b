package cwlogs

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMessageUnmarshal(t *testing.T) {
	tests := []struct {
		lit  string
		want []byte
	}{
		{`""`, []byte{}},
		{`"plain"`, []byte("plain")},
		{`"{\"kind\":\"Event\"}"`, []byte(`{"kind":"Event"}`)},
		{`"\b\f\n\r\t\/\\"`, []byte("\b\f\n\r\t/\\")},
		{`"\u0000\u00e9\u20AC"`, []byte("\x00é€")},
		{`"\ud83d\ude00"`, []byte("😀")},
		{`"\ud800x"`, []byte("\uFFFDx")},
		{`"\udc00\ud800"`, []byte("\uFFFD\uFFFD")},
		{"\"a\xffb\"", []byte("a\uFFFDb")},
		{"\"\xe2\x82\"", []byte("\uFFFD\uFFFD")},
		{`null`, nil},
	}
	for _, tt := range tests {
		var got message
		if err := json.Unmarshal([]byte(tt.lit), &got); err != nil {
			t.Errorf("Unmarshal(%s) error = %v", tt.lit, err)
			continue
		}
		if diff := cmp.Diff(tt.want, []byte(got)); diff != "" {
			t.Errorf("Unmarshal(%s) mismatch (-want +got):\n%s", tt.lit, diff)
		}
	}
}

// FuzzMessage checks that a message decodes to the bytes encoding/json
// decodes the same JSON string to.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud83d\ude00"`, `"\ud800\u0041"`, "\"\xff\\n\"", `"{\"a\":\"b\\\\\"}"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var want string
		if json.Unmarshal(lit, &want) != nil {
			return
		}
		var got message
		if err := json.Unmarshal(lit, &got); err != nil {
			t.Fatalf("Unmarshal(%q) into message: %v; into string it works", lit, err)
		}
		if string(got) != want {
			t.Fatalf("Unmarshal(%q) = %q, encoding/json gives %q", lit, got, want)
		}
	})
}
