package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"sigs.k8s.io/yaml"
)

// Limits on durations in a rule file.
const (
	// minWindow and maxWindow bound a threshold window. detect counts in
	// one-minute buckets, so a window is a whole number of minutes.
	minWindow = time.Minute
	maxWindow = 24 * time.Hour
	// maxSuppress bounds suppression, so a mistyped value cannot silence
	// a rule for months.
	maxSuppress = 7 * 24 * time.Hour
	maxIDLen    = 64
)

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9-]+$`)
	mitrePattern = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

// The rule file, decoded strictly (an unknown key is an error):
//
//	rules:
//	  - id: eks-pod-scan            # unique, [a-z0-9-]+, at most 64 bytes
//	    title: Anonymous pod listing
//	    description: What happened and what to do.
//	    severity: medium            # low | medium | high | critical
//	    mitre: [T1613]              # ATT&CK technique ids
//	    requires_any: [system:anonymous]  # pre-filter literals; omit to parse every line
//	    match: anonymous && verb == "list" && resource == "pods"  # CEL, bool
//	    exclude: is_health_path     # CEL, bool, optional
//	    group_by: [src_ip, cluster_name]  # src_ip, src_net, cluster_name, user, groups, user_agent
//	    network: {ipv4: 24, ipv6: 64}     # src_net's prefixes, /8../32 and /16../128; default 24 and 64
//	    budget: {count: 5, period: 1h}    # findings sent one by one per cluster and period, 0..1000 (0: all); default 5 per 1h
//	    collect: [code, request_uri]      # any Field
//	    threshold: {count: 1, window: 1h} # or distinct: {FIELD: N}; window whole minutes, 1m..24h, whole hours past 2h
//	    suppress: 6h                # (0, 168h]; default: the window
//	    escalate:                   # at most 64, each above severity; one of count, distinct, when
//	      - {severity: high, when: 'code >= 200 && code <= 299'}
//
// fileDoc is that file. Rules stay raw so that each is decoded on its own and
// an error can name the rule it is in.
type fileDoc struct {
	Rules []json.RawMessage `json:"rules"`
}

type ruleDoc struct {
	ID          string          `json:"id"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Severity    string          `json:"severity"`
	MITRE       []string        `json:"mitre"`
	RequiresAny []string        `json:"requires_any"`
	Match       string          `json:"match"`
	Exclude     string          `json:"exclude"`
	GroupBy     []string        `json:"group_by"`
	Collect     []string        `json:"collect"`
	Threshold   *thresholdDoc   `json:"threshold"`
	Suppress    string          `json:"suppress"`
	Escalate    []escalationDoc `json:"escalate"`
	Network     *networkDoc     `json:"network"`
	Budget      *budgetDoc      `json:"budget"`
}

type budgetDoc struct {
	Count  *int   `json:"count"`
	Period string `json:"period"`
}

// networkDoc leaves out what the rule keeps at DefaultNetwork.
type networkDoc struct {
	IPv4 *int `json:"ipv4"`
	IPv6 *int `json:"ipv6"`
}

type thresholdDoc struct {
	Count    *int64         `json:"count"`
	Distinct map[string]int `json:"distinct"`
	Window   string         `json:"window"`
}

type escalationDoc struct {
	Severity string         `json:"severity"`
	Count    *int64         `json:"count"`
	Distinct map[string]int `json:"distinct"`
	When     *string        `json:"when"`
	Reason   string         `json:"reason"`
}

