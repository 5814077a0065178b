// Package cwlogs decodes a CloudWatch Logs subscription event into a Batch of
// log lines, with bounded memory.
package cwlogs

// Message types of a subscription payload.
const (
	DataMessage    = "DATA_MESSAGE"
	ControlMessage = "CONTROL_MESSAGE"
)

// Batch is one decoded subscription payload.
type Batch struct {
	MessageType string
	// Owner is the AWS account of the log group, as the payload says.
	Owner string
	// Region is the log group's region. The payload does not say it: the
	// handler sets it from the Kinesis record or the function's own.
	Region    string
	LogGroup  string
	LogStream string
	// Cluster is the EKS cluster name taken from a log group of the form
	// /aws/eks/<cluster>/cluster, or the log group as it stands.
	Cluster string
	Events  []LogEvent
	// Gathered reports a batch put together from log events read
	// elsewhere (an export, a Firehose archive, FilterLogEvents pages)
	// rather than decoded from one delivery: its BatchID is not the one
	// the function gave those events, so it cannot tell what the function
	// already counted.
	Gathered bool
}

// LogEvent is one log line. Message holds the raw bytes of the line.
type LogEvent struct {
	ID        string
	Timestamp int64 // milliseconds since the epoch
	Message   []byte
	// Dropped reports that DecodeDataKeep's keep function rejected the
	// line; Message is then nil. The event stays in the batch because its
	// id is part of the batch's identity.
	Dropped bool
	// Cut reports that the line did not fit in what is left of
	// Limits.MaxDecompressed: Message holds only its first bytes, at most
	// CutPrefix of them and ending at a rune boundary, and Size says how
	// long the line is. The detector reports a cut line rather than
	// matching it, so that a delivery padded to refuse still raises one.
	Cut bool
	// Size is the length in bytes of the line, whole: len(Message) for a
	// line kept whole, more for a cut one. For a dropped line, which the
	// decoder does not unescape, it is the length of the line as it stands
	// in the payload, escaped; for an event without a message, 0.
	Size int
}
