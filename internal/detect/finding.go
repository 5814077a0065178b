package detect

import "github.com/anonwatch/anonwatch/internal/finding"

// Finding is the document the detector publishes for one rule and group.
// It is defined in package finding, which imports nothing of the pipeline,
// so that consumers of findings link neither detect nor the rule engine;
// the alias keeps detect.Finding for the pipeline's own code.
type Finding = finding.Finding

// Digest is finding.Digest: what a digest finding sums up.
type Digest = finding.Digest
