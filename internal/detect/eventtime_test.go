package detect_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// req is one anonymous request of an event-time test, written as the API
// server writes it.
type req struct {
	at       string // HH:MM:SS on 2026-11-28
	src      string
	verb     string
	uri      string
	resource string
	code     int
}

func (r req) line(id int) []byte {
	ts := "2026-11-28T" + r.at + ".000000Z"
	status, reason, decision := "Failure", "Forbidden", "forbid"
	if r.code < 300 {
		status, reason, decision = "Success", "", "allow"
	}
	obj := ""
	if r.resource != "" {
		obj = fmt.Sprintf(`"objectRef":{"resource":%q,"namespace":"kube-system","apiVersion":"v1"},`, r.resource)
	}
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-4000-8000-%012d","stage":"ResponseComplete","requestURI":%q,"verb":%q,"user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":[%q],"userAgent":"python-requests/2.32.3",%s"responseStatus":{"metadata":{},"code":%d,"status":%q,"reason":%q},"requestReceivedTimestamp":%q,"stageTimestamp":%q,"annotations":{"authorization.k8s.io/decision":%q,"authorization.k8s.io/reason":""}}`,
		id, r.uri, r.verb, r.src, obj, r.code, status, reason, ts, ts, decision)
}

// batchOf wraps reqs as one delivery of stream; ids continue from first.
func batchOf(stream string, first int, reqs ...req) *cwlogs.Batch {
	b := &cwlogs.Batch{MessageType: cwlogs.DataMessage, LogGroup: "/aws/eks/demo/cluster", LogStream: stream, Cluster: "demo"}
	for i, r := range reqs {
		b.Events = append(b.Events, cwlogs.LogEvent{ID: fmt.Sprint(first + i), Message: r.line(first + i)})
	}
	return b
}

// finding is what the event-time tests compare of a published finding.
type finding struct {
	Rule, Severity string
	Count          int64
	First          string // first_seen, HH:MM:SS
}

func findings(fs []*detect.Finding, rule ...string) []finding {
	var out []finding
	for _, f := range fs {
		if len(rule) > 0 && !strings.Contains(strings.Join(rule, " "), f.Rule) {
			continue
		}
		out = append(out, finding{f.Rule, f.Severity, f.Count, f.FirstSeen.Format("15:04:05")})
	}
	return out
}

// refused returns n refused anonymous GETs of distinct paths from src, a
// second apart from at.
func refused(at string, src string, n int) []req {
	t, _ := time.Parse("15:04:05", at)
	var out []req
	for i := range n {
		out = append(out, req{at: t.Add(time.Duration(i) * time.Second).Format("15:04:05"), src: src, verb: "get", uri: fmt.Sprintf("/probe/%s/%d", at, i), code: 403})
	}
	return out
}

