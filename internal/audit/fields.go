package audit

import (
	"net/netip"
	"strings"
)

// SrcIP returns the connection's address: the last sourceIPs entry, which the
// client cannot choose. It is in canonical form, or "" when the entry is
// missing or is not an IP address.
func (e *Event) SrcIP() string {
	if len(e.SourceIPs) == 0 {
		return ""
	}
	s := strings.TrimSpace(e.SourceIPs[len(e.SourceIPs)-1])
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	// Rules and grouping ask for this several times per request; an
	// address already in canonical form, the usual case, is returned as
	// it stands rather than formatted anew.
	var buf [48]byte
	if string(a.AppendTo(buf[:0])) == s {
		return s
	}
	return a.String()
}

// ForwardedFor returns the sourceIPs entries before the last: addresses the
// client claimed in X-Forwarded-For or X-Real-IP. They are unverified.
func (e *Event) ForwardedFor() []string {
	if len(e.SourceIPs) < 2 {
		return nil
	}
	return e.SourceIPs[:len(e.SourceIPs)-1]
}

// Path returns requestURI without its query string.
func (e *Event) Path() string {
	if i := strings.IndexByte(e.RequestURI, '?'); i >= 0 {
		return e.RequestURI[:i]
	}
	return e.RequestURI
}

// IsHealthPath reports whether the path is /healthz, /livez or /readyz, or
// lies below one of them.
func (e *Event) IsHealthPath() bool {
	return IsHealthPath(e.Path())
}

// IsHealthPath reports whether p is a health probe path.
func IsHealthPath(p string) bool {
	for _, h := range [...]string{"/healthz", "/livez", "/readyz"} {
		if p == h || strings.HasPrefix(p, h) && p[len(h)] == '/' {
			return true
		}
	}
	return false
}

// IsAnonymous reports whether the request was made as system:anonymous.
func (e *Event) IsAnonymous() bool { return e.User.Username == Anonymous }
