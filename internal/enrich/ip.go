// Package enrich labels what a finding says about its client: the class of
// the connection's address and the class of the user agent.
//
// The labels help a person triage a finding at a glance. They are hints, not
// security decisions: a client chooses its user agent freely, and an address
// class says where an address sits in the address plan, not who holds it.
// Everything here is pure and cheap enough to run on every finding.
package enrich

import (
	"net/netip"
	"strings"
)

// Address classes returned by IPClass.
const (
	IPInvalid     = "invalid"     // empty, or not an IP address
	IPUnspecified = "unspecified" // 0.0.0.0 or ::
	IPLoopback    = "loopback"    // 127.0.0.0/8, ::1
	IPMulticast   = "multicast"   // 224.0.0.0/4, ff00::/8
	IPLinkLocal   = "link-local"  // 169.254.0.0/16, fe80::/10
	IPPrivate     = "private"     // RFC 1918, fc00::/7 (unique local)
	IPCGNAT       = "cgnat"       // 100.64.0.0/10 (RFC 6598 shared space)
	// IPDocumentation marks the ranges reserved for examples (RFC 5737,
	// RFC 3849, RFC 9637). No real peer on the internet has one, so seeing
	// one means a replayed or hand-made log, or a lab network that borrowed
	// the range.
	IPDocumentation = "documentation"
	// IPReserved marks other special-purpose ranges that IANA lists as not
	// globally reachable (benchmarking, "this network", 240.0.0.0/4, ...).
	IPReserved = "reserved"
	IPPublic   = "public"
)

var (
	cgnat = netip.MustParsePrefix("100.64.0.0/10")

	// documentation ranges are classed apart from public ones, because the
	// IANA special-purpose registries mark them as not globally reachable:
	// calling them public would mislead whoever reads the finding.
	documentation = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1, RFC 5737
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2, RFC 5737
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3, RFC 5737
		netip.MustParsePrefix("2001:db8::/32"),   // RFC 3849
		netip.MustParsePrefix("3fff::/20"),       // RFC 9637
	}

	reserved = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),     // "this network", RFC 791
		netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking, RFC 2544
		netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and the broadcast address
		netip.MustParsePrefix("100::/64"),      // discard-only, RFC 6666
		netip.MustParsePrefix("2001:2::/48"),   // benchmarking, RFC 5180
		netip.MustParsePrefix("fec0::/10"),     // deprecated site-local, RFC 3879
	}
)

// IPClass returns the class of an address: one of the IP* constants.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is classed as the IPv4
// address it carries, and a zone (fe80::1%eth0) is ignored, so the same host
// gets the same class however the API server spelled it.
func IPClass(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return IPInvalid
	}
	a = a.Unmap().WithZone("")
	switch {
	case a.IsUnspecified():
		return IPUnspecified
	case a.IsLoopback():
		return IPLoopback
	case a.IsMulticast():
		return IPMulticast
	case a.IsLinkLocalUnicast():
		return IPLinkLocal
	case a.IsPrivate():
		return IPPrivate
	case cgnat.Contains(a):
		return IPCGNAT
	case inAny(documentation, a):
		return IPDocumentation
	case inAny(reserved, a):
		return IPReserved
	}
	return IPPublic
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
