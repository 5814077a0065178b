package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// FuzzUntrustedValues feeds arbitrary user agents, paths and forwarded-for
// claims to every rendering and checks the properties that keep them inert.
// go test runs the seeds; go test -fuzz=FuzzUntrustedValues explores.
func FuzzUntrustedValues(f *testing.F) {
	f.Add("<!channel>", "/api```\n*x*", "<@U1>")
	f.Add("\xff\xfe\u202e", "\u200b\u2028`", "a\r\nBcc: b")
	f.Add(strings.Repeat("<&>", 3000), strings.Repeat("\x00", 5000), "")
	f.Fuzz(func(t *testing.T, ua, path, xff string) {
		fd := &finding.Finding{
			ID: "f-fuzz", Rule: "anonymous-request-allowed", Severity: "high",
			ClusterName: "demo", SrcIP: "203.0.113.1", Count: 1, Window: "5m0s",
			UserAgent: ua, ForwardedFor: []string{xff},
			Values: map[string][]string{"path": {path, ua}, "user_agent": {ua}},
		}
		for what, s := range people(t, fd) {
			multiline := strings.Contains(what, "email") || strings.Contains(what, "string")
			checkInert(t, what, s, multiline)
		}
		checkSubject(t, EmailSubject(fd))
		b, err := JSON(fd)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("JSON is not valid: %q", b)
		}
		for _, c := range b {
			if c < 0x20 || c >= 0x7f || c == '`' {
				t.Fatalf("JSON has byte %#x outside printable ASCII", c)
			}
		}
	})
}
