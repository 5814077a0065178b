package rules

import (
	"fmt"
	"net/netip"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// Network is how a rule cuts the address space into the networks src_net
// names: the prefix length of an IPv4 and of an IPv6 source.
type Network struct {
	IPv4, IPv6 int
}

// DefaultNetwork is what one party typically holds: an IPv4 /24, the
// smallest block routed on the internet, and an IPv6 /64, the one subnet a
// host, a VM or a home line gets and can rotate through at will.
var DefaultNetwork = Network{IPv4: 24, IPv6: 64}

// Bounds on a rule's prefixes: a network wider than /8 or /16 would lump
// strangers together, and a /32 or /128 is the address itself.
const (
	minIPv4Prefix = 8
	minIPv6Prefix = 16
)

func (n Network) check() error {
	if n.IPv4 < minIPv4Prefix || n.IPv4 > 32 {
		return fmt.Errorf("ipv4: /%d is outside /%d to /32", n.IPv4, minIPv4Prefix)
	}
	if n.IPv6 < minIPv6Prefix || n.IPv6 > 128 {
		return fmt.Errorf("ipv6: /%d is outside /%d to /128", n.IPv6, minIPv6Prefix)
	}
	return nil
}

// Of returns the network of addr in CIDR form, such as 203.0.113.0/24, or
// "" when addr is not an address. An IPv4-mapped IPv6 address is an IPv4
// source. A zone is dropped: it names an interface of the API server's
// host, not the client.
func (n Network) Of(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := n.IPv6
	if a.Is4() {
		bits = n.IPv4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// Value returns f's value for ev in cluster as r groups, counts and
// collects it: Field.Value, with src_net masked to r.Network.
func (r *Rule) Value(f Field, ev *audit.Event, cluster string) string {
	if f == FieldSrcNet {
		return r.Network.Of(ev.SrcIP())
	}
	return f.Value(ev, cluster)
}
