package synth

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// clusterShape is the fixed furniture of the generated cluster: its nodes
// and the addresses its control plane talks from.
type clusterShape struct {
	nodes        []string // ip-10-0-1-23.ec2.internal
	nodeIPs      []string
	controlPlane string // address of the control-plane ENI
	created      time.Time
	leaseUID     map[string]string
	holder       map[string]string
}

func newClusterShape(r *rand.Rand, nodes int) clusterShape {
	switch {
	case nodes <= 0:
		nodes = 4
	case nodes < 2:
		nodes = 2 // coredns runs on two
	}
	c := clusterShape{
		controlPlane: fmt.Sprintf("172.16.%d.%d", 10+r.IntN(200), 2+r.IntN(250)),
		created:      time.Date(2024, 3, 4, 9, 12, 31, 0, time.UTC),
		leaseUID:     map[string]string{},
		holder:       map[string]string{},
	}
	for range nodes {
		a, b := r.IntN(48), 2+r.IntN(250)
		c.nodeIPs = append(c.nodeIPs, fmt.Sprintf("10.0.%d.%d", a, b))
		c.nodes = append(c.nodes, fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", a, b))
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "cloud-controller-manager"} {
		c.leaseUID[name] = uuidFrom(r.Uint64(), r.Uint64())
		c.holder[name] = fmt.Sprintf("ip-172-16-%d-%d.ec2.internal_%s", r.IntN(200), r.IntN(250), uuidFrom(r.Uint64(), r.Uint64()))
	}
	return c
}

const k8sVersion = "v1.29.10"

var (
	kcm = user{Username: "system:kube-controller-manager", Groups: []string{"system:authenticated"}}
	ksc = user{Username: "system:kube-scheduler", Groups: []string{"system:authenticated"}}
)

func serviceAccount(ns, name string, uid string) user {
	return user{
		Username: "system:serviceaccount:" + ns + ":" + name,
		UID:      uid,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
}

func nodeUser(node string) user {
	return user{
		Username: "system:node:" + node,
		Groups:   []string{"system:bootstrappers", "system:nodes", "system:authenticated"},
		Extra: map[string][]string{
			"accessKeyId":  {"ASIAEXAMPLEKEYID0000"},
			"arn":          {"arn:aws:sts::111122223333:assumed-role/eks-node-role/i-0123456789abcdef0"},
			"canonicalArn": {"arn:aws:iam::111122223333:role/eks-node-role"},
			"principalId":  {"AROAEXAMPLEPRINCIPAL0"},
			"sessionName":  {"i-0123456789abcdef0"},
		},
	}
}

func uaFor(component string) string {
	return fmt.Sprintf("%s/%s (linux/amd64) kubernetes/b3c5b1a", component, k8sVersion)
}

// authenticated draws one request from the cluster's own components.
func (g *Generator) authenticated(at time.Time) event {
	if g.mix.Workloads > 0 && g.rng.IntN(4) == 0 {
		return g.workload(at)
	}
	kind := pickWeighted(g.rng, authKinds)
	return kind(g, at)
}

var authKinds = []weighted[func(*Generator, time.Time) event]{
	{16, (*Generator).leaseGet},
	{12, (*Generator).leaseUpdate},
	{16, (*Generator).nodeLeaseUpdate},
	{12, (*Generator).nodeStatusPatch},
	{8, (*Generator).endpointsGet},
	{6, (*Generator).endpointsUpdate},
	{8, (*Generator).corednsWatch},
	{8, (*Generator).awsNodeGet},
	{5, (*Generator).certControllerList},
	{8, (*Generator).kubeProxyWatch},
	{10, (*Generator).podGet},
}

func (g *Generator) latency(minMS, spreadMS int) time.Duration {
	return time.Duration(minMS*1000+g.rng.IntN(spreadMS*1000+1)) * time.Microsecond
}

func (g *Generator) leader() (user, string, string) {
	if g.rng.IntN(2) == 0 {
		return kcm, "kube-controller-manager", uaFor("kube-controller-manager") + "/leader-election"
	}
	return ksc, "kube-scheduler", uaFor("kube-scheduler") + "/leader-election"
}

func (g *Generator) leaseGet(at time.Time) event {
	u, name, ua := g.leader()
	uri := "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + name + "?timeout=5s"
	ev := newEvent(g.uuid(), at, g.latency(1, 3), "Metadata", "get", uri, u, []string{g.cluster.controlPlane}, ua)
	ev.ObjectRef = &objectRef{Resource: "leases", Namespace: "kube-system", Name: name, APIGroup: "coordination.k8s.io", APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(fmt.Sprintf("RBAC: allowed by ClusterRoleBinding %q of ClusterRole %q to User %q", u.Username, u.Username, u.Username))
	return ev
}

func (g *Generator) leaseUpdate(at time.Time) event {
	u, name, ua := g.leader()
	uri := "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + name + "?timeout=5s"
	ev := newEvent(g.uuid(), at, g.latency(2, 6), "RequestResponse", "update", uri, u, []string{g.cluster.controlPlane}, ua)
	rv := fmt.Sprint(4_000_000 + g.n*7 + int64(g.rng.IntN(7)))
	ev.ObjectRef = &objectRef{Resource: "leases", Namespace: "kube-system", Name: name, UID: g.cluster.leaseUID[name], APIGroup: "coordination.k8s.io", APIVersion: "v1", ResourceVersion: rv}
	ev.ResponseStatus = ok(200)
	ev.RequestObject = g.lease(name, "kube-system", g.cluster.leaseUID[name], g.cluster.holder[name], rv, at, 15, name)
	next := fmt.Sprint(4_000_000 + g.n*7 + 7)
	ev.ResponseObject = g.lease(name, "kube-system", g.cluster.leaseUID[name], g.cluster.holder[name], next, at, 15, name)
	ev.Annotations = allowed(fmt.Sprintf("RBAC: allowed by ClusterRoleBinding %q of ClusterRole %q to User %q", u.Username, u.Username, u.Username))
	return ev
}

func (g *Generator) lease(name, ns, uid, holder, rv string, at time.Time, seconds int, manager string) m {
	renew := at.Add(-time.Duration(g.rng.IntN(2000)) * time.Millisecond)
	return m{
		"kind":       "Lease",
		"apiVersion": "coordination.k8s.io/v1",
		"metadata": m{
			"name":              name,
			"namespace":         ns,
			"uid":               uid,
			"resourceVersion":   rv,
			"creationTimestamp": g.cluster.created.Format(time.RFC3339),
			"managedFields": []m{{
				"manager":    manager,
				"operation":  "Update",
				"apiVersion": "coordination.k8s.io/v1",
				"time":       at.Add(-2 * time.Second).UTC().Format(time.RFC3339),
				"fieldsType": "FieldsV1",
				"fieldsV1": m{"f:spec": m{
					"f:acquireTime": m{}, "f:holderIdentity": m{}, "f:leaseDurationSeconds": m{},
					"f:leaseTransitions": m{}, "f:renewTime": m{},
				}},
			}},
		},
		"spec": m{
			"holderIdentity":       holder,
			"leaseDurationSeconds": seconds,
			"acquireTime":          g.cluster.created.Add(time.Hour).Format("2006-01-02T15:04:05.000000Z"),
			"renewTime":            renew.UTC().Format("2006-01-02T15:04:05.000000Z"),
			"leaseTransitions":     3,
		},
	}
}

func (g *Generator) nodeLeaseUpdate(at time.Time) event {
	i := g.rng.IntN(len(g.cluster.nodes))
	node := g.cluster.nodes[i]
	u := nodeUser(node)
	uri := "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + node + "?timeout=10s"
	ev := newEvent(g.uuid(), at, g.latency(2, 8), "Request", "update", uri, u, []string{g.cluster.nodeIPs[i]}, uaFor("kubelet"))
	rv := fmt.Sprint(4_000_000 + g.n*7 + int64(g.rng.IntN(7)))
	ev.ObjectRef = &objectRef{Resource: "leases", Namespace: "kube-node-lease", Name: node, APIGroup: "coordination.k8s.io", APIVersion: "v1", ResourceVersion: rv}
	ev.ResponseStatus = ok(200)
	ev.RequestObject = g.lease(node, "kube-node-lease", uuidFrom(uint64(i)+1, 0xfeed), node, rv, at, 40, "kubelet")
	ev.Annotations = allowed("")
	return ev
}

func (g *Generator) nodeStatusPatch(at time.Time) event {
	i := g.rng.IntN(len(g.cluster.nodes))
	node := g.cluster.nodes[i]
	u := nodeUser(node)
	uri := "/api/v1/nodes/" + node + "/status?timeout=10s"
	ev := newEvent(g.uuid(), at, g.latency(3, 10), "RequestResponse", "patch", uri, u, []string{g.cluster.nodeIPs[i]}, uaFor("kubelet"))
	ev.ObjectRef = &objectRef{Resource: "nodes", Name: node, APIVersion: "v1", Subresource: "status"}
	ev.ResponseStatus = ok(200)
	hb := at.UTC().Format(time.RFC3339)
	conds := []m{}
	order := []m{}
	for _, c := range []string{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"} {
		conds = append(conds, m{"lastHeartbeatTime": hb, "type": c})
		order = append(order, m{"type": c})
	}
	ev.RequestObject = m{"status": m{"$setElementOrder/conditions": order, "conditions": conds}}
	ev.ResponseObject = g.node(node, g.cluster.nodeIPs[i], at)
	ev.Annotations = allowed("")
	return ev
}

func (g *Generator) node(name, ip string, at time.Time) m {
	hb := at.UTC().Format(time.RFC3339)
	cond := func(t, status, reason, msg string) m {
		return m{"type": t, "status": status, "lastHeartbeatTime": hb, "lastTransitionTime": g.cluster.created.Format(time.RFC3339), "reason": reason, "message": msg}
	}
	images := []m{}
	for _, img := range []string{
		"602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.18.3-eksbuild.2",
		"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.29.10-minimal-eksbuild.3",
		"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.11.1-eksbuild.9",
		"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/pause:3.5",
	} {
		images = append(images, m{"names": []string{img}, "sizeBytes": 10_000_000 + g.rng.IntN(50_000_000)})
	}
	return m{
		"kind":       "Node",
		"apiVersion": "v1",
		"metadata": m{
			"name":              name,
			"uid":               uuidFrom(be64([]byte(name)), 0xabc),
			"resourceVersion":   fmt.Sprint(4_000_000 + g.n*7),
			"creationTimestamp": g.cluster.created.Format(time.RFC3339),
			"labels": m{
				"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m5.large",
				"beta.kubernetes.io/os": "linux", "eks.amazonaws.com/capacityType": "ON_DEMAND",
				"eks.amazonaws.com/nodegroup": "default", "kubernetes.io/hostname": name,
				"kubernetes.io/os": "linux", "topology.kubernetes.io/region": "us-east-1",
				"topology.kubernetes.io/zone": "us-east-1a",
			},
			"annotations": m{
				"alpha.kubernetes.io/provided-node-ip":                   ip,
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
			"managedFields": []m{{
				"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": hb,
				"fieldsType": "FieldsV1", "subresource": "status",
				"fieldsV1": m{"f:status": m{"f:conditions": m{
					`k:{"type":"DiskPressure"}`:   m{"f:lastHeartbeatTime": m{}},
					`k:{"type":"MemoryPressure"}`: m{"f:lastHeartbeatTime": m{}},
					`k:{"type":"PIDPressure"}`:    m{"f:lastHeartbeatTime": m{}},
					`k:{"type":"Ready"}`:          m{"f:lastHeartbeatTime": m{}},
				}}},
			}},
		},
		"spec": m{"providerID": "aws:///us-east-1a/i-0123456789abcdef0"},
		"status": m{
			"capacity":    m{"cpu": "2", "ephemeral-storage": "83873772Ki", "memory": "7869956Ki", "pods": "29"},
			"allocatable": m{"cpu": "1930m", "ephemeral-storage": "76224326324", "memory": "7179780Ki", "pods": "29"},
			"conditions": []m{
				cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
			},
			"addresses":       []m{{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}},
			"daemonEndpoints": m{"kubeletEndpoint": m{"Port": 10250}},
			"nodeInfo": m{
				"machineID": "ec2a1b2c3d4e5f60718293a4b5c6d7e8", "systemUUID": "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8",
				"bootID": "5f0e6a3c-2b1d-4c8e-9f7a-6d5c4b3a2918", "kernelVersion": "5.10.226-214.880.amzn2.x86_64",
				"osImage": "Amazon Linux 2", "containerRuntimeVersion": "containerd://1.7.22",
				"kubeletVersion": k8sVersion + "-eks-94953ac", "kubeProxyVersion": k8sVersion + "-eks-94953ac",
				"operatingSystem": "linux", "architecture": "amd64",
			},
			"images": images,
		},
	}
}

func (g *Generator) endpointsGet(at time.Time) event {
	uri := "/api/v1/namespaces/default/endpoints/kubernetes"
	ev := newEvent(g.uuid(), at, g.latency(1, 2), "Metadata", "get", uri, kcm, []string{g.cluster.controlPlane}, uaFor("kube-apiserver"))
	ev.ObjectRef = &objectRef{Resource: "endpoints", Namespace: "default", Name: "kubernetes", APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole "system:kube-controller-manager" to User "system:kube-controller-manager"`)
	return ev
}

func (g *Generator) endpointsUpdate(at time.Time) event {
	uri := "/api/v1/namespaces/kube-system/endpoints/kube-dns"
	u := serviceAccount("kube-system", "endpoint-controller", "8b1f3c52-7e0a-4d3b-9a61-2f4c5d6e7a80")
	ev := newEvent(g.uuid(), at, g.latency(2, 6), "RequestResponse", "update", uri, u, []string{g.cluster.controlPlane}, uaFor("kube-controller-manager")+"/system:serviceaccount:kube-system:endpoint-controller")
	ev.ObjectRef = &objectRef{Resource: "endpoints", Namespace: "kube-system", Name: "kube-dns", APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	addrs := []m{}
	for i, ip := range g.cluster.nodeIPs[:2] {
		addrs = append(addrs, m{"ip": ip, "nodeName": g.cluster.nodes[i], "targetRef": m{"kind": "Pod", "namespace": "kube-system", "name": fmt.Sprintf("coredns-5b8cc885bc-%05x", i*7919), "uid": uuidFrom(uint64(i)+9, 0x1)}})
	}
	obj := m{
		"kind": "Endpoints", "apiVersion": "v1",
		"metadata": m{
			"name": "kube-dns", "namespace": "kube-system", "resourceVersion": fmt.Sprint(4_000_000 + g.n*7),
			"labels": m{"eks.amazonaws.com/component": "kube-dns", "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
			"managedFields": []m{{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": at.UTC().Format(time.RFC3339), "fieldsType": "FieldsV1",
				"fieldsV1": m{"f:metadata": m{"f:labels": m{".": m{}, "f:eks.amazonaws.com/component": m{}, "f:k8s-app": m{}}}, "f:subsets": m{}}}},
		},
		"subsets": []m{{"addresses": addrs, "ports": []m{{"name": "dns-tcp", "port": 53, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "metrics", "port": 9153, "protocol": "TCP"}}}},
	}
	ev.RequestObject = obj
	ev.ResponseObject = obj
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "system:controller:endpoint-controller" of ClusterRole "system:controller:endpoint-controller" to ServiceAccount "endpoint-controller/kube-system"`)
	return ev
}

func (g *Generator) corednsWatch(at time.Time) event {
	res := pick(g.rng, []string{"endpointslices", "services", "namespaces"})
	group, prefix := "discovery.k8s.io", "/apis/discovery.k8s.io/v1/"
	if res != "endpointslices" {
		group, prefix = "", "/api/v1/"
	}
	uri := fmt.Sprintf("%s%s?allowWatchBookmarks=true&resourceVersion=%d&timeout=%dm%ds&timeoutSeconds=%d&watch=true",
		prefix, res, 4_000_000+g.n*7, 5+g.rng.IntN(4), g.rng.IntN(60), 300+g.rng.IntN(240))
	u := serviceAccount("kube-system", "coredns", "1c7d5e8f-3a2b-4c6d-8e9f-0a1b2c3d4e5f")
	ev := newEvent(g.uuid(), at, g.latency(300_000, 200_000), "Metadata", "watch", uri, u, []string{g.cluster.nodeIPs[0]}, "coredns/v1.11.1 (linux/amd64) kubernetes/$Format")
	ev.ObjectRef = &objectRef{Resource: res, APIGroup: group, APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "eks:coredns" of ClusterRole "system:coredns" to ServiceAccount "coredns/kube-system"`)
	return ev
}

func (g *Generator) awsNodeGet(at time.Time) event {
	i := g.rng.IntN(len(g.cluster.nodes))
	node := g.cluster.nodes[i]
	u := serviceAccount("kube-system", "aws-node", "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7")
	ev := newEvent(g.uuid(), at, g.latency(1, 4), "Metadata", "get", "/api/v1/nodes/"+node, u, []string{g.cluster.nodeIPs[i]}, "aws-node/v1.18.3 (linux/amd64) kubernetes/$Format")
	ev.ObjectRef = &objectRef{Resource: "nodes", Name: node, APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "aws-node" of ClusterRole "aws-node" to ServiceAccount "aws-node/kube-system"`)
	return ev
}

func (g *Generator) certControllerList(at time.Time) event {
	u := user{Username: "eks:certificate-controller", Groups: []string{"system:authenticated"}}
	uri := "/apis/certificates.k8s.io/v1/certificatesigningrequests?limit=500&resourceVersion=0"
	ev := newEvent(g.uuid(), at, g.latency(1, 5), "Metadata", "list", uri, u, []string{g.cluster.controlPlane}, "eks-certificates-controller/v0.0.0 (linux/amd64) kubernetes/$Format")
	ev.ObjectRef = &objectRef{Resource: "certificatesigningrequests", APIGroup: "certificates.k8s.io", APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "eks:certificate-controller" of ClusterRole "eks:certificate-controller" to User "eks:certificate-controller"`)
	return ev
}

func (g *Generator) kubeProxyWatch(at time.Time) event {
	i := g.rng.IntN(len(g.cluster.nodes))
	res := pick(g.rng, []string{"endpointslices", "services"})
	group, prefix := "discovery.k8s.io", "/apis/discovery.k8s.io/v1/"
	if res == "services" {
		group, prefix = "", "/api/v1/"
	}
	uri := fmt.Sprintf("%s%s?allowWatchBookmarks=true&labelSelector=%%21service.kubernetes.io%%2Fheadless%%2C%%21service.kubernetes.io%%2Fservice-proxy-name&resourceVersion=%d&timeout=%dm%ds&timeoutSeconds=%d&watch=true",
		prefix, res, 4_000_000+g.n*7, 5+g.rng.IntN(4), g.rng.IntN(60), 300+g.rng.IntN(240))
	u := serviceAccount("kube-system", "kube-proxy", "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d")
	ev := newEvent(g.uuid(), at, g.latency(300_000, 200_000), "Metadata", "watch", uri, u, []string{g.cluster.nodeIPs[i]}, uaFor("kube-proxy"))
	ev.ObjectRef = &objectRef{Resource: res, APIGroup: group, APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed(`RBAC: allowed by ClusterRoleBinding "eks:kube-proxy" of ClusterRole "system:node-proxier" to ServiceAccount "kube-proxy/kube-system"`)
	return ev
}

func (g *Generator) podGet(at time.Time) event {
	i := g.rng.IntN(len(g.cluster.nodes))
	node := g.cluster.nodes[i]
	pod := fmt.Sprintf("aws-node-%05x", (i+3)*104729%0xfffff)
	u := nodeUser(node)
	ev := newEvent(g.uuid(), at, g.latency(1, 3), "Request", "get", "/api/v1/namespaces/kube-system/pods/"+pod, u, []string{g.cluster.nodeIPs[i]}, uaFor("kubelet"))
	ev.ObjectRef = &objectRef{Resource: "pods", Namespace: "kube-system", Name: pod, APIVersion: "v1"}
	ev.ResponseStatus = ok(200)
	ev.Annotations = allowed("")
	return ev
}
