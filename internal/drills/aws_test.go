//go:build integration

package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
)

// uniqueName returns a name for a test's own table, topic or queue (see
// emu.UniqueName).
func uniqueName(t testing.TB, kind string) string {
	return emu.UniqueName("drill-", t.Name(), kind)
}

// item is one table item as plain values, less expires_at, which follows
// the wall clock and so differs between two runs of the same events.
type item = map[string]any

// scan returns every item of table, sorted by key, less expires_at.
func scan(ctx context.Context, endpoint, table string) ([]item, error) {
	items, err := emu.Scan(ctx, endpoint, table)
	for _, it := range items {
		delete(it, dynamostate.TTLAttribute)
	}
	return items, err
}

// scanTable returns every item of table, sorted by key, less expires_at.
func scanTable(t testing.TB, endpoint, table string) []item {
	t.Helper()
	items := emu.ScanTable(t, endpoint, table)
	for _, it := range items {
		delete(it, dynamostate.TTLAttribute)
	}
	return items
}

// bucketCounts sums the count of every bucket item (all shards of a
// bucket) by "pk sk-without-shard".
func bucketCounts(items []item) map[string]int64 {
	out := map[string]int64{}
	for _, it := range items {
		sk, _ := it["sk"].(string)
		if !strings.HasPrefix(sk, "b#") {
			continue
		}
		if i := strings.LastIndexByte(sk, '#'); i > 1 {
			sk = sk[:i]
		}
		n, _ := it["count"].(float64)
		out[fmt.Sprint(it["pk"], " ", sk)] += int64(n)
	}
	return out
}

// createTopicAndQueue creates a topic named name and a raw-delivery queue
// subscribed to it on endpoint.
func createTopicAndQueue(ctx context.Context, endpoint, name string) (string, emu.Queue, error) {
	topic, err := emu.CreateTopic(ctx, endpoint, name)
	if err != nil {
		return "", emu.Queue{}, err
	}
	q, err := emu.CreateQueue(ctx, endpoint, name)
	if err != nil {
		return "", emu.Queue{}, err
	}
	return topic, q, emu.Subscribe(ctx, topic, q, true, "")
}

// newTopicAndQueue creates a topic and a raw-delivery queue subscribed to
// it for the test.
func newTopicAndQueue(t testing.TB, endpoint string) (string, emu.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, q, err := createTopicAndQueue(ctx, endpoint, uniqueName(t, "topic"))
	if err != nil {
		t.Fatal(err)
	}
	return topic, q
}

// delivered decodes raw-delivery messages into findings.
func delivered(t testing.TB, msgs []emu.Message) []detect.Finding {
	t.Helper()
	fs, err := decodeFindings(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// outcome is what a drill compares a finding by: worked out by hand from the
// events and internal/rules/default.yaml, and read back from deliveries.
type outcome struct {
	Rule     string
	SrcIP    string
	Severity string
	Count    int64
}

// outcomes returns the outcomes of fs, sorted.
func outcomes(fs []detect.Finding) []outcome {
	out := make([]outcome, 0, len(fs))
	for _, f := range fs {
		out = append(out, outcome{Rule: f.Rule, SrcIP: f.SrcIP, Severity: f.Severity, Count: f.Count})
	}
	return sortOutcomes(out)
}

// sortOutcomes sorts o in place by rule, address and count, and returns it.
func sortOutcomes(out []outcome) []outcome {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.SrcIP != b.SrcIP {
			return a.SrcIP < b.SrcIP
		}
		return a.Count < b.Count
	})
	return out
}

// decodeFindings decodes raw-delivery messages into findings.
func decodeFindings(msgs []emu.Message) ([]detect.Finding, error) {
	var out []detect.Finding
	for _, m := range msgs {
		var f detect.Finding
		if err := json.Unmarshal([]byte(m.Body), &f); err != nil {
			return nil, fmt.Errorf("queue message is not a finding: %v\n%.500s", err, m.Body)
		}
		out = append(out, f)
	}
	return out, nil
}
