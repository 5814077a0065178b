package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

var update = flag.Bool("update", false, "rewrite the generated envelopes in testdata")

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// generated are the envelopes in testdata that Encode writes; -update
// rewrites them, and TestGeneratedFixtures checks they are current.
func generated() map[string]cwlogs.Batch {
	return map[string]cwlogs.Batch{
		"eks_audit.json": synth.Batch(
			synth.Lines(6, 0.5, 42, t0, 250*time.Millisecond),
			"/aws/eks/prod-eu/cluster", "kube-apiserver-audit-0a1b2c3d4e5f", 1),
		"empty_events.json": {
			MessageType: cwlogs.DataMessage,
			Owner:       "111122223333",
			LogGroup:    "/aws/eks/prod-eu/cluster",
			LogStream:   "kube-apiserver-audit-0a1b2c3d4e5f",
		},
		// What CloudWatch sends when a subscription is created, to check
		// that the destination is reachable.
		"control_message.json": {
			MessageType: cwlogs.ControlMessage,
			Owner:       "CloudwatchLogs",
			Events: []cwlogs.LogEvent{{
				Timestamp: 1735787045000,
				Message:   []byte("CWL CONTROL MESSAGE: Checking health of destination Lambda function."),
			}},
		},
	}
}

// sized returns b with each event's Size set, as a decoder sets it for a
// line it keeps whole.
func sized(b cwlogs.Batch) cwlogs.Batch {
	b.Events = append([]cwlogs.LogEvent(nil), b.Events...)
	for i := range b.Events {
		b.Events[i].Size = len(b.Events[i].Message)
	}
	return b
}

