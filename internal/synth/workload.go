package synth

import (
	"fmt"
	"strings"
	"time"
)

// apiResource is a kind of object and the verbs applications use on it.
type apiResource struct {
	group, version, resource string
	verbs                    []string
}

// workloadResources are what applications ask the API server about.
var workloadResources = []weighted[apiResource]{
	{10, apiResource{"", "v1", "configmaps", []string{"get", "get", "list", "watch", "update"}}},
	{6, apiResource{"", "v1", "secrets", []string{"get", "get", "list", "watch"}}},
	{8, apiResource{"", "v1", "pods", []string{"get", "list", "watch", "patch"}}},
	{4, apiResource{"", "v1", "services", []string{"get", "list", "watch"}}},
	{6, apiResource{"", "v1", "events", []string{"create", "patch"}}},
	{4, apiResource{"coordination.k8s.io", "v1", "leases", []string{"get", "update"}}},
	{3, apiResource{"apps", "v1", "deployments", []string{"get", "list", "watch", "patch"}}},
	{2, apiResource{"batch", "v1", "jobs", []string{"get", "list", "create"}}},
}

// workloadAgents are the clients applications use; %s is the
// application's name.
var workloadAgents = []string{
	"%s/v1.4.2 (linux/amd64) kubernetes/$Format",
	"%s/2.7.0 client-go/v0.29.3 (linux/arm64)",
	"Go-http-client/2.0",
	"kubernetes-python-client/29.0.0 %s",
	"okhttp/4.12.0",
}

// workload draws one request of an application's service account: one of
// mix.Workloads, each in one of about a tenth as many namespaces, from a
// pod address, on objects named after it.
func (g *Generator) workload(at time.Time) event {
	r := g.rng
	w := r.IntN(g.mix.Workloads)
	ns := fmt.Sprintf("team-%03d", w%max(1, g.mix.Workloads/10))
	app := fmt.Sprintf("svc-%04d", w)
	u := serviceAccount(ns, app, uuidFrom(uint64(w)+0x5eed, 0xacc0))
	src := fmt.Sprintf("10.%d.%d.%d", 1+w%3, r.IntN(256), 2+r.IntN(250))
	ua := pick(r, workloadAgents)
	if strings.Contains(ua, "%s") {
		ua = fmt.Sprintf(ua, app)
	}
	res := pickWeighted(r, workloadResources)
	verb := pick(r, res.verbs)
	prefix := "/api/" + res.version
	if res.group != "" {
		prefix = "/apis/" + res.group + "/" + res.version
	}
	ref := &objectRef{Resource: res.resource, Namespace: ns, APIGroup: res.group, APIVersion: res.version}
	uri := prefix + "/namespaces/" + ns + "/" + res.resource
	code := 200
	switch verb {
	case "get", "update", "patch":
		ref.Name = fmt.Sprintf("%s-%s-%x", app, res.resource[:3], r.IntN(64))
		uri += "/" + ref.Name
		if r.IntN(40) == 0 {
			code = 404
		}
	case "list":
		uri += fmt.Sprintf("?limit=%d", 100*(1+r.IntN(5)))
	case "watch":
		uri += fmt.Sprintf("?allowWatchBookmarks=true&resourceVersion=%d&timeoutSeconds=%d&watch=true", 4_000_000+g.n*7, 300+r.IntN(240))
	case "create":
		if r.IntN(30) == 0 {
			code = 409
		}
	}
	latency := g.latency(1, 20)
	if verb == "watch" {
		latency = g.latency(300_000, 240_000)
	}
	ev := newEvent(g.uuid(), at, latency, "Metadata", verb, uri, u, []string{src}, ua)
	ev.ObjectRef = ref
	switch code {
	case 404:
		ev.ResponseStatus = &status{Status: "Failure", Reason: "NotFound", Code: code,
			Message: fmt.Sprintf("%s %q not found", res.resource, ref.Name)}
	case 409:
		ev.ResponseStatus = &status{Status: "Failure", Reason: "AlreadyExists", Code: code,
			Message: fmt.Sprintf("%s already exists", res.resource)}
	default:
		ev.ResponseStatus = ok(code)
	}
	ev.Annotations = allowed(fmt.Sprintf(`RBAC: allowed by RoleBinding "%s" of Role "%s" to ServiceAccount "%s/%s"`, app, app, app, ns))
	return ev
}
