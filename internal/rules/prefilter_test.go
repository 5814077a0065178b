package rules

import (
	"bytes"
	"os"
	"testing"
)

// TestPrefilterKeepsEveryMatch is the pre-filter's safety property: over
// every fixture and third-party event, a line that some default rule
// matches passes the pre-filter.
func TestPrefilterKeepsEveryMatch(t *testing.T) {
	s := mustDefault(t)
	lines := map[string][]byte{}
	for _, fx := range readFixtures(t, fixtureFiles...) {
		lines[fx.Name] = fx.Event
	}
	for _, pc := range readPanther(t) {
		lines["panther: "+pc.TestName] = pc.Log
	}
	falco, err := os.ReadFile("testdata/third_party/falco_test_trace_anonymous_creates_namespace_foo.json")
	if err != nil {
		t.Fatal(err)
	}
	lines["falco"] = falco
	var matched int
	for name, line := range lines {
		ev, err := parseEvent(line)
		if err != nil {
			continue
		}
		got := matches(s, &ev, "prod")
		if len(got) == 0 {
			continue
		}
		matched++
		if !s.Prefilter(line) {
			t.Errorf("%s: Prefilter rejects a line the rules match:\n%s", name, line)
		}
		// Stronger: each matching rule's own literals hold, so no rule
		// relies on another's.
		for id := range got {
			if !containsAny(line, s.Rule(id).RequiresAny) {
				t.Errorf("%s: rule %s matches but the line has none of %q", name, id, s.Rule(id).RequiresAny)
			}
		}
	}
	if matched < 30 {
		t.Errorf("only %d matching lines checked, want the fixtures' 30 or more", matched)
	}
}

// TestPrefilterRejectsSystemTraffic checks the pre-filter earns its keep:
// the bulk of an EKS audit log, authenticated system traffic, is not parsed.
func TestPrefilterRejectsSystemTraffic(t *testing.T) {
	s := mustDefault(t)
	var rejected int
	for _, fx := range readFixtures(t, "testdata/system_traffic.jsonl") {
		if fx.Prefilter == nil {
			t.Fatalf("%s: fixture states no prefilter result", fx.Name)
		}
		if got := s.Prefilter(fx.Event); got != *fx.Prefilter {
			t.Errorf("%s: Prefilter = %v, want %v", fx.Name, got, *fx.Prefilter)
		}
		if !*fx.Prefilter {
			rejected++
		}
	}
	if rejected < 10 {
		t.Errorf("%d system lines rejected, want at least 10", rejected)
	}
}

func TestPrefilterWithoutRequiresAny(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line string
		want bool
	}{
		{"literal absent", `rules:
  - {id: a, title: A, severity: low, requires_any: [system:anonymous], match: anonymous, threshold: {count: 1, window: 1m}}
`, `{"user":{"username":"admin"}}`, false},
		{"literal present", `rules:
  - {id: a, title: A, severity: low, requires_any: [system:anonymous], match: anonymous, threshold: {count: 1, window: 1m}}
`, `{"user":{"username":"system:anonymous"}}`, true},
		{"second rule's literal", `rules:
  - {id: a, title: A, severity: low, requires_any: [system:anonymous], match: anonymous, threshold: {count: 1, window: 1m}}
  - {id: b, title: B, severity: low, requires_any: [secrets, configmaps], match: anonymous, threshold: {count: 1, window: 1m}}
`, `{"objectRef":{"resource":"configmaps"}}`, true},
		{"a rule without requires_any parses every line", `rules:
  - {id: a, title: A, severity: low, requires_any: [system:anonymous], match: anonymous, threshold: {count: 1, window: 1m}}
  - {id: b, title: B, severity: low, match: 'code == 500', threshold: {count: 1, window: 1m}}
`, `{"user":{"username":"admin"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load("p.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Prefilter([]byte(tt.line)); got != tt.want {
				t.Errorf("Prefilter(%s) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

func containsAny(line []byte, lits []string) bool {
	for _, l := range lits {
		if bytes.Contains(line, []byte(l)) {
			return true
		}
	}
	return false
}
