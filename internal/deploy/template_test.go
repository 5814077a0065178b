package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
	"github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/cloudformation/sns"
	"github.com/awslabs/goformation/v7/cloudformation/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/slack"
)

// The template's resources, their types and conditions. A resource added to
// or removed from template.yaml fails here until the tests cover it.
var wantResources = map[string]struct{ typ, condition string }{
	"DetectorFunction":      {"AWS::Serverless::Function", ""},
	"DetectorLogGroup":      {"AWS::Logs::LogGroup", ""},
	"SlackNotifierFunction": {"AWS::Serverless::Function", "HasSlackBelowCritical"},
	"SlackNotifierLogGroup": {"AWS::Logs::LogGroup", "HasSlackBelowCritical"},
	// Critical findings reach Slack whenever Slack is configured at all.
	"SlackCriticalNotifierFunction": {"AWS::Serverless::Function", "HasSlack"},
	"SlackCriticalNotifierLogGroup": {"AWS::Logs::LogGroup", "HasSlack"},
	"Table":                         {"AWS::DynamoDB::Table", ""},
	"Topic":                         {"AWS::SNS::Topic", ""},
	"EmailSubscription":             {"AWS::SNS::Subscription", "HasAlertEmail"},
	"AlarmTopic":                    {"AWS::SNS::Topic", ""},
	"AlarmTopicPolicy":              {"AWS::SNS::TopicPolicy", ""},
	"AlarmEmailSubscription":        {"AWS::SNS::Subscription", "HasAlertEmail"},
	"DeadLetterQueue":               {"AWS::SQS::Queue", ""},
	"DetectorErrorsAlarm":           {"AWS::CloudWatch::Alarm", ""},
	"DetectorThrottlesAlarm":        {"AWS::CloudWatch::Alarm", ""},
	"DetectorDurationAlarm":         {"AWS::CloudWatch::Alarm", ""},
	"DeadLetterQueueAlarm":          {"AWS::CloudWatch::Alarm", ""},
	"DamagedAuditLinesAlarm":        {"AWS::CloudWatch::Alarm", ""},
}

func TestTemplateResources(t *testing.T) {
	l := load(t)
	if got := l.raw["Transform"]; got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", got)
	}
	// goformation does not merge Globals into resources, so a property set
	// there would escape every assertion below.
	if g, ok := l.raw["Globals"]; ok {
		t.Errorf("template has Globals (%v); state each property on its resource", g)
	}
	type res struct{ typ, condition string }
	got := map[string]res{}
	for name, r := range asMap(l.raw["Resources"]) {
		r := asMap(r)
		typ, _ := r["Type"].(string)
		cond, _ := r["Condition"].(string)
		got[name] = res{typ, cond}
		// goformation picks the struct by Type; a wrong Type that still
		// names a real resource would parse as that resource.
		if typed, ok := l.typed.Resources[name]; !ok || typed.AWSCloudFormationType() != typ {
			t.Errorf("%s: goformation parsed it as %v, want %s", name, typed, typ)
		}
	}
	want := map[string]res{}
	for name, w := range wantResources {
		want[name] = res(w)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(res{})); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}

