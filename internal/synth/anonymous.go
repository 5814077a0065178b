package synth

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// Probe is one anonymous request, for scenarios that script an attack
// rather than draw one at random.
type Probe struct {
	At time.Time
	// SrcIP is the connection's address, the last sourceIPs entry.
	SrcIP string
	// ForwardedFor are addresses the client claims in X-Forwarded-For;
	// they come first in sourceIPs.
	ForwardedFor []string
	UserAgent    string
	// Verb defaults to "get" for a path and "list" for a collection of
	// resources.
	Verb string
	URI  string
	// Code defaults to what a default EKS cluster answers: 200 for the
	// paths system:public-info-viewer allows, 403 otherwise. Any code but
	// 403 is logged as allowed by the authorizer.
	Code int
	// Reason is the authorizer's reason for an allowed request. It
	// defaults to the public-info-viewer binding for the paths it allows,
	// and to a binding of system:anonymous to cluster-admin, the
	// misconfiguration anonwatch looks for, for any other path.
	Reason string
	// AuditID defaults to a UUID derived from the other fields.
	AuditID string
}

// Line returns the probe as a ResponseComplete audit line.
func (p Probe) Line() []byte {
	if p.AuditID == "" {
		h := fnv.New128a()
		fmt.Fprintf(h, "%d|%s|%v|%s|%s|%s|%d|%s", p.At.UnixNano(), p.SrcIP, p.ForwardedFor, p.UserAgent, p.Verb, p.URI, p.Code, p.Reason)
		sum := h.Sum(nil)
		p.AuditID = uuidFrom(be64(sum[:8]), be64(sum[8:]))
	}
	return mustMarshal(probeEvent(p, time.Millisecond))
}

func be64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// publicInfoPaths are the non-resource paths that the default
// system:public-info-viewer binding lets system:unauthenticated read.
var publicInfoPaths = []string{"/healthz", "/livez", "/readyz", "/version"}

func isPublicInfo(path string) bool {
	for _, p := range publicInfoPaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

const (
	publicInfoReason     = `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`
	anonymousAdminReason = `RBAC: allowed by ClusterRoleBinding "anonymous-admin" of ClusterRole "cluster-admin" to User "system:anonymous"`
)

// probeEvent renders p as the API server would log it.
func probeEvent(p Probe, latency time.Duration) event {
	path, _, _ := strings.Cut(p.URI, "?")
	ref := resourceRef(path)
	verb := p.Verb
	if verb == "" {
		verb = "get"
		if ref != nil && ref.Name == "" {
			verb = "list"
		}
	}
	code := p.Code
	if code == 0 {
		code = 403
		if ref == nil && isPublicInfo(path) {
			code = 200
		}
	}
	src := append(append([]string(nil), p.ForwardedFor...), p.SrcIP)
	anon := user{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}
	ev := newEvent(p.AuditID, p.At, latency, "Metadata", verb, p.URI, anon, src, p.UserAgent)
	ev.ObjectRef = ref
	if code == 403 {
		ev.ResponseStatus = &status{
			Status:  "Failure",
			Message: forbiddenMessage(verb, path, ref),
			Reason:  "Forbidden",
			Details: forbiddenDetails(ref),
			Code:    403,
		}
		ev.Annotations = forbidden()
		return ev
	}
	reason := p.Reason
	if reason == "" {
		reason = anonymousAdminReason
		if ref == nil && isPublicInfo(path) {
			reason = publicInfoReason
		}
	}
	ev.ResponseStatus = ok(code)
	ev.Annotations = allowed(reason)
	return ev
}

// resourceRef parses a core or group API path into the objectRef the API
// server logs, or returns nil for a non-resource path.
func resourceRef(path string) *objectRef {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var ref objectRef
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		ref.APIVersion = parts[1]
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ref.APIGroup, ref.APIVersion = parts[1], parts[2]
		parts = parts[3:]
	default:
		return nil
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) != 2 {
		ref.Namespace = parts[1]
		parts = parts[2:]
	}
	ref.Resource = parts[0]
	if len(parts) > 1 {
		ref.Name = parts[1]
	}
	if len(parts) > 2 {
		ref.Subresource = parts[2]
	}
	return &ref
}

func forbiddenMessage(verb, path string, ref *objectRef) string {
	if ref == nil {
		return fmt.Sprintf("forbidden: User %q cannot %s path %q", "system:anonymous", verb, path)
	}
	res := ref.Resource
	if ref.APIGroup != "" {
		res += "." + ref.APIGroup
	}
	msg := fmt.Sprintf("%s is forbidden: User %q cannot %s resource %q in API group %q", res, "system:anonymous", verb, ref.Resource, ref.APIGroup)
	if ref.Namespace != "" {
		return msg + fmt.Sprintf(" in the namespace %q", ref.Namespace)
	}
	return msg + " at the cluster scope"
}

func forbiddenDetails(ref *objectRef) map[string]any {
	if ref == nil {
		return map[string]any{}
	}
	d := map[string]any{"kind": ref.Resource}
	if ref.Name != "" {
		d["name"] = ref.Name
	}
	if ref.APIGroup != "" {
		d["group"] = ref.APIGroup
	}
	return d
}

// scannerPaths are what internet-wide scanners ask an exposed API server for.
var scannerPaths = []weighted[string]{
	{14, "/"},
	{14, "/version"},
	{8, "/api"},
	{8, "/apis"},
	{8, "/api/v1/pods"},
	{6, "/api/v1/namespaces/kube-system/secrets"},
	{4, "/api/v1/namespaces"},
	{4, "/.well-known/openid-configuration"},
	{4, "/openapi/v2"},
	{6, "/healthz"},
	{3, "/favicon.ico"},
	{3, "/robots.txt"},
	{2, "/.env"},
	{2, "/api/v1/nodes"},
	{2, "/apis/apps/v1/deployments"},
}

var scannerAgents = []weighted[string]{
	{6, "masscan/1.3 (https://github.com/robertdavidgraham/masscan)"},
	{6, "Mozilla/5.0 zgrab/0.x"},
	{5, "python-requests/2.31.0"},
	{4, "curl/8.4.0"},
	{4, "Go-http-client/1.1"},
	{3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	{1, ""},
}

// spoofedForwards are X-Forwarded-For claims scanners send hoping a proxy
// trusts them.
var spoofedForwards = []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1"}

// anonymous draws one anonymous request: mostly scanner probes, some
// kube-probe health checks from inside the VPC.
func (g *Generator) anonymous(at time.Time) event {
	r := g.rng
	latency := time.Duration(200+r.IntN(3000)) * time.Microsecond
	if r.IntN(5) == 0 {
		health := pick(r, []string{"/healthz", "/livez", "/readyz"})
		p := Probe{
			At:        at,
			SrcIP:     pick(r, g.cluster.nodeIPs),
			UserAgent: "kube-probe/1.29+",
			URI:       health,
			AuditID:   g.uuid(),
		}
		return probeEvent(p, latency)
	}
	p := Probe{
		At:        at,
		SrcIP:     pick(r, g.mix.ScannerIPs),
		UserAgent: pickWeighted(r, scannerAgents),
		URI:       pickWeighted(r, scannerPaths),
		AuditID:   g.uuid(),
	}
	if r.IntN(8) == 0 {
		p.ForwardedFor = []string{pick(r, spoofedForwards)}
	}
	return probeEvent(p, latency)
}
