package evasion

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// A Flood is an attacker who rotates through many source addresses, each
// sending one refused anonymous request, to bury the people on call in
// findings, over several deliveries, with one anonymous secret read that
// the API server allowed hidden in the middle.
type Flood struct {
	Name, What string
	Deliveries []Delivery
	// Sources is the number of rotating addresses.
	Sources int
	// Reader is the address of the allowed secret read: its critical
	// finding must go out on its own, naming it and the secret.
	Reader string
	// MaxMessages is what people may get: a couple of dozen, where
	// per-address findings made 1,603 of the /64 rotation.
	MaxMessages int
}

// Floods are the two shapes the review measured: rotation through one IPv6
// /64, which one VM holds, and a botnet with one address in each of 1,000
// IPv4 /24s.
func Floods() []Flood {
	return []Flood{
		flood("rotation-in-one-64", "1,000 anonymous requests from 1,000 addresses of one IPv6 /64, over 4 deliveries",
			func(i int) string { return fmt.Sprintf("2001:db8:5:1::%x", 0x1000+i) }),
		flood("botnet-1000-24s", "1,000 anonymous requests from 1,000 addresses, each in its own IPv4 /24, over 4 deliveries",
			func(i int) string { return fmt.Sprintf("45.%d.%d.17", 10+i/256, i%256) }),
	}
}

// floodReason is what kube-apiserver writes for a request a binding to
// system:anonymous allowed.
const floodReason = `RBAC: allowed by ClusterRoleBinding "legacy-readers" of ClusterRole "view-secrets" to Group "system:unauthenticated"`

// floodPaths are what internet scanners of the Kubernetes API ask for.
var floodPaths = []string{
	"/api/v1/namespaces", "/api/v1/nodes", "/apis", "/api", "/version?timeout=32s",
	"/api/v1/namespaces/kube-system/configmaps", "/apis/apps/v1/deployments",
	"/api/v1/secrets", "/metrics", "/openapi/v2", "/.env", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
}

func flood(name, what string, addr func(int) string) Flood {
	const sources, deliveries = 1000, 4
	f := Flood{Name: name, What: what, Sources: sources, Reader: "198.51.100.77", MaxMessages: 24}
	per := sources / deliveries
	for d := range deliveries {
		dl := Delivery{Ingest: T0.Add(time.Duration(d+1) * time.Minute)}
		for i := d * per; i < (d+1)*per; i++ {
			// 240 ms apart: 4 minutes in all.
			at := T0.Add(time.Duration(i) * 240 * time.Millisecond)
			dl.Lines = append(dl.Lines, Request{
				At: at, Stage: "ResponseComplete", Verb: "get", Anonymous: true,
				URI: floodPaths[i%len(floodPaths)], SourceIPs: []string{addr(i)},
				UserAgent: "Mozilla/5.0 zgrab/0.x", Code: 403, Decision: "forbid",
			}.Line())
			if d == deliveries/2 && i == d*per+per/2 {
				dl.Lines = append(dl.Lines, Request{
					At: at, Stage: "ResponseComplete", Verb: "get", Anonymous: true,
					URI:       "/api/v1/namespaces/payments/secrets/stripe-live-key",
					SourceIPs: []string{f.Reader}, UserAgent: "python-requests/2.32.3",
					Resource: "secrets", Namespace: "payments", Name: "stripe-live-key",
					Code: 200, Decision: "allow", Reason: floodReason,
				}.Line())
			}
		}
		f.Deliveries = append(f.Deliveries, dl)
	}
	return f
}

// Check returns what is wrong with got, the findings published for f: too
// many messages, no critical finding of its own for the reader naming the
// secret, or no digest of what the budget held back.
func (f Flood) Check(got []*finding.Finding) []string {
	var problems []string
	if len(got) > f.MaxMessages {
		problems = append(problems, fmt.Sprintf("%d messages published, want at most %d", len(got), f.MaxMessages))
	}
	var reader, digest bool
	for _, g := range got {
		if g.Digest == nil && g.Rule == "anonymous-request-allowed" && g.Severity == "critical" && g.SrcIP == f.Reader &&
			slices.ContainsFunc(g.Values["request_uri"], func(v string) bool { return strings.Contains(v, "/secrets/stripe-live-key") }) {
			reader = true
		}
		if g.Digest != nil && g.Rule == "eks-cluster-scan" && g.Digest.Held > 0 {
			digest = true
		}
	}
	if !reader {
		problems = append(problems, "no critical anonymous-request-allowed finding of its own from "+f.Reader+" naming the secret")
	}
	if !digest {
		problems = append(problems, "no digest of the eks-cluster-scan findings the budget held back")
	}
	return problems
}
