//go:build integration

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
	"github.com/anonwatch/anonwatch/internal/render"
)

// samples is what each events/ sample must deliver on a fresh table with
// the default rules, worked out by hand from events/src/<name>.jsonl and
// internal/rules/default.yaml, not by running the code. Every file in
// events/ must be listed.
var samples = map[string][]outcome{
	// Three 403 ResponseComplete events from 203.0.113.7 (the fourth line
	// is stage RequestReceived, skipped): two lists and a watch of pods,
	// a pod scan of three requests, and three distinct paths, which makes
	// the cluster scan medium.
	"anonymous-pod-scan.json": {
		{Rule: "eks-cluster-scan", SrcIP: "203.0.113.7", Severity: "medium", Count: 3},
		{Rule: "eks-pod-scan", SrcIP: "203.0.113.7", Severity: "medium", Count: 3},
	},
	// One allowed anonymous read of a secret: critical, and one low scan.
	"anonymous-secret-read.json": {
		{Rule: "anonymous-request-allowed", SrcIP: "192.0.2.44", Severity: "critical", Count: 1},
		{Rule: "eks-cluster-scan", SrcIP: "192.0.2.44", Severity: "low", Count: 1},
	},
	// Health probes, /version, the AWS Security Scanner's three requests
	// (two 403s, three paths: below every threshold) and authenticated
	// users: nothing.
	"benign-traffic.json": nil,
	// Twelve anonymous requests from 198.51.100.23 to twelve paths, ten of
	// them refused; the two allowed ones (/version, /.well-known/...) are
	// excluded from anonymous-request-allowed.
	"cluster-scan-masscan.json": {
		{Rule: "anonymous-enumeration", SrcIP: "198.51.100.23", Severity: "medium", Count: 12},
		{Rule: "eks-cluster-scan", SrcIP: "198.51.100.23", Severity: "medium", Count: 12},
		{Rule: "unauthenticated-403-burst", SrcIP: "198.51.100.23", Severity: "medium", Count: 10},
	},
	"control-message.json": nil,
	// alice binds system:unauthenticated; the rule groups by user, so the
	// finding has no src_ip.
	"rolebinding-grant.json": {
		{Rule: "anonymous-access-granted", SrcIP: "", Severity: "critical", Count: 1},
	},
	// sourceIPs [192.0.2.10, 203.0.113.66]: the first is a forged
	// X-Forwarded-For, so everything counts against the last.
	"spoofed-xff.json": {
		{Rule: "eks-cluster-scan", SrcIP: "203.0.113.66", Severity: "low", Count: 2},
		{Rule: "eks-pod-scan", SrcIP: "203.0.113.66", Severity: "medium", Count: 2},
	},
	// Five lines on an audit stream: a whole anonymous request from
	// 203.0.113.99; one cut and marked, whose surviving bytes name the
	// same anonymous source (its timestamps were cut off, so it counts at
	// its ingestion time, the same minute); a line that is not JSON at
	// all, damaged past recognition; JSON that is not an audit event
	// (skipped); a RequestReceived record (skipped). Each damaged line is
	// a high finding of its own: anonymous, or nobody left to tell.
	"truncated-and-malformed.json": {
		{Rule: "audit-event-unreadable", SrcIP: "", Severity: "high", Count: 1},
		{Rule: "audit-event-unreadable", SrcIP: "203.0.113.99", Severity: "high", Count: 1},
		{Rule: "eks-cluster-scan", SrcIP: "203.0.113.99", Severity: "low", Count: 2},
	},
}

func TestSamplesAreAllCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	for name := range samples {
		want = append(want, name)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events/*.json and the samples table differ (-table +files):\n%s", diff)
	}
}

// TestSamples invokes the real bootstrap with each sample on a fresh table
// and topic, and checks what a queue subscribed to the topic receives:
// against the table above, against the function's own summary line, and
// against `anonwatch replay` of the same file, which runs the same pipeline
// on the in-memory state.
func TestSamples(t *testing.T) {
	for name, want := range samples {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
			q := subscribeQueue(t, topic, false, "")
			fn := startFunction(t, functionEnv(table, topic))

			resp := invokeOK(t, fn, emu.ReadEvent(t, repoRoot, name))
			got := findings(t, emu.MustReceive(t, q))

			var outcomes []outcome
			for _, d := range got {
				outcomes = append(outcomes, outcomeOf(&d.Finding))
			}
			if diff := cmp.Diff(sortOutcomes(want), sortOutcomes(outcomes), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			sum := summary(t, fn, resp.RequestID)
			if n := sum["findings_published"]; n != float64(len(want)) {
				t.Errorf("summary line: findings_published = %v, want %d", n, len(want))
			}
			if n := sum["sns_calls"]; n != float64(len(want)) {
				t.Errorf("summary line: sns_calls = %v, want %d (one Publish per finding)", n, len(want))
			}

			for _, d := range got {
				checkEnvelope(t, &d)
			}

			// Differential: replay must find the same findings, document
			// for document.
			byKey := func(fs []detect.Finding) []detect.Finding {
				sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
				return fs
			}
			var lambda []detect.Finding
			for _, d := range got {
				lambda = append(lambda, d.Finding)
			}
			if diff := cmp.Diff(byKey(replay(t, name)), byKey(lambda), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Lambda deliveries differ from anonwatch replay (-replay +lambda):\n%s", diff)
			}
		})
	}
}

// checkEnvelope checks what SNS adds to a finding: the subject e-mail
// subscribers see and the message attributes filter policies select on.
func checkEnvelope(t *testing.T, d *delivered) {
	t.Helper()
	f := &d.Finding
	if want := render.EmailSubject(f); d.Subject != want {
		t.Errorf("finding %s: subject %q, want %q", f.ID, d.Subject, want)
	}
	want := map[string]string{
		"severity":     f.Severity,
		"rule":         f.Rule,
		"cluster_name": f.ClusterName,
		"count":        fmt.Sprint(f.Count),
	}
	if f.SrcIP != "" {
		want["src_ip"] = f.SrcIP
	}
	if diff := cmp.Diff(want, d.Attributes); diff != "" {
		t.Errorf("finding %s: message attributes (-want +got):\n%s", f.ID, diff)
	}
}

// TestRetryDeliversNothingNew invokes a sample, then the same event again,
// as Lambda does when it retries: first on the same execution environment,
// then on a new one (a retry may land on either). The retries must publish
// nothing and leave the table exactly as the first invocation left it.
func TestRetryDeliversNothingNew(t *testing.T) {
	t.Parallel()
	const sample = "cluster-scan-masscan.json"
	table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
	q := subscribeQueue(t, topic, false, "")
	env := functionEnv(table, topic)
	event := emu.ReadEvent(t, repoRoot, sample)

	first := startFunction(t, env)
	invokeOK(t, first, event)
	if got := len(emu.MustReceive(t, q)); got != len(samples[sample]) {
		t.Fatalf("first invoke delivered %d findings, want %d", got, len(samples[sample]))
	}
	before := emu.ScanTable(t, dynamoURL, table)
	if len(before) == 0 {
		t.Fatal("the first invoke wrote nothing to the table")
	}

	for _, retry := range []struct {
		name string
		fn   *rie.Instance
	}{
		{"same environment", first},
		{"new environment", startFunction(t, env)},
	} {
		resp := invokeOK(t, retry.fn, event)
		if msgs := emu.MustReceive(t, q); len(msgs) != 0 {
			t.Errorf("retry on the %s delivered %d messages, want none:\n%v", retry.name, len(msgs), msgs)
		}
		sum := summary(t, retry.fn, resp.RequestID)
		if sum["findings_published"] != float64(0) || sum["sns_calls"] != float64(0) {
			t.Errorf("retry on the %s: summary %v, want findings_published 0 and sns_calls 0", retry.name, sum)
		}
		if diff := cmp.Diff(before, emu.ScanTable(t, dynamoURL, table)); diff != "" {
			t.Errorf("retry on the %s changed the table (-before +after):\n%s", retry.name, diff)
		}
	}
}

// TestControlMessageDoesNothing checks that the message CloudWatch Logs
// sends when a subscription is created publishes nothing and writes
// nothing.
func TestControlMessageDoesNothing(t *testing.T) {
	t.Parallel()
	table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
	q := subscribeQueue(t, topic, false, "")
	fn := startFunction(t, functionEnv(table, topic))

	resp := invokeOK(t, fn, emu.ReadEvent(t, repoRoot, "control-message.json"))
	if msgs := emu.MustReceive(t, q); len(msgs) != 0 {
		t.Errorf("control message delivered %d messages: %v", len(msgs), msgs)
	}
	if items := emu.ScanTable(t, dynamoURL, table); len(items) != 0 {
		t.Errorf("control message wrote %d items: %v", len(items), items)
	}
	sum := summary(t, fn, resp.RequestID)
	for k, want := range map[string]any{"control": true, "dynamodb_calls": float64(0), "sns_calls": float64(0)} {
		if sum[k] != want {
			t.Errorf("summary %s = %v, want %v", k, sum[k], want)
		}
	}
}

// awslogs wraps data as a subscription event's awslogs.data.
func awslogs(data string) []byte {
	b, _ := json.Marshal(map[string]any{"awslogs": map[string]string{"data": data}})
	return b
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// TestMalformedEnvelope sends events that cannot be decoded. Each must fail
// with errorType EnvelopeError, so that Lambda retries it and then keeps it
// in the on-failure destination, and must leave the function able to serve
// the next, valid, event on the same instance.
func TestMalformedEnvelope(t *testing.T) {
	t.Parallel()
	table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
	q := subscribeQueue(t, topic, false, "")
	fn := startFunction(t, functionEnv(table, topic))

	valid := gzipped(`{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/demo/cluster","logEvents":[]}`)
	for _, tc := range []struct {
		name  string
		event []byte
	}{
		{"no data", []byte(`{"awslogs":{}}`)},
		{"not base64", awslogs("%%% not base64 %%%")},
		{"not gzip", awslogs(base64.StdEncoding.EncodeToString([]byte("plain text, not gzip")))},
		{"truncated gzip", awslogs(base64.StdEncoding.EncodeToString(valid[:len(valid)/2]))},
		{"gzip of non-JSON", awslogs(base64.StdEncoding.EncodeToString(gzipped("this is not JSON")))},
		{"gzip of a JSON array", awslogs(base64.StdEncoding.EncodeToString(gzipped(`[1,2,3]`)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, fn, tc.event)
			fe, ok := resp.FunctionError()
			if resp.Status != http.StatusOK || !ok || fe.Type != "EnvelopeError" {
				t.Fatalf("HTTP %d %s, want 200 with errorType EnvelopeError", resp.Status, resp.Body)
			}
			lines := logLines(t, fn, resp.RequestID)
			if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["message"] != "invocation failed" {
				t.Errorf("log lines %v, want one ERROR \"invocation failed\"", lines)
			}
		})
	}

	if msgs := emu.MustReceive(t, q); len(msgs) != 0 {
		t.Errorf("malformed events delivered %d messages", len(msgs))
	}
	if items := emu.ScanTable(t, dynamoURL, table); len(items) != 0 {
		t.Errorf("malformed events wrote %d items", len(items))
	}

	const sample = "anonymous-pod-scan.json"
	invokeOK(t, fn, emu.ReadEvent(t, repoRoot, sample))
	var got []outcome
	for _, d := range findings(t, emu.MustReceive(t, q)) {
		got = append(got, outcomeOf(&d.Finding))
	}
	if diff := cmp.Diff(sortOutcomes(samples[sample]), sortOutcomes(got)); diff != "" {
		t.Errorf("valid event after the malformed ones (-want +got):\n%s", diff)
	}
}

// TestBadConfigurationFailsInit starts the function with configurations it
// must refuse. Init must fail with one clear log line and the invoke must
// report the failed init, never run the handler.
func TestBadConfigurationFailsInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badRules := filepath.Join(dir, "rules.yaml")
	// A rule whose CEL condition does not compile.
	if err := os.WriteFile(badRules, []byte(`rules:
  - id: broken-rule
    title: Broken
    severity: low
    match: anonymous &&
    group_by: [src_ip]
    threshold: {count: 1, window: 1h}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := functionEnv("unused-table", "arn:aws:sns:us-east-1:100010001000:unused")
	for _, tc := range []struct {
		name string
		env  []string
		want []string // substrings of the one error line
	}{
		{"missing TABLE_NAME", withoutVar(env, "TABLE_NAME"), []string{"TABLE_NAME"}},
		{"missing TOPIC_ARN", withoutVar(env, "TOPIC_ARN"), []string{"TOPIC_ARN"}},
		{"RULES_FILE does not compile", append(slices.Clip(env), "RULES_FILE="+badRules), []string{badRules, "broken-rule"}},
		{"RULES_FILE missing", append(slices.Clip(env), "RULES_FILE="+filepath.Join(dir, "absent.yaml")), []string{"RULES_FILE", "absent.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fn := startFunction(t, tc.env)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp := invoke(t, fn, emu.ReadEvent(t, repoRoot, "control-message.json"))
			// The emulator answers a failed init with 502 and no body.
			if resp.Status != http.StatusBadGateway {
				t.Errorf("invoke: HTTP %d %s, want 502 (init failed)", resp.Status, resp.Body)
			}
			if err := fn.WaitOutput(ctx, "INIT RTDONE(status: error)"); err != nil {
				t.Fatal(err)
			}
			// Everything the function wrote: the one log line and nothing
			// else, no stack trace and no second message.
			written := functionOutput(fn.Output())
			if len(written) != 1 {
				t.Fatalf("function wrote %d lines, want exactly one:\n%s", len(written), strings.Join(written, "\n"))
			}
			var l map[string]any
			if err := json.Unmarshal([]byte(written[0]), &l); err != nil {
				t.Fatalf("function's line is not a JSON log line: %v\n%s", err, written[0])
			}
			msg, _ := l["error"].(string)
			if l["level"] != "ERROR" || l["message"] != "init failed" {
				t.Errorf("log line %v, want level ERROR and message \"init failed\"", l)
			}
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("init error %q does not mention %q", msg, s)
				}
			}
		})
	}
}

// TestSubscriberForms subscribes every kind of consumer the topic feeds in
// production to one topic and checks what each receives for a sample with
// a critical and a low finding: a raw queue (the finding JSON), an
// enveloped queue (subject and attributes), a queue whose filter policy
// takes only high and critical findings, and an HTTP endpoint, which goaws
// hands the whole per-protocol message (e-mail text included).
func TestSubscriberForms(t *testing.T) {
	t.Parallel()
	const sample = "anonymous-secret-read.json"
	var (
		mu     sync.Mutex
		posted []notification
	)
	srv := httptest.NewServer(httpHandler(func(n notification) {
		mu.Lock()
		defer mu.Unlock()
		posted = append(posted, n)
	}))
	defer srv.Close()

	table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
	raw := subscribeQueue(t, topic, true, "")
	enveloped := subscribeQueue(t, topic, false, "")
	urgent := subscribeQueue(t, topic, true, `{"severity": ["high", "critical"]}`)
	// goaws confirms an HTTP subscription by posting to it about a second
	// after Subscribe returns; Subscribe waits for that.
	goaws(t, url.Values{"Action": {"Subscribe"}, "TopicArn": {topic}, "Protocol": {"http"}, "Endpoint": {srv.URL}}, nil)

	fn := startFunction(t, functionEnv(table, topic))
	invokeOK(t, fn, emu.ReadEvent(t, repoRoot, sample))

	env := findings(t, emu.MustReceive(t, enveloped))
	if len(env) != 2 {
		t.Fatalf("enveloped queue got %d findings, want 2", len(env))
	}
	byID := map[string]delivered{}
	for _, d := range env {
		byID[d.Finding.ID] = d
	}

	// Raw delivery: the body is the finding JSON itself, the same bytes
	// the envelope carries.
	rawMsgs := emu.MustReceive(t, raw)
	if len(rawMsgs) != 2 {
		t.Fatalf("raw queue got %d messages, want 2", len(rawMsgs))
	}
	for _, m := range rawMsgs {
		var f detect.Finding
		if err := json.Unmarshal([]byte(m.Body), &f); err != nil {
			t.Fatalf("raw message is not a finding: %v\n%s", err, m.Body)
		}
		if d, ok := byID[f.ID]; !ok || d.Raw != m.Body {
			t.Errorf("raw body of %s differs from the enveloped Message", f.ID)
		}
		if m.Attributes["severity"] != f.Severity {
			t.Errorf("raw message of %s: severity attribute %q, want %q", f.ID, m.Attributes["severity"], f.Severity)
		}
	}

	var urgentRules []string
	for _, m := range emu.MustReceive(t, urgent) {
		var f detect.Finding
		if err := json.Unmarshal([]byte(m.Body), &f); err != nil {
			t.Fatalf("urgent message is not a finding: %v", err)
		}
		urgentRules = append(urgentRules, f.Rule+"/"+f.Severity)
	}
	if diff := cmp.Diff([]string{"anonymous-request-allowed/critical"}, urgentRules); diff != "" {
		t.Errorf("filtered queue (-want +got):\n%s", diff)
	}

	mu.Lock()
	defer mu.Unlock()
	var notes []notification
	for _, n := range posted {
		if n.Type == "Notification" {
			notes = append(notes, n)
		}
	}
	if len(notes) != 2 {
		t.Fatalf("HTTP endpoint got %d notifications, want 2", len(notes))
	}
	for _, n := range notes {
		var forms map[string]string
		if err := json.Unmarshal([]byte(n.Message), &forms); err != nil {
			t.Fatalf("HTTP notification's Message is not the per-protocol JSON: %v\n%s", err, n.Message)
		}
		var f detect.Finding
		if err := json.Unmarshal([]byte(forms["default"]), &f); err != nil {
			t.Fatalf("default form is not a finding: %v", err)
		}
		d, ok := byID[f.ID]
		if !ok {
			t.Fatalf("HTTP endpoint got finding %s, which the queue did not", f.ID)
		}
		if n.Subject != d.Subject {
			t.Errorf("HTTP subject %q, queue subject %q", n.Subject, d.Subject)
		}
		if !strings.Contains(forms["email"], f.SrcIP) || !strings.Contains(forms["email"], f.ClusterName) {
			t.Errorf("e-mail form of %s does not name the source and cluster:\n%s", f.ID, forms["email"])
		}
		if forms["sms"] != d.Subject {
			t.Errorf("sms form %q, want the subject %q", forms["sms"], d.Subject)
		}
	}
}

// httpHandler records each SNS message posted to it.
func httpHandler(record func(notification)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err == nil {
			record(n)
		}
	}
}

// TestArm64 builds the bootstrap as deployed, for arm64, and runs one
// sample through it under qemu-aarch64 when that is installed.
func TestArm64(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := emu.BuildBootstrap(repoRoot, "./functions/detector", "arm64", dir); err != nil {
		t.Fatal(err)
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	f, err := elf.Open(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machine
	f.Close()
	if machine != elf.EM_AARCH64 {
		t.Fatalf("bootstrap is for %v, want EM_AARCH64", machine)
	}
	st, err := os.Stat(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 bootstrap: %d bytes", st.Size())

	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		t.Skipf("the arm64 bootstrap builds (%d bytes), but qemu-aarch64 is not on PATH (Debian package qemu-user), so it was not run", st.Size())
	}
	const sample = "anonymous-secret-read.json"
	table, topic := emu.NewTable(t, dynamoURL, "e2e-"), newTopic(t)
	q := subscribeQueue(t, topic, false, "")
	fn := startIn(t, dir, functionEnv(table, topic), qemu, "./bootstrap")
	invokeOK(t, fn, emu.ReadEvent(t, repoRoot, sample))

	pid, err := fn.FunctionPID()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || filepath.Base(exe) != filepath.Base(qemu) {
		t.Errorf("function process %d runs %q (%v), want qemu-aarch64", pid, exe, err)
	}
	var got []outcome
	for _, d := range findings(t, emu.MustReceive(t, q)) {
		got = append(got, outcomeOf(&d.Finding))
	}
	if diff := cmp.Diff(sortOutcomes(samples[sample]), sortOutcomes(got)); diff != "" {
		t.Errorf("arm64 deliveries (-want +got):\n%s", diff)
	}
}
