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
	Owner       string
	LogGroup    string
	LogStream   string
	// Cluster is the EKS cluster name taken from a log group of the form
	// /aws/eks/<cluster>/cluster, or the log group as it stands.
	Cluster string
	Events  []LogEvent
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
}
