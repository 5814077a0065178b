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
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/filterpattern"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
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

// TestFilterPatternTerms pins the terms the pattern forwards on. Each is a
// string the API server writes from its own state (the authenticated user
// and groups, the routed resource, the status code) or that CloudWatch's
// agent appends to a line it cut; a client can add one to a line, not
// remove one from a line the rules need.
func TestFilterPatternTerms(t *testing.T) {
	p := parsedFilterPattern(t)
	var got []string
	for _, term := range p.Terms() {
		got = append(got, term.String())
	}
	want := []string{
		`?"system:anonymous"`, `?"system:unauthenticated"`, `?rolebindings`,
		`?clusterroles`, `?Unauthorized`, `?"Authentication failed"`, `?"[Truncated...]"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filter pattern terms (-want +got):\n%s", diff)
	}
}

// TestFilterPatternCoversRules proves, rule by rule, that the pattern
// forwards every line a default rule can match: each of a rule's
// requires_any strings, one of which every such line holds, contains one
// of the pattern's alternative terms, so a line holding the string holds
// the term. (Lines the detector salvages, cut or unparseable, are matched
// whatever their pre-filter strings; the pattern forwards those that
// CloudWatch marked "[Truncated...]", and docs/deploy.md says what it
// cannot forward.)
func TestFilterPatternCoversRules(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	terms := parsedFilterPattern(t).Terms()
	for _, term := range terms {
		if term.Op != filterpattern.Optional {
			t.Fatalf("term %s: the proof below needs a pattern of ? terms only", term)
		}
	}
	for _, r := range set.Rules() {
		if len(r.RequiresAny) == 0 {
			t.Errorf("rule %s has no requires_any: nothing bounds which audit lines it matches, so no filter pattern can be shown to forward them", r.ID)
		}
		for _, s := range r.RequiresAny {
			if !slices.ContainsFunc(terms, func(term filterpattern.Term) bool { return strings.Contains(s, term.Text) }) {
				t.Errorf("rule %s pre-filters on %q, which holds none of the template's filter pattern terms; extend FilterPattern in template.yaml", r.ID, s)
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

// TestFilterPatternForwardsWhatRulesFlag runs the default rules and the
// template's filter pattern over every fixture line. Every line a rule
// flags must pass the pattern, else the detector would never see it.
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
			// The detector salvages a damaged audit line (and drops
			// anything else whatever the filter does).
			var ok bool
			if ev, ok = audit.Salvage(f.line); !ok {
				continue
			}
			ev.Damage, ev.LineSize = "malformed", len(f.line)
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
// from the function: authenticated traffic.
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

// TestFilterPatternDropsClusterTraffic runs the pattern over a busy
// cluster's own authenticated chatter (internal/synth: leases, node status,
// endpoints, watches): none of it may reach the function.
func TestFilterPatternDropsClusterTraffic(t *testing.T) {
	p := parsedFilterPattern(t)
	lines := synth.Lines(20000, 0, 1, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), 10*time.Millisecond)
	forwarded := 0
	for _, l := range lines {
		if p.Match(l) {
			forwarded++
			if forwarded <= 3 {
				t.Errorf("forwarded: %.200s", l)
			}
		}
	}
	if forwarded > 0 {
		t.Errorf("%d of %d authenticated lines forwarded, want none", forwarded, len(lines))
	}
}

// TestFilterPatternForwardsInjected: a text pattern forwards any line that
// holds a term, wherever it stands, so a client can have its own line
// forwarded by putting "system:anonymous" in its user agent or query, and
// reads and deletes of bindings are forwarded too. That costs invocations,
// never a finding: no default rule flags any of these lines
// (testdata/forwarded-unflagged.jsonl).
func TestFilterPatternForwardsInjected(t *testing.T) {
	p := parsedFilterPattern(t)
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join("testdata", "forwarded-unflagged.jsonl"))
	if len(lines) == 0 {
		t.Fatal("testdata/forwarded-unflagged.jsonl is empty")
	}
	for _, f := range lines {
		ev, err := audit.Parse(f.line, 0)
		if err != nil {
			t.Fatalf("%s: %v", f.where, err)
		}
		if !p.Match(f.line) {
			t.Errorf("%s: dropped; the pattern's terms should forward it", f.where)
		}
		set.Match(&ev, "fixture", func(r *rules.Rule, _ []int) {
			t.Errorf("%s: flagged by %s", f.where, r.ID)
		})
	}
}

// TestFilterPatternForwardsCutLines: a line CloudWatch's agent cut and
// marked is forwarded, whatever survived of it.
func TestFilterPatternForwardsCutLines(t *testing.T) {
	p := parsedFilterPattern(t)
	n := 0
	for _, f := range readLines(t, filepath.Join(root, "events", "src", "truncated-and-malformed.jsonl")) {
		if !bytes.HasSuffix(bytes.TrimSpace(f.line), []byte("[Truncated...]")) {
			continue
		}
		n++
		if !p.Match(f.line) {
			t.Errorf("%s: a cut line, dropped", f.where)
		}
	}
	if n == 0 {
		t.Fatal("no cut line in events/src/truncated-and-malformed.jsonl")
	}
}
