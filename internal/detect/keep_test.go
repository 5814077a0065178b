package detect_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// TestPrefilterOnEscapedMessages proves the function's fast path safe: the
// rules' pre-filter applied to messages still JSON-escaped in the payload
// (cwlogs.DecodeDataKeep) gives the same aggregates and counts as decoding
// every line first.
func TestPrefilterOnEscapedMessages(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	d, err := detect.New(detect.Config{Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	g := synth.New(3, time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), time.Second, synth.Mix{Anonymous: 0.3, RequestReceived: 0.02})
	for range 3000 {
		lines = append(lines, g.Next())
	}
	for _, name := range []string{"skips.jsonl", "spoofed-xff.jsonl", "unauthenticated-403-x6.jsonl"} {
		for _, e := range readBatch(t, name, "s").Events {
			lines = append(lines, e.Message)
		}
	}
	// Damaged lines without a pre-filter string: one marked, one long and
	// cut without a mark. The detector's Keep must keep both for read to
	// salvage.
	padded := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5f0c0051-7d1e-4b2a-9c3d-4e5f6a7b8c9d","stage":"ResponseComplete","requestURI":"/` + strings.Repeat("x", 40<<10)
	lines = append(lines, []byte(padded[:2000]+"[Truncated...]"), []byte(padded))
	env, err := cwlogs.Encode(synth.Batch(lines, "/aws/eks/demo/cluster", "s", 1))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		AWSLogs struct{ Data string } `json:"awslogs"`
	}
	if err := json.Unmarshal(env, &ev); err != nil {
		t.Fatal(err)
	}
	lim := cwlogs.Limits{MaxDecompressed: 64 << 20}
	all, err := cwlogs.DecodeData(ev.AWSLogs.Data, lim)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := cwlogs.DecodeDataKeep(ev.AWSLogs.Data, lim, d.Keep)
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, e := range kept.Events {
		if e.Dropped {
			dropped++
		}
	}
	if dropped < len(lines)/2 {
		t.Fatalf("only %d of %d lines dropped before unescaping; the fast path is not exercised", dropped, len(lines))
	}
	wantAggs, wantRes := d.Aggregate(&all)
	gotAggs, gotRes := d.Aggregate(&kept)
	if len(wantAggs) == 0 {
		t.Fatal("no aggregates")
	}
	if wantRes.Damaged < 2 {
		t.Fatalf("%d damaged lines salvaged from the whole batch, want the 2 added", wantRes.Damaged)
	}
	if diff := cmp.Diff(wantAggs, gotAggs); diff != "" {
		t.Errorf("aggregates (-decode all +pre-filter escaped):\n%s", diff)
	}
	if diff := cmp.Diff(wantRes, gotRes); diff != "" {
		t.Errorf("result (-decode all +pre-filter escaped):\n%s", diff)
	}
}
