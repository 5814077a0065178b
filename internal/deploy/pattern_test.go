package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/filterpattern"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// defaultFilterPattern returns the pattern the template uses when the
// FilterPattern parameter is empty, read from the subscription's
// Fn::If [HasCustomFilterPattern, !Ref FilterPattern, <pattern>].
func defaultFilterPattern(t *testing.T, l *loaded) string {
	t.Helper()
	fp := rawProperty(t, l, "DetectorFunction", "Events")
	args := asSlice(asMap(asMap(asMap(asMap(fp)["AuditLog"])["Properties"])["FilterPattern"])["Fn::If"])
	if len(args) != 3 || args[0] != "HasCustomFilterPattern" || !cmp.Equal(args[1], map[string]any{"Ref": "FilterPattern"}) {
		t.Fatalf("AuditLog FilterPattern = %v, want Fn::If [HasCustomFilterPattern, Ref FilterPattern, <pattern>]", args)
	}
	s, ok := args[2].(string)
	if !ok {
		t.Fatalf("the built-in filter pattern is %T, want a string", args[2])
	}
	return s
}

func parsedFilterPattern(t *testing.T) *filterpattern.Pattern {
	t.Helper()
	p, err := filterpattern.Parse(defaultFilterPattern(t, load(t)))
	if err != nil {
		t.Fatalf("template.yaml's built-in filter pattern: %v", err)
	}
	return p
}

// TestFilterPatternConditions pins the fields the pattern reads. Each is a
// field the API server fills from its own state (the authenticated user,
// the routed resource, the verb), never from what the client sent.
func TestFilterPatternConditions(t *testing.T) {
	p := parsedFilterPattern(t)
	want := []string{
		`$.user.username = "system:anonymous"`,
		`$.user.groups[0] = "system:unauthenticated"`,
		`$.user.groups[1] = "system:unauthenticated"`,
		`$.objectRef.resource = "rolebindings"`,
		`$.objectRef.resource = "clusterrolebindings"`,
		`$.verb = "create"`,
		`$.verb = "update"`,
		`$.verb = "patch"`,
	}
	if diff := cmp.Diff(want, p.Conditions()); diff != "" {
		t.Errorf("filter pattern conditions (-want +got):\n%s", diff)
	}
}

// prefilterCoverage says, for each string a default rule may pre-filter on
// (requires_any), which pattern condition forwards the events carrying it.
// A rule with a new pre-filter string fails TestFilterPatternCoversRules
// until template.yaml's pattern and this table are extended.
var prefilterCoverage = map[string][]string{
	audit.Anonymous:       {`$.user.username = "system:anonymous"`},
	audit.Unauthenticated: {`$.user.groups[0] = "system:unauthenticated"`},
	"rolebindings":        {`$.objectRef.resource = "rolebindings"`, `$.objectRef.resource = "clusterrolebindings"`},
}

func TestFilterPatternCoversRules(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	conds := parsedFilterPattern(t).Conditions()
	for _, r := range set.Rules() {
		if len(r.RequiresAny) == 0 {
			t.Errorf("rule %s has no requires_any: nothing bounds which audit lines it matches, so no filter pattern can be shown to forward them", r.ID)
		}
		for _, s := range r.RequiresAny {
			need, ok := prefilterCoverage[s]
			if !ok {
				t.Errorf("rule %s pre-filters on %q, which the template's filter pattern does not forward; extend FilterPattern in template.yaml and prefilterCoverage", r.ID, s)
			}
			for _, c := range need {
				if !slices.Contains(conds, c) {
					t.Errorf("rule %s needs the pattern condition %s", r.ID, c)
				}
			}
		}
	}
}

// fixture is one audit line with where it came from.
type fixture struct {
	where string
	line  []byte
}

