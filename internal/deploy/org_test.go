package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/goformation/v7/cloudformation/kinesis"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/handler"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// centralStackName is the name docs/organization.md deploys the central
// stack with, and org/member.yaml's CentralStackName default: the name its
// log groups are derived from.
const centralStackName = "anonwatch-org"

// The detector's handler reports the records to retry, as the event
// source mapping's ReportBatchItemFailures expects: a function that
// returned nothing would have every batch count as a success.
var _ func(*handler.Handler, context.Context, handler.Event) (*events.KinesisEventResponse, error) = (*handler.Handler).Invoke

// org/central.yaml's resources, their types and conditions.
var wantCentralResources = map[string]struct{ typ, condition string }{
	"Stream":                        {"AWS::Kinesis::Stream", ""},
	"DestinationRole":               {"AWS::IAM::Role", ""},
	"Destination":                   {"AWS::Logs::Destination", ""},
	"DetectorFunction":              {"AWS::Serverless::Function", ""},
	"DetectorLogGroup":              {"AWS::Logs::LogGroup", ""},
	"SlackNotifierFunction":         {"AWS::Serverless::Function", "HasSlackBelowCritical"},
	"SlackNotifierLogGroup":         {"AWS::Logs::LogGroup", "HasSlackBelowCritical"},
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
	"DamagedAuditLinesAlarm":        {"AWS::CloudWatch::Alarm", ""},
	"PoisonRecordsAlarm":            {"AWS::CloudWatch::Alarm", ""},
	"IteratorAgeAlarm":              {"AWS::CloudWatch::Alarm", ""},
	"DeadLetterQueueAlarm":          {"AWS::CloudWatch::Alarm", ""},
}

// org/member.yaml's.
var wantMemberResources = map[string]struct{ typ, condition string }{
	"SubscriptionRole": {"AWS::IAM::Role", ""},
	"AuditLogPolicy":   {"AWS::Logs::AccountPolicy", ""},
}

