package synth

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// Batch wraps lines in a DATA_MESSAGE Batch as CloudWatch Logs would deliver
// them from logGroup. Event ids are 56-digit decimal strings like
// CloudWatch's: the event's timestamp then its number, counted from firstID,
// so they are unique and sort in delivery order. An event's timestamp is the
// line's stageTimestamp in milliseconds, or 0 when the line has none.
func Batch(lines [][]byte, logGroup, logStream string, firstID int) cwlogs.Batch {
	b := cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		Owner:       "111122223333",
		LogGroup:    logGroup,
		LogStream:   logStream,
		Cluster:     cwlogs.ClusterName(logGroup),
		Events:      make([]cwlogs.LogEvent, len(lines)),
	}
	for i, line := range lines {
		ms := stageMillis(line)
		b.Events[i] = cwlogs.LogEvent{
			ID:        fmt.Sprintf("%020d%036d", ms, firstID+i),
			Timestamp: ms,
			Message:   line,
		}
	}
	return b
}

func stageMillis(line []byte) int64 {
	var v struct {
		StageTimestamp time.Time `json:"stageTimestamp"`
	}
	if json.Unmarshal(line, &v) != nil || v.StageTimestamp.IsZero() {
		return 0
	}
	return v.StageTimestamp.UnixMilli()
}
