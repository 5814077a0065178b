package rules

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
)

const evalRules = `rules:
  - id: reads-body
    title: Reads the body
    severity: low
    match: verb == "create" && request_object.spec.replicas > 1.0
    threshold: {count: 1, window: 1m}
  - id: excludes-with-body
    title: Excludes on the body
    severity: low
    match: verb == "create"
    exclude: request_object.metadata.name == "ok"
    threshold: {count: 1, window: 1m}
  - id: escalates-on-body
    title: Escalates on the body
    severity: low
    match: verb == "create"
    threshold: {count: 1, window: 1m}
    escalate:
      - {severity: medium, when: 'code == 201'}
      - {severity: high, count: 5}
      - {severity: critical, when: 'request_object.spec.replicas > 1.0'}
  - id: plain
    title: Plain
    severity: low
    match: verb == "create"
    threshold: {count: 1, window: 1m}
`

// TestMatchEvalErrors checks that a runtime error (a missing key in the
// request body) makes only the rule that met it fail, and is counted.
func TestMatchEvalErrors(t *testing.T) {
	tests := []struct {
		name       string
		verb       string
		body       string
		want       map[string][]int
		wantErrors int64
		// wantDecodes is how often request_object was decoded.
		wantDecodes int
	}{
		{
			name: "body has the keys",
			verb: "create", body: `{"metadata":{"name":"x"},"spec":{"replicas":3}}`,
			// plain follows escalates-on-body: its empty marks show the
			// reused slice is reset per rule.
			want: map[string][]int{
				"reads-body": {}, "excludes-with-body": {}, "escalates-on-body": {0, 2}, "plain": {},
			},
			wantDecodes: 1,
		},
		{
			name: "exclude is true",
			verb: "create", body: `{"metadata":{"name":"ok"},"spec":{"replicas":1}}`,
			want:        map[string][]int{"escalates-on-body": {0}, "plain": {}},
			wantDecodes: 1,
		},
		{
			name: "body lacks the keys",
			verb: "create", body: `{"kind":"Pod"}`,
			// reads-body and excludes-with-body fail; the escalation's
			// error leaves the rule matching without the mark.
			want:        map[string][]int{"escalates-on-body": {0}, "plain": {}},
			wantErrors:  3,
			wantDecodes: 1,
		},
		{
			name:       "no body",
			verb:       "create",
			want:       map[string][]int{"escalates-on-body": {0}, "plain": {}},
			wantErrors: 3,
		},
		{
			name: "invalid body JSON",
			verb: "create", body: `{"spec":`,
			want:        map[string][]int{"escalates-on-body": {0}, "plain": {}},
			wantErrors:  3,
			wantDecodes: 1,
		},
		{
			name: "short-circuit never decodes",
			verb: "get", body: `{"spec":`,
			want: map[string][]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load("eval.yaml", []byte(evalRules))
			if err != nil {
				t.Fatal(err)
			}
			ev := audit.Event{Verb: tt.verb, ResponseCode: 201, RequestObject: json.RawMessage(tt.body)}
			a := newActivation()
			got := map[string][]int{}
			s.match(a, &ev, "c", func(r *Rule, marks []int) { got[r.ID] = append([]int{}, marks...) })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
			if s.EvalErrors() != tt.wantErrors || a.decodes != tt.wantDecodes {
				t.Errorf("EvalErrors() = %d, decodes = %d; want %d, %d", s.EvalErrors(), a.decodes, tt.wantErrors, tt.wantDecodes)
			}
		})
	}
}

// TestMatchConcurrent runs Match from several goroutines; with -race it
// checks that pooled activations are not shared.
func TestMatchConcurrent(t *testing.T) {
	s := mustDefault(t)
	fxs := readFixtures(t, fixtureFiles...)
	evs := make([]audit.Event, len(fxs))
	for i, fx := range fxs {
		ev, err := fx.event()
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		evs[i] = ev
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(fxs))
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range evs {
				got := matches(s, &evs[i], "prod")
				if diff := cmp.Diff(fxs[i].Want, got); diff != "" {
					errs <- fxs[i].Name + ":\n" + diff
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Match differs (-want +got): %s", e)
	}
}

func TestNeedsRequestObject(t *testing.T) {
	if !mustDefault(t).NeedsRequestObject() {
		t.Errorf("default rules: NeedsRequestObject() = false, want true (anonymous-access-granted reads it)")
	}
	if loadOne(t, `anonymous && "request_object" != ""`).NeedsRequestObject() {
		t.Errorf("a rule that only mentions the word in a string: NeedsRequestObject() = true, want false")
	}
}
