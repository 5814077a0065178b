package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/finding"
	"github.com/anonwatch/anonwatch/internal/render"
)

// Notifier posts to Slack each finding that SNS delivers to the
// slack-notifier function.
type Notifier struct {
	poster *Poster
	log    *slog.Logger
}

// NewNotifier returns a Notifier that posts through poster and logs to log.
func NewNotifier(poster *Poster, log *slog.Logger) *Notifier {
	return &Notifier{poster: poster, log: log}
}

// Handle posts one Slack message per record of ev. It is the Lambda handler.
//
// The topic is published with MessageStructure "json", and SNS hands a
// Lambda subscriber the document's "lambda" key: the finding JSON. A record
// whose Message is not a finding is logged and dropped, because retrying
// cannot fix it; a failed post is returned, so that Lambda retries the
// invocation. SNS delivers one record per invocation, so a retry repeats no
// post that succeeded.
func (n *Notifier) Handle(ctx context.Context, ev events.SNSEvent) error {
	var errs []error
	for _, rec := range ev.Records {
		f, err := decodeFinding(rec.SNS.Message)
		if err != nil {
			n.log.ErrorContext(ctx, "dropped an SNS message that is not a finding",
				"message_id", rec.SNS.MessageID, "topic", rec.SNS.TopicArn, "bytes", len(rec.SNS.Message), "error", err)
			continue
		}
		payload, err := render.SlackBlocks(f)
		if err != nil {
			n.log.ErrorContext(ctx, "dropped a finding that does not render",
				"message_id", rec.SNS.MessageID, "finding_id", f.ID, "error", err)
			continue
		}
		if err := n.poster.Post(ctx, payload); err != nil {
			errs = append(errs, fmt.Errorf("finding %s (SNS message %s): %w", f.ID, rec.SNS.MessageID, err))
			continue
		}
		n.log.InfoContext(ctx, "posted finding to slack",
			"message_id", rec.SNS.MessageID, "finding_id", f.ID, "rule", f.Rule, "severity", f.Severity, "bytes", len(payload))
	}
	return errors.Join(errs...)
}

// decodeFinding parses msg as a finding and checks the fields every
// finding has, so that some other JSON object (a topic's default text, a
// test message) is not posted as an empty finding.
func decodeFinding(msg string) (*finding.Finding, error) {
	var f finding.Finding
	if err := json.Unmarshal([]byte(msg), &f); err != nil {
		return nil, fmt.Errorf("not finding JSON: %v", err)
	}
	switch {
	case f.ID == "":
		return nil, errors.New("no finding_id")
	case f.Rule == "":
		return nil, errors.New("no rule")
	case f.Severity == "":
		return nil, errors.New("no severity")
	}
	return &f, nil
}