func TestOrgTemplateResources(t *testing.T) {
	tests := []struct {
		l         *loaded
		transform any
		want      map[string]struct{ typ, condition string }
	}{
		{loadCentral(t), "AWS::Serverless-2016-10-31", wantCentralResources},
		// Plain CloudFormation: a StackSet needs no macro capability for
		// it, and no SAM artifacts in each region.
		{loadMember(t), nil, wantMemberResources},
	}
	for _, tt := range tests {
		t.Run(tt.l.path, func(t *testing.T) {
			if got := tt.l.raw["Transform"]; !cmp.Equal(got, tt.transform) {
				t.Errorf("Transform = %v, want %v", got, tt.transform)
			}
			if g, ok := tt.l.raw["Globals"]; ok {
				t.Errorf("template has Globals (%v); state each property on its resource", g)
			}
			type res struct{ typ, condition string }
			got := map[string]res{}
			for name, r := range asMap(tt.l.raw["Resources"]) {
				r := asMap(r)
				typ, _ := r["Type"].(string)
				cond, _ := r["Condition"].(string)
				got[name] = res{typ, cond}
				if typed, ok := tt.l.typed.Resources[name]; !ok || typed.AWSCloudFormationType() != typ {
					t.Errorf("%s: goformation parsed it as %v, want %s", name, typed, typ)
				}
			}
			want := map[string]res{}
			for name, w := range tt.want {
				want[name] = res(w)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(res{})); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

// deepCopy returns a copy of a raw template value.
func deepCopy(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var c any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// codeDir resolves a function's CodeUri, which is relative to its
// template's folder, to a path relative to the repository root.
func codeDir(t *testing.T, l *loaded, function string) string {
	t.Helper()
	uri, ok := rawProperty(t, l, function, "CodeUri").(string)
	if !ok {
		t.Fatalf("%s: %s CodeUri is not a path", l.path, function)
	}
	return path.Clean(path.Join(path.Dir(l.path), uri))
}

// normalized is a raw resource with what may differ between the
// templates' copies taken out: CodeUri (relative to each template, checked
// to name the same folder) and an alarm's AlarmDescription (prose that
// names what the stack watches).
func normalized(t *testing.T, l *loaded, name string) map[string]any {
	t.Helper()
	r := asMap(deepCopy(t, rawResource(t, l, name)))
	props := asMap(r["Properties"])
	if r["Type"] == "AWS::Serverless::Function" {
		props["CodeUri"] = codeDir(t, l, name)
	}
	if r["Type"] == "AWS::CloudWatch::Alarm" {
		delete(props, "AlarmDescription")
	}
	return r
}

// TestCentralSharesTemplate keeps the central stack's copies of
// template.yaml's parameters, conditions, mappings, resources and outputs
// the same as the originals, so that a fix to one reaches the other:
// CloudFormation cannot share them. The deliberate differences are the
// ones listed here, each tested on its own.
func TestCentralSharesTemplate(t *testing.T) {
	single, central := load(t), loadCentral(t)

	// Only the single-cluster stack's subscription needs these.
	notShared := map[string][]string{
		"Parameters": {"ClusterName", "FilterPattern"},
		"Conditions": {"HasCustomFilterPattern"},
		// TestCentralDetector and TestCentralAlarms.
		"Resources": {"DetectorFunction", "DamagedAuditLinesAlarm"},
	}
	for _, section := range []string{"Parameters", "Conditions", "Mappings", "Resources", "Outputs"} {
		for name, orig := range asMap(single.raw[section]) {
			if slices.Contains(notShared[section], name) {
				continue
			}
			copied, ok := asMap(central.raw[section])[name]
			if !ok {
				t.Errorf("%s %s of template.yaml is missing from %s", section, name, central.path)
				continue
			}
			var want, got any
			switch section {
			case "Parameters", "Outputs":
				// Descriptions are prose, written for each stack.
				w, g := asMap(deepCopy(t, orig)), asMap(deepCopy(t, copied))
				delete(w, "Description")
				delete(g, "Description")
				want, got = w, g
			case "Resources":
				want, got = normalized(t, single, name), normalized(t, central, name)
			default:
				want, got = orig, copied
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: %s's copy differs from template.yaml's (-template.yaml +copy):\n%s", section, name, central.path, diff)
			}
		}
	}
}

// TestCentralDetector checks that the organization's detector is the
// single-cluster stack's, but for what reading a stream changes: its
// event, no asynchronous invocation settings (an event source mapping
// invokes synchronously and has its own), and QUALIFY_CLUSTERS.
func TestCentralDetector(t *testing.T) {
	single, central := load(t), loadCentral(t)
	want := normalized(t, single, "DetectorFunction")
	got := normalized(t, central, "DetectorFunction")
	wantProps, gotProps := asMap(want["Properties"]), asMap(got["Properties"])
	if !strings.Contains(fmt.Sprint(gotProps["Description"]), "Kinesis") {
		t.Errorf("Description %q does not say the function reads Kinesis", gotProps["Description"])
	}
	wantProps["Description"] = gotProps["Description"]
	wantProps["Events"] = gotProps["Events"] // TestCentralKinesisEvent
	delete(wantProps, "EventInvokeConfig")
	asMap(asMap(wantProps["Environment"])["Variables"])[EnvQualifyClusters] = "true"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DetectorFunction (-template.yaml's, as the organization's should be +%s):\n%s", central.path, diff)
	}

	// The variable is the one the function reads.
	src, err := os.ReadFile(filepath.Join(root, "functions", "detector", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(`os.Getenv("`+EnvQualifyClusters+`")`)) {
		t.Errorf("functions/detector/main.go does not read %s", EnvQualifyClusters)
	}
}

// kinesisEvent returns the central detector's one event, a Kinesis one.
func kinesisEvent(t *testing.T, l *loaded) map[string]any {
	t.Helper()
	evs := asMap(rawProperty(t, l, "DetectorFunction", "Events"))
	if len(evs) != 1 || asMap(evs["AuditLog"])["Type"] != "Kinesis" {
		t.Fatalf("DetectorFunction Events = %v, want one Kinesis event AuditLog", evs)
	}
	return asMap(asMap(evs["AuditLog"])["Properties"])
}

func number(t *testing.T, props map[string]any, key string) float64 {
	t.Helper()
	n, ok := props[key].(float64)
	if !ok {
		t.Fatalf("%s = %v, want a number", key, props[key])
	}
	return n
}

// TestCentralKinesisEvent pins the event source mapping's settings, whose
// reasons org/central.yaml gives, and checks how they fit together and
// with the rest of the stack.
func TestCentralKinesisEvent(t *testing.T) {
	l := loadCentral(t)
	got := kinesisEvent(t, l)
	want := map[string]any{
		"Stream":                         map[string]any{"Fn::GetAtt": "Stream.Arn"},
		"StartingPosition":               "TRIM_HORIZON",
		"BatchSize":                      10.0,
		"MaximumBatchingWindowInSeconds": 5.0,
		"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
		"BisectBatchOnFunctionError":     true,
		"MaximumRetryAttempts":           10.0,
		"MaximumRecordAgeInSeconds":      86400.0,
		"ParallelizationFactor":          2.0,
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{
			// SAM grants sqs:SendMessage for Type SQS.
			"Type":        "SQS",
			"Destination": map[string]any{"Fn::GetAtt": "DeadLetterQueue.Arn"},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AuditLog properties (-want +got):\n%s", diff)
	}

	// The ranges Lambda accepts ("Lambda parameters for Amazon Kinesis
	// Data Streams event source mappings").
	for _, r := range []struct {
		key      string
		min, max float64
	}{
		{"BatchSize", 1, 10000},
		{"MaximumBatchingWindowInSeconds", 0, 300},
		{"MaximumRetryAttempts", 0, 10000},
		{"MaximumRecordAgeInSeconds", 60, 604800},
		{"ParallelizationFactor", 1, 10},
	} {
		if n := number(t, got, r.key); n < r.min || n > r.max {
			t.Errorf("%s = %v, outside %v..%v", r.key, n, r.min, r.max)
		}
	}

	maxAge := time.Duration(number(t, got, "MaximumRecordAgeInSeconds")) * time.Second
	// A record up to its maximum age is counted as if on time: the state
	// keeps its items that long after they stop mattering.
	if maxAge > dynamostate.TTLMargin {
		t.Errorf("MaximumRecordAgeInSeconds %v exceeds the state's margin for late data, dynamostate.TTLMargin %v: a record that late could be counted afresh", maxAge, dynamostate.TTLMargin)
	}
	// A dead-lettered batch is a pointer into the stream: its records must
	// still be there to be replayed, for at least a few days.
	stream, err := l.typed.GetKinesisStreamWithName("Stream")
	if err != nil {
		t.Fatal(err)
	}
	retention := time.Duration(*stream.RetentionPeriodHours) * time.Hour
	if left := retention - maxAge; left < 72*time.Hour {
		t.Errorf("a batch dead-lettered at MaximumRecordAgeInSeconds (%v) stays in the stream only %v more (RetentionPeriodHours %v); want at least 3 days to replay it", maxAge, left, retention)
	}
}

func TestCentralStream(t *testing.T) {
	l := loadCentral(t)
	got, err := l.typed.GetKinesisStreamWithName("Stream")
	if err != nil {
		t.Fatal(err)
	}
	want := &kinesis.Stream{
		StreamModeDetails:    &kinesis.Stream_StreamModeDetails{StreamMode: "ON_DEMAND"},
		StreamEncryption:     &kinesis.Stream_StreamEncryption{EncryptionType: "KMS", KeyId: "alias/aws/kinesis"},
		RetentionPeriodHours: new(168),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stream (-want +got):\n%s", diff)
	}
}

// orgModes are the ways to say whom the destination admits.
var orgModes = []struct {
	name     string
	params   map[string]string
	org      string
	accounts []string
}{
	{"organization", map[string]string{"OrganizationId": "o-a1b2c3d4e5"}, "o-a1b2c3d4e5", nil},
	{"accounts", map[string]string{"MemberAccountIds": "111111111111,222222222222"}, "", []string{"111111111111", "222222222222"}},
	{"both", map[string]string{"OrganizationId": "o-a1b2c3d4e5", "MemberAccountIds": "111111111111"}, "o-a1b2c3d4e5", []string{"111111111111"}},
}

// statementsBySid returns a policy's statements by Sid.
func statementsBySid(t *testing.T, policy any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, s := range asSlice(asMap(policy)["Statement"]) {
		s := asMap(s)
		sid, _ := s["Sid"].(string)
		if _, dup := out[sid]; dup || sid == "" {
			t.Fatalf("statement Sid %q is empty or repeated in %v", sid, policy)
		}
		out[sid] = s
	}
	return out
}

// TestCentralDestination evaluates the destination's policy, and the
// trust policy of the role it writes to the stream with, for each way of
// saying whom it admits.
func TestCentralDestination(t *testing.T) {
	l := loadCentral(t)
	got, err := l.typed.GetLogsDestinationWithName("Destination")
	if err != nil {
		t.Fatal(err)
	}
	got.DestinationPolicy = nil // evaluated below
	want := &logs.Destination{
		DestinationName: "{Ref:DestinationName}",
		RoleArn:         "{GetAtt:DestinationRole.Arn}",
		TargetArn:       "{GetAtt:Stream.Arn}",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Destination (-want +got):\n%s", diff)
	}

	// Admitting nobody is refused before anything is created.
	if failed := newEvaluator(t, l, centralStackName, nil).rules(t); len(failed) != 1 {
		t.Errorf("with neither OrganizationId nor MemberAccountIds, failing rules = %v, want one", failed)
	}

	destArn := fmt.Sprintf("arn:aws:logs:%s:%s:destination:%s", testRegion, testAccountID, "anonwatch-eks-audit")
	regionSource := fmt.Sprintf("arn:aws:logs:%s:*:*", testRegion)
	for _, mode := range orgModes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEvaluator(t, l, centralStackName, mode.params)
			if failed := e.rules(t); len(failed) > 0 {
				t.Errorf("rules fail: %v", failed)
			}

			// The destination policy: JSON in a string, at most 5120
			// bytes (PutDestinationPolicy).
			doc, ok := e.property(t, "Destination", "DestinationPolicy").(string)
			if !ok {
				t.Fatal("DestinationPolicy is not a string")
			}
			if len(doc) > 5120 {
				t.Errorf("DestinationPolicy is %d bytes, over PutDestinationPolicy's 5120", len(doc))
			}
			var policy any
			if err := json.Unmarshal([]byte(doc), &policy); err != nil {
				t.Fatalf("DestinationPolicy is not JSON: %v\n%s", err, doc)
			}
			wantPolicy := map[string]any{"Version": "2012-10-17", "Statement": []any{}}
			// Both ways of subscribing: a log group's filter, and the
			// account policy org/member.yaml uses.
			actions := []any{"logs:PutSubscriptionFilter", "logs:PutAccountPolicy"}
			if mode.accounts != nil {
				wantPolicy["Statement"] = append(asSlice(wantPolicy["Statement"]), map[string]any{
					"Sid": "MemberAccounts", "Effect": "Allow",
					"Principal": map[string]any{"AWS": toAny(mode.accounts)},
					"Action":    actions, "Resource": destArn,
				})
			}
			if mode.org != "" {
				wantPolicy["Statement"] = append(asSlice(wantPolicy["Statement"]), map[string]any{
					"Sid": "Organization", "Effect": "Allow", "Principal": "*",
					"Action": actions, "Resource": destArn,
					"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": mode.org}},
				})
			}
			if diff := cmp.Diff(wantPolicy, policy); diff != "" {
				t.Errorf("DestinationPolicy (-want +got):\n%s", diff)
			}

			// The role's trust: CloudWatch Logs, only for this account
			// (the destination's test message) and the admitted ones.
			trust := e.property(t, "DestinationRole", "AssumeRolePolicyDocument")
			service := map[string]any{"Service": "logs.amazonaws.com"}
			wantTrust := map[string]map[string]any{
				"ThisAccount": {
					"Sid": "ThisAccount", "Effect": "Allow", "Principal": service, "Action": "sts:AssumeRole",
					"Condition": map[string]any{"StringLike": map[string]any{"aws:SourceArn": fmt.Sprintf("arn:aws:logs:%s:%s:*", testRegion, testAccountID)}},
				},
			}
			if mode.accounts != nil {
				wantTrust["MemberAccounts"] = map[string]any{
					"Sid": "MemberAccounts", "Effect": "Allow", "Principal": service, "Action": "sts:AssumeRole",
					"Condition": map[string]any{
						"StringEquals": map[string]any{"aws:SourceAccount": mode.accounts},
						"StringLike":   map[string]any{"aws:SourceArn": regionSource},
					},
				}
			}
			if mode.org != "" {
				wantTrust["Organization"] = map[string]any{
					"Sid": "Organization", "Effect": "Allow", "Principal": service, "Action": "sts:AssumeRole",
					"Condition": map[string]any{
						"StringEquals": map[string]any{"aws:SourceOrgID": mode.org},
						"StringLike":   map[string]any{"aws:SourceArn": regionSource},
					},
				}
			}
			if diff := cmp.Diff(wantTrust, statementsBySid(t, trust)); diff != "" {
				t.Errorf("DestinationRole trust (-want +got):\n%s", diff)
			}
		})
	}

	// What the role may do: put records into this stream, nothing else.
	wantPolicies := []any{map[string]any{
		"PolicyName": "PutIntoStream",
		"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Sid": "PutIntoStream", "Effect": "Allow", "Action": "kinesis:PutRecord",
			"Resource": map[string]any{"Fn::GetAtt": "Stream.Arn"},
		}}},
	}}
	if diff := cmp.Diff(wantPolicies, rawProperty(t, l, "DestinationRole", "Policies")); diff != "" {
		t.Errorf("DestinationRole Policies (-want +got):\n%s", diff)
	}
	props := asMap(rawResource(t, l, "DestinationRole")["Properties"])
	if _, named := props["RoleName"]; named || len(props) != 2 {
		t.Errorf("DestinationRole properties %v, want AssumeRolePolicyDocument and Policies only", slices.Sorted(func(yield func(string) bool) {
			for k := range props {
				if !yield(k) {
					return
				}
			}
		}))
	}
}