func TestGeneratedFixtures(t *testing.T) {
	for name, b := range generated() {
		t.Run(name, func(t *testing.T) {
			got, err := cwlogs.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSuffix(want, []byte("\n")), got) {
				t.Errorf("Encode() output differs from %s; run go test -update if the change is intended", path)
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	gen := generated()
	eks := sized(gen["eks_audit.json"])
	eks.Cluster = "prod-eu"
	empty := gen["empty_events.json"]
	empty.Cluster = "prod-eu"
	tests := []struct {
		file string
		want cwlogs.Batch
	}{
		{
			// Source: aws/aws-lambda-go @ 815d21f,
			// events/testdata/cloudwatch-logs-event.json (Apache-2.0).
			// Two plain-text lines from a log group that is not EKS.
			file: "aws_lambda_go_cloudwatch_logs_event.json",
			want: cwlogs.Batch{
				MessageType: cwlogs.DataMessage,
				Owner:       "123456789123",
				LogGroup:    "testLogGroup",
				LogStream:   "testLogStream",
				Cluster:     "testLogGroup",
				Events: []cwlogs.LogEvent{
					{ID: "eventId1", Timestamp: 1440442987000, Message: []byte("[ERROR] First test message"), Size: 26},
					{ID: "eventId2", Timestamp: 1440442987001, Message: []byte("[ERROR] Second test message"), Size: 27},
				},
			},
		},
		{file: "eks_audit.json", want: eks},
		{file: "empty_events.json", want: empty},
		{
			file: "control_message.json",
			want: cwlogs.Batch{MessageType: cwlogs.ControlMessage, Owner: "CloudwatchLogs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := cwlogs.DecodeEvent(raw, cwlogs.DefaultLimits)
			if err != nil {
				t.Fatalf("DecodeEvent() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeEvent() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := map[string]cwlogs.Batch{
		"audit lines": synth.Batch(synth.Lines(50, 0.2, 1, t0, time.Second), "/aws/eks/a/cluster", "s", 100),
		"awkward messages": {
			MessageType: cwlogs.DataMessage,
			LogGroup:    "/custom/group",
			Cluster:     "/custom/group",
			Events: []cwlogs.LogEvent{
				{ID: "1", Timestamp: -1, Message: []byte("quote \" backslash \\ tab \t nul \x00 <html> & emoji 😀")},
				{ID: "2", Message: []byte{}},
				{ID: "3", Message: []byte(strings.Repeat("x", 70_000))},
			},
		},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			env, err := cwlogs.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			again, err := cwlogs.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(env, again) {
				t.Error("Encode() is not deterministic")
			}
			got, err := cwlogs.DecodeEvent(env, cwlogs.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sized(b), got); diff != "" {
				t.Errorf("DecodeEvent(Encode()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeDataShares checks that a batch keeps nothing DecodeData reuses
// for the next delivery (the compressed bytes, the gzip reader): batches
// decoded one after the other, on one goroutine and on several, each
// stay what they were decoded as, the encoding/json fallback's included.
func TestDecodeDataShares(t *testing.T) {
	var want []cwlogs.Batch
	var data []string
	for i := range 12 {
		b := synth.Batch(synth.Lines(40+i, 0.3, uint64(i), t0, time.Second), "/aws/eks/a/cluster", "s", 1+100*i)
		env, err := cwlogs.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		raw := string(env[len(`{"awslogs":{"data":"`) : len(env)-len(`"}}`)])
		if i%4 == 3 {
			// A payload in a shape the streaming decoder leaves to
			// encoding/json: a key in another case.
			p, err := cwlogs.EncodePayload(b)
			if err != nil {
				t.Fatal(err)
			}
			raw = gz(t, `{"logEvents":`+string(p[bytes.Index(p, []byte(`[`)):len(p)-1])+`,"messageType":"DATA_MESSAGE","owner":"111122223333","LogGroup":"/aws/eks/a/cluster","logStream":"s","subscriptionFilters":[]}`)
		}
		want = append(want, sized(b))
		data = append(data, raw)
	}
	check := func(got []cwlogs.Batch) {
		t.Helper()
		for i := range got {
			if diff := cmp.Diff(want[i], got[i]); diff != "" {
				t.Fatalf("batch %d after the others were decoded: mismatch (-want +got):\n%s", i, diff)
			}
		}
	}
	got := make([]cwlogs.Batch, len(data))
	for i, d := range data {
		var err error
		if got[i], err = cwlogs.DecodeData(d, cwlogs.DefaultLimits); err != nil {
			t.Fatal(err)
		}
	}
	check(got)
	var wg sync.WaitGroup
	got = make([]cwlogs.Batch, len(data))
	for round := range 2 {
		for i, d := range data {
			wg.Go(func() {
				b, err := cwlogs.DecodeData(d, cwlogs.DefaultLimits)
				if err != nil {
					t.Error(err)
				}
				if round == 1 {
					got[i] = b
				}
			})
		}
	}
	wg.Wait()
	check(got)
}

// gz compresses payload and encodes it as awslogs.data.
func gz(t testing.TB, payload string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestDecodeDataErrors(t *testing.T) {
	valid := `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":1,"message":"m"}]}`
	gzipped, err := base64.StdEncoding.DecodeString(gz(t, valid))
	if err != nil {
		t.Fatal(err)
	}
	flipCRC := bytes.Clone(gzipped)
	flipCRC[len(flipCRC)-8] ^= 0xff
	tests := []struct {
		name string
		data string
		lim  cwlogs.Limits
		want error
	}{
		{name: "base64 garbage", data: "not base64 at all!", want: cwlogs.ErrBase64},
		{name: "base64 wrong padding", data: gz(t, valid) + "A", want: cwlogs.ErrBase64},
		{name: "empty", data: "", want: cwlogs.ErrGzip},
		{name: "plain JSON, not gzip", data: base64.StdEncoding.EncodeToString([]byte(valid)), want: cwlogs.ErrGzip},
		{name: "truncated gzip", data: base64.StdEncoding.EncodeToString(gzipped[:len(gzipped)/2]), want: cwlogs.ErrGzip},
		{name: "gzip without trailer", data: base64.StdEncoding.EncodeToString(gzipped[:len(gzipped)-8]), want: cwlogs.ErrGzip},
		{name: "bad gzip checksum", data: base64.StdEncoding.EncodeToString(flipCRC), want: cwlogs.ErrGzip},
		{name: "not JSON", data: gz(t, "hello"), want: cwlogs.ErrPayload},
		{name: "truncated JSON", data: gz(t, valid[:len(valid)-3]), want: cwlogs.ErrPayload},
		{name: "JSON array", data: gz(t, `[]`), want: cwlogs.ErrPayload},
		{name: "no messageType", data: gz(t, `{"logGroup":"g","logEvents":[]}`), want: cwlogs.ErrPayload},
		{name: "unknown messageType", data: gz(t, `{"messageType":"OTHER"}`), want: cwlogs.ErrPayload},
		{name: "messageType not a string", data: gz(t, `{"messageType":1}`), want: cwlogs.ErrPayload},
		{name: "logEvents not an array", data: gz(t, `{"messageType":"DATA_MESSAGE","logEvents":{}}`), want: cwlogs.ErrPayload},
		{name: "message not a string", data: gz(t, `{"messageType":"DATA_MESSAGE","logEvents":[{"message":1}]}`), want: cwlogs.ErrPayload},
		{name: "timestamp not an integer", data: gz(t, `{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1.5}]}`), want: cwlogs.ErrPayload},
		{name: "trailing data", data: gz(t, valid+`{}`), want: cwlogs.ErrPayload},
		{name: "compressed above limit", data: gz(t, valid), lim: cwlogs.Limits{MaxCompressed: 16}, want: cwlogs.ErrTooLarge},
		{name: "inflated above limit", data: gz(t, valid), lim: cwlogs.Limits{MaxInflated: int64(len(valid) - 1)}, want: cwlogs.ErrTooLarge},
		{name: "trailing white space above limit", data: gz(t, valid+"   "), lim: cwlogs.Limits{MaxInflated: int64(len(valid) + 2)}, want: cwlogs.ErrTooLarge},
		// MaxDecompressed bounds what the batch holds: one event costs 64
		// bytes and its id, whatever its message.
		{name: "event above the batch limit", data: gz(t, valid), lim: cwlogs.Limits{MaxDecompressed: 64}, want: cwlogs.ErrTooLarge},
		{name: "payload to decode whole above the batch limit", data: gz(t, strings.Replace(valid, `"owner":"1"`, `"owner":null`, 1)), lim: cwlogs.Limits{MaxDecompressed: int64(len(valid) - 1)}, want: cwlogs.ErrTooLarge},
		{name: "base64 longer than the compressed limit", data: strings.Repeat("A", 4000), lim: cwlogs.Limits{MaxCompressed: 1000}, want: cwlogs.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cwlogs.DecodeData(tt.data, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeData() error = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(cwlogs.Batch{}, got); diff != "" {
				t.Errorf("DecodeData() returned a Batch with its error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeDataLimitIsInclusive(t *testing.T) {
	valid := `{"messageType":"DATA_MESSAGE","logEvents":[]}`
	if _, err := cwlogs.DecodeData(gz(t, valid), cwlogs.Limits{MaxInflated: int64(len(valid))}); err != nil {
		t.Errorf("DecodeData() of exactly MaxInflated bytes: error = %v, want nil", err)
	}
	// One event of id "1" and message "m" costs 64+1+1 bytes; messages
	// may take seven eighths of the budget: 66 of 75.
	one := `{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m"}]}`
	b, err := cwlogs.DecodeData(gz(t, one), cwlogs.Limits{MaxDecompressed: 75})
	if err != nil || len(b.Events) != 1 || b.Events[0].Cut {
		t.Errorf("DecodeData() of a batch that holds exactly its budget: %+v, error %v; want the line whole", b.Events, err)
	}
	b, err = cwlogs.DecodeData(gz(t, one), cwlogs.Limits{MaxDecompressed: 74})
	if err != nil || len(b.Events) != 1 || !b.Events[0].Cut || b.Events[0].Size != 1 {
		t.Errorf("DecodeData() of a batch a byte over its budget: %+v, error %v; want the line cut", b.Events, err)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{name: "not JSON", raw: "awslogs", want: cwlogs.ErrPayload},
		{name: "no awslogs", raw: `{"Records":[]}`, want: cwlogs.ErrPayload},
		{name: "no data", raw: `{"awslogs":{}}`, want: cwlogs.ErrPayload},
		{name: "data not a string", raw: `{"awslogs":{"data":5}}`, want: cwlogs.ErrPayload},
		{name: "data not base64", raw: `{"awslogs":{"data":"%%%"}}`, want: cwlogs.ErrBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cwlogs.DecodeEvent([]byte(tt.raw), cwlogs.DefaultLimits); !errors.Is(err, tt.want) {
				t.Errorf("DecodeEvent() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodePayload(t *testing.T) {
	b := synth.Batch(synth.Lines(3, 0.5, 9, t0, time.Second), "/aws/eks/dev/cluster", "stream", 7)
	payload, err := cwlogs.EncodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cwlogs.DecodePayload(bytes.NewReader(payload), cwlogs.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sized(b), got); diff != "" {
		t.Errorf("DecodePayload() mismatch (-want +got):\n%s", diff)
	}
	// A reader that cannot seek, read in small pieces, decodes the same.
	got, err = cwlogs.DecodePayload(iotest.HalfReader(struct{ io.Reader }{bytes.NewReader(payload)}), cwlogs.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sized(b), got); diff != "" {
		t.Errorf("DecodePayload() of a reader that cannot seek: mismatch (-want +got):\n%s", diff)
	}

	for _, lim := range []cwlogs.Limits{{MaxInflated: 100}, {MaxDecompressed: 100}} {
		if _, err := cwlogs.DecodePayload(bytes.NewReader(payload), lim); !errors.Is(err, cwlogs.ErrTooLarge) {
			t.Errorf("DecodePayload() over %+v: error = %v, want ErrTooLarge", lim, err)
		}
	}
	// A payload left to encoding/json, from a reader that cannot seek:
	// from a copy kept as it was read.
	odd := bytes.Replace(payload, []byte(`"owner":"111122223333"`), []byte(`"owner":null`), 1)
	want := sized(b)
	want.Owner = ""
	for _, r := range []io.Reader{bytes.NewReader(odd), iotest.HalfReader(struct{ io.Reader }{bytes.NewReader(odd)})} {
		got, err := cwlogs.DecodePayload(r, cwlogs.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DecodePayload() of a payload decoded whole (%T): mismatch (-want +got):\n%s", r, diff)
		}
	}
	if _, err := cwlogs.DecodePayload(iotest.HalfReader(struct{ io.Reader }{bytes.NewReader(odd)}), cwlogs.Limits{MaxDecompressed: int64(len(odd) - 1)}); !errors.Is(err, cwlogs.ErrTooLarge) {
		t.Errorf("DecodePayload() of a payload to decode whole, longer than MaxDecompressed: error = %v, want ErrTooLarge", err)
	}

	readErr := errors.New("disk on fire")
	_, err = cwlogs.DecodePayload(iotest.ErrReader(readErr), cwlogs.DefaultLimits)
	if !errors.Is(err, readErr) {
		t.Errorf("DecodePayload() of a failing reader: error = %v, want it to wrap %v", err, readErr)
	}
	for _, s := range []error{cwlogs.ErrBase64, cwlogs.ErrGzip, cwlogs.ErrTooLarge, cwlogs.ErrPayload} {
		if errors.Is(err, s) {
			t.Errorf("DecodePayload() of a failing reader: error %v wraps %v", err, s)
		}
	}
}

func TestClusterName(t *testing.T) {
	tests := []struct {
		logGroup string
		want     string
	}{
		{"/aws/eks/prod-eu/cluster", "prod-eu"},
		{"/aws/eks/a/cluster", "a"},
		{"/aws/eks/my_cluster-2/cluster", "my_cluster-2"},
		{"/aws/eks//cluster", "/aws/eks//cluster"},
		{"/aws/eks/a/b/cluster", "/aws/eks/a/b/cluster"},
		{"/aws/eks/prod-eu/cluster/", "/aws/eks/prod-eu/cluster/"},
		{"/aws/eks/prod-eu", "/aws/eks/prod-eu"},
		{"aws/eks/prod-eu/cluster", "aws/eks/prod-eu/cluster"},
		{"/aws/lambda/anonwatch", "/aws/lambda/anonwatch"},
		{"testLogGroup", "testLogGroup"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := cwlogs.ClusterName(tt.logGroup); got != tt.want {
			t.Errorf("ClusterName(%q) = %q, want %q", tt.logGroup, got, tt.want)
		}
	}
}

// TestDecodeDataWhiteSpace checks that white space outside strings, which
// the decoder collapses, changes nothing, and white space inside strings,
// next to escapes included, is kept.
func TestDecodeDataWhiteSpace(t *testing.T) {
	payload := "\n\t {  \"messageType\" :\r\n  \"DATA_MESSAGE\"  ,\n\n  \"logGroup\":\"/aws/eks/ws/cluster\",\n" +
		"  \"logEvents\" : [ \n\n" +
		`    { "id" : "1" , "timestamp" : 5 , "message" : "  two  spaces \"  quoted  \" \\\\   back\\\\\"   slash  " } ,` + "\n" +
		"    {\"id\":\"2\",\"timestamp\":6,\"message\":\"\\t\\n   \"}\n  ]\n}\n\n   "
	want := sized(cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		LogGroup:    "/aws/eks/ws/cluster",
		Cluster:     "ws",
		Events: []cwlogs.LogEvent{
			{ID: "1", Timestamp: 5, Message: []byte(`  two  spaces "  quoted  " \\   back\\"   slash  `)},
			{ID: "2", Timestamp: 6, Message: []byte("\t\n   ")},
		},
	})
	got, err := cwlogs.DecodeData(gz(t, payload), cwlogs.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeData() mismatch (-want +got):\n%s", diff)
	}
}
