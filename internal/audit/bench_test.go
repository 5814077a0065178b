package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/synth"
)

// benchLines are synthetic EKS lines, 5% anonymous, as the detector sees
// them on a quiet cluster.
func benchLines(b *testing.B) ([][]byte, int64) {
	b.Helper()
	lines := synth.Lines(2000, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	var total int64
	for _, l := range lines {
		total += int64(len(l))
	}
	return lines, total / int64(len(lines))
}

func BenchmarkParse(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := Parse(lines[i%len(lines)], 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseLeanStruct is Parse without its fast path: encoding/json
// into the lean struct.
func BenchmarkParseLeanStruct(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := parse(lines[i%len(lines)], 0, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// naiveEvent models all of audit.k8s.io/v1 Event the straightforward way,
// with the objects and annotations as maps: the baseline Parse is measured
// against.
type naiveEvent struct {
	Kind             string            `json:"kind"`
	APIVersion       string            `json:"apiVersion"`
	Level            string            `json:"level"`
	AuditID          string            `json:"auditID"`
	Stage            string            `json:"stage"`
	RequestURI       string            `json:"requestURI"`
	Verb             string            `json:"verb"`
	User             naiveUser         `json:"user"`
	ImpersonatedUser *naiveUser        `json:"impersonatedUser"`
	SourceIPs        []string          `json:"sourceIPs"`
	UserAgent        string            `json:"userAgent"`
	ObjectRef        *naiveObjectRef   `json:"objectRef"`
	ResponseStatus   *naiveStatus      `json:"responseStatus"`
	RequestObject    map[string]any    `json:"requestObject"`
	ResponseObject   map[string]any    `json:"responseObject"`
	RequestReceived  time.Time         `json:"requestReceivedTimestamp"`
	StageTimestamp   time.Time         `json:"stageTimestamp"`
	Annotations      map[string]string `json:"annotations"`
}

type naiveUser struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

type naiveObjectRef struct {
	Resource        string `json:"resource"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	APIGroup        string `json:"apiGroup"`
	APIVersion      string `json:"apiVersion"`
	ResourceVersion string `json:"resourceVersion"`
	Subresource     string `json:"subresource"`
}

type naiveStatus struct {
	Metadata map[string]any `json:"metadata"`
	Status   string         `json:"status"`
	Message  string         `json:"message"`
	Reason   string         `json:"reason"`
	Details  *struct {
		Name   string `json:"name"`
		Group  string `json:"group"`
		Kind   string `json:"kind"`
		UID    string `json:"uid"`
		Causes []struct {
			Type    string `json:"reason"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"causes"`
		RetryAfterSeconds int32 `json:"retryAfterSeconds"`
	} `json:"details"`
	Code int32 `json:"code"`
}

func BenchmarkParseNaive(b *testing.B) {
	lines, avg := benchLines(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var e naiveEvent
		if err := json.Unmarshal(lines[i%len(lines)], &e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
