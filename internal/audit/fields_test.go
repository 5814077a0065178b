package audit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSrcIPAndForwardedFor(t *testing.T) {
	tests := []struct {
		name          string
		sourceIPs     []string
		wantSrc       string
		wantForwarded []string
	}{
		{name: "none", sourceIPs: nil, wantSrc: ""},
		{name: "empty list", sourceIPs: []string{}, wantSrc: ""},
		{name: "one address", sourceIPs: []string{"203.0.113.7"}, wantSrc: "203.0.113.7"},
		{
			// The client wrote the first two entries; only the last is
			// the connection's.
			name:          "spoofed X-Forwarded-For",
			sourceIPs:     []string{"127.0.0.1", "10.0.0.1", "203.0.113.7"},
			wantSrc:       "203.0.113.7",
			wantForwarded: []string{"127.0.0.1", "10.0.0.1"},
		},
		{
			name:          "garbage claim before a real address",
			sourceIPs:     []string{"<script>", "198.51.100.4"},
			wantSrc:       "198.51.100.4",
			wantForwarded: []string{"<script>"},
		},
		{name: "IPv4-mapped IPv6 is unmapped", sourceIPs: []string{"::ffff:203.0.113.7"}, wantSrc: "203.0.113.7"},
		{name: "IPv6 is canonicalised", sourceIPs: []string{"2001:DB8:0:0::17"}, wantSrc: "2001:db8::17"},
		{name: "zone is dropped", sourceIPs: []string{"fe80::1%eth0"}, wantSrc: "fe80::1"},
		{name: "white space is trimmed", sourceIPs: []string{" 203.0.113.7 "}, wantSrc: "203.0.113.7"},
		{name: "garbage last entry", sourceIPs: []string{"203.0.113.7", "not-an-ip"}, wantSrc: "", wantForwarded: []string{"203.0.113.7"}},
		{name: "address with port", sourceIPs: []string{"203.0.113.7:443"}, wantSrc: ""},
		{name: "empty entry", sourceIPs: []string{""}, wantSrc: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{SourceIPs: tt.sourceIPs}
			if got := e.SrcIP(); got != tt.wantSrc {
				t.Errorf("SrcIP() = %q, want %q", got, tt.wantSrc)
			}
			if diff := cmp.Diff(tt.wantForwarded, e.ForwardedFor()); diff != "" {
				t.Errorf("ForwardedFor() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPathAndIsHealthPath(t *testing.T) {
	tests := []struct {
		uri        string
		wantPath   string
		wantHealth bool
	}{
		{"/healthz", "/healthz", true},
		{"/healthz?verbose", "/healthz", true},
		{"/livez", "/livez", true},
		{"/livez/ping", "/livez/ping", true},
		{"/readyz/etcd?exclude=x", "/readyz/etcd", true},
		{"/healthzfoo", "/healthzfoo", false},
		{"/livezz", "/livezz", false},
		{"/healthz-evil/..", "/healthz-evil/..", false},
		{"/api/v1/healthz", "/api/v1/healthz", false},
		{"/version", "/version", false},
		{"/", "/", false},
		{"", "", false},
		{"?/healthz", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			e := Event{RequestURI: tt.uri}
			if got := e.Path(); got != tt.wantPath {
				t.Errorf("Path() = %q, want %q", got, tt.wantPath)
			}
			if got := e.IsHealthPath(); got != tt.wantHealth {
				t.Errorf("IsHealthPath() = %v, want %v", got, tt.wantHealth)
			}
		})
	}
}

func TestIsAnonymous(t *testing.T) {
	tests := []struct {
		username string
		want     bool
	}{
		{Anonymous, true},
		{Unauthenticated, false},
		{"system:anonymous ", false},
		{"", false},
	}
	for _, tt := range tests {
		e := Event{User: User{Username: tt.username}}
		if got := e.IsAnonymous(); got != tt.want {
			t.Errorf("IsAnonymous() for %q = %v, want %v", tt.username, got, tt.want)
		}
	}
}
