package synth_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLinesDeterministic(t *testing.T) {
	a := synth.Lines(300, 0.3, 11, t0, time.Second)
	b := synth.Lines(300, 0.3, 11, t0, time.Second)
	if !slices.EqualFunc(a, b, bytes.Equal) {
		t.Error("Lines() with the same seed differ")
	}
	c := synth.Lines(300, 0.3, 12, t0, time.Second)
	if slices.EqualFunc(a, c, bytes.Equal) {
		t.Error("Lines() with different seeds are equal")
	}
}

// TestLinesParse checks that every line is an audit event Parse accepts,
// received at its slot, and that the mix is what was asked for.
func TestLinesParse(t *testing.T) {
	const n = 1500
	for _, anon := range []float64{0, 0.05, 0.5, 1} {
		t.Run(fmt.Sprint(anon), func(t *testing.T) {
			lines := synth.Lines(n, anon, 3, t0, 10*time.Millisecond)
			var anonymous, received, size int
			ids := map[string]bool{}
			for i, l := range lines {
				e, err := audit.Parse(l, 0)
				if err != nil {
					t.Fatalf("line %d: Parse() error = %v\n%s", i, err, l)
				}
				size += len(l)
				if want := t0.Add(time.Duration(i) * 10 * time.Millisecond); !e.RequestReceived.Equal(want) {
					t.Errorf("line %d: RequestReceived = %v, want %v", i, e.RequestReceived, want)
				}
				if e.StageTimestamp.Before(e.RequestReceived) {
					t.Errorf("line %d: stage %v before received %v", i, e.StageTimestamp, e.RequestReceived)
				}
				if ids[e.AuditID] {
					t.Errorf("line %d: auditID %s repeats", i, e.AuditID)
				}
				ids[e.AuditID] = true
				if e.SrcIP() == "" {
					t.Errorf("line %d: no source address in %v", i, e.SourceIPs)
				}
				switch e.Stage {
				case audit.StageRequestReceived:
					received++
					if e.ResponseCode != 0 || e.Decision != "" {
						t.Errorf("line %d: RequestReceived with code %d, decision %q", i, e.ResponseCode, e.Decision)
					}
				case audit.StageResponseComplete:
					if e.ResponseCode == 0 || e.Decision == "" {
						t.Errorf("line %d: ResponseComplete without code or decision", i)
					}
				default:
					t.Errorf("line %d: stage %q", i, e.Stage)
				}
				if e.IsAnonymous() {
					anonymous++
					checkAnonymous(t, i, e)
				}
			}
			if got := float64(anonymous) / n; got < anon-0.03 || got > anon+0.03 {
				t.Errorf("anonymous fraction = %.3f, want %.2f ± 0.03", got, anon)
			}
			if got := float64(received) / n; got < 0.003 || got > 0.02 {
				t.Errorf("RequestReceived fraction = %.4f, want about 0.01", got)
			}
			if avg := size / n; anon == 0.05 && (avg < 1500 || avg > 3000) {
				t.Errorf("average line = %d bytes, want 1500 to 3000", avg)
			}
		})
	}
}

func checkAnonymous(t *testing.T, i int, e audit.Event) {
	t.Helper()
	if e.Stage != audit.StageResponseComplete {
		return
	}
	switch p := e.Path(); {
	case e.IsHealthPath() || p == "/version":
		if e.ResponseCode != 200 || e.Decision != "allow" {
			t.Errorf("line %d: %s answered %d %q, want 200 allow", i, p, e.ResponseCode, e.Decision)
		}
	default:
		if e.ResponseCode != 403 || e.Decision != "forbid" || e.ResponseReason != "Forbidden" {
			t.Errorf("line %d: %s answered %d %q %q, want 403 forbid Forbidden", i, p, e.ResponseCode, e.Decision, e.ResponseReason)
		}
	}
	if e.UserAgent == "kube-probe/1.29+" {
		if !e.IsHealthPath() {
			t.Errorf("line %d: kube-probe asked for %s", i, e.Path())
		}
		return
	}
	if !slices.Contains(synth.DefaultScannerIPs, e.SrcIP()) {
		t.Errorf("line %d: scanner address %s is not one of DefaultScannerIPs", i, e.SrcIP())
	}
}

