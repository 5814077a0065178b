// Package handler is the detector Lambda's handler: it decodes the
// CloudWatch Logs subscription event, runs the batch through the Detector,
// and reports what it did as one log line and one set of metrics in
// CloudWatch Embedded Metric Format.
//
// It holds no AWS clients; functions/detector wires them in.
package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
)

// EnvelopeError reports a subscription event that cannot be decoded. The
// handler returns it so that Lambda retries and then sends the event, intact,
// to the on-failure destination, where it can be inspected and replayed.
// Lambda reports it with errorType "EnvelopeError".
type EnvelopeError struct{ Err error }

func (e *EnvelopeError) Error() string { return "decode subscription event: " + e.Err.Error() }
func (e *EnvelopeError) Unwrap() error { return e.Err }

// BatchError reports that state or publishing failed for a batch after the
// SDK's own retries, so Lambda retries the whole invocation (safe: state is
// applied once per batch, and a finding already sent is not sent again).
// Lambda reports it with errorType "BatchError".
type BatchError struct{ Err error }

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// Processor runs one batch; *detect.Detector is one.
type Processor interface {
	Process(ctx context.Context, b *cwlogs.Batch) (detect.Result, error)
}

// Handler handles subscription events.
type Handler struct {
	Processor Processor
	Log       *slog.Logger
	// Metrics receives one EMF line per invocation (Lambda: stdout).
	Metrics io.Writer
	Limits  cwlogs.Limits
	// Keep, when set, is the detector's pre-filter (detect.Detector.Keep),
	// applied to each message before it is unescaped
	// (cwlogs.DecodeDataKeep), so the lines no rule can match cost almost
	// nothing.
	Keep func(escaped []byte) bool
	Now  func() time.Time
	// Region is the function's own (AWS_REGION): that of the log groups a
	// subscription delivers. A Kinesis record names its own.
	Region string
	// EKSOnly makes the handler skip, as a whole, a batch from a log group
	// that is not an EKS cluster's (/aws/eks/<name>/cluster): an account's
	// subscription filter policy selects log groups by name, and can only
	// exclude some.
	EKSOnly bool
	// DynamoDBCalls and SNSCalls, when set, return running totals of
	// the adapters' API calls; the handler reports each invocation's share.
	DynamoDBCalls, SNSCalls func() int64

	mu sync.Mutex // serialises Metrics writes
}

// Handle processes one subscription event.
func (h *Handler) Handle(ctx context.Context, ev events.CloudwatchLogsEvent) error {
	start := h.Now()
	b, err := cwlogs.DecodeDataKeep(ev.AWSLogs.Data, h.Limits, h.Keep)
	if err != nil {
		err = &EnvelopeError{Err: err}
		h.Log.ErrorContext(ctx, "invocation failed", "error", err.Error(), "payload_bytes", len(ev.AWSLogs.Data))
		h.emit(&detect.Result{}, "", 0, 0, h.Now().Sub(start), true)
		return err
	}
	// A subscription invokes the function in the log group's region.
	b.Region = h.Region
	return h.run(ctx, &b, start, "invocation failed")
}

// run processes a decoded batch, and logs and measures it; extra goes into
// its log line. failed is the message of the line when it fails.
func (h *Handler) run(ctx context.Context, b *cwlogs.Batch, start time.Time, failed string, extra ...any) error {
	dynBefore, snsBefore := calls(h.DynamoDBCalls), calls(h.SNSCalls)
	res, err := h.Processor.Process(ctx, b)
	took := h.Now().Sub(start)
	dyn, sns := calls(h.DynamoDBCalls)-dynBefore, calls(h.SNSCalls)-snsBefore
	attrs := append([]any{
		"cluster", b.Cluster,
		"account", b.Owner,
		"region", b.Region,
		"log_group", b.LogGroup,
		"log_stream", b.LogStream,
		"batch", res.Batch,
		"control", res.Control,
		"events", res.Events,
		"filtered", res.Filtered,
		"skipped", res.SkippedTotal(),
		"skipped_by_reason", skippedAttr(res.Skipped),
		"parsed", res.Parsed,
		"damaged", res.Damaged,
		"matched", res.Matched,
		"aggregates", res.Aggregates,
		"findings_due", res.Due,
		"findings_published", res.Published,
		"findings_suppressed", res.Suppressed,
		"findings_held", res.Held,
		"digests_published", res.Digests,
		"dynamodb_calls", dyn,
		"sns_calls", sns,
		"duration_ms", float64(took.Microseconds()) / 1000,
	}, extra...)
	if res.EvalErrors > 0 {
		attrs = append(attrs, "rule_eval_errors", res.EvalErrors)
	}
	h.emit(&res, b.Cluster, dyn, sns, took, err != nil)
	if err != nil {
		err = &BatchError{Err: err}
		h.Log.ErrorContext(ctx, failed, append(attrs, "error", err.Error())...)
		return err
	}
	h.Log.InfoContext(ctx, "batch processed", attrs...)
	return nil
}

func calls(f func() int64) int64 {
	if f == nil {
		return 0
	}
	return f()
}

// skippedAttr logs skip counts as a group with a stable key order.
func skippedAttr(m map[string]int) slog.Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	as := make([]slog.Attr, len(keys))
	for i, k := range keys {
		as[i] = slog.Int(k, m[k])
	}
	return slog.GroupValue(as...)
}

// MetricsNamespace is the CloudWatch namespace of the EMF metrics.
const MetricsNamespace = "anonwatch"

// emit writes the invocation's counters as one EMF document, with the
// dimension Cluster. EMF costs no API call: CloudWatch Logs extracts the
// metrics from the function's own log.
func (h *Handler) emit(r *detect.Result, cluster string, dyn, sns int64, took time.Duration, failed bool) {
	if h.Metrics == nil {
		return
	}
	if cluster == "" {
		cluster = "unknown"
	}
	failures := 0
	if failed {
		failures = 1
	}
	h.writeEMF(cluster, []metric{
		{"Events", "Count", float64(r.Events)},
		{"Filtered", "Count", float64(r.Filtered)},
		{"Skipped", "Count", float64(r.SkippedTotal())},
		{"Parsed", "Count", float64(r.Parsed)},
		{"Damaged", "Count", float64(r.Damaged)},
		{"Matched", "Count", float64(r.Matched)},
		{"FindingsDue", "Count", float64(r.Due)},
		{"FindingsPublished", "Count", float64(r.Published)},
		{"FindingsSuppressed", "Count", float64(r.Suppressed)},
		{"FindingsHeld", "Count", float64(r.Held)},
		{"DynamoDBCalls", "Count", float64(dyn)},
		{"SNSCalls", "Count", float64(sns)},
		{"Failures", "Count", float64(failures)},
		{"ProcessingTime", "Milliseconds", float64(took.Microseconds()) / 1000},
	})
}

// metric is one value of an EMF document.
type metric struct {
	name, unit string
	v          float64
}

// writeEMF writes values as one EMF document with the dimension Cluster.
func (h *Handler) writeEMF(cluster string, values []metric) {
	doc := map[string]any{"Cluster": cluster}
	defs := make([]map[string]string, len(values))
	for i, m := range values {
		doc[m.name] = m.v
		defs[i] = map[string]string{"Name": m.name, "Unit": m.unit}
	}
	doc["_aws"] = map[string]any{
		"Timestamp": h.Now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  MetricsNamespace,
			"Dimensions": [][]string{{"Cluster"}},
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		h.Log.Error("metrics not written", "error", fmt.Sprintf("marshal EMF: %v", err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Metrics.Write(append(line, '\n'))
}
