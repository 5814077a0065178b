// Package finding defines the finding document that anonwatch publishes, and
// the severities that rank findings. It holds data only and imports nothing
// but the standard library, so a consumer of findings, such as the Slack
// notifier, links neither the rule engine nor the log decoders that produce
// them. The detect package builds findings; render turns them into what
// people read.
package finding

import (
	"slices"
	"time"
)

// Finding is the document published for one rule and group. Its JSON form
// is the machine-readable contract (SQS, Lambda, HTTPS subscribers and
// `anonwatch replay` output); renderings for people are built from it.
type Finding struct {
	// ID is stable across Lambda retries of the same batch, so a consumer
	// can drop the rare duplicate delivery.
	ID          string `json:"finding_id"`
	Rule        string `json:"rule"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Severity is the name of a Severity ("low" ... "critical"). It stays
	// a string so that a consumer still decodes, and shows, a finding whose
	// severity it does not know; ParseSeverity gives its rank.
	Severity    string   `json:"severity"`
	MITRE       []string `json:"mitre,omitempty"`
	ClusterName string   `json:"cluster_name"`
	// Account and Region are the AWS account (the subscription payload's
	// owner) and region of the cluster's log group, when known: two
	// clusters of one name in two accounts are two clusters.
	Account  string `json:"account,omitempty"`
	Region   string `json:"region,omitempty"`
	LogGroup string `json:"log_group,omitempty"`
	// Sweep reports that the finding covers, together, the sources beyond
	// the groups a batch tracks one by one (detect.Config.MaxGroups): no
	// SrcIP, and Distinct["src_ip"] counts the addresses.
	Sweep bool `json:"sweep,omitempty"`
	// SrcIP is the connection's address, the last entry of sourceIPs.
	SrcIP string `json:"src_ip,omitempty"`
	// SrcNet is the network the finding's sources are in, for a rule that
	// groups by network (src_net): rotation within it is one source.
	SrcNet  string `json:"src_net,omitempty"`
	IPClass string `json:"ip_class,omitempty"`
	// ForwardedFor holds the earlier sourceIPs entries: claims made by the
	// client (X-Forwarded-For, X-Real-IP), never verified.
	ForwardedFor []string `json:"forwarded_for,omitempty"`
	User         string   `json:"user,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	UserAgent    string   `json:"user_agent,omitempty"`
	UAClass      string   `json:"ua_class,omitempty"`
	Count        int64    `json:"count"`
	// Distinct counts distinct values per field where a threshold or
	// escalation uses them; DistinctSaturated names fields whose count is
	// a lower bound.
	Distinct          map[string]int `json:"distinct,omitempty"`
	DistinctSaturated []string       `json:"distinct_saturated,omitempty"`
	Window            string         `json:"window"`
	FirstSeen         time.Time      `json:"first_seen"`
	LastSeen          time.Time      `json:"last_seen"`
	// Values are collected values over the window, per field.
	Values map[string][]string `json:"values,omitempty"`
	// Evidence holds, per field, the values of the requests that raised
	// the severity (an allowed secret read): each is also in Values, which
	// lists them first and never drops them for others.
	Evidence        map[string][]string `json:"evidence,omitempty"`
	ValuesTruncated bool                `json:"values_truncated,omitempty"`
	Summary         string              `json:"summary"`
	// Digest, when set, makes the finding a digest: the findings of Rule
	// on ClusterName at Severity that the rule's notification budget held
	// back in one period, summed up. Count is then the findings held, and
	// Distinct and Values count and sample their sources (src_ip) and
	// networks (src_net).
	Digest *Digest `json:"digest,omitempty"`
}

// Digest says which budget a digest finding sums up.
type Digest struct {
	// Held is the number of findings held back so far in the period. A
	// digest goes out when it reaches 1, 2, 5, 10, 20, 50, …, so a later
	// digest of the same period may report more.
	Held   int64 `json:"held"`
	Budget int   `json:"budget"` // the findings the period sends one by one
	// PeriodStart and PeriodEnd bound the period, in event time.
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// SweepAddresses returns the number of addresses a sweep finding covers,
// and whether that number is only a lower bound.
func (f *Finding) SweepAddresses() (n int, atLeast bool) {
	const field = "src_ip"
	return f.Distinct[field], slices.Contains(f.DistinctSaturated, field)
}
