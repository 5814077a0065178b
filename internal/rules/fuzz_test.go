package rules

import (
	"testing"
)

// FuzzLoad feeds arbitrary rule files to Load. A file either fails with an
// error naming it, or loads into rules that Match and Prefilter can run
// without panicking.
func FuzzLoad(f *testing.F) {
	// Not default.yaml: minimizing inputs that large stalls fuzzing.
	f.Add([]byte("rules:\n  - {id: a, title: A, severity: low, match: anonymous, threshold: {count: 1, window: 1m}}\n"))
	f.Add([]byte("rules:\n  - {id: a, title: A, severity: low, match: 'request_object.x.exists(y, y == 1)', threshold: {distinct: {path: 3}, window: 2m}, escalate: [{severity: high, when: 'code > 0'}]}\n"))
	f.Add([]byte("rules: [{id: a}]"))
	f.Add([]byte("{}"))
	ev := sampleEvent()
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Load("fuzz.yaml", src)
		if err != nil {
			if msg := err.Error(); len(msg) < len("fuzz.yaml: ") || msg[:len("fuzz.yaml: ")] != "fuzz.yaml: " {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		s.Prefilter(src)
		s.Match(&ev, "c", func(r *Rule, marks []int) {
			for _, m := range marks {
				if m < 0 || m >= len(r.Escalate) || r.Escalate[m].When == "" {
					t.Fatalf("rule %s: mark %d is not a when escalation", r.ID, m)
				}
			}
		})
	})
}
