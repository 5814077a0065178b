// Package rules loads detection rules from YAML, compiles their CEL
// conditions once, and matches audit events against them.
//
// Rules are data: the default set is embedded (default.yaml) and a user can
// replace it with their own file. Every CEL expression is compiled by Load, so
// a bad rule fails start-up with a message that names it.
package rules

import (
	"slices"
	"time"
)

// LongWindow is the longest threshold window detect counts in one-minute
// buckets. A longer one must be whole hours, and is counted in buckets of a
// sixtieth of it (24 minutes for 24h): a day of one-minute buckets would be
// 1,440 state items to read for every delivery that touches the group.
const LongWindow = 2 * time.Hour

// MaxDistinct bounds the N of a distinct threshold or escalation. detect
// keeps at most detect.DistinctCap (> MaxDistinct) values per bucket, so a
// saturated distinct set never decides a threshold.
const MaxDistinct = 100

// Field names a value of an audit event that rules group by, collect, or
// count distinct values of. The names are the rule file's vocabulary.
type Field string

// Fields known to rules.
const (
	FieldSrcIP Field = "src_ip"
	// FieldSrcNet is the network of src_ip: the address masked to the
	// rule's network prefix (Rule.Network), such as 203.0.113.0/24 or
	// 2001:db8:1:2::/64, so that rotation within one network counts as one
	// source.
	FieldSrcNet      Field = "src_net"
	FieldClusterName Field = "cluster_name"
	FieldUser        Field = "user"
	FieldGroups      Field = "groups" // sorted, joined with ","
	FieldUserAgent   Field = "user_agent"
	FieldPath        Field = "path" // requestURI without its query
	FieldRequestURI  Field = "request_uri"
	FieldVerb        Field = "verb"
	FieldCode        Field = "code" // response code, decimal
	FieldReason      Field = "reason"
	FieldResource    Field = "resource"
	FieldNamespace   Field = "namespace"
	// FieldName is objectRef.name. A create's requestURI does not carry
	// the new object's name, so a finding about a created binding needs it.
	FieldName Field = "name"
	// FieldDecisionReason is the authorization.k8s.io/reason annotation:
	// the binding that let a request through, which a responder removes.
	FieldDecisionReason Field = "decision_reason"
	// FieldAuditID is auditID: a client can set it (Audit-ID), but it
	// finds the line in the log group.
	FieldAuditID Field = "audit_id"
	// FieldDamage describes a line that could not be parsed whole: why,
	// and its size ("truncated, 1048576 bytes"); empty for a whole line.
	FieldDamage Field = "damage"
)

// Rule is one compiled detection rule.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    Severity // base severity
	MITRE       []string
	GroupBy     []Field
	Collect     []Field
	Threshold   Threshold
	// Suppress is how long, in event time, the same rule and group stays
	// quiet after a finding at the same or lower severity.
	Suppress time.Duration
	// Escalate raises the severity when a condition holds over the window.
	Escalate []Escalation
	// Network is the prefix length src_net masks addresses to.
	Network Network
	// Budget bounds the findings of the rule that one cluster sends one
	// by one in a period; the rest are rolled into a digest.
	Budget Budget
	// RequiresAny lists literal strings of which at least one appears in
	// every raw audit line this rule can match. Empty means no pre-filter.
	RequiresAny []string
	// Match and Exclude are the CEL sources, kept for display (`anonwatch
	// rules list`); the compiled programs are unexported.
	Match   string
	Exclude string

	match   *program  // never nil in a loaded rule
	exclude *program  // nil when the rule has no exclude
	when    []whenRef // the escalations with a When condition
}

// Budget is how many findings of one rule on one cluster go out one by one
// in each Period of event time (periods aligned to the epoch, as
// suppression's are). Past Count, findings are held and summed up in a
// digest; critical findings and severity rises always go out on their own.
// Count 0 means no budget.
type Budget struct {
	Count  int
	Period time.Duration
}

// DefaultBudget lets 5 findings of a rule through per cluster per hour.
// Five show the people on call the first sources of a wave in full; past
// that, one more per-source finding adds a line, not a fact, and a flood of
// them buries the finding that matters. The digest says how many more came
// and from where, at 1, 2, 5, 10, 20, … held findings: a handful of messages an
// hour however many addresses an attacker rotates through.
var DefaultBudget = Budget{Count: 5, Period: time.Hour}

// MaxBudget bounds Budget.Count: each place is held by a finding ID in one
// state item.
const MaxBudget = 1000

// Threshold says when a group's window makes a finding.
type Threshold struct {
	Count     int64 // at least this many matching requests (0: not used)
	Distinct  Field // if set, at least DistinctN distinct values of this field
	DistinctN int
	Window    time.Duration
}

// Escalation raises a finding to Severity when its condition holds. Exactly
// one of Count, DistinctN or When is set.
type Escalation struct {
	Severity  Severity
	Count     int64
	Distinct  Field
	DistinctN int
	When      string // CEL over one event: true if any event in the window satisfied it
	// Reason says in words why the severity rose, for the finding's
	// summary. Optional: without it the summary states the condition.
	Reason string
}

// Limits on a rule's shape. They bound what one group keeps in state, so a
// state item stays small (under 64 KB in DynamoDB) whatever an attacker
// sends: each distinct-counted field and each collected field holds a
// capped set per bucket.
const (
	MaxCollect        = 10
	MaxDistinctFields = 3
	// MaxEscalations bounds a rule's escalations: detect records which
	// ones an event satisfied as the bits of a uint64, so an escalation
	// past the 64th could never fire.
	MaxEscalations = 64
)

// DistinctFields returns the fields whose distinct values the threshold or an
// escalation counts, threshold first, each once.
func (r *Rule) DistinctFields() []Field {
	var out []Field
	add := func(f Field) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	add(r.Threshold.Distinct)
	for _, e := range r.Escalate {
		add(e.Distinct)
	}
	return out
}