func TestParameters(t *testing.T) {
	l := load(t)
	retention := []any{}
	for _, d := range []float64{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653} {
		retention = append(retention, d)
	}
	var severities []any
	for s := rules.Low; s <= rules.Critical; s++ {
		severities = append(severities, s.String())
	}
	var reservations []any
	for n := range 11 {
		reservations = append(reservations, float64(n))
	}
	want := cloudformation.Parameters{
		"ClusterName": {
			Type:                  "String",
			AllowedPattern:        new("^[0-9A-Za-z][A-Za-z0-9_-]*$"),
			MinLength:             new(1),
			MaxLength:             new(100),
			ConstraintDescription: new("an EKS cluster name (letters, digits, - and _)"),
		},
		"FilterPattern": {Type: "String", Default: "", MaxLength: new(1024)},
		"AlertEmail": {
			Type: "String", Default: "",
			AllowedPattern:        new(`^$|^[^@\s]+@[^@\s]+$`),
			ConstraintDescription: new("empty, or one e-mail address"),
		},
		// The e-mail threshold speaks the rule files' severity names.
		"EmailMinSeverity": {Type: "String", Default: "high", AllowedValues: severities},
		"SlackMinSeverity": {Type: "String", Default: "high", AllowedValues: severities},
		"SlackWebhookParameter": {
			Type: "String", Default: "",
			AllowedPattern:        new("^$|^/[A-Za-z0-9_./-]+$"),
			ConstraintDescription: new("empty, or a parameter name that starts with /"),
		},
		// Slack's incoming webhooks unless widened; a prefix ends its host
		// with "/".
		"SlackWebhookAllowedPrefixes": {
			Type: "String", Default: "https://hooks.slack.com/",
			AllowedPattern:        new("^https://[^,/]+/[^,]*(,https://[^,/]+/[^,]*)*$"),
			ConstraintDescription: new("https URL prefixes, each with a / after the host, separated by commas"),
		},
		"RulesFile": {
			Type: "String", Default: "",
			AllowedPattern:        new("^$|^[A-Za-z0-9_][A-Za-z0-9_./-]*$"),
			ConstraintDescription: new("empty, or a relative path"),
		},
		// Up to 10: Slack takes about a post a second, so more instances
		// would only be refused more often. 0 reserves nothing.
		"SlackNotifierReservedConcurrency": {Type: "Number", Default: float64(2), AllowedValues: reservations},
		"PointInTimeRecovery":              {Type: "String", Default: "true", AllowedValues: []any{"true", "false"}},
		// The retention periods CloudWatch Logs accepts (PutRetentionPolicy,
		// retentionInDays).
		"LogRetentionDays": {Type: "Number", Default: float64(30), AllowedValues: retention},
	}
	got := cloudformation.Parameters{}
	for name, p := range l.typed.Parameters {
		p.Description = nil // prose, checked by reading
		got[name] = p
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
	// Only ClusterName has no default: with samconfig.toml, it is the one
	// value a first deployment must be given.
	for name, p := range l.typed.Parameters {
		if _, ok := asMap(asMap(l.raw["Parameters"])[name])["Default"]; !ok && name != "ClusterName" {
			t.Errorf("parameter %s (%+v) has no default", name, p)
		}
	}
}

// TestParameterPatterns checks that the AllowedPatterns accept and refuse
// what their descriptions say. CloudFormation evaluates them as Java
// regular expressions; these use nothing Go's regexp reads differently.
func TestParameterPatterns(t *testing.T) {
	l := load(t)
	tests := []struct {
		param string
		value string
		want  bool
	}{
		{"ClusterName", "prod-eu_1", true},
		{"ClusterName", "-prod", false},
		{"ClusterName", "prod/1", false},
		{"AlertEmail", "", true},
		{"AlertEmail", "secops@example.com", true},
		{"AlertEmail", "secops", false},
		{"AlertEmail", "a b@example.com", false},
		{"SlackWebhookParameter", "", true},
		{"SlackWebhookParameter", "/anonwatch/slack-webhook", true},
		// The policy's ARN is ...:parameter${SlackWebhookParameter}, which
		// needs the leading slash.
		{"SlackWebhookParameter", "anonwatch/slack-webhook", false},
		{"SlackWebhookParameter", "/anonwatch/*", false},
		{"RulesFile", "", true},
		{"RulesFile", "rules.yaml", true},
		{"RulesFile", "rules/prod.yaml", true},
		{"RulesFile", "/etc/rules.yaml", false},
		{"RulesFile", "../rules.yaml", false},
	}
	for _, tt := range tests {
		p, ok := l.typed.Parameters[tt.param]
		if !ok || p.AllowedPattern == nil {
			t.Fatalf("parameter %s has no AllowedPattern", tt.param)
		}
		re := regexp.MustCompile(*p.AllowedPattern)
		if got := re.MatchString(tt.value); got != tt.want {
			t.Errorf("%s AllowedPattern %q on %q = %v, want %v", tt.param, *p.AllowedPattern, tt.value, got, tt.want)
		}
	}
}

func TestConditions(t *testing.T) {
	l := load(t)
	notEmpty := func(param string) any {
		return map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": param}, ""}}}}
	}
	want := map[string]any{
		"HasAlertEmail": notEmpty("AlertEmail"),
		"HasSlack":      notEmpty("SlackWebhookParameter"),
		// The notifier for findings below critical exists unless
		// SlackMinSeverity leaves it nothing to post.
		"HasSlackBelowCritical": map[string]any{"Fn::And": []any{
			map[string]any{"Condition": "HasSlack"},
			map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "SlackMinSeverity"}, rules.Critical.String()}}}},
		}},
		// A Ref to a Number parameter is a string.
		"HasSlackReservedConcurrency": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "SlackNotifierReservedConcurrency"}, "0"}}}},
		"HasRulesFile":                notEmpty("RulesFile"),
		"HasCustomFilterPattern":      notEmpty("FilterPattern"),
	}
	if diff := cmp.Diff(want, l.raw["Conditions"]); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
}

