// Package deploy states the facts that the SAM template (template.yaml at
// the repository root) and the code must agree on: the IAM actions each
// function is granted, the table's key and TTL attribute names, the message
// attribute the e-mail subscription filters on.
//
// The template cannot import Go, so each fact lives here once. This
// package's tests check template.yaml, samconfig.toml and env.json against
// them; the adapters' tests check the code against them (for example, that
// the DynamoDB adapter calls no operation DetectorDynamoDBActions lacks).
package deploy

// DetectorDynamoDBActions are the DynamoDB actions the detector's role holds
// on the state table, and the only ones: the table adapter
// (internal/dynamostate) must make no other call.
var DetectorDynamoDBActions = []string{"dynamodb:UpdateItem", "dynamodb:Query"}

// DetectorSNSActions are the SNS actions the detector's role holds on the
// findings topic.
var DetectorSNSActions = []string{"sns:Publish"}

// SlackNotifierSSMActions are the SSM actions the Slack notifier's role
// holds on the webhook parameter. The notifier reads it with decryption;
// the AWS managed key aws/ssm needs no KMS grant for that.
var SlackNotifierSSMActions = []string{"ssm:GetParameter"}

// Names the state table and its items share with the DynamoDB adapter.
const (
	TablePartitionKey = "pk"
	TableSortKey      = "sk"
	// TableTTLAttribute holds an item's expiry in epoch seconds. DynamoDB
	// deletes expired items late (up to days), so it only cleans up.
	TableTTLAttribute = "expires_at"
)

// SeverityAttribute is the SNS message attribute, a String holding the
// finding's severity name ("low" ... "critical"), that the publisher sets on
// every finding and the filter policies of the e-mail and Slack
// subscriptions read. A finding published without it never reaches e-mail
// or Slack.
const SeverityAttribute = "severity"

// Environment variables the functions read; the template sets them.
const (
	EnvTableName = "TABLE_NAME"
	EnvTopicARN  = "TOPIC_ARN"
	EnvRulesFile = "RULES_FILE"
	// EnvQualifyClusters is "true" in the organization's detector
	// (org/central.yaml): clusters of one name in different accounts or
	// regions are kept apart (detect.Config.Qualify).
	EnvQualifyClusters  = "QUALIFY_CLUSTERS"
	EnvWebhookParameter = "WEBHOOK_PARAMETER"
	// EnvWebhookAllowed lists, comma-separated, the URL prefixes the Slack
	// notifier may post to (slack.DefaultAllowedWebhooks when empty).
	EnvWebhookAllowed = "WEBHOOK_ALLOWED_PREFIXES"
	// EnvSlackMaxAttempts and EnvSlackRetryBudget set a Slack notifier's
	// retry policy (slack.ParsePolicy). They are what sets the notifier for
	// critical findings apart from the other one.
	EnvSlackMaxAttempts = "SLACK_MAX_ATTEMPTS"
	EnvSlackRetryBudget = "SLACK_RETRY_BUDGET"
)