// emitted runs the detector's handler on one Kinesis record, with p as
// its processor, and returns the EMF document it wrote.
func emitted(t *testing.T, rec events.KinesisEventRecord, p handler.Processor) map[string]any {
	t.Helper()
	var metrics bytes.Buffer
	h := &handler.Handler{
		Processor: p,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:   &metrics,
		Limits:    cwlogs.DefaultLimits,
		Now:       time.Now,
		EKSOnly:   true,
	}
	h.HandleKinesis(context.Background(), []events.KinesisEventRecord{rec})
	lines := bytes.Split(bytes.TrimSpace(metrics.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("the handler wrote %d metric lines, want 1:\n%s", len(lines), metrics.Bytes())
	}
	var doc map[string]any
	if err := json.Unmarshal(lines[0], &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// emfMetric returns an EMF document's namespace and dimension sets, and
// whether it defines metric.
func emfMetric(t *testing.T, doc map[string]any, metric string) (string, [][]string, bool) {
	t.Helper()
	cw := asSlice(asMap(doc["_aws"])["CloudWatchMetrics"])
	if len(cw) != 1 {
		t.Fatalf("EMF document with %d metric directives, want 1: %v", len(cw), doc)
	}
	d := asMap(cw[0])
	var dims [][]string
	for _, set := range asSlice(d["Dimensions"]) {
		dims = append(dims, asStrings(set))
	}
	found := false
	for _, m := range asSlice(d["Metrics"]) {
		if asMap(m)["Name"] == metric {
			found = true
		}
	}
	ns, _ := d["Namespace"].(string)
	return ns, dims, found
}

type damagedProcessor struct{}

func (damagedProcessor) Process(_ context.Context, b *cwlogs.Batch) (detect.Result, error) {
	return detect.Result{Cluster: b.Cluster, Events: len(b.Events), Damaged: 1}, nil
}

// TestCentralAlarms checks the alarms the central stack has beyond
// template.yaml's (whose copies TestCentralSharesTemplate checks): that
// each watches a metric the detector really writes, under the name and
// dimensions it writes it with, and that the thresholds fit the stack's
// settings.
func TestCentralAlarms(t *testing.T) {
	l := loadCentral(t)
	alarm := func(name string) map[string]any {
		a := asMap(deepCopy(t, asMap(rawResource(t, l, name)["Properties"])))
		// Common to all, as in template.yaml: any breach in a 5-minute
		// period alarms, to the alarm topic, and so does recovery.
		for k, v := range map[string]any{
			"EvaluationPeriods":  1.0,
			"Threshold":          a["Threshold"],
			"ComparisonOperator": "GreaterThanThreshold",
			"TreatMissingData":   "notBreaching",
			"AlarmActions":       []any{map[string]any{"Ref": "AlarmTopic"}},
			"OKActions":          []any{map[string]any{"Ref": "AlarmTopic"}},
		} {
			if !cmp.Equal(a[k], v) {
				t.Errorf("%s %s = %v, want %v", name, k, a[k], v)
			}
			delete(a, k)
		}
		delete(a, "AlarmDescription")
		return a
	}

	// A record that is not a gzipped payload: the metric the detector
	// writes for it, with the dimension value it gives it.
	poison := emitted(t, events.KinesisEventRecord{AwsRegion: testRegion, Kinesis: events.KinesisRecord{Data: []byte("not gzip"), SequenceNumber: "1"}}, damagedProcessor{})
	ns, dims, ok := emfMetric(t, poison, "PoisonRecords")
	if !ok || !cmp.Equal(dims, [][]string{{"Cluster"}}) {
		t.Fatalf("the poison record's metrics: PoisonRecords %v, dimensions %v; want PoisonRecords by Cluster", ok, dims)
	}
	wantPoison := map[string]any{
		"Namespace":  ns,
		"MetricName": "PoisonRecords",
		"Dimensions": []any{map[string]any{"Name": "Cluster", "Value": poison["Cluster"]}},
		"Statistic":  "Sum",
		"Period":     300.0,
	}
	if diff := cmp.Diff(wantPoison, alarm("PoisonRecordsAlarm")); diff != "" {
		t.Errorf("PoisonRecordsAlarm (-want, the metric the detector writes +got):\n%s", diff)
	}

	// A delivery with a damaged line: Damaged, by the dimensions the
	// detector writes, summed over every cluster.
	p, err := cwlogs.EncodePayload(cwlogs.Batch{MessageType: cwlogs.DataMessage, Owner: "111111111111", LogGroup: "/aws/eks/prod/cluster", LogStream: "kube-apiserver-audit-1",
		Events: []cwlogs.LogEvent{{ID: "1", Timestamp: 1764403200000, Message: []byte(`{"kind":"Event"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	doc := emitted(t, events.KinesisEventRecord{AwsRegion: testRegion, Kinesis: events.KinesisRecord{Data: gz.Bytes(), SequenceNumber: "1"}}, damagedProcessor{})
	ns, dims, ok = emfMetric(t, doc, "Damaged")
	if !ok || len(dims) != 1 || doc["Damaged"] != 1.0 {
		t.Fatalf("a damaged line's metrics: Damaged %v = %v, dimensions %v", ok, doc["Damaged"], dims)
	}
	wantDamaged := map[string]any{"Metrics": []any{map[string]any{
		"Id":         "damaged",
		"Expression": fmt.Sprintf("SELECT SUM(Damaged) FROM SCHEMA(%s, %s)", ns, strings.Join(dims[0], ", ")),
		"Period":     300.0,
		"ReturnData": true,
	}}}
	if diff := cmp.Diff(wantDamaged, alarm("DamagedAuditLinesAlarm")); diff != "" {
		t.Errorf("DamagedAuditLinesAlarm (-want, the metric the detector writes +got):\n%s", diff)
	}

	// Lambda's IteratorAge, in milliseconds, past what a failing record's
	// retries hold its lane back by, and short of the age at which records
	// are dead-lettered.
	iter := alarm("IteratorAgeAlarm")
	threshold := number(t, asMap(rawResource(t, l, "IteratorAgeAlarm")["Properties"]), "Threshold")
	wantIter := map[string]any{
		"Namespace":  "AWS/Lambda",
		"MetricName": "IteratorAge",
		"Dimensions": []any{map[string]any{"Name": "FunctionName", "Value": map[string]any{"Ref": "DetectorFunction"}}},
		"Statistic":  "Maximum",
		"Period":     300.0,
	}
	if diff := cmp.Diff(wantIter, iter); diff != "" {
		t.Errorf("IteratorAgeAlarm (-want +got):\n%s", diff)
	}
	ev := kinesisEvent(t, l)
	timeout := number(t, asMap(rawResource(t, l, "DetectorFunction")["Properties"]), "Timeout")
	stall := (number(t, ev, "MaximumRetryAttempts") + 1) * timeout * 1000
	if maxAge := number(t, ev, "MaximumRecordAgeInSeconds") * 1000; threshold <= stall || threshold >= maxAge {
		t.Errorf("IteratorAgeAlarm Threshold %v ms, want between a failing record's attempts (%v ms) and MaximumRecordAgeInSeconds (%v ms)", threshold, stall, maxAge)
	}
}

// logGroupNames returns the names of a template's log groups, evaluated
// for a stack named stackName, by resource.
func logGroupNames(t *testing.T, l *loaded, stackName string) map[string]string {
	t.Helper()
	e := newEvaluator(t, l, stackName, nil)
	out := map[string]string{}
	for name, r := range asMap(l.raw["Resources"]) {
		if asMap(r)["Type"] != "AWS::Logs::LogGroup" {
			continue
		}
		s, ok := e.property(t, name, "LogGroupName").(string)
		if !ok {
			t.Fatalf("%s: %s has no LogGroupName to know it by", l.path, name)
		}
		out[name] = s
	}
	return out
}

// notIn parses a subscription filter policy's selection criteria, the
// only form CloudWatch Logs accepts for one: LogGroupName NOT IN [names],
// the names as JSON strings.
func notIn(t *testing.T, criteria string) []string {
	t.Helper()
	const prefix = "LogGroupName NOT IN "
	list, ok := strings.CutPrefix(criteria, prefix)
	if !ok {
		t.Fatalf("SelectionCriteria %q does not start with %q", criteria, prefix)
	}
	var names []string
	if err := json.Unmarshal([]byte(list), &names); err != nil {
		t.Fatalf("SelectionCriteria %q: the list is not a JSON list of names: %v", criteria, err)
	}
	return names
}

// TestMemberExcludesCentralLogGroups shows that the account policy cannot
// loop. Only the EKS audit log groups should reach the destination; the
// policy selects every log group but those it names, so it must name
// every log group the delivery feeds. In a member account the delivery
// path (policy, destination) writes no log. In the central account, which
// is often a member too, the detector and the Slack notifiers write their
// logs to the central stack's log groups: each is excluded, and no
// function of the central stack logs anywhere else.
func TestMemberExcludesCentralLogGroups(t *testing.T) {
	central, member := loadCentral(t), loadMember(t)
	if d := asMap(asMap(member.raw["Parameters"])["CentralStackName"])["Default"]; d != centralStackName {
		t.Errorf("CentralStackName defaults to %v, want %s, the name docs/organization.md deploys the central stack with", d, centralStackName)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "organization.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("--stack-name "+centralStackName)) {
		t.Errorf("docs/organization.md does not deploy the central stack as %s", centralStackName)
	}

	// Every function of the central stack logs to one of its log groups,
	// by name: a function without one would log to a group named after
	// its generated name, which no exclusion list can know.
	groups := logGroupNames(t, central, centralStackName)
	for name, r := range asMap(central.raw["Resources"]) {
		if asMap(r)["Type"] != "AWS::Serverless::Function" {
			continue
		}
		ref := asMap(asMap(rawProperty(t, central, name, "LoggingConfig"))["LogGroup"])["Ref"]
		if _, ok := groups[fmt.Sprint(ref)]; !ok {
			t.Errorf("%s logs to %v, which is no log group of %s", name, ref, central.path)
		}
	}
	if len(groups) == 0 {
		t.Fatal("the central stack has no log groups; the walk is broken")
	}

	for _, tt := range []struct {
		name  string
		given map[string]string
		extra []string
	}{
		{"defaults", nil, nil},
		{"more exclusions", map[string]string{"ExcludedLogGroups": "/aws/lambda/anonwatch-detector,/aws/lambda/other"}, []string{"/aws/lambda/anonwatch-detector", "/aws/lambda/other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			given := map[string]string{"CentralAccountId": testAccountID}
			for k, v := range tt.given {
				given[k] = v
			}
			e := newEvaluator(t, member, "anonwatch-member", given)
			criteria, ok := e.property(t, "AuditLogPolicy", "SelectionCriteria").(string)
			if !ok {
				t.Fatal("SelectionCriteria is not a string")
			}
			// PutAccountPolicy: "can be up to 25KB", in UTF-8 bytes.
			if len(criteria) > 25*1024 {
				t.Errorf("SelectionCriteria is %d bytes, over 25 KB", len(criteria))
			}
			excluded := notIn(t, criteria)
			for res, g := range groups {
				if !slices.Contains(excluded, g) {
					t.Errorf("the central stack's %s, %s, is not excluded: its lines would be delivered to the stack that writes them", res, g)
				}
			}
			for _, g := range tt.extra {
				if !slices.Contains(excluded, g) {
					t.Errorf("ExcludedLogGroups' %s is not excluded", g)
				}
			}
			if want := len(groups) + len(tt.extra); len(excluded) != want {
				t.Errorf("%d names excluded (%v), want %d", len(excluded), excluded, want)
			}
			// What must be delivered is not excluded: no name in the list
			// is an EKS cluster's log group, so every cluster's, of any
			// name, existing or created later, is selected.
			for _, g := range excluded {
				if cwlogs.IsClusterLogGroup(g) {
					t.Errorf("%s is excluded, an EKS cluster's log group", g)
				}
			}
			for _, g := range []string{"/aws/eks/prod/cluster", "/aws/eks/" + centralStackName + "/cluster"} {
				if slices.Contains(excluded, g) || !cwlogs.IsClusterLogGroup(g) {
					t.Errorf("%s is not selected as an EKS cluster's log group", g)
				}
			}
		})
	}
}

// TestMemberPolicyDocument evaluates the account policy's document: the
// destination of the stack's region, template.yaml's filter pattern, and
// random distribution.
func TestMemberPolicyDocument(t *testing.T) {
	single, central, member := load(t), loadCentral(t), loadMember(t)
	name := asMap(asMap(central.raw["Parameters"])["DestinationName"])["Default"]
	if d := asMap(asMap(member.raw["Parameters"])["DestinationName"])["Default"]; d != name {
		t.Errorf("DestinationName defaults to %v here, to %v in %s", d, name, central.path)
	}
	typed, err := member.typed.GetLogsAccountPolicyWithName("AuditLogPolicy")
	if err != nil {
		t.Fatal(err)
	}
	if typed.PolicyName != "anonwatch-eks-audit" || typed.PolicyType != "SUBSCRIPTION_FILTER_POLICY" || typed.Scope == nil || *typed.Scope != "ALL" {
		t.Errorf("AuditLogPolicy: name %q, type %q, scope %v; want anonwatch-eks-audit, SUBSCRIPTION_FILTER_POLICY, ALL", typed.PolicyName, typed.PolicyType, typed.Scope)
	}

	for _, tt := range []struct {
		name        string
		given       map[string]string
		destination string
	}{
		// The destination of the member stack's own region: one StackSet
		// covers every region with a central stack.
		{"central account", map[string]string{"CentralAccountId": "123456789012"}, fmt.Sprintf("arn:aws:logs:%s:123456789012:destination:%s", testRegion, name)},
		{"destination ARN", map[string]string{"DestinationArn": "arn:aws:logs:eu-west-1:123456789012:destination:other"}, "arn:aws:logs:eu-west-1:123456789012:destination:other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvaluator(t, member, "anonwatch-member", tt.given)
			if failed := e.rules(t); len(failed) > 0 {
				t.Errorf("rules fail: %v", failed)
			}
			s, ok := e.property(t, "AuditLogPolicy", "PolicyDocument").(string)
			if !ok {
				t.Fatal("PolicyDocument is not a string")
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(s), &doc); err != nil {
				t.Fatalf("PolicyDocument is not JSON: %v\n%s", err, s)
			}
			want := map[string]any{
				"DestinationArn": tt.destination,
				"RoleArn":        "{GetAtt:SubscriptionRole.Arn}",
				"FilterPattern":  defaultFilterPattern(t, single),
				"Distribution":   "Random",
			}
			if diff := cmp.Diff(want, doc); diff != "" {
				t.Errorf("PolicyDocument (-want +got):\n%s", diff)
			}
			out, err := e.value(asMap(asMap(member.raw["Outputs"])["DestinationArn"])["Value"])
			if err != nil || out != tt.destination {
				t.Errorf("output DestinationArn = %v (%v), want %s", out, err, tt.destination)
			}
		})
	}
	if failed := newEvaluator(t, member, "anonwatch-member", nil).rules(t); len(failed) != 1 {
		t.Errorf("with no destination, failing rules = %v, want one", failed)
	}
}

// TestMemberRole checks the role CloudWatch Logs assumes in the member
// account: it may deliver this account's log events in this region, and
// has no name, so a StackSet's instances in several regions of one
// account do not collide.
func TestMemberRole(t *testing.T) {
	l := loadMember(t)
	e := newEvaluator(t, l, "anonwatch-member", map[string]string{"CentralAccountId": "123456789012"})
	want := map[string]any{
		"AssumeRolePolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole",
			"Condition": map[string]any{"StringLike": map[string]any{"aws:SourceArn": fmt.Sprintf("arn:aws:logs:%s:%s:*", testRegion, testAccountID)}},
		}}},
		"Policies": []any{map[string]any{
			"PolicyName": "DeliverLogEvents",
			"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "logs:PutLogEvents",
				"Resource": fmt.Sprintf("arn:aws:logs:%s:%s:log-group:*", testRegion, testAccountID),
			}}},
		}},
	}
	got := map[string]any{}
	for k := range asMap(rawResource(t, l, "SubscriptionRole")["Properties"]) {
		got[k] = e.property(t, "SubscriptionRole", k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SubscriptionRole (-want +got):\n%s", diff)
	}
}

// TestMemberParameterPatterns checks that the AllowedPatterns accept and
// refuse what their descriptions say (CloudFormation applies a
// CommaDelimitedList's to each member).
func TestMemberParameterPatterns(t *testing.T) {
	tests := []struct {
		l            *loaded
		param, value string
		want         bool
	}{
		{loadMember(t), "CentralAccountId", "", true},
		{loadMember(t), "CentralAccountId", "123456789012", true},
		{loadMember(t), "CentralAccountId", "12345678901", false},
		{loadMember(t), "DestinationArn", "", true},
		{loadMember(t), "DestinationArn", "arn:aws:logs:eu-west-1:123456789012:destination:anonwatch-eks-audit", true},
		{loadMember(t), "DestinationArn", "arn:aws-us-gov:logs:us-gov-west-1:123456789012:destination:x", true},
		{loadMember(t), "DestinationArn", "arn:aws:kinesis:eu-west-1:123456789012:stream/x", false},
		// A name is quoted into the selection criteria: no quote may
		// close it early.
		{loadMember(t), "ExcludedLogGroups", "/aws/lambda/anonwatch-detector", true},
		{loadMember(t), "ExcludedLogGroups", `/x", "y`, false},
		{loadMember(t), "CentralStackName", "anonwatch-org", true},
		{loadMember(t), "CentralStackName", "anonwatch org", false},
		{loadCentral(t), "OrganizationId", "o-a1b2c3d4e5", true},
		{loadCentral(t), "OrganizationId", "r-a1b2", false},
		// An account ID is quoted into the destination policy.
		{loadCentral(t), "MemberAccountIds", "123456789012", true},
		{loadCentral(t), "MemberAccountIds", `1", "*`, false},
		{loadCentral(t), "DestinationName", "anonwatch-eks-audit", true},
		{loadCentral(t), "DestinationName", "a:b", false},
	}
	for _, tt := range tests {
		p, ok := tt.l.typed.Parameters[tt.param]
		if !ok || p.AllowedPattern == nil {
			t.Fatalf("%s: parameter %s has no AllowedPattern", tt.l.path, tt.param)
		}
		if got := regexp.MustCompile(*p.AllowedPattern).MatchString(tt.value); got != tt.want {
			t.Errorf("%s %s AllowedPattern %q on %q = %v, want %v", tt.l.path, tt.param, *p.AllowedPattern, tt.value, got, tt.want)
		}
	}
}

// TestMemberPlainCloudFormation checks what a StackSet with service-
// managed permissions needs of the member template: no transform, and no
// named IAM resource (a stack instance per region of one account would
// collide on it), so CAPABILITY_IAM is all it asks for.
func TestMemberPlainCloudFormation(t *testing.T) {
	l := loadMember(t)
	for name, r := range asMap(l.raw["Resources"]) {
		r := asMap(r)
		typ := fmt.Sprint(r["Type"])
		if strings.HasPrefix(typ, "AWS::Serverless::") || !strings.HasPrefix(typ, "AWS::") {
			t.Errorf("%s is a %s, not a plain CloudFormation resource", name, typ)
		}
		for _, k := range []string{"RoleName", "ManagedPolicyName", "UserName", "GroupName", "InstanceProfileName"} {
			if _, ok := asMap(r["Properties"])[k]; ok && strings.HasPrefix(typ, "AWS::IAM::") {
				t.Errorf("%s names itself (%s): a StackSet's instances in two regions of one account would collide", name, k)
			}
		}
	}
	var keys []string
	for k := range l.raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"AWSTemplateFormatVersion", "Conditions", "Description", "Outputs", "Parameters", "Resources", "Rules"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("top-level sections (-want +got):\n%s", diff)
	}
}

// TestRulesGroupByCluster: every default rule groups by cluster, so each
// finding names one cluster. With QUALIFY_CLUSTERS no state item is shared
// by two accounts' or regions' clusters whatever a rule groups by
// (internal/detect, TestMemberAccountCannotSuppressAnother), which the
// multi-region design relies on (docs/organization.md, "Several regions").
func TestRulesGroupByCluster(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range set.Rules() {
		if !slices.Contains(r.GroupBy, rules.FieldClusterName) {
			t.Errorf("rule %s groups by %v, not by cluster: its findings name no cluster", r.ID, r.GroupBy)
		}
	}
}