func TestScannerIPs(t *testing.T) {
	g := synth.New(5, t0, time.Second, synth.Mix{Anonymous: 1, ScannerIPs: []string{"100.64.1.1"}})
	for i := range 200 {
		e, err := audit.Parse(g.Next(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if e.UserAgent != "kube-probe/1.29+" && e.SrcIP() != "100.64.1.1" {
			t.Fatalf("line %d: source %s, want 100.64.1.1", i, e.SrcIP())
		}
	}
}

// TestBusyCluster checks that a busy cluster's traffic (many nodes and
// applications) parses, comes from as many users and addresses as it
// should, and never repeats a line; and that the quiet default's lines are
// not changed by the options it does not use.
func TestBusyCluster(t *testing.T) {
	const n = 20000
	g := synth.New(9, t0, 10*time.Millisecond, synth.Mix{Anonymous: 0.001, Nodes: 300, Workloads: 3000})
	users, sources, lines := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range n {
		l := g.Next()
		e, err := audit.Parse(l, 0)
		if err != nil {
			t.Fatalf("line %d: Parse() error = %v\n%s", i, err, l)
		}
		if e.Stage == audit.StageResponseComplete && (e.ResponseCode == 0 || e.Decision == "") {
			t.Errorf("line %d: ResponseComplete without code or decision", i)
		}
		users[e.User.Username] = true
		sources[e.SrcIP()] = true
		lines[string(l)] = true
	}
	if len(users) < 1500 || len(sources) < 1500 {
		t.Errorf("%d users and %d source addresses in %d lines, want at least 1,500 of each", len(users), len(sources), n)
	}
	if len(lines) != n {
		t.Errorf("%d distinct lines of %d", len(lines), n)
	}
	quiet := synth.Lines(50, 0.05, 3, t0, time.Second)
	explicit := synth.New(3, t0, time.Second, synth.Mix{Anonymous: 0.05, RequestReceived: 0.01, Nodes: 4})
	for i, l := range quiet {
		if got := explicit.Next(); !bytes.Equal(got, l) {
			t.Fatalf("line %d with Nodes: 4 differs from the default:\n%s\n%s", i, got, l)
		}
	}
}

func TestProbeLine(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		probe synth.Probe
		want  audit.Event
	}{
		{
			name: "secrets, forbidden, spoofed forward",
			probe: synth.Probe{
				At: at, SrcIP: "203.0.113.9", ForwardedFor: []string{"127.0.0.1"},
				UserAgent: "curl/8.4.0", URI: "/api/v1/namespaces/kube-system/secrets?limit=1", AuditID: "id-1",
			},
			want: audit.Event{
				AuditID: "id-1", Stage: audit.StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?limit=1", Verb: "list",
				User:      audit.User{Username: audit.Anonymous, Groups: []string{audit.Unauthenticated}},
				SourceIPs: []string{"127.0.0.1", "203.0.113.9"}, UserAgent: "curl/8.4.0",
				ObjectRef:    audit.ObjectRef{Resource: "secrets", Namespace: "kube-system"},
				ResponseCode: 403, ResponseReason: "Forbidden", Decision: "forbid",
				RequestReceived: at, StageTimestamp: at.Add(time.Millisecond),
			},
		},
		{
			name:  "explicit reason",
			probe: synth.Probe{At: at, SrcIP: "192.0.2.1", URI: "/api/v1/pods", Code: 200, Reason: "RBAC: custom", AuditID: "id-4"},
			want: audit.Event{
				AuditID: "id-4", Stage: audit.StageResponseComplete, RequestURI: "/api/v1/pods", Verb: "list",
				User:      audit.User{Username: audit.Anonymous, Groups: []string{audit.Unauthenticated}},
				SourceIPs: []string{"192.0.2.1"}, ObjectRef: audit.ObjectRef{Resource: "pods"},
				ResponseCode: 200, Decision: "allow", DecisionReason: "RBAC: custom",
				RequestReceived: at, StageTimestamp: at.Add(time.Millisecond),
			},
		},
		{
			name:  "version, allowed",
			probe: synth.Probe{At: at, SrcIP: "2001:db8::1", UserAgent: "Mozilla/5.0 zgrab/0.x", URI: "/version", AuditID: "id-2"},
			want: audit.Event{
				AuditID: "id-2", Stage: audit.StageResponseComplete, RequestURI: "/version", Verb: "get",
				User:      audit.User{Username: audit.Anonymous, Groups: []string{audit.Unauthenticated}},
				SourceIPs: []string{"2001:db8::1"}, UserAgent: "Mozilla/5.0 zgrab/0.x",
				ResponseCode: 200, Decision: "allow",
				DecisionReason:  `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`,
				RequestReceived: at, StageTimestamp: at.Add(time.Millisecond),
			},
		},
		{
			name:  "named object in an API group, allowed by a misconfigured binding",
			probe: synth.Probe{At: at, SrcIP: "192.0.2.1", Verb: "delete", URI: "/apis/apps/v1/namespaces/prod/deployments/web", Code: 200, AuditID: "id-3"},
			want: audit.Event{
				AuditID: "id-3", Stage: audit.StageResponseComplete, RequestURI: "/apis/apps/v1/namespaces/prod/deployments/web", Verb: "delete",
				User:         audit.User{Username: audit.Anonymous, Groups: []string{audit.Unauthenticated}},
				SourceIPs:    []string{"192.0.2.1"},
				ObjectRef:    audit.ObjectRef{Resource: "deployments", Namespace: "prod", Name: "web", APIGroup: "apps"},
				ResponseCode: 200, Decision: "allow",
				DecisionReason:  `RBAC: allowed by ClusterRoleBinding "anonymous-admin" of ClusterRole "cluster-admin" to User "system:anonymous"`,
				RequestReceived: at, StageTimestamp: at.Add(time.Millisecond),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.Parse(tt.probe.Line(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(Line()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeDefaultAuditID(t *testing.T) {
	p := synth.Probe{At: t0, SrcIP: "203.0.113.7", URI: "/"}
	a, _ := audit.Parse(p.Line(), 0)
	b, _ := audit.Parse(p.Line(), 0)
	p.URI = "/api"
	c, _ := audit.Parse(p.Line(), 0)
	if a.AuditID == "" || a.AuditID != b.AuditID || a.AuditID == c.AuditID {
		t.Errorf("auditIDs %q, %q, %q: want the same for the same probe and different otherwise", a.AuditID, b.AuditID, c.AuditID)
	}
}

func TestBatch(t *testing.T) {
	lines := synth.Lines(3, 0, 1, t0, 1500*time.Millisecond)
	lines = append(lines, []byte("not audit"))
	got := synth.Batch(lines, "/aws/eks/prod/cluster", "stream-1", 98)
	want := cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		Owner:       "111122223333",
		LogGroup:    "/aws/eks/prod/cluster",
		LogStream:   "stream-1",
		Cluster:     "prod",
	}
	for i, l := range lines {
		var ms int64
		if i < 3 {
			e, err := audit.Parse(l, 0)
			if err != nil {
				t.Fatal(err)
			}
			ms = e.StageTimestamp.UnixMilli()
		}
		want.Events = append(want.Events, cwlogs.LogEvent{
			ID:        fmt.Sprintf("%020d%036d", ms, 98+i),
			Timestamp: ms,
			Message:   l,
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Batch() mismatch (-want +got):\n%s", diff)
	}
	for _, e := range got.Events {
		if len(e.ID) != 56 {
			t.Errorf("id %q has %d digits, want 56", e.ID, len(e.ID))
		}
	}
}

// TestRoundTrip checks the three packages together: synthetic lines through
// an envelope and back parse to the same events.
func TestRoundTrip(t *testing.T) {
	lines := synth.Lines(100, 0.2, 8, t0, time.Second)
	env, err := cwlogs.Encode(synth.Batch(lines, "/aws/eks/rt/cluster", "s", 1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cwlogs.DecodeEvent(env, cwlogs.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range b.Events {
		got, err := audit.Parse(ev.Message, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := audit.Parse(lines[i], 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("event %d mismatch (-want +got):\n%s", i, diff)
		}
	}
}
