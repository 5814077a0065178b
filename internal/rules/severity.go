package rules

import "github.com/anonwatch/anonwatch/internal/finding"

// Severity orders findings. It is the finding package's type, so that a
// rule's severity and a published finding's severity have one set of names
// and one order, and a consumer of findings need not import the rule engine.
type Severity = finding.Severity

// Severities, in increasing order.
const (
	Low      = finding.Low
	Medium   = finding.Medium
	High     = finding.High
	Critical = finding.Critical
)

// ParseSeverity returns the severity named name: low, medium, high or
// critical, in lower case as rule files spell them.
func ParseSeverity(name string) (Severity, error) { return finding.ParseSeverity(name) }
