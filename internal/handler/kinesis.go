package handler

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// Event is what the function is invoked with: a CloudWatch Logs
// subscription event, or a Kinesis event whose records each carry a
// subscription payload, gzipped, as a CloudWatch Logs destination writes
// them to its stream.
type Event struct {
	AWSLogs events.CloudwatchLogsRawData `json:"awslogs"`
	Records []events.KinesisEventRecord  `json:"Records"`
}

// Invoke handles either shape. For a Kinesis event it reports the records
// to retry (the event source mapping's ReportBatchItemFailures); for a
// subscription event its response is null, as Handle's.
func (h *Handler) Invoke(ctx context.Context, ev Event) (*events.KinesisEventResponse, error) {
	switch {
	case ev.AWSLogs.Data != "":
		return nil, h.Handle(ctx, events.CloudwatchLogsEvent{AWSLogs: ev.AWSLogs})
	case len(ev.Records) > 0:
		return h.HandleKinesis(ctx, ev.Records), nil
	}
	err := &EnvelopeError{Err: errors.New("neither a subscription event (awslogs) nor a Kinesis event (Records)")}
	h.Log.ErrorContext(ctx, "invocation failed", "error", err.Error())
	return nil, err
}

// HandleKinesis processes each record as one subscription payload, in
// order, and stops at the first that fails for want of state or SNS: it
// and every later one are retried (Lambda resumes from the lowest
// sequence number reported), and those already applied count nothing
// twice, for a record's batch id comes from its log events' ids. A record
// that cannot be decoded is poison, which no retry mends: it is logged
// with its position in the stream (where it stays for the stream's
// retention) and counted (PoisonRecords), and the shard moves on.
func (h *Handler) HandleKinesis(ctx context.Context, recs []events.KinesisEventRecord) *events.KinesisEventResponse {
	resp := &events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for i := range recs {
		r := &recs[i]
		start := h.Now()
		at := []any{
			"event_id", r.EventID,
			"sequence_number", r.Kinesis.SequenceNumber,
			"partition_key", r.Kinesis.PartitionKey,
		}
		b, err := cwlogs.DecodeGzipKeep(r.Kinesis.Data, h.Limits, h.Keep)
		if err != nil {
			err = &EnvelopeError{Err: err}
			h.Log.ErrorContext(ctx, "poison record skipped", append(at, "error", err.Error(), "data_bytes", len(r.Kinesis.Data))...)
			h.emitPoison()
			continue
		}
		b.Region = r.AwsRegion
		if h.EKSOnly && b.MessageType == cwlogs.DataMessage && !cwlogs.IsClusterLogGroup(b.LogGroup) {
			h.Log.InfoContext(ctx, "log group ignored: not an EKS cluster's", append(at, "log_group", b.LogGroup, "account", b.Owner, "events", len(b.Events))...)
			continue
		}
		if err := h.run(ctx, &b, start, "record failed", at...); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
			break
		}
	}
	return resp
}

// emitPoison writes the metric of a record that could not be decoded.
func (h *Handler) emitPoison() {
	if h.Metrics != nil {
		h.writeEMF("unknown", []metric{{"PoisonRecords", "Count", 1}})
	}
}
