package audit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// whole is an anonymous request as kube-apiserver writes it, in its field
// order; the salvage cases cut and pad it.
const whole = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/secrets?PAD","verb":"list","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["192.0.2.10","203.0.113.9"],"userAgent":"UA","objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","reason":"Forbidden","code":403},"requestReceivedTimestamp":"2026-11-28T10:15:42.731234Z","stageTimestamp":"2026-11-28T10:15:42.732011Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}`

// cutAfter returns line cut just after the first occurrence of marker,
// plus suffix.
func cutAfter(line, marker, suffix string) []byte {
	i := strings.Index(line, marker)
	if i < 0 {
		panic(marker)
	}
	return []byte(line[:i+len(marker)] + suffix)
}

func TestSalvage(t *testing.T) {
	pad := strings.Repeat("A", 300<<10)
	paddedURI := strings.Replace(whole, "PAD", pad, 1)
	paddedUA := strings.Replace(whole, `"UA"`, `"`+pad+`"`, 1)
	paddedID := strings.Replace(whole, "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", pad, 1)
	anon := User{Username: Anonymous, Groups: []string{Unauthenticated}}
	tests := []struct {
		name   string
		line   []byte
		ok     bool
		want   Event
		prefix map[string]int // field → length of the kept prefix
	}{
		{
			name:   "URI padded, cut and marked by CloudWatch's agent",
			line:   cutAfter(paddedURI, "secrets?"+pad[:1000], "[Truncated...]"),
			ok:     true,
			want:   Event{AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete},
			prefix: map[string]int{"requestURI": len("/api/v1/namespaces/kube-system/secrets?") + 1000},
		},
		{
			name:   "Audit-ID padded and cut without a marker",
			line:   cutAfter(paddedID, `"auditID":"`+pad[:5000], ""),
			ok:     true,
			prefix: map[string]int{"auditID": partialPrefix},
		},
		{
			// user and sourceIPs are whole: the connection's address
			// survives, and so does the identity.
			name: "user agent padded and cut",
			line: cutAfter(paddedUA, `"userAgent":"`+pad[:200], ""),
			ok:   true,
			want: Event{
				AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?PAD", Verb: "list", User: anon,
				SourceIPs: []string{"192.0.2.10", "203.0.113.9"}, UserAgent: pad[:200],
			},
		},
		{
			// A cut list would make the client's X-Forwarded-For entry
			// the last one, the address blamed: it is dropped whole.
			name: "cut inside sourceIPs",
			line: cutAfter(whole, `"sourceIPs":["192.0.2.10"`, ""),
			ok:   true,
			want: Event{
				AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?PAD", Verb: "list", User: anon,
			},
		},
		{
			name: "cut inside user's groups",
			line: cutAfter(whole, `"groups":["system:unauth`, ""),
			ok:   true,
			want: Event{
				AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?PAD", Verb: "list",
			},
		},
		{
			name: "an escape cut in the middle is dropped",
			line: cutAfter(strings.Replace(whole, "?PAD", `?q=\u00e9\u00`, 1), `?q=\u00e9\u00`, ""),
			ok:   true,
			want: Event{
				AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?q=é",
			},
		},
		{
			name: "damaged in the middle: whole members before the damage",
			line: []byte(strings.Replace(whole, `"verb":"list"`, `"verb":list`, 1)),
			ok:   true,
			want: Event{
				AuditID: "5f0c0031-7d1e-4b2a-9c3d-4e5f6a7b8c9d", Stage: StageResponseComplete,
				RequestURI: "/api/v1/namespaces/kube-system/secrets?PAD",
			},
		},
		{
			name: "cut in kind: no proof it is an audit event",
			line: []byte(`{"kind":"Ev`),
			ok:   false,
		},
		{
			name: "another program's JSON, cut",
			line: []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"`),
			ok:   false,
		},
		{
			name: "klog text",
			line: []byte(`E1128 10:15:42.731234      11 authentication.go:73] "Unable to authenticate the request" err="system:anonymous"`),
			ok:   false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Salvage(tt.line)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			for field, n := range tt.prefix {
				var v *string
				switch field {
				case "requestURI":
					v = &got.RequestURI
				case "auditID":
					v = &got.AuditID
				}
				if len(*v) != n || !strings.HasPrefix(*v, "/api/v1/namespaces/kube-system/secrets?"+pad[:10]) && !strings.HasPrefix(*v, pad[:10]) {
					t.Errorf("%s: kept %d bytes (%.40q), want the first %d", field, len(*v), *v, n)
				}
				*v = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Salvage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSalvageWholeTooLarge: a valid line that is only too long for Parse's
// bound is recovered whole.
func TestSalvageWholeTooLarge(t *testing.T) {
	line := []byte(strings.Replace(whole, "PAD", strings.Repeat("B", DefaultMaxSize), 1))
	if _, err := Parse(line, 0); err == nil {
		t.Fatal("Parse accepted a line over its bound")
	}
	got, ok := Salvage(line)
	want, err := Parse(line, 2*DefaultMaxSize)
	if err != nil || !ok {
		t.Fatalf("ok %v, Parse error %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Salvage of a whole line (-Parse +Salvage):\n%s", diff)
	}
}

// FuzzSalvage: any cut of a real line salvages without panicking, and never
// reports an address that is not the line's last sourceIPs entry.
func FuzzSalvage(f *testing.F) {
	f.Add(len(whole) / 2)
	f.Add(300)
	f.Fuzz(func(t *testing.T, n int) {
		if n < 0 || n > len(whole) {
			return
		}
		ev, _ := Salvage([]byte(whole[:n]))
		if ip := ev.SrcIP(); ip != "" && ip != "203.0.113.9" {
			t.Fatalf("cut at %d: src_ip %q", n, ip)
		}
		if u := ev.User.Username; u != "" && u != Anonymous {
			t.Fatalf("cut at %d: user %q", n, u)
		}
		_ = bytes.MinRead
	})
}