// wantLogging is the LoggingConfig every function carries: JSON logs, which
// lambdacontext's slog handler writes, at INFO, with Lambda's own platform
// lines only from WARN up.
func wantLogging(logGroup string) map[string]any {
	return map[string]any{
		"LogFormat":           "JSON",
		"ApplicationLogLevel": "INFO",
		"SystemLogLevel":      "WARN",
		"LogGroup":            map[string]any{"Ref": logGroup},
	}
}

func TestDetectorFunction(t *testing.T) {
	l := load(t)
	got, err := l.typed.GetServerlessFunctionWithName("DetectorFunction")
	if err != nil {
		t.Fatal(err)
	}
	pattern := defaultFilterPattern(t, l)
	want := &serverless.Function{
		Description:   new("Reads EKS audit events and publishes anonymous-access findings."),
		CodeUri:       &serverless.Function_CodeUri{String: new(".")},
		Handler:       new("bootstrap"),
		Runtime:       new("provided.al2023"),
		Architectures: []string{"arm64"},
		MemorySize:    new(128),
		Timeout:       new(60),
		Environment: &serverless.Function_FunctionEnvironment{Variables: map[string]string{
			EnvTableName: "{Ref:Table}",
			EnvTopicARN:  "{Ref:Topic}",
			// Unset, not empty, when the parameter is empty.
			EnvRulesFile:                "{If:HasRulesFile|{Ref:RulesFile}|{Ref:AWS::NoValue}}",
			"AWS_ENDPOINT_URL_DYNAMODB": "",
			"AWS_ENDPOINT_URL_SNS":      "",
		}},
		Events: map[string]serverless.Function_EventSource{
			"AuditLog": {
				Type: "CloudWatchLogs",
				Properties: &serverless.Function_Properties{CloudWatchLogsEvent: &serverless.Function_CloudWatchLogsEvent{
					LogGroupName:  "{Sub:/aws/eks/${ClusterName}/cluster}",
					FilterPattern: "{If:HasCustomFilterPattern|{Ref:FilterPattern}|" + pattern + "}",
				}},
			},
		},
		EventInvokeConfig: wantEventInvokeConfig(),
		AWSCloudFormationMetadata: map[string]any{
			"BuildMethod": "makefile",
		},
	}
	checkFunction(t, l, "DetectorFunction", got, want)
	if diff := cmp.Diff(wantLogging("DetectorLogGroup"), rawProperty(t, l, "DetectorFunction", "LoggingConfig")); diff != "" {
		t.Errorf("DetectorFunction LoggingConfig (-want +got):\n%s", diff)
	}

	// Least privilege: these two statements and nothing else. SAM adds
	// sqs:SendMessage on the dead-letter queue for the SQS destination,
	// and AWSLambdaBasicExecutionRole for the logs.
	wantStatements := []any{
		map[string]any{
			"Sid": "RollingState", "Effect": "Allow",
			"Action":   toAny(DetectorDynamoDBActions),
			"Resource": "{GetAtt:Table.Arn}",
		},
		map[string]any{
			"Sid": "PublishFindings", "Effect": "Allow",
			"Action":   toAny(DetectorSNSActions),
			"Resource": "{Ref:Topic}",
		},
	}
	if diff := cmp.Diff(wantStatements, statements(t, got)); diff != "" {
		t.Errorf("DetectorFunction policy statements (-want +got):\n%s", diff)
	}
}

// slackFunctions are the two Slack notifier functions: the same program,
// configured apart.
var slackFunctions = []string{"SlackNotifierFunction", "SlackCriticalNotifierFunction"}

