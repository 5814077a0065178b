package cwlogs

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Encode builds the Lambda event {"awslogs":{"data":"..."}} that CloudWatch
// Logs would deliver for b. The gzip header carries no name and no time, so
// the same Batch always encodes to the same bytes and generated fixtures stay
// stable.
func Encode(b Batch) ([]byte, error) {
	payload, err := EncodePayload(b)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(payload); err != nil {
		return nil, fmt.Errorf("cwlogs: compressing payload: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("cwlogs: compressing payload: %w", err)
	}
	var ev struct {
		AWSLogs struct {
			Data string `json:"data"`
		} `json:"awslogs"`
	}
	ev.AWSLogs.Data = base64.StdEncoding.EncodeToString(gz.Bytes())
	return json.Marshal(ev)
}

// EncodePayload builds the decompressed payload JSON for b. An empty
// MessageType is written as DATA_MESSAGE. Messages are written as JSON
// strings; invalid UTF-8 in them becomes U+FFFD, as in any JSON encoder.
// subscriptionFilters is written empty: a Batch does not carry it.
func EncodePayload(b Batch) ([]byte, error) {
	type event struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	p := struct {
		MessageType         string   `json:"messageType"`
		Owner               string   `json:"owner"`
		LogGroup            string   `json:"logGroup"`
		LogStream           string   `json:"logStream"`
		SubscriptionFilters []string `json:"subscriptionFilters"`
		LogEvents           []event  `json:"logEvents"`
	}{
		MessageType:         b.MessageType,
		Owner:               b.Owner,
		LogGroup:            b.LogGroup,
		LogStream:           b.LogStream,
		SubscriptionFilters: []string{},
		LogEvents:           make([]event, len(b.Events)),
	}
	if p.MessageType == "" {
		p.MessageType = DataMessage
	}
	for i, e := range b.Events {
		p.LogEvents[i] = event{ID: e.ID, Timestamp: e.Timestamp, Message: string(e.Message)}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML escaping only guards JSON embedded in HTML; keep lines readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("cwlogs: encoding payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