// TestEventTimeRegressions holds one case per way event time used to lose
// a finding: each delivers its batches in order, one after the other, and
// lists the findings of the rules it names.
func TestEventTimeRegressions(t *testing.T) {
	secret := req{at: "01:00:00", src: "192.0.2.44", verb: "get", uri: "/api/v1/namespaces/kube-system/secrets/tls", resource: "secrets", code: 200}
	ordinary := req{at: "03:00:00", src: "192.0.2.44", verb: "get", uri: "/api/v1/namespaces/kube-system/pods/x", resource: "pods", code: 200}
	podList := func(at string, code int) req {
		return req{at: at, src: "203.0.113.7", verb: "list", uri: "/api/v1/pods", resource: "pods", code: code}
	}
	tests := []struct {
		name    string
		rules   []string
		batches [][]req
		want    []finding
	}{
		{
			// Case 1: three refused requests at 10:05 and three at 10:10,
			// the 10:10 delivery first. The 10:05 batch completes the
			// windows that end at 10:10.
			name:    "out-of-order deliveries complete a later window",
			rules:   []string{"unauthenticated-403-burst", "anonymous-enumeration"},
			batches: [][]req{refused("10:10:00", "198.51.100.5", 3), refused("10:05:00", "198.51.100.5", 3)},
			want: []finding{
				{"anonymous-enumeration", "medium", 6, "10:05:00"},
				{"unauthenticated-403-burst", "medium", 6, "10:05:00"},
			},
		},
		{
			name:    "in-order deliveries give the same",
			rules:   []string{"unauthenticated-403-burst", "anonymous-enumeration"},
			batches: [][]req{refused("10:05:00", "198.51.100.5", 3), refused("10:10:00", "198.51.100.5", 3)},
			want: []finding{
				{"anonymous-enumeration", "medium", 6, "10:05:00"},
				{"unauthenticated-403-burst", "medium", 6, "10:05:00"},
			},
		},
		{
			// Case 2: one delivery (or one replayed file) longer than the
			// window: the critical read at 01:00 is reported, not only the
			// high at 03:00.
			name:    "a batch longer than the window reports each period",
			rules:   []string{"anonymous-request-allowed"},
			batches: [][]req{{secret, ordinary}},
			want: []finding{
				{"anonymous-request-allowed", "critical", 1, "01:00:00"},
				{"anonymous-request-allowed", "high", 1, "03:00:00"},
			},
		},
		{
			name:    "the same requests one per delivery give the same",
			rules:   []string{"anonymous-request-allowed"},
			batches: [][]req{{ordinary}, {secret}},
			want: []finding{
				{"anonymous-request-allowed", "high", 1, "03:00:00"},
				{"anonymous-request-allowed", "critical", 1, "01:00:00"},
			},
		},
		{
			// Case 3: a severity rise delivered late (a pod list that
			// succeeded at 10:00, after a refused one at 10:30) must not
			// shorten the period's suppression: later highs in the same
			// 6h period stay quiet.
			name:  "a late severity rise keeps the period suppressed",
			rules: []string{"eks-pod-scan"},
			batches: [][]req{
				{podList("10:30:00", 403)},
				{podList("10:00:00", 200)},
				{podList("11:00:00", 200)},
				{podList("11:30:00", 403)},
			},
			want: []finding{
				{"eks-pod-scan", "medium", 1, "10:30:00"},
				{"eks-pod-scan", "high", 1, "10:00:00"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recorder{}
			d, _ := newDetector(t, pub)
			id := 1
			for i, reqs := range tc.batches {
				if _, err := d.Process(context.Background(), batchOf(fmt.Sprintf("stream-%d", i), id, reqs...)); err != nil {
					t.Fatal(err)
				}
				id += len(reqs)
			}
			if d := cmp.Diff(tc.want, findings(pub.got, tc.rules...)); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}
}

// gate is a Publisher that holds the first Publish of a finding of rule
// until released, so a test can run a second invocation while the first
// holds its claim.
type gate struct {
	recorder
	rule     string
	once     sync.Once
	holding  chan struct{} // closed when the first Publish is waiting
	released chan struct{}
}

func (g *gate) Publish(ctx context.Context, f *detect.Finding) error {
	first := false
	if f.Rule == g.rule {
		g.once.Do(func() { first = true })
	}
	if first {
		close(g.holding)
		<-g.released
	}
	return g.recorder.Publish(ctx, f)
}

// Case 4: stream A claims a medium pod scan and is still publishing it when
// stream B sees a pod list that succeeded. B's high must be sent, not
// counted as suppressed behind A's pending claim.
func TestPendingLowerClaimDoesNotSwallowHigher(t *testing.T) {
	pub := &gate{rule: "eks-pod-scan", holding: make(chan struct{}), released: make(chan struct{})}
	d, _ := newDetector(t, pub)
	ctx := context.Background()
	pod := func(at string, code int) req {
		return req{at: at, src: "203.0.113.7", verb: "list", uri: "/api/v1/pods", resource: "pods", code: code}
	}
	errA := make(chan error, 1)
	go func() {
		_, err := d.Process(ctx, batchOf("stream-a", 1, pod("10:00:00", 403)))
		errA <- err
	}()
	<-pub.holding
	res, err := d.Process(ctx, batchOf("stream-b", 2, pod("10:00:30", 200)))
	if err != nil {
		t.Fatal(err)
	}
	close(pub.released)
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	var sevs []string
	for _, f := range pub.got {
		if f.Rule == "eks-pod-scan" {
			sevs = append(sevs, f.Severity)
		}
	}
	if d := cmp.Diff([]string{"high", "medium"}, sevs); d != "" {
		t.Errorf("pod-scan findings (-want +got):\n%s\nstream B: %+v", d, res)
	}

	// Case 3 in this order of events: A's medium was marked sent after B's
	// high. The period must still count as having sent a high, so another
	// succeeded list in the same 6h period is not sent again.
	n := len(pub.got)
	if _, err := d.Process(ctx, batchOf("stream-c", 3, pod("10:45:00", 200))); err != nil {
		t.Fatal(err)
	}
	for _, f := range pub.got[n:] {
		if f.Rule == "eks-pod-scan" {
			t.Errorf("pod-scan %s sent again in the same period after a late lower MarkSent", f.Severity)
		}
	}
}
