package enrich

import "testing"

func TestIPClass(t *testing.T) {
	tests := []struct {
		ip   string
		want string
	}{
		{"", IPInvalid},
		{"   ", IPInvalid},
		{"not-an-ip", IPInvalid},
		{"203.0.113.7:443", IPInvalid},
		{"[2001:db8::1]", IPInvalid},
		{"010.0.0.1", IPInvalid}, // leading zeros are ambiguous; netip rejects them
		{"<script>", IPInvalid},

		{"0.0.0.0", IPUnspecified},
		{"::", IPUnspecified},

		{"127.0.0.1", IPLoopback},
		{"127.255.255.254", IPLoopback},
		{"::1", IPLoopback},
		{"::ffff:127.0.0.1", IPLoopback}, // IPv4-mapped: classed as the IPv4 address

		{"224.0.0.1", IPMulticast},
		{"239.255.255.250", IPMulticast},
		{"ff02::1", IPMulticast},

		{"169.254.169.254", IPLinkLocal}, // the instance metadata address
		{"fe80::1", IPLinkLocal},
		{"fe80::1%eth0", IPLinkLocal},
		{"::ffff:169.254.1.1", IPLinkLocal},

		{"10.0.0.1", IPPrivate},
		{"10.255.255.255", IPPrivate},
		{"172.16.0.1", IPPrivate},
		{"172.31.255.255", IPPrivate},
		{"192.168.99.1", IPPrivate},
		{"fd00::1", IPPrivate},
		{"fc00::1", IPPrivate},
		{"::ffff:10.1.2.3", IPPrivate},
		{" 10.0.27.115 ", IPPrivate}, // surrounding space, as some logs carry it

		{"100.64.0.1", IPCGNAT},
		{"100.127.255.255", IPCGNAT},

		{"192.0.2.1", IPDocumentation},
		{"198.51.100.23", IPDocumentation},
		{"203.0.113.7", IPDocumentation},
		{"2001:db8::42", IPDocumentation},
		{"3fff::1", IPDocumentation},
		{"::ffff:203.0.113.9", IPDocumentation},

		{"0.1.2.3", IPReserved},
		{"192.0.0.8", IPReserved},
		{"198.18.0.1", IPReserved},
		{"240.0.0.1", IPReserved},
		{"255.255.255.255", IPReserved},
		{"100::1", IPReserved},
		{"2001:2::1", IPReserved},
		{"fec0::1", IPReserved},

		// Boundaries just outside the special ranges are public.
		{"172.15.255.255", IPPublic},
		{"172.32.0.0", IPPublic},
		{"100.63.255.255", IPPublic},
		{"100.128.0.0", IPPublic},
		{"192.0.3.1", IPPublic},
		{"198.51.101.1", IPPublic},
		{"203.0.114.1", IPPublic},
		{"11.0.0.1", IPPublic},
		{"8.8.8.8", IPPublic},
		{"176.95.188.101", IPPublic},
		{"54.212.83.236", IPPublic},
		{"::ffff:8.8.8.8", IPPublic},
		{"2600:1f14::1", IPPublic},
		{"2001:db9::1", IPPublic},
		{"64:ff9b::808:808", IPPublic}, // NAT64 well-known prefix is globally reachable
	}
	for _, tt := range tests {
		if got := IPClass(tt.ip); got != tt.want {
			t.Errorf("IPClass(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func BenchmarkIPClass(b *testing.B) {
	ips := []string{"203.0.113.7", "10.0.0.1", "2600:1f14::1", "::ffff:8.8.8.8", "junk"}
	for i := 0; b.Loop(); i++ {
		IPClass(ips[i%len(ips)])
	}
}