func TestSlackNotifierFunctions(t *testing.T) {
	l := load(t)
	tests := []struct {
		name        string
		description string
		timeout     int
		logGroup    string
		attempts    string
		budget      string
		// severity is the subscription's filter on the severity attribute.
		severity any
	}{
		{
			name:        "SlackNotifierFunction",
			description: "Posts anonwatch findings below critical to a Slack incoming webhook.",
			timeout:     75,
			logGroup:    "SlackNotifierLogGroup",
			attempts:    "4",
			budget:      "30s",
			// From SlackMinSeverity up, less critical (TestSlackSeverityFilter).
			severity: map[string]any{
				"Fn::FindInMap": []any{"SeverityAtOrAboveBelowCritical", map[string]any{"Ref": "SlackMinSeverity"}, "Severities"},
			},
		},
		{
			name:        "SlackCriticalNotifierFunction",
			description: "Posts critical anonwatch findings to a Slack incoming webhook, apart from the rest.",
			timeout:     390,
			logGroup:    "SlackCriticalNotifierLogGroup",
			attempts:    "20",
			budget:      "180s",
			// Critical alone, whatever SlackMinSeverity says.
			severity: []any{rules.Critical.String()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.typed.GetServerlessFunctionWithName(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			want := &serverless.Function{
				Description:   new(tt.description),
				CodeUri:       &serverless.Function_CodeUri{String: new(".")},
				Handler:       new("bootstrap"),
				Runtime:       new("provided.al2023"),
				Architectures: []string{"arm64"},
				MemorySize:    new(128),
				Timeout:       new(tt.timeout),
				Environment: &serverless.Function_FunctionEnvironment{Variables: map[string]string{
					EnvWebhookParameter: "{Ref:SlackWebhookParameter}",
					EnvWebhookAllowed:   "{Ref:SlackWebhookAllowedPrefixes}",
					EnvSlackMaxAttempts: tt.attempts,
					EnvSlackRetryBudget: tt.budget,
				}},
				// Both dead-letter to the same queue, whose alarm reports a
				// finding Slack never took.
				EventInvokeConfig:          wantEventInvokeConfig(),
				AWSCloudFormationMetadata:  map[string]any{"BuildMethod": "makefile"},
				AWSCloudFormationCondition: wantResources[tt.name].condition,
			}
			// goformation's SNS event has no FilterPolicy: the events are
			// checked raw.
			got.Events = nil
			checkFunction(t, l, tt.name, got, want, "ReservedConcurrentExecutions")
			wantEvents := map[string]any{"Findings": map[string]any{
				"Type": "SNS",
				"Properties": map[string]any{
					"Topic":             map[string]any{"Ref": "Topic"},
					"FilterPolicyScope": "MessageAttributes",
					"FilterPolicy":      map[string]any{SeverityAttribute: tt.severity},
				},
			}}
			if diff := cmp.Diff(wantEvents, rawProperty(t, l, tt.name, "Events")); diff != "" {
				t.Errorf("Events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantLogging(tt.logGroup), rawProperty(t, l, tt.name, "LoggingConfig")); diff != "" {
				t.Errorf("LoggingConfig (-want +got):\n%s", diff)
			}
			// Reserved concurrency keeps a flood of findings from taking
			// the detector's, unless the parameter is 0: an account with a
			// low concurrency quota cannot reserve any.
			wantReserved := map[string]any{"Fn::If": []any{
				"HasSlackReservedConcurrency",
				map[string]any{"Ref": "SlackNotifierReservedConcurrency"},
				map[string]any{"Ref": "AWS::NoValue"},
			}}
			if diff := cmp.Diff(wantReserved, rawProperty(t, l, tt.name, "ReservedConcurrentExecutions")); diff != "" {
				t.Errorf("ReservedConcurrentExecutions (-want +got):\n%s", diff)
			}
			wantStatements := []any{
				map[string]any{
					"Sid": "ReadWebhook", "Effect": "Allow",
					"Action":   toAny(SlackNotifierSSMActions),
					"Resource": "{Sub:arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SlackWebhookParameter}}",
				},
			}
			if diff := cmp.Diff(wantStatements, statements(t, got)); diff != "" {
				t.Errorf("policy statements (-want +got):\n%s", diff)
			}

			// The function's own code accepts its retry policy, and its
			// timeout outlasts the longest post the policy allows, so a
			// post that fails ends with its own error, not a timeout.
			policy, err := slack.ParsePolicy(tt.attempts, tt.budget)
			if err != nil {
				t.Fatalf("the notifier would refuse its settings: %v", err)
			}
			const margin = 5 * time.Second // rendering, logging, the runtime
			if limit := time.Duration(*got.Timeout) * time.Second; policy.MaxDuration()+margin > limit {
				t.Errorf("Timeout %v is shorter than the policy's longest post %v plus %v", limit, policy.MaxDuration(), margin)
			}
		})
	}
}

// TestSlackPaths checks what makes the critical path worth having: it is
// more patient with Slack's rate limit than the other path, and otherwise
// the same function, so a fix to one cannot miss the other.
func TestSlackPaths(t *testing.T) {
	l := load(t)
	fns := map[string]map[string]any{}
	policies := map[string]slack.Policy{}
	for _, name := range slackFunctions {
		r := rawResource(t, l, name)
		fns[name] = r
		vars := asMap(asMap(asMap(r["Properties"])["Environment"])["Variables"])
		attempts, _ := vars[EnvSlackMaxAttempts].(string)
		budget, _ := vars[EnvSlackRetryBudget].(string)
		p, err := slack.ParsePolicy(attempts, budget)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		policies[name] = p
	}
	normal, critical := policies["SlackNotifierFunction"], policies["SlackCriticalNotifierFunction"]
	if normal != slack.DefaultPolicy {
		t.Errorf("SlackNotifierFunction's policy %+v differs from slack.DefaultPolicy %+v, which its comments describe", normal, slack.DefaultPolicy)
	}
	if critical.MaxAttempts <= normal.MaxAttempts || critical.Budget <= normal.Budget {
		t.Errorf("the critical path's policy %+v is not more patient than the other's %+v in both attempts and budget", critical, normal)
	}

	// Everything but what sets them apart is the same.
	strip := func(r map[string]any) map[string]any {
		var c map[string]any
		b, _ := json.Marshal(r)
		_ = json.Unmarshal(b, &c)
		delete(c, "Condition")
		props := asMap(c["Properties"])
		for _, k := range []string{"Description", "Timeout", "LoggingConfig", "Events"} {
			delete(props, k)
		}
		vars := asMap(asMap(props["Environment"])["Variables"])
		delete(vars, EnvSlackMaxAttempts)
		delete(vars, EnvSlackRetryBudget)
		return c
	}
	if diff := cmp.Diff(strip(fns["SlackNotifierFunction"]), strip(fns["SlackCriticalNotifierFunction"])); diff != "" {
		t.Errorf("the two Slack functions differ beyond condition, description, timeout, log group, filter and retry policy (-notifier +critical):\n%s", diff)
	}
}

// TestSlackSeverityFilter resolves both Slack subscriptions' filters for
// every SlackMinSeverity a user can choose: together they let through
// exactly that severity and the ones above, critical always, and no
// severity through both, which would post a finding twice.
func TestSlackSeverityFilter(t *testing.T) {
	l := load(t)
	mappings := asMap(l.raw["Mappings"])
	below := asMap(mappings["SeverityAtOrAboveBelowCritical"])
	p := l.typed.Parameters["SlackMinSeverity"]
	if len(below) != len(p.AllowedValues) {
		t.Errorf("SeverityAtOrAboveBelowCritical has %d keys, SlackMinSeverity allows %d values", len(below), len(p.AllowedValues))
	}
	critical := rules.Critical.String()
	// The critical path's filter, as its subscription has it.
	criticalFilter := asStrings(asMap(asMap(asMap(asMap(rawProperty(t, l, "SlackCriticalNotifierFunction", "Events"))["Findings"])["Properties"])["FilterPolicy"])[SeverityAttribute])
	if !slices.Equal(criticalFilter, []string{critical}) {
		t.Errorf("SlackCriticalNotifierFunction filters on %v, want %s alone", criticalFilter, critical)
	}
	for _, v := range p.AllowedValues {
		name, _ := v.(string)
		min, err := rules.ParseSeverity(name)
		if err != nil {
			t.Fatalf("SlackMinSeverity allows %q: %v", name, err)
		}
		// SlackNotifierFunction exists only below critical
		// (HasSlackBelowCritical, checked in TestConditions).
		var normal []string
		if min < rules.Critical {
			normal = asStrings(asMap(below[name])["Severities"])
		}
		var want, union []string
		for s := min; s <= rules.Critical; s++ {
			want = append(want, s.String())
		}
		union = append(slices.Clone(normal), criticalFilter...)
		if diff := cmp.Diff(want, union); diff != "" {
			t.Errorf("severities posted to Slack at SlackMinSeverity=%s (-want +got):\n%s", name, diff)
		}
		for _, s := range criticalFilter {
			if slices.Contains(normal, s) {
				t.Errorf("at SlackMinSeverity=%s both notifiers take %s findings: each would be posted twice", name, s)
			}
		}
	}
	// The entry for critical, which no function uses, names no severity.
	for _, s := range asStrings(asMap(below[critical])["Severities"]) {
		if _, err := rules.ParseSeverity(s); err == nil {
			t.Errorf("SeverityAtOrAboveBelowCritical.critical names the severity %q; it must match no finding", s)
		}
	}
}

// wantEventInvokeConfig is every function's asynchronous-invocation setup:
// two retries, the full six hours of event age, then the dead-letter queue.
func wantEventInvokeConfig() *serverless.Function_EventInvokeConfig {
	return &serverless.Function_EventInvokeConfig{
		MaximumRetryAttempts:     new(2),
		MaximumEventAgeInSeconds: new(6 * 3600),
		DestinationConfig: &serverless.Function_EventInvokeDestinationConfig{
			OnFailure: &serverless.Function_Destination{Type: new("SQS"), Destination: "{GetAtt:DeadLetterQueue.Arn}"},
		},
	}
}

// checkFunction compares a function with want field by field, leaving out
// Policies (see statements) and the properties goformation does not model.
// unmodelledKeys are the unmodelled properties the function has besides
// LoggingConfig, which every function has; the caller checks them on raw.
func checkFunction(t *testing.T, l *loaded, name string, got, want *serverless.Function, unmodelledKeys ...string) {
	t.Helper()
	g := *got
	g.Policies = nil
	if diff := cmp.Diff(want, &g); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
	// The raw properties must be exactly those goformation saw plus the
	// unmodelled ones, so nothing hides in a property goformation drops.
	var keys []string
	for k := range asMap(rawResource(t, l, name)["Properties"]) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"Architectures", "CodeUri", "Description", "Environment", "EventInvokeConfig", "Events", "Handler", "LoggingConfig", "MemorySize", "Policies", "Runtime", "Timeout"}
	wantKeys = append(wantKeys, unmodelledKeys...)
	sort.Strings(wantKeys)
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("%s property names (-want +got):\n%s", name, diff)
	}
	// goformation keeps an event's properties only if they fit the one
	// struct it picks, so compare the raw events too.
	for ev, src := range asMap(rawProperty(t, l, name, "Events")) {
		props := asMap(asMap(src)["Properties"])
		var names []string
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		var wantNames []string
		switch asMap(src)["Type"] {
		case "CloudWatchLogs":
			wantNames = []string{"FilterPattern", "LogGroupName"}
		case "SNS":
			wantNames = []string{"FilterPolicy", "FilterPolicyScope", "Topic"}
		}
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s event %s has properties %v, want %v", name, ev, names, wantNames)
		}
	}
}