// Load parses and compiles the rule file src; name is used in error
// messages only. Every problem in every rule is reported, one line (plus any
// CEL snippet) per rule, each starting with name and the rule's id.
func Load(name string, src []byte) (*Set, error) {
	js, err := yaml.YAMLToJSONStrict(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var f fileDoc
	if err := decodeStrict(js, &f); err != nil {
		return nil, fmt.Errorf("%s: %s", name, describeDecodeError(err))
	}
	if len(f.Rules) == 0 {
		return nil, fmt.Errorf("%s: no rules (want a top-level list `rules:`)", name)
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %v", err)
	}
	s := &Set{}
	var errs []error
	seen := make(map[string]bool, len(f.Rules))
	for i, raw := range f.Rules {
		r, err := buildRule(env, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: rule %s: %v", name, ruleLabel(raw, i), err))
			continue
		}
		if seen[r.ID] {
			errs = append(errs, fmt.Errorf("%s: rule %q: duplicate id", name, r.ID))
			continue
		}
		seen[r.ID] = true
		s.rules = append(s.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.init()
	return s, nil
}

func decodeStrict(js []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// describeDecodeError restates encoding/json's messages in the rule file's
// terms: the user wrote YAML, not Go structs.
func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch {
		case strings.HasPrefix(want, "int"):
			want = "integer"
		case want == "slice":
			want = "list"
		case want == "map", want == "struct", want == "ptr":
			want = "mapping"
		}
		// encoding/json names JSON's types; the user wrote YAML.
		got, _, _ := strings.Cut(te.Value, " ")
		switch got {
		case "array":
			got = "list"
		case "object":
			got = "mapping"
		}
		msg := fmt.Sprintf("got %s, want %s", article(got), article(want))
		if te.Field != "" {
			msg = te.Field + ": " + msg
		}
		return msg
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func article(noun string) string {
	if noun != "" && strings.IndexByte("aeiou", noun[0]) >= 0 {
		return "an " + noun
	}
	return "a " + noun
}

// ruleLabel names a rule for an error: its id when it has a string one,
// else its position.
func ruleLabel(raw json.RawMessage, i int) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &v) == nil {
		if id, ok := v.ID.(string); ok && id != "" {
			return fmt.Sprintf("%q", id)
		}
	}
	return fmt.Sprintf("#%d", i+1)
}

func buildRule(env *cel.Env, raw json.RawMessage) (*Rule, error) {
	var d ruleDoc
	if err := decodeStrict(raw, &d); err != nil {
		return nil, errors.New(describeDecodeError(err))
	}
	switch {
	case d.ID == "":
		return nil, errors.New("id: missing")
	case len(d.ID) > maxIDLen || !idPattern.MatchString(d.ID):
		return nil, fmt.Errorf("id: %q must be 1 to %d characters of a-z, 0-9 and -", d.ID, maxIDLen)
	case strings.TrimSpace(d.Title) == "":
		return nil, errors.New("title: missing")
	case d.Severity == "":
		return nil, errors.New("severity: missing")
	case strings.TrimSpace(d.Match) == "":
		return nil, errors.New("match: missing")
	case d.Threshold == nil:
		return nil, errors.New("threshold: missing")
	}
	r := &Rule{
		ID:          d.ID,
		Title:       strings.TrimSpace(d.Title),
		Description: strings.TrimSpace(d.Description),
		MITRE:       d.MITRE,
		Match:       strings.TrimSpace(d.Match),
		Exclude:     strings.TrimSpace(d.Exclude),
	}
	var err error
	if r.Severity, err = ParseSeverity(d.Severity); err != nil {
		return nil, fmt.Errorf("severity: %v", err)
	}
	for _, m := range d.MITRE {
		if !mitrePattern.MatchString(m) {
			return nil, fmt.Errorf("mitre: %q is not an ATT&CK technique id like T1613 or T1078.001", m)
		}
	}
	if r.RequiresAny, err = checkLiterals(d.RequiresAny); err != nil {
		return nil, fmt.Errorf("requires_any: %v", err)
	}
	if r.GroupBy, err = parseFields(d.GroupBy); err != nil {
		return nil, fmt.Errorf("group_by: %v", err)
	}
	for _, f := range r.GroupBy {
		if !f.Groupable() {
			return nil, fmt.Errorf("group_by: cannot group by %q (want src_ip, src_net, cluster_name, user, groups or user_agent)", f)
		}
	}
	r.Network = DefaultNetwork
	if n := d.Network; n != nil {
		if n.IPv4 != nil {
			r.Network.IPv4 = *n.IPv4
		}
		if n.IPv6 != nil {
			r.Network.IPv6 = *n.IPv6
		}
		if err := r.Network.check(); err != nil {
			return nil, fmt.Errorf("network: %v", err)
		}
	}
	if r.Collect, err = parseFields(d.Collect); err != nil {
		return nil, fmt.Errorf("collect: %v", err)
	}
	if len(r.Collect) > MaxCollect {
		return nil, fmt.Errorf("collect: %d fields, at most %d", len(r.Collect), MaxCollect)
	}
	if r.Threshold, err = parseThreshold(d.Threshold); err != nil {
		return nil, fmt.Errorf("threshold: %v", err)
	}
	r.Suppress = r.Threshold.Window
	if d.Suppress != "" {
		if r.Suppress, err = parseDuration(d.Suppress); err != nil {
			return nil, fmt.Errorf("suppress: %v", err)
		}
		if r.Suppress <= 0 || r.Suppress > maxSuppress {
			return nil, fmt.Errorf("suppress: %s is outside (0, %s]", d.Suppress, fmtDuration(maxSuppress))
		}
		// Suppression periods are slots of event time aligned to the
		// epoch (detect.PeriodStart); whole minutes keep every event of a
		// one-minute bucket in one period.
		if r.Suppress%time.Minute != 0 {
			return nil, fmt.Errorf("suppress: %s is not a whole number of minutes", d.Suppress)
		}
	}
	if r.Budget, err = parseBudget(d.Budget); err != nil {
		return nil, fmt.Errorf("budget: %v", err)
	}
	if len(d.Escalate) > MaxEscalations {
		return nil, fmt.Errorf("escalate: %d entries, at most %d", len(d.Escalate), MaxEscalations)
	}
	for i, e := range d.Escalate {
		esc, when, err := parseEscalation(env, r, e)
		if err != nil {
			return nil, fmt.Errorf("escalate[%d]: %v", i, err)
		}
		if when != nil {
			r.when = append(r.when, whenRef{index: len(r.Escalate), prg: when})
		}
		r.Escalate = append(r.Escalate, esc)
	}
	if n := len(r.DistinctFields()); n > MaxDistinctFields {
		return nil, fmt.Errorf("threshold and escalate count distinct values of %d fields, at most %d", n, MaxDistinctFields)
	}
	if r.match, err = compile(env, r.Match); err != nil {
		return nil, fmt.Errorf("match: %v", err)
	}
	if r.Exclude != "" {
		if r.exclude, err = compile(env, r.Exclude); err != nil {
			return nil, fmt.Errorf("exclude: %v", err)
		}
	}
	return r, nil
}

func parseBudget(d *budgetDoc) (Budget, error) {
	b := DefaultBudget
	if d == nil {
		return b, nil
	}
	if d.Count != nil {
		b.Count = *d.Count
		if b.Count < 0 || b.Count > MaxBudget {
			return b, fmt.Errorf("count %d is outside 0 to %d", b.Count, MaxBudget)
		}
	}
	if d.Period != "" {
		p, err := parseDuration(d.Period)
		if err != nil {
			return b, fmt.Errorf("period: %v", err)
		}
		// Periods are slots of event time aligned to the epoch, like
		// suppression's.
		if p < time.Minute || p > maxWindow || p%time.Minute != 0 {
			return b, fmt.Errorf("period: %s is not whole minutes from 1m to %s", d.Period, fmtDuration(maxWindow))
		}
		b.Period = p
	}
	return b, nil
}

// checkLiterals rejects pre-filter strings that might not appear verbatim in
// a log line, or in the line's escaped form inside a subscription payload
// (where the detector first looks for them). JSON encoders escape '"',
// '\\', control characters, and some '<', '>', '&' and '/'; a literal with
// one of them could be absent from a line that holds the value, and the
// pre-filter would drop an event the rule matches.
func checkLiterals(lits []string) ([]string, error) {
	for _, l := range lits {
		if l == "" {
			return nil, errors.New("empty string")
		}
		for _, c := range []byte(l) {
			if c < 0x20 || c > 0x7e || strings.IndexByte(`"\<>&/`, c) >= 0 {
				return nil, fmt.Errorf("%q: only printable ASCII without \" \\ < > & / (JSON may escape them)", l)
			}
		}
	}
	return lits, nil
}

func parseFields(names []string) ([]Field, error) {
	var out []Field
	for _, n := range names {
		f, err := ParseField(n)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("%q listed twice", n)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseThreshold(d *thresholdDoc) (Threshold, error) {
	var t Threshold
	switch {
	case d.Count != nil && d.Distinct != nil:
		return t, errors.New("set count or distinct, not both")
	case d.Count != nil:
		if *d.Count < 1 {
			return t, fmt.Errorf("count: %d, want at least 1", *d.Count)
		}
		t.Count = *d.Count
	case d.Distinct != nil:
		var err error
		if t.Distinct, t.DistinctN, err = parseDistinct(d.Distinct); err != nil {
			return t, fmt.Errorf("distinct: %v", err)
		}
	default:
		return t, errors.New("set count or distinct")
	}
	if d.Window == "" {
		return t, errors.New("window: missing")
	}
	w, err := parseDuration(d.Window)
	if err != nil {
		return t, fmt.Errorf("window: %v", err)
	}
	if w < minWindow || w > maxWindow || w%time.Minute != 0 {
		return t, fmt.Errorf("window: %s is not a whole number of minutes from %s to %s", d.Window, fmtDuration(minWindow), fmtDuration(maxWindow))
	}
	if w > LongWindow && w%time.Hour != 0 {
		return t, fmt.Errorf("window: %s is longer than %s, so it must be whole hours (it is counted in buckets of a sixtieth of it)", d.Window, fmtDuration(LongWindow))
	}
	t.Window = w
	return t, nil
}

func parseDistinct(m map[string]int) (Field, int, error) {
	if len(m) != 1 {
		return "", 0, fmt.Errorf("want one FIELD: N pair, got %d", len(m))
	}
	for name, n := range m {
		f, err := ParseField(name)
		if err != nil {
			return "", 0, err
		}
		if n < 1 || n > MaxDistinct {
			return "", 0, fmt.Errorf("%s: %d is outside [1, %d]", name, n, MaxDistinct)
		}
		return f, n, nil
	}
	panic("unreachable")
}

// parseEscalation checks e against the rule's base severity and threshold,
// and compiles its When condition if it has one.
func parseEscalation(env *cel.Env, r *Rule, e escalationDoc) (Escalation, *program, error) {
	esc := Escalation{Reason: strings.TrimSpace(e.Reason)}
	if e.Severity == "" {
		return esc, nil, errors.New("severity: missing")
	}
	var err error
	if esc.Severity, err = ParseSeverity(e.Severity); err != nil {
		return esc, nil, fmt.Errorf("severity: %v", err)
	}
	if esc.Severity <= r.Severity {
		return esc, nil, fmt.Errorf("severity: %s is not above the rule's %s", esc.Severity, r.Severity)
	}
	set := 0
	for _, b := range []bool{e.Count != nil, e.Distinct != nil, e.When != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return esc, nil, errors.New("set exactly one of count, distinct or when")
	}
	var when *program
	switch {
	case e.Count != nil:
		esc.Count = *e.Count
		// A count the threshold already guarantees would make the
		// escalation the real base severity.
		if esc.Count < 1 {
			return esc, nil, fmt.Errorf("count: %d, want at least 1", esc.Count)
		}
		if esc.Count <= r.Threshold.Count {
			return esc, nil, fmt.Errorf("count: %d is not above the threshold's count %d", esc.Count, r.Threshold.Count)
		}
	case e.Distinct != nil:
		if esc.Distinct, esc.DistinctN, err = parseDistinct(e.Distinct); err != nil {
			return esc, nil, fmt.Errorf("distinct: %v", err)
		}
		if esc.Distinct == r.Threshold.Distinct && esc.DistinctN <= r.Threshold.DistinctN {
			return esc, nil, fmt.Errorf("distinct: %d is not above the threshold's %d", esc.DistinctN, r.Threshold.DistinctN)
		}
	default:
		esc.When = strings.TrimSpace(*e.When)
		if esc.When == "" {
			return esc, nil, errors.New("when: empty")
		}
		if when, err = compile(env, esc.When); err != nil {
			return esc, nil, fmt.Errorf("when: %v", err)
		}
	}
	return esc, when, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 30m or 1h", s)
	}
	return d, nil
}

// fmtDuration prints whole hours and minutes the way rule files write them.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
