// Package detect runs the detection pipeline over one batch of audit log
// lines: parse, match rules, aggregate per (rule, group), apply the
// aggregates to the rolling State, and publish the findings that are due.
//
// It declares the State and Publisher interfaces that the adapters implement
// (memstate and dynamostate, the stdout and SNS publishers) and the types
// that cross them. It imports no AWS SDK.
package detect

import (
	"context"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/rules"
)

// BucketWidth is the granularity of rolling windows of up to
// rules.LongWindow. A rule's window ending at a bucket covers the
// window/BucketWidthFor(window) buckets that end with it.
const BucketWidth = time.Minute

// BucketWidthFor returns the width of the buckets a window of length w is
// counted in: BucketWidth up to rules.LongWindow, a sixtieth of the window
// beyond (rules.Load requires such a window to be whole hours), so a long
// window, like anonymous-slow-scan's 24h, reads 60 buckets rather than
// 1,440. Every bucket of a group has the same width: it depends only on
// the rule.
func BucketWidthFor(w time.Duration) time.Duration {
	if w <= rules.LongWindow {
		return BucketWidth
	}
	return (w / 60).Truncate(BucketWidth)
}

// Group is the value of a rule's group_by fields for one request. Fields the
// rule does not group by are empty.
type Group struct {
	SrcIP string `json:"src_ip,omitempty"`
	// SrcNet is the network of the source (rules.FieldSrcNet), for a rule
	// that groups by it.
	SrcNet      string `json:"src_net,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
	// Account and Region are those of the batch's cluster, set with
	// Config.Qualify for every group, whatever the rule groups by: an
	// organization's detector keeps the clusters of one name in two
	// accounts apart, and no account's groups meet another's.
	Account   string   `json:"account,omitempty"`
	Region    string   `json:"region,omitempty"`
	User      string   `json:"user,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	// Sweep marks the group that holds, together, the requests of every
	// group beyond the MaxGroups a rule tracks one by one in a batch: a
	// sweep from more sources than a batch can afford to count apart.
	// Only ClusterName, with Account and Region, is set beside it.
	Sweep bool `json:"sweep,omitempty"`
}

// Scope is the AWS account and region a cluster is in. The zero Scope is
// the deployment's own (no Config.Qualify), whose state keys are those of a
// single-account deployment.
type Scope struct{ Account, Region string }

// IsZero reports whether s is the deployment's own.
func (s Scope) IsZero() bool { return s == Scope{} }

// suffix is what s adds to the hashed identity of a cluster: nothing for the
// deployment's own.
func (s Scope) suffix() string {
	if s.IsZero() {
		return ""
	}
	return "\x00" + s.Account + "/" + s.Region
}

// Aggregate is what one batch contributed to one (rule, group).
type Aggregate struct {
	Rule string
	// Key identifies (rule, group) in state. It is derived from the rule id
	// and the group values only, so every batch computes the same key.
	Key    string
	Group  Group
	Window time.Duration // the rule's threshold window
	Count  int64
	// FirstSeen and LastSeen are the min and max requestReceivedTimestamp.
	FirstSeen, LastSeen time.Time
	Buckets             []Bucket // ascending by Start
	// Values are the distinct collected values over the whole batch,
	// keyed by field name, each keeping the ReportValuesCap smallest.
	Values          map[string][]string
	ValuesTruncated bool
	// Sources is, for a sweep group, the number of groups whose requests
	// the batch counted in it: exact, where the window's distinct address
	// count saturates at DistinctCap a bucket.
	Sources int
}

