package memstate_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/memstate"
)

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven cha"},
		{"aé", 2, "a"}, // é is two bytes: not split
		{"日本", 4, "日"},
		{"bad\xffbyte", 20, "bad\uFFFDbyte"},
		{"\xff\xfe", 2, ""}, // the replacement character alone needs 3 bytes
		{"", 5, ""},
	}
	for _, tc := range tests {
		if got := memstate.Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func FuzzClip(f *testing.F) {
	f.Add("curl/8.5.0", 256)
	f.Add(strings.Repeat("é", 200), 255)
	f.Add("\xff\xfe\xfd", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := memstate.Clip(s, n)
		if len(got) > n {
			t.Errorf("Clip(%q, %d) = %q: %d bytes", s, n, got, len(got))
		}
		if !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q: invalid UTF-8", s, n, got)
		}
		if valid := strings.ToValidUTF8(s, "\uFFFD"); !strings.HasPrefix(valid, got) {
			t.Errorf("Clip(%q, %d) = %q: not a prefix of %q", s, n, got, valid)
		}
	})
}
