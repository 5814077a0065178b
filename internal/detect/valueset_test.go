package detect

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDisplayValue(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "/api/v1/pods", 16, "/api/v1/pods"},
		{"exactly n", a(16), 16, a(16)},
		{"one byte over", a(17), 16, a(13) + "…"},
		{"far over", a(600), 16, a(13) + "…"},
		// "日" is 3 bytes: 13 bytes leave room for four and the ellipsis.
		{"no split character", strings.Repeat("日", 10), 16, strings.Repeat("日", 4) + "…"},
		{"character ends at the room", "a" + strings.Repeat("日", 10), 16, "a" + strings.Repeat("日", 4) + "…"},
		// As memstate.Clip: each run of invalid bytes becomes one U+FFFD.
		{"invalid bytes", "a\xff\xfeb", 16, "a\uFFFDb"},
		{"invalid bytes grow past n", a(14) + "\xff", 16, a(13) + "…"},
		{"invalid run shrinks under n", "a" + strings.Repeat("\xff", 30), 16, "a\uFFFD"},
		{"valid U+FFFD kept", "a\uFFFD\uFFFDb", 16, "a\uFFFD\uFFFDb"},
		{"ellipsis already there", a(15) + "…", 16, a(13) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := displayValue(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("displayValue(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if len(got) > tt.n || !utf8.ValidString(got) {
				t.Errorf("displayValue(%q, %d) = %q: %d bytes, valid UTF-8 %v", tt.in, tt.n, got, len(got), utf8.ValidString(got))
			}
		})
	}
}

func FuzzDisplayValue(f *testing.F) {
	f.Add("/api/v1/pods", 16)
	f.Add(strings.Repeat("日", 100), 256)
	f.Add("a\xff\xfe"+strings.Repeat("é", 200), 256)
	f.Fuzz(func(t *testing.T, v string, n int) {
		if n < len(ellipsis) || n > 4096 {
			return
		}
		got := displayValue(v, n)
		valid := strings.ToValidUTF8(v, "\uFFFD")
		switch {
		case len(got) > n || !utf8.ValidString(got):
			t.Errorf("displayValue(%q, %d) = %q: %d bytes, valid UTF-8 %v", v, n, got, len(got), utf8.ValidString(got))
		case len(valid) <= n && got != valid:
			t.Errorf("displayValue(%q, %d) = %q, want %q whole", v, n, got, valid)
		case len(valid) > n && (!strings.HasSuffix(got, ellipsis) || !strings.HasPrefix(valid, strings.TrimSuffix(got, ellipsis))):
			t.Errorf("displayValue(%q, %d) = %q: not a prefix of %q ending in %q", v, n, got, valid, ellipsis)
		}
	})
}