// Bucket is one bucket (BucketWidthFor the rule's window) of a group's
// activity.
type Bucket struct {
	Start time.Time // UTC, truncated to the bucket width
	// Count is the requests in the bucket other than long-running ones,
	// which are counted by identity in Distinct["request"]; Requests
	// returns both.
	Count int64
	// First and Last are the earliest and latest event times in the bucket.
	First, Last time.Time
	// Distinct holds, per field that a threshold or escalation counts,
	// the hashes (DistinctHash) of the values seen, at most DistinctCap.
	Distinct map[string][]string
	// Saturated names the fields whose Distinct set hit DistinctCap.
	Saturated []string
	// Marks are the indices of the rule's per-event escalations that some
	// event in this bucket satisfied.
	Marks []int
	// Values are sample collected values for display. An aggregate holds
	// at most BucketValuesCap per field, each at most StoredValueLen bytes.
	// State adds a batch's values to a stored bucket only while the number
	// of values offered to it so far is below BucketValuesBudget, and sets
	// ValuesTruncated when it refuses some; so a stored bucket stays small
	// whatever an attacker sends.
	Values          map[string][]string
	ValuesTruncated bool
	// Evidence holds the display values of the requests that met one of
	// the rule's per-request escalations (an allowed secret read), apart
	// from Values: at most BucketValuesCap per field from a batch, merged
	// by state under a budget of its own (EvidenceBudget), so that no
	// number of ordinary requests, before or after, crowds out the
	// requests that raised the severity. Dropping some sets
	// ValuesTruncated.
	Evidence map[string][]string
}

// Requests returns the requests b counts: Count, and the long-running
// requests it holds by identity.
func (b *Bucket) Requests() int64 {
	return b.Count + int64(len(b.Distinct[requestField]))
}

// Caps that bound memory and state item size.
const (
	// DistinctCap bounds a bucket's distinct set. rules.Load rejects a
	// distinct threshold above rules.MaxDistinct (< DistinctCap), so a
	// saturated set never changes a threshold decision.
	DistinctCap = 128
	// BucketValuesCap bounds the display values kept per field per bucket.
	BucketValuesCap = 10
	// BucketValuesBudget bounds the values offered to one stored bucket.
	BucketValuesBudget = 40
	// EvidenceBudget bounds the evidence values offered to one stored
	// bucket. Only requests that raise the severity offer them, which an
	// attacker cannot send without raising it.
	EvidenceBudget = 40
	// StoredValueLen bounds the length of one stored display value.
	StoredValueLen = 256
	// ReportValuesCap bounds an Aggregate's values per field.
	ReportValuesCap = 50
)

// Window is what a group's state holds after a batch was applied: every
// stored bucket with Start in [a.Buckets[0].Start − WindowSpan(a.Window),
// a.Buckets[last].Start + WindowSpan(a.Window)] for the aggregate a,
// merged over all batches ever applied and read after this batch's merges.
// That is every bucket of every window that one of the batch's buckets
// belongs to, so the detector can evaluate each window the batch may have
// completed, including windows that end at buckets stored by batches that
// were delivered earlier but hold later events. Sets are sorted; empty maps
// and slices are nil.
//
// A stored bucket's First and Last are the earliest and latest event times
// of all batches merged into it, whatever the order of delivery.
type Window struct {
	Key     string
	Buckets []Bucket // ascending by Start
}

// WindowSpan returns how far before its last bucket's Start a window of
// length w reaches: it covers the whole buckets that fit in w, so a window of
// 5m ending at the bucket of 10:04 covers 10:00 to 10:04.
func WindowSpan(w time.Duration) time.Duration {
	width := BucketWidthFor(w)
	return max(w.Truncate(width)-width, 0)
}

// PeriodStart returns the start of the suppression period of length d that
// holds t: periods are consecutive slots of event time aligned to the Unix
// epoch, so 1h periods start on the hour and 6h periods at 00:00, 06:00,
// 12:00 and 18:00 UTC. A fixed grid, unlike a quiet period that starts at
// the last finding, does not depend on which events were seen first, which
// is what makes suppression independent of delivery order.
func PeriodStart(t time.Time, d time.Duration) time.Time {
	t = t.UTC()
	off := (t.Unix()%int64(d/time.Second) + int64(d/time.Second)) % int64(d/time.Second)
	return time.Unix(t.Unix()-off, 0).UTC()
}

// Claim asks to publish one finding: the finding of severity Severity for
// the group Key in the suppression period that starts at Period.
type Claim struct {
	Key       string // the Aggregate.Key
	Period    time.Time
	PeriodEnd time.Time // Period plus the rule's suppress: when the record stops mattering
	FindingID string
	Batch     string // the batch that makes the claim
	Severity  rules.Severity
	// Held, in MarkSent, records that the finding was held back by its
	// rule's notification budget and counted in a digest rather than
	// sent: it is suppressed like a sent one, but a later finding of the
	// group is a rise only above what was sent.
	Held bool
}

