package detect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// TestRequestIdentityStable holds requestIdentity to the digest stored
// tables already hold (length-prefixed fields, SHA-256, 16 bytes), so a
// watch counted before a deploy is not counted again after it, whatever
// the length of its URI.
func TestRequestIdentityStable(t *testing.T) {
	received := time.Date(2026, 3, 2, 9, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name string
		uri  string
		verb string
	}{
		{name: "short watch", uri: "/api/v1/pods?watch=true", verb: "watch"},
		{name: "URI of one buffer", uri: "/api/v1/pods?watch=true&x=" + strings.Repeat("a", 512-26), verb: "watch"},
		{name: "padded 1 MB watch", uri: "/api/v1/pods?watch=true&x=" + strings.Repeat("b", 1<<20), verb: "watch"},
		{name: "not long-running", uri: "/api/v1/pods", verb: "list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &audit.Event{
				AuditID: "a1", RequestURI: tt.uri, Verb: tt.verb,
				User:            audit.User{Username: "system:anonymous"},
				SourceIPs:       []string{"203.0.113.9"},
				RequestReceived: received,
			}
			want := ""
			if ev.LongRunning() {
				h := sha256.New()
				for _, s := range []string{received.Format(time.RFC3339Nano), "203.0.113.9", "a1", "system:anonymous", tt.verb, tt.uri} {
					h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
					h.Write([]byte(s))
				}
				want = hex.EncodeToString(h.Sum(nil)[:16])
			}
			if got := requestIdentity(ev); got != want {
				t.Errorf("requestIdentity = %q, want %q", got, want)
			}
		})
	}
}