// statements returns a function's inline policy statements, failing the
// test unless Policies is exactly one policy document of statements: no
// managed policy names and no SAM policy templates, whose permissions the
// tests could not see.
func statements(t *testing.T, fn *serverless.Function) []any {
	t.Helper()
	if fn.Policies == nil || fn.Policies.IAMPolicyDocumentArray == nil || len(*fn.Policies.IAMPolicyDocumentArray) != 1 {
		t.Fatalf("Policies must be one inline policy document, got %+v", fn.Policies)
	}
	// goformation's union decoding also fills StringArray and
	// SAMPolicyTemplateArray with zero values for a list of documents;
	// anything non-zero there is a real managed policy or template.
	if sa := fn.Policies.StringArray; sa != nil && slices.ContainsFunc(*sa, func(s string) bool { return s != "" }) {
		t.Errorf("Policies names managed policies %v", *sa)
	}
	if tpl := fn.Policies.SAMPolicyTemplateArray; tpl != nil {
		for _, p := range *tpl {
			if !cmp.Equal(p, serverless.Function_SAMPolicyTemplate{}) {
				t.Errorf("Policies uses a SAM policy template: %+v", p)
			}
		}
	}
	return (*fn.Policies.IAMPolicyDocumentArray)[0].Statement
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestPolicyActions checks the policies' shape beyond the exact statements:
// no wildcard actions or resources, every statement an Allow, and each
// service's actions exactly the list this package declares for it.
func TestPolicyActions(t *testing.T) {
	l := load(t)
	tests := []struct {
		function string
		want     map[string][]string // service prefix -> actions
	}{
		{"DetectorFunction", map[string][]string{"dynamodb": DetectorDynamoDBActions, "sns": DetectorSNSActions}},
		{"SlackNotifierFunction", map[string][]string{"ssm": SlackNotifierSSMActions}},
		{"SlackCriticalNotifierFunction", map[string][]string{"ssm": SlackNotifierSSMActions}},
	}
	for _, tt := range tests {
		fn, err := l.typed.GetServerlessFunctionWithName(tt.function)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, s := range statements(t, fn) {
			st := asMap(s)
			if st["Effect"] != "Allow" {
				t.Errorf("%s: statement %v is not an Allow", tt.function, st)
			}
			res, _ := st["Resource"].(string)
			if res == "" || strings.Contains(res, "*") {
				t.Errorf("%s: statement %v has resource %q, want one named resource", tt.function, st["Sid"], res)
			}
			for _, a := range asStrings(st["Action"]) {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %q", tt.function, a)
				}
				svc, _, _ := strings.Cut(a, ":")
				got[svc] = append(got[svc], a)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s actions by service (-want +got):\n%s", tt.function, diff)
		}
	}
}

func TestLogGroups(t *testing.T) {
	l := load(t)
	tests := []struct{ name, logGroupName string }{
		{"DetectorLogGroup", "{Sub:/aws/lambda/${AWS::StackName}-detector}"},
		{"SlackNotifierLogGroup", "{Sub:/aws/lambda/${AWS::StackName}-slack-notifier}"},
		{"SlackCriticalNotifierLogGroup", "{Sub:/aws/lambda/${AWS::StackName}-slack-critical-notifier}"},
	}
	for _, tt := range tests {
		got, err := l.typed.GetLogsLogGroupWithName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		want := &logs.LogGroup{
			LogGroupName: new(tt.logGroupName),
			// The Ref's stand-in (see markers); the Ref itself is checked
			// on raw below.
			RetentionInDays:            new(30),
			AWSCloudFormationCondition: wantResources[tt.name].condition,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(map[string]any{"Ref": "LogRetentionDays"}, rawProperty(t, l, tt.name, "RetentionInDays")); diff != "" {
			t.Errorf("%s RetentionInDays (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestTable(t *testing.T) {
	l := load(t)
	got, err := l.typed.GetDynamoDBTableWithName("Table")
	if err != nil {
		t.Fatal(err)
	}
	want := &dynamodb.Table{
		AttributeDefinitions: []dynamodb.Table_AttributeDefinition{
			{AttributeName: TablePartitionKey, AttributeType: "S"},
			{AttributeName: TableSortKey, AttributeType: "S"},
		},
		KeySchema: []dynamodb.Table_KeySchema{
			{AttributeName: TablePartitionKey, KeyType: "HASH"},
			{AttributeName: TableSortKey, KeyType: "RANGE"},
		},
		BillingMode:      new("PAY_PER_REQUEST"),
		SSESpecification: &dynamodb.Table_SSESpecification{SSEEnabled: true},
		// The Ref's stand-in; the Ref is checked on raw below.
		PointInTimeRecoverySpecification: &dynamodb.Table_PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: new(true)},
		TimeToLiveSpecification:          &dynamodb.Table_TimeToLiveSpecification{AttributeName: new(TableTTLAttribute), Enabled: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Table (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"Ref": "PointInTimeRecovery"}, rawProperty(t, l, "Table", "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled")); diff != "" {
		t.Errorf("Table PointInTimeRecoveryEnabled (-want +got):\n%s", diff)
	}
}

func TestTopics(t *testing.T) {
	l := load(t)
	tests := []struct {
		name string
		want *sns.Topic
	}{
		// Findings are encrypted at rest with the AWS managed key.
		{"Topic", &sns.Topic{DisplayName: new("anonwatch"), KmsMasterKeyId: new("alias/aws/sns")}},
		// Not encrypted, on purpose: CloudWatch cannot publish to a topic
		// under alias/aws/sns (template.yaml explains).
		{"AlarmTopic", &sns.Topic{DisplayName: new("anonwatch alarms")}},
	}
	for _, tt := range tests {
		got, err := l.typed.GetSNSTopicWithName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	policy, err := l.typed.GetSNSTopicPolicyWithName("AlarmTopicPolicy")
	if err != nil {
		t.Fatal(err)
	}
	wantPolicy := &sns.TopicPolicy{
		Topics: []string{"{Ref:AlarmTopic}"},
		PolicyDocument: map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Sid":       "CloudWatchAlarmsOfThisAccount",
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    "sns:Publish",
				"Resource":  "{Ref:AlarmTopic}",
				// Only alarms of this account and region: the service
				// principal alone would let any account's alarms publish.
				"Condition": map[string]any{
					"StringEquals": map[string]any{"aws:SourceAccount": "{Ref:AWS::AccountId}"},
					"ArnLike":      map[string]any{"aws:SourceArn": "{Sub:arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*}"},
				},
			}},
		},
	}
	if diff := cmp.Diff(wantPolicy, policy); diff != "" {
		t.Errorf("AlarmTopicPolicy (-want +got):\n%s", diff)
	}
}

func TestSubscriptions(t *testing.T) {
	l := load(t)
	tests := []struct {
		name string
		want *sns.Subscription
	}{
		{"EmailSubscription", &sns.Subscription{
			TopicArn:          "{Ref:Topic}",
			Protocol:          "email",
			Endpoint:          new("{Ref:AlertEmail}"),
			FilterPolicyScope: new("MessageAttributes"),
			FilterPolicy: map[string]any{
				SeverityAttribute: "{FindInMap:SeverityAtOrAbove|{Ref:EmailMinSeverity}|Severities}",
			},
			AWSCloudFormationCondition: "HasAlertEmail",
		}},
		// Alarms carry no severity attribute: no filter.
		{"AlarmEmailSubscription", &sns.Subscription{
			TopicArn:                   "{Ref:AlarmTopic}",
			Protocol:                   "email",
			Endpoint:                   new("{Ref:AlertEmail}"),
			AWSCloudFormationCondition: "HasAlertEmail",
		}},
	}
	for _, tt := range tests {
		got, err := l.typed.GetSNSSubscriptionWithName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestEmailSeverityFilter resolves the e-mail filter policy for every
// EmailMinSeverity a user can choose and checks it lets through exactly
// that severity and the ones above it, in the rules package's order.
func TestEmailSeverityFilter(t *testing.T) {
	l := load(t)
	mapping := asMap(asMap(l.raw["Mappings"])["SeverityAtOrAbove"])
	p := l.typed.Parameters["EmailMinSeverity"]
	if len(mapping) != len(p.AllowedValues) {
		t.Errorf("SeverityAtOrAbove has %d keys, EmailMinSeverity allows %d values", len(mapping), len(p.AllowedValues))
	}
	for _, v := range p.AllowedValues {
		name, _ := v.(string)
		min, err := rules.ParseSeverity(name)
		if err != nil {
			t.Fatalf("EmailMinSeverity allows %q: %v", name, err)
		}
		var want []string
		for s := min; s <= rules.Critical; s++ {
			want = append(want, s.String())
		}
		got := asStrings(asMap(mapping[name])["Severities"])
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("severities e-mailed at EmailMinSeverity=%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestDeadLetterQueue(t *testing.T) {
	l := load(t)
	got, err := l.typed.GetSQSQueueWithName("DeadLetterQueue")
	if err != nil {
		t.Fatal(err)
	}
	want := &sqs.Queue{
		SqsManagedSseEnabled:   new(true),
		MessageRetentionPeriod: new(14 * 24 * 3600),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeadLetterQueue (-want +got):\n%s", diff)
	}
}

func TestAlarms(t *testing.T) {
	l := load(t)
	fn, err := l.typed.GetServerlessFunctionWithName("DetectorFunction")
	if err != nil {
		t.Fatal(err)
	}
	// 80% of the detector's timeout, in milliseconds: derived from the
	// function so the two cannot drift apart.
	durationLimit := float64(*fn.Timeout) * 1000 * 0.8
	lambda := func(metric, stat string, threshold float64) *cloudwatch.Alarm {
		return &cloudwatch.Alarm{
			Namespace:  new("AWS/Lambda"),
			MetricName: new(metric),
			Dimensions: []cloudwatch.Alarm_Dimension{{Name: "FunctionName", Value: "{Ref:DetectorFunction}"}},
			Statistic:  new(stat),
			Threshold:  new(threshold),
		}
	}
	tests := []struct {
		name string
		want *cloudwatch.Alarm
	}{
		{"DetectorErrorsAlarm", lambda("Errors", "Sum", 0)},
		{"DetectorThrottlesAlarm", lambda("Throttles", "Sum", 0)},
		{"DetectorDurationAlarm", lambda("Duration", "Maximum", durationLimit)},
		{"DamagedAuditLinesAlarm", &cloudwatch.Alarm{
			Namespace:  new("anonwatch"),
			MetricName: new("Damaged"),
			Dimensions: []cloudwatch.Alarm_Dimension{{Name: "Cluster", Value: "{Ref:ClusterName}"}},
			Statistic:  new("Sum"),
			Threshold:  new(0.0),
		}},
		{"DeadLetterQueueAlarm", &cloudwatch.Alarm{
			Namespace:  new("AWS/SQS"),
			MetricName: new("ApproximateNumberOfMessagesVisible"),
			Dimensions: []cloudwatch.Alarm_Dimension{{Name: "QueueName", Value: "{GetAtt:DeadLetterQueue.QueueName}"}},
			Statistic:  new("Maximum"),
			Threshold:  new(0.0),
		}},
	}
	for _, tt := range tests {
		got, err := l.typed.GetCloudWatchAlarmWithName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		// Common to all: any breach in a 5-minute period alarms, to the
		// alarm topic (never the findings topic), and so does recovery.
		tt.want.Period = new(300)
		tt.want.EvaluationPeriods = 1
		tt.want.ComparisonOperator = "GreaterThanThreshold"
		tt.want.TreatMissingData = new("notBreaching")
		tt.want.AlarmActions = []string{"{Ref:AlarmTopic}"}
		tt.want.OKActions = []string{"{Ref:AlarmTopic}"}
		got.AlarmDescription = nil // prose
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestOutputs(t *testing.T) {
	l := load(t)
	want := map[string]string{
		"TopicArn":           "{Ref:Topic}",
		"AlarmTopicArn":      "{Ref:AlarmTopic}",
		"TableName":          "{Ref:Table}",
		"DeadLetterQueueUrl": "{Ref:DeadLetterQueue}",
	}
	got := map[string]string{}
	for name, o := range l.typed.Outputs {
		got[name] = fmt.Sprint(o.Value)
		if o.Condition != nil || o.Export != nil {
			t.Errorf("output %s has a condition or export: %+v", name, o)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}
