package rules

import (
	_ "embed"
	"slices"
)

//go:embed default.yaml
var defaultSource []byte

// DefaultName is the file name errors and listings give the embedded rules.
const DefaultName = "default.yaml"

// Default compiles the embedded default rules. Each call returns a new Set
// with its own error counter.
func Default() (*Set, error) { return Load(DefaultName, defaultSource) }

// DefaultSource returns a copy of the embedded default rule file, for a user
// to start their own from.
func DefaultSource() []byte { return slices.Clone(defaultSource) }
