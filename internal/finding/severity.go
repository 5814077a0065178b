package finding

import (
	"fmt"
	"strconv"
)

// Severity ranks findings. The zero value is invalid.
type Severity int

// Severities, in increasing order.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = [...]string{Low: "low", Medium: "medium", High: "high", Critical: "critical"}

// String returns the severity's name in a rule file ("low" ... "critical"),
// or "Severity(N)" for an invalid value.
func (s Severity) String() string {
	if s.valid() {
		return severityNames[s]
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

func (s Severity) valid() bool { return s >= Low && s <= Critical }

// MarshalText encodes s as its name. It fails for an invalid severity, so a
// zero value never reaches a published finding as a number.
func (s Severity) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes a severity name as ParseSeverity does.
func (s *Severity) UnmarshalText(text []byte) error {
	v, err := ParseSeverity(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity returns the severity named name: low, medium, high or
// critical, in lower case as rule files and findings spell them.
func ParseSeverity(name string) (Severity, error) {
	for s := Low; s <= Critical; s++ {
		if severityNames[s] == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want low, medium, high or critical)", name)
}
