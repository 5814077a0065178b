package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// ruleFile returns a rule file with one valid rule "r1", with the keys in
// set replaced (or added) and those set to "-" removed.
func ruleFile(set map[string]string) string {
	keys := []string{"id", "title", "severity", "match", "threshold"}
	vals := map[string]string{
		"id":        "r1",
		"title":     "A rule",
		"severity":  "medium",
		"match":     "anonymous",
		"threshold": "{count: 1, window: 1h}",
	}
	for k, v := range set {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	slices.Sort(keys[5:]) // added keys in a stable order
	var b strings.Builder
	b.WriteString("rules:\n")
	for i, k := range keys {
		if vals[k] == "-" {
			continue
		}
		if i == 0 || b.Len() == len("rules:\n") {
			b.WriteString("  - ")
		} else {
			b.WriteString("    ")
		}
		b.WriteString(k + ": " + vals[k] + "\n")
	}
	return b.String()
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the error contains this
	}{
		{"undeclared variable", ruleFile(map[string]string{"match": `verbb == "list"`}),
			`rules.yaml: rule "r1": match: ERROR: <input>:1:1: undeclared reference to 'verbb'`},
		{"syntax error", ruleFile(map[string]string{"match": `"anonymous &&"`}),
			`rules.yaml: rule "r1": match: ERROR: <input>:1:13: Syntax error: mismatched input '<EOF>'`},
		{"string match", ruleFile(map[string]string{"match": `'"anonymous"'`}),
			`rules.yaml: rule "r1": match: expression has type string, want bool`},
		{"non-bool match", ruleFile(map[string]string{"match": "code"}),
			`rules.yaml: rule "r1": match: expression has type int, want bool`},
		{"dyn match", ruleFile(map[string]string{"match": "request_object.x"}),
			`rules.yaml: rule "r1": match: expression has type dyn, want bool`},
		{"non-bool exclude", ruleFile(map[string]string{"exclude": "user_agent"}),
			`rules.yaml: rule "r1": exclude: expression has type string, want bool`},
		{"type error", ruleFile(map[string]string{"match": `code == "403"`}),
			`rules.yaml: rule "r1": match: ERROR: <input>:1:6: found no matching overload for '_==_' applied to '(int, string)'`},
		{"reserved namespace", ruleFile(map[string]string{"match": `namespace == "kube-system"`}),
			"(the variable for objectRef.namespace is ns)"},
		{"bad when", ruleFile(map[string]string{"escalate": "[{severity: high, when: 'cod == 200'}]"}),
			`rules.yaml: rule "r1": escalate[0]: when: ERROR: <input>:1:1: undeclared reference to 'cod'`},
		{"unknown rule key", ruleFile(map[string]string{"sevrity": "high"}),
			`rules.yaml: rule "r1": unknown field "sevrity"`},
		{"unknown threshold key", ruleFile(map[string]string{"threshold": "{count: 1, window: 1h, per: ip}"}),
			`rules.yaml: rule "r1": unknown field "per"`},
		{"unknown top-level key", "rule:\n  - id: r1\n", `rules.yaml: unknown field "rule"`},
		{"no rules", "rules: []\n", "rules.yaml: no rules"},
		{"rules not a list", "rules: {id: r1}\n", "rules.yaml: rules: got a mapping, want a list"},
		{"file is a list", "- id: r1\n", "rules.yaml: got a list, want a mapping"},
		{"count negative", ruleFile(map[string]string{"threshold": "{count: -2, window: 1h}"}), `rules.yaml: rule "r1": threshold: count: -2, want at least 1`},
		{"count fractional", ruleFile(map[string]string{"threshold": "{count: 1.5, window: 1h}"}), `rules.yaml: rule "r1": threshold.count: got a number, want an integer`},
		{"not yaml", "rules: [\n", "rules.yaml: yaml: line 1: did not find expected node content"},
		{"duplicate yaml key", "rules:\n  - id: r1\n    id: r2\n", `rules.yaml: yaml: unmarshal errors:` + "\n" + `  line 3: key "id" already set in map`},
		{"wrong type", ruleFile(map[string]string{"threshold": "{count: many, window: 1h}"}),
			`rules.yaml: rule "r1": threshold.count: got a string, want an integer`},
		{"id missing", ruleFile(map[string]string{"id": "-"}), `rules.yaml: rule #1: id: missing`},
		{"id not a string", ruleFile(map[string]string{"id": "[a]"}), `rules.yaml: rule #1: id: got a list, want a string`},
		{"id bad characters", ruleFile(map[string]string{"id": "Pod_Scan"}),
			`rules.yaml: rule "Pod_Scan": id: "Pod_Scan" must be 1 to 64 characters of a-z, 0-9 and -`},
		{"duplicate id", ruleFile(nil) + strings.TrimPrefix(ruleFile(nil), "rules:\n"), `rules.yaml: rule "r1": duplicate id`},
		{"title missing", ruleFile(map[string]string{"title": "-"}), `rules.yaml: rule "r1": title: missing`},
		{"match missing", ruleFile(map[string]string{"match": "-"}), `rules.yaml: rule "r1": match: missing`},
		{"severity missing", ruleFile(map[string]string{"severity": "-"}), `rules.yaml: rule "r1": severity: missing`},
		{"unknown severity", ruleFile(map[string]string{"severity": "urgent"}),
			`rules.yaml: rule "r1": severity: unknown severity "urgent" (want low, medium, high or critical)`},
		{"severity in capitals", ruleFile(map[string]string{"severity": "High"}), `rules.yaml: rule "r1": severity: unknown severity "High"`},
		{"bad mitre", ruleFile(map[string]string{"mitre": "[TA0007]"}),
			`rules.yaml: rule "r1": mitre: "TA0007" is not an ATT&CK technique id like T1613 or T1078.001`},
		{"empty requires_any", ruleFile(map[string]string{"requires_any": `[""]`}), `rules.yaml: rule "r1": requires_any: empty string`},
		{"escapable requires_any", ruleFile(map[string]string{"requires_any": `["a<b"]`}),
			`rules.yaml: rule "r1": requires_any: "a<b": only printable ASCII without`},
		{"unknown group_by field", ruleFile(map[string]string{"group_by": "[src_ip, ip]"}),
			`rules.yaml: rule "r1": group_by: unknown field "ip"`},
		{"ungroupable field", ruleFile(map[string]string{"group_by": "[verb]"}),
			`rules.yaml: rule "r1": group_by: cannot group by "verb"`},
		{"repeated collect field", ruleFile(map[string]string{"collect": "[code, code]"}),
			`rules.yaml: rule "r1": collect: "code" listed twice`},
		{"threshold missing", ruleFile(map[string]string{"threshold": "-"}), `rules.yaml: rule "r1": threshold: missing`},
		{"threshold both", ruleFile(map[string]string{"threshold": "{count: 1, distinct: {path: 3}, window: 1h}"}),
			`rules.yaml: rule "r1": threshold: set count or distinct, not both`},
		{"threshold neither", ruleFile(map[string]string{"threshold": "{window: 1h}"}),
			`rules.yaml: rule "r1": threshold: set count or distinct`},
		{"threshold zero", ruleFile(map[string]string{"threshold": "{count: 0, window: 1h}"}),
			`rules.yaml: rule "r1": threshold: count: 0, want at least 1`},
		{"distinct over max", ruleFile(map[string]string{"threshold": "{distinct: {path: 101}, window: 1h}"}),
			`rules.yaml: rule "r1": threshold: distinct: path: 101 is outside [1, 100]`},
		{"distinct two fields", ruleFile(map[string]string{"threshold": "{distinct: {path: 3, verb: 2}, window: 1h}"}),
			`rules.yaml: rule "r1": threshold: distinct: want one FIELD: N pair, got 2`},
		{"distinct unknown field", ruleFile(map[string]string{"threshold": "{distinct: {uri: 3}, window: 1h}"}),
			`rules.yaml: rule "r1": threshold: distinct: unknown field "uri"`},
		{"window missing", ruleFile(map[string]string{"threshold": "{count: 1}"}), `rules.yaml: rule "r1": threshold: window: missing`},
		{"window bad duration", ruleFile(map[string]string{"threshold": "{count: 1, window: 1d}"}),
			`rules.yaml: rule "r1": threshold: window: "1d" is not a duration like 30m or 1h`},
		{"window seconds", ruleFile(map[string]string{"threshold": "{count: 1, window: 90s}"}),
			`rules.yaml: rule "r1": threshold: window: 90s is not a whole number of minutes from 1m to 24h`},
		{"window too long", ruleFile(map[string]string{"threshold": "{count: 1, window: 25h}"}),
			`rules.yaml: rule "r1": threshold: window: 25h is not a whole number of minutes from 1m to 24h`},
		{"long window not whole hours", ruleFile(map[string]string{"threshold": "{count: 1, window: 150m}"}),
			`rules.yaml: rule "r1": threshold: window: 150m is longer than 2h, so it must be whole hours`},
		{"window too short", ruleFile(map[string]string{"threshold": "{count: 1, window: 30s}"}),
			`rules.yaml: rule "r1": threshold: window: 30s is not a whole number`},
		{"suppress bad", ruleFile(map[string]string{"suppress": "soon"}), `rules.yaml: rule "r1": suppress: "soon" is not a duration`},
		{"too many collected fields", ruleFile(map[string]string{"collect": "[src_ip, cluster_name, user, groups, user_agent, path, request_uri, verb, code, reason, resource]"}),
			`rules.yaml: rule "r1": collect: 11 fields, at most 10`},
		{"too many distinct fields", ruleFile(map[string]string{
			"threshold": "{distinct: {path: 5}, window: 1h}",
			"escalate":  "[{severity: high, distinct: {user_agent: 6}}, {severity: high, distinct: {verb: 6}}, {severity: critical, distinct: {code: 6}}]"}),
			`rules.yaml: rule "r1": threshold and escalate count distinct values of 4 fields, at most 3`},
		{"suppress not whole minutes", ruleFile(map[string]string{"suppress": "90s"}), `rules.yaml: rule "r1": suppress: 90s is not a whole number of minutes`},
		{"suppress negative", ruleFile(map[string]string{"suppress": "-1h"}), `rules.yaml: rule "r1": suppress: -1h is outside (0, 168h]`},
		{"escalation not above", ruleFile(map[string]string{"escalate": "[{severity: medium, count: 5}]"}),
			`rules.yaml: rule "r1": escalate[0]: severity: medium is not above the rule's medium`},
		{"escalation below", ruleFile(map[string]string{"escalate": "[{severity: low, count: 5}]"}),
			`rules.yaml: rule "r1": escalate[0]: severity: low is not above the rule's medium`},
		{"escalation two conditions", ruleFile(map[string]string{"escalate": "[{severity: high, count: 5, when: 'true'}]"}),
			`rules.yaml: rule "r1": escalate[0]: set exactly one of count, distinct or when`},
		{"escalation no condition", ruleFile(map[string]string{"escalate": "[{severity: high}]"}),
			`rules.yaml: rule "r1": escalate[0]: set exactly one of count, distinct or when`},
		{"escalation count at threshold", ruleFile(map[string]string{"threshold": "{count: 5, window: 1h}", "escalate": "[{severity: high, count: 5}]"}),
			`rules.yaml: rule "r1": escalate[0]: count: 5 is not above the threshold's count 5`},
		{"escalation distinct at threshold", ruleFile(map[string]string{"threshold": "{distinct: {path: 6}, window: 1h}", "escalate": "[{severity: high, distinct: {path: 6}}]"}),
			`rules.yaml: rule "r1": escalate[0]: distinct: 6 is not above the threshold's 6`},
		{"escalation distinct over max", ruleFile(map[string]string{"escalate": "[{severity: high, distinct: {path: 1000}}]"}),
			`rules.yaml: rule "r1": escalate[0]: distinct: path: 1000 is outside [1, 100]`},
		{"escalation unknown key", ruleFile(map[string]string{"escalate": "[{severity: high, count: 5, at: 1}]"}),
			`rules.yaml: rule "r1": unknown field "at"`},
		{"escalation non-bool when", ruleFile(map[string]string{"escalate": "[{severity: high, when: 'verb'}]"}),
			`rules.yaml: rule "r1": escalate[0]: when: expression has type string, want bool`},
		// Marks are the bits of a uint64: a 65th escalation could never fire.
		{"too many escalations", ruleFile(map[string]string{"escalate": escalations(MaxEscalations + 1)}),
			`rules.yaml: rule "r1": escalate: 65 entries, at most 64`},
		{"far too many escalations", ruleFile(map[string]string{"escalate": escalations(1000)}),
			`rules.yaml: rule "r1": escalate: 1000 entries, at most 64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load("rules.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Load succeeded with %d rules, want an error containing %q\n%s", len(s.Rules()), tt.want, tt.src)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// escalations returns a flow list of n escalations, the i-th satisfied by a
// request whose response code is i.
func escalations(n int) string {
	es := make([]string, n)
	for i := range es {
		es[i] = fmt.Sprintf("{severity: high, when: 'code == %d'}", i)
	}
	return "[" + strings.Join(es, ", ") + "]"
}

// TestLoadEscalationBound checks that a rule may have MaxEscalations
// escalations and that the last of them fires.
func TestLoadEscalationBound(t *testing.T) {
	tests := []struct {
		code      int
		wantMarks []int
	}{
		{code: 0, wantMarks: []int{0}},
		{code: MaxEscalations - 1, wantMarks: []int{MaxEscalations - 1}},
		{code: MaxEscalations, wantMarks: []int{}},
	}
	s, err := Load("rules.yaml", []byte(ruleFile(map[string]string{"escalate": escalations(MaxEscalations)})))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Rule("r1").Escalate); n != MaxEscalations {
		t.Fatalf("loaded %d escalations, want %d", n, MaxEscalations)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			ev := audit.Event{Stage: audit.StageResponseComplete, User: audit.User{Username: "system:anonymous"}, ResponseCode: tt.code}
			var got []int
			matched := false
			s.Match(&ev, "demo", func(r *Rule, marks []int) {
				matched = true
				got = append([]int{}, marks...)
			})
			if !matched {
				t.Fatal("rule r1 did not match")
			}
			if diff := cmp.Diff(tt.wantMarks, got); diff != "" {
				t.Errorf("marks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadReportsEveryBadRule checks that one Load names each broken rule,
// so a user fixes a file in one pass.
func TestLoadReportsEveryBadRule(t *testing.T) {
	src := `rules:
  - {id: good, title: G, severity: low, match: anonymous, threshold: {count: 1, window: 1h}}
  - {id: bad-match, title: B, severity: low, match: nope, threshold: {count: 1, window: 1h}}
  - {id: bad-window, title: B, severity: low, match: anonymous, threshold: {count: 1, window: 1w}}
`
	_, err := Load("mine.yaml", []byte(src))
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	var got []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(line, "mine.yaml: ") {
			got = append(got, line)
		}
	}
	want := []string{
		`mine.yaml: rule "bad-match": match: ERROR: <input>:1:1: undeclared reference to 'nope'`,
		`mine.yaml: rule "bad-window": threshold: window: "1w" is not a duration like 30m or 1h`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error lines (-want +got):\n%s", diff)
	}
}

func TestLoadDecodesRule(t *testing.T) {
	src := `rules:
  - id: probe-burst
    title: "  Probe burst  "
    description: |
      Many probes.
    severity: low
    mitre: [T1595.003]
    requires_any: [system:anonymous, system:unauthenticated]
    match: anonymous
    exclude: is_health_path
    group_by: [src_ip, cluster_name]
    collect: [path, code]
    threshold:
      distinct: {path: 5}
      window: 90m
    escalate:
      - {severity: medium, count: 20}
      - {severity: high, distinct: {path: 50}}
      - {severity: critical, when: 'code == 200'}
`
	s, err := Load("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Rules()
	want := []*Rule{{
		ID:          "probe-burst",
		Title:       "Probe burst",
		Description: "Many probes.",
		Severity:    Low,
		MITRE:       []string{"T1595.003"},
		RequiresAny: []string{"system:anonymous", "system:unauthenticated"},
		Match:       "anonymous",
		Exclude:     "is_health_path",
		GroupBy:     []Field{FieldSrcIP, FieldClusterName},
		Collect:     []Field{FieldPath, FieldCode},
		Threshold:   Threshold{Distinct: FieldPath, DistinctN: 5, Window: 90 * time.Minute},
		Suppress:    90 * time.Minute, // defaults to the window
		Escalate: []Escalation{
			{Severity: Medium, Count: 20},
			{Severity: High, Distinct: FieldPath, DistinctN: 50},
			{Severity: Critical, When: "code == 200"},
		},
		Network: DefaultNetwork,
		Budget:  DefaultBudget,
	}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Rule{})); diff != "" {
		t.Errorf("Rules() (-want +got):\n%s", diff)
	}
	if s.Rule("probe-burst") != got[0] || s.Rule("nope") != nil {
		t.Errorf("Rule lookup does not return the loaded rule")
	}
}