// Grant is State.Claim's answer.
type Grant struct {
	// OK grants the claim.
	OK bool
	// Sent is the highest severity recorded as sent for (Key, Period)
	// before the claim, 0 when none was (a held finding is not sent): a
	// granted claim above a Sent severity is a rise, which always goes
	// out on its own.
	Sent rules.Severity
}

// Draw asks for one of the Limit findings that a notification budget
// (Key, Period) lets through one by one.
type Draw struct {
	Key       string // the budget's key: cluster and rule (BudgetKey)
	Period    time.Time
	PeriodEnd time.Time // when the record stops mattering
	Limit     int
	FindingID string
}

// State is the rolling per-group state.
type State interface {
	// Apply merges each bucket of aggs into the state at most once per
	// (batch, Key, Start), however often it is called with the same batch
	// and whatever part of an earlier call failed, and returns one Window
	// per aggregate, in the same order, read after the merges: of two
	// concurrent calls, the one that returns last sees the other's buckets.
	Apply(ctx context.Context, batch string, aggs []Aggregate) ([]Window, error)
	// Claim reserves the right to publish c. It refuses when a finding of
	// c.Severity or higher was sent or held for (c.Key, c.Period), or another batch
	// holds a live claim on (c.Key, c.Period) of c.Severity or higher (a
	// lease has expired when now >= granted + lease, by the wall clock). A
	// pending claim of a lower severity does not block a higher one: both
	// findings are then sent, the lower one first or not. A claim by the
	// same batch is granted again, so a retried batch re-publishes a
	// finding whose publish or MarkSent had failed: the one window in which
	// a finding can be delivered twice, with the same ID.
	Claim(ctx context.Context, c Claim) (Grant, error)
	// MarkSent records that c was published, or with c.Held that it was
	// held for a digest: the period's sent (or held) severity becomes the
	// higher of the recorded one and c.Severity, and c.Batch's claim, if
	// it still holds it, is released.
	MarkSent(ctx context.Context, c Claim) error
	// Spend grants d when d.FindingID holds one of the budget's places
	// already or fewer than d.Limit are taken, and then takes one for it.
	// It is exact under concurrency: however many callers race, at most
	// Limit findings hold places in (d.Key, d.Period), and asking again
	// for the same finding gives the same answer once it was granted.
	Spend(ctx context.Context, d Draw) (bool, error)
}

// LiveMarks is kept by a State that the function and a backfill share: per
// cluster and log stream, the earliest log event time of the deliveries
// the function applied. A subscription delivers each stream from where it
// stood when the subscription began, and streams are shipped with delays
// of their own, so one mark per cluster would leave out what a quicker
// stream shipped before then. The function counts every event it is
// delivered, so a backfill into the same state counts only what came
// before each stream's mark (Config.Fence, FenceOf).
type LiveMarks interface {
	// MarkLive lowers the mark of cluster's stream to at, or sets it; a
	// later time leaves it as it is.
	MarkLive(ctx context.Context, cluster, stream string, at time.Time) error
	// LiveSince returns the marks of cluster's streams; none when the
	// function has applied nothing for it.
	LiveSince(ctx context.Context, cluster string) (map[string]time.Time, error)
}

// auditStreamPrefix begins the name of every EKS audit log stream
// (kube-apiserver-audit-<id>); the log group also holds the API server's,
// authenticator's, controller manager's and scheduler's own logs. AWS
// names the streams.
const auditStreamPrefix = "kube-apiserver-audit-"

// FenceOf returns the time from which the function counts stream's events,
// given its cluster's marks (LiveMarks.LiveSince): the stream's own mark;
// none (zero) for an audit stream the function was never delivered, whose
// history is all the backfill's; and for a batch whose stream is unknown
// (JSON lines name it by their file) the latest of the marks, so that
// nothing is left out, at the cost of counting again what the function
// counted of its earlier streams before that.
func FenceOf(marks map[string]time.Time, stream string) time.Time {
	if t, ok := marks[stream]; ok {
		return t
	}
	if strings.HasPrefix(stream, auditStreamPrefix) {
		return time.Time{}
	}
	var latest time.Time
	for _, t := range marks {
		if t.After(latest) {
			latest = t
		}
	}
	return latest
}

// Publisher delivers findings to people and machines.
type Publisher interface {
	Publish(ctx context.Context, f *Finding) error
}