func readLines(t *testing.T, path string) []fixture {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 2<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		out = append(out, fixture{fmt.Sprintf("%s:%d", path, n), bytes.Clone(sc.Bytes())})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fixtures returns every audit line the pattern tests run over:
//   - events/src/*.jsonl, the repository's sample events;
//   - testdata/forward.jsonl and testdata/drop.jsonl (see testdata/README.md);
//   - the audit events of panther-labs/panther-analysis @ daa10c8, the
//     Tests: blocks of rules/aws_eks_rules/anonymous_api_access.yml,
//     rules/kubernetes_rules/k8s_anonymous_api_access.yml,
//     rules/aws_eks_rules/source_ip_multiple_403.yml and
//     rules/aws_eks_rules/system_namespace_public_ip.yml (Apache-2.0),
//     one test case per line of testdata/third_party/panther_eks_audit_test_cases.jsonl
//     with the event in its "log" member;
//   - falcosecurity/falco @ 7cac45e,
//     test/trace_files/k8s_audit/anonymous_creates_namespace_foo.json
//     (Apache-2.0), in testdata/third_party.
func fixtures(t *testing.T) []fixture {
	t.Helper()
	src, err := filepath.Glob(filepath.Join(root, "events", "src", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(src) == 0 {
		t.Fatalf("no events/src/*.jsonl under %s", root)
	}
	var out []fixture
	for _, p := range append(src, filepath.Join("testdata", "forward.jsonl"), filepath.Join("testdata", "drop.jsonl")) {
		out = append(out, readLines(t, p)...)
	}
	for _, f := range readLines(t, filepath.Join("testdata", "third_party", "panther_eks_audit_test_cases.jsonl")) {
		var tc struct {
			TestName string          `json:"test_name"`
			Log      json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(f.line, &tc); err != nil || len(tc.Log) == 0 {
			t.Fatalf("%s: not a Panther test case: %v", f.where, err)
		}
		// CloudWatch hands the subscription one compact line per event.
		var buf bytes.Buffer
		if err := json.Compact(&buf, tc.Log); err != nil {
			t.Fatal(err)
		}
		out = append(out, fixture{f.where + " (" + tc.TestName + ")", buf.Bytes()})
	}
	falco, err := os.ReadFile(filepath.Join("testdata", "third_party", "falco_test_trace_anonymous_creates_namespace_foo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, falco); err != nil {
		t.Fatal(err)
	}
	return append(out, fixture{"falco anonymous_creates_namespace_foo.json", buf.Bytes()})
}

// intended is what the built-in pattern is meant to forward, in Go: the
// specification the pattern text is checked against.
func intended(ev *audit.Event) bool {
	g := ev.User.Groups
	unauthenticated := len(g) > 0 && g[0] == audit.Unauthenticated || len(g) > 1 && g[1] == audit.Unauthenticated
	binding := ev.ObjectRef.Resource == "rolebindings" || ev.ObjectRef.Resource == "clusterrolebindings"
	write := ev.Verb == "create" || ev.Verb == "update" || ev.Verb == "patch"
	return ev.IsAnonymous() || unauthenticated || binding && write
}

// TestFilterPatternForwardsWhatRulesFlag runs the default rules and the
// template's filter pattern over every fixture line. Every line a rule
// flags must pass the pattern (else the detector would never see it), and
// the pattern must forward exactly what intended describes.
func TestFilterPatternForwardsWhatRulesFlag(t *testing.T) {
	p := parsedFilterPattern(t)
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	flaggedBy := map[string]int{}
	var parsed, flagged, forwarded int
	for _, f := range fixtures(t) {
		ev, err := audit.Parse(f.line, 0)
		if err != nil {
			// The detector drops these lines whatever the filter does.
			continue
		}
		parsed++
		var ids []string
		set.Match(&ev, "fixture", func(r *rules.Rule, _ []int) { ids = append(ids, r.ID) })
		got := p.Match(f.line)
		if got {
			forwarded++
		}
		if len(ids) > 0 {
			flagged++
			for _, id := range ids {
				flaggedBy[id]++
			}
			if !got {
				t.Errorf("%s: flagged by %v but the filter pattern drops it", f.where, ids)
			}
		}
		if want := intended(&ev); got != want {
			t.Errorf("%s: filter pattern forwards = %v, want %v (user %q, groups %q, verb %q, resource %q)",
				f.where, got, want, ev.User.Username, ev.User.Groups, ev.Verb, ev.ObjectRef.Resource)
		}
	}
	// Every default rule must be exercised, or the check above proves
	// nothing about it.
	var missing []string
	for _, r := range set.Rules() {
		if flaggedBy[r.ID] == 0 {
			missing = append(missing, r.ID)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no fixture line is flagged by %v; add one to testdata/forward.jsonl", missing)
	}
	t.Logf("%d audit events: %d flagged by a rule, %d forwarded by the pattern", parsed, flagged, forwarded)
}

// TestFilterPatternDrops checks the lines the pattern exists to keep away
// from the function: authenticated traffic, including lines that carry the
// rules' pre-filter strings in fields the client controls.
func TestFilterPatternDrops(t *testing.T) {
	p := parsedFilterPattern(t)
	lines := readLines(t, filepath.Join("testdata", "drop.jsonl"))
	if len(lines) == 0 {
		t.Fatal("testdata/drop.jsonl is empty")
	}
	for _, f := range lines {
		if _, err := audit.Parse(f.line, 0); err != nil {
			t.Errorf("%s: not an audit event: %v", f.where, err)
		}
		if p.Match(f.line) {
			t.Errorf("%s: forwarded, want dropped", f.where)
		}
	}
}
