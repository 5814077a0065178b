package detect

// Reasons a log line is skipped. Each is counted in Result.Skipped.
const (
	SkipTruncated = "truncated" // CloudWatch cut the line ("[Truncated...]")
	SkipTooLarge  = "too_large" // above the parser's size bound
	SkipMalformed = "malformed" // not valid JSON, or wrong field types
	SkipNotAudit  = "not_audit" // valid JSON, but not an audit.k8s.io Event
	// SkipStage: a record counted at another stage of its request
	// (audit.Event.Counted): RequestReceived, or ResponseStarted of a
	// request that is neither long-running nor a failed authentication.
	SkipStage     = "non_final_stage"
	SkipDuplicate = "duplicate_id" // a log event id seen earlier in the batch
	// SkipBadTime: neither the request's timestamps nor CloudWatch's
	// ingestion time is a time ValidEventTime accepts.
	SkipBadTime = "bad_time"
)

// Damage reasons: why a line was salvaged rather than parsed whole
// (audit.Event.Damage). The first three are also skip reasons, for lines
// that salvage shows are not audit events.
const (
	DamageTruncated = SkipTruncated // marked "[Truncated...]"
	DamageTooLarge  = SkipTooLarge  // over the parser's bound
	DamageMalformed = SkipMalformed // not whole JSON: cut without a mark, or damaged
	// DamageOverBound: the decoder kept only the start of the line, to
	// keep its delivery within its memory bound (cwlogs.LogEvent.Cut).
	DamageOverBound = "over_bound"
)

// Result summarises one batch.
type Result struct {
	Batch   string `json:"batch"` // the batch id used for idempotency
	Cluster string `json:"cluster"`
	Control bool   `json:"control,omitempty"` // a CONTROL_MESSAGE: nothing done
	Events  int    `json:"events"`            // log events in the batch
	// Filtered lines were never parsed: no rule's pre-filter string occurs.
	Filtered int            `json:"filtered"`
	Skipped  map[string]int `json:"skipped,omitempty"`
	Parsed   int            `json:"parsed"` // audit events the rules saw, damaged ones included
	// Damaged counts the audit lines that could not be parsed whole and
	// were salvaged (audit.Event.Damage): cut, padded past a bound, or not
	// JSON. Each is matched against the rules and raises a finding of
	// its own (audit-event-unreadable).
	Damaged    int   `json:"damaged,omitempty"`
	Matched    int   `json:"matched"`    // (event, rule) matches
	Aggregates int   `json:"aggregates"` // (rule, group) pairs touched
	EvalErrors int64 `json:"eval_errors,omitempty"`
	Due        int   `json:"due"`        // findings whose threshold holds
	Suppressed int   `json:"suppressed"` // due, but claimed or sent already
	Published  int   `json:"published"`  // findings and digests
	// Held counts the findings a rule's notification budget held back and
	// rolled into a digest, and Digests the digests published.
	Held    int `json:"held,omitempty"`
	Digests int `json:"digests,omitempty"`
	// Fenced counts the log events a backfill left out because the live
	// function counts them (Config.Fence).
	Fenced int `json:"fenced,omitempty"`
}

// SkippedTotal returns the number of skipped lines over all reasons.
func (r *Result) SkippedTotal() int {
	n := 0
	for _, v := range r.Skipped {
		n += v
	}
	return n
}
