package rules

import (
	"strings"
	"testing"
	"time"
)

func TestNetworkOf(t *testing.T) {
	for _, tc := range []struct {
		net  Network
		addr string
		want string
	}{
		{DefaultNetwork, "203.0.113.77", "203.0.113.0/24"},
		{DefaultNetwork, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{DefaultNetwork, "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		// An IPv4-mapped address is the IPv4 source it maps.
		{DefaultNetwork, "::ffff:203.0.113.77", "203.0.113.0/24"},
		{DefaultNetwork, "fe80::1%eth0", "fe80::/64"},
		{Network{IPv4: 16, IPv6: 48}, "198.51.100.9", "198.51.0.0/16"},
		{Network{IPv4: 32, IPv6: 128}, "2001:db8::9", "2001:db8::9/128"},
		{DefaultNetwork, "", ""},
		{DefaultNetwork, "not an address", ""},
		{DefaultNetwork, "203.0.113.0/24", ""},
	} {
		if got := tc.net.Of(tc.addr); got != tc.want {
			t.Errorf("%v.Of(%q) = %q, want %q", tc.net, tc.addr, got, tc.want)
		}
	}
}

func TestLoadNetwork(t *testing.T) {
	const head = `
rules:
  - id: r
    title: R
    severity: low
    match: anonymous
    group_by: [src_net]
    threshold: {count: 1, window: 1h}
`
	for _, tc := range []struct {
		network string
		want    Network
		err     string
	}{
		{"", DefaultNetwork, ""},
		{"    network: {ipv6: 48}\n", Network{IPv4: 24, IPv6: 48}, ""},
		{"    network: {ipv4: 16, ipv6: 56}\n", Network{IPv4: 16, IPv6: 56}, ""},
		{"    network: {ipv4: 4}\n", Network{}, "network: ipv4: /4 is outside /8 to /32"},
		{"    network: {ipv6: 129}\n", Network{}, "network: ipv6: /129 is outside /16 to /128"},
		{"    network: {ipv5: 24}\n", Network{}, "ipv5"},
	} {
		s, err := Load("r.yaml", []byte(head+tc.network))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("network %q: error %v, want one containing %q", tc.network, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("network %q: %v", tc.network, err)
		}
		if got := s.Rules()[0].Network; got != tc.want {
			t.Errorf("network %q: got %+v, want %+v", tc.network, got, tc.want)
		}
	}
}

func TestLoadBudget(t *testing.T) {
	const head = `
rules:
  - id: r
    title: R
    severity: low
    match: anonymous
    group_by: [src_ip]
    threshold: {count: 1, window: 1h}
`
	for _, tc := range []struct {
		budget string
		want   Budget
		err    string
	}{
		{"", DefaultBudget, ""},
		{"    budget: {count: 0}\n", Budget{Count: 0, Period: time.Hour}, ""},
		{"    budget: {count: 20, period: 6h}\n", Budget{Count: 20, Period: 6 * time.Hour}, ""},
		{"    budget: {period: 30m}\n", Budget{Count: 5, Period: 30 * time.Minute}, ""},
		{"    budget: {count: -1}\n", Budget{}, "budget: count -1 is outside 0 to 1000"},
		{"    budget: {count: 1001}\n", Budget{}, "budget: count 1001 is outside 0 to 1000"},
		{"    budget: {period: 90s}\n", Budget{}, "is not whole minutes"},
		{"    budget: {period: 48h}\n", Budget{}, "is not whole minutes from 1m to 24h"},
	} {
		s, err := Load("r.yaml", []byte(head+tc.budget))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("budget %q: error %v, want one containing %q", tc.budget, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("budget %q: %v", tc.budget, err)
		}
		if got := s.Rules()[0].Budget; got != tc.want {
			t.Errorf("budget %q: got %+v, want %+v", tc.budget, got, tc.want)
		}
	}
}
