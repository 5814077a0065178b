package memstate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
)

// BenchmarkApply measures one Apply of a batch that adds a request to the
// last bucket of a long-lived group: a scan that has filled its 1h window
// (60 buckets, each with its distinct paths and display values at their
// caps), as every batch of a busy day's replay does to the per-cluster
// groups. The window returned is the whole hour, so the figure is what
// reading a full window costs beside merging one bucket.
func BenchmarkApply(b *testing.B) {
	const window = time.Hour
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	bucket := func(m, n int) detect.Bucket {
		start := t0.Add(time.Duration(m) * time.Minute)
		bk := detect.Bucket{Start: start, Count: int64(n), First: start, Last: start.Add(30 * time.Second),
			Distinct: map[string][]string{}, Values: map[string][]string{}}
		for i := range n {
			bk.Distinct["path"] = append(bk.Distinct["path"], fmt.Sprintf("%016x", (m*1000+i)*7919))
		}
		for _, f := range []string{"verb", "code", "user_agent", "request_uri", "reason"} {
			for i := range min(n, detect.BucketValuesCap) {
				bk.Values[f] = append(bk.Values[f], fmt.Sprintf("%s-%d-%d", f, m, i))
			}
		}
		return bk
	}
	st := memstate.New(time.Now, 0)
	ctx := context.Background()
	for m := range 60 {
		agg := detect.Aggregate{Key: "scan", Window: window, Buckets: []detect.Bucket{bucket(m, 100)}}
		if _, err := st.Apply(ctx, fmt.Sprint("fill-", m), []detect.Aggregate{agg}); err != nil {
			b.Fatal(err)
		}
	}
	add := []detect.Aggregate{{Key: "scan", Window: window, Buckets: []detect.Bucket{bucket(59, 1)}}}
	b.ReportAllocs()
	for i := range b.N {
		ws, err := st.Apply(ctx, fmt.Sprint("batch-", i), add)
		if err != nil {
			b.Fatal(err)
		}
		if len(ws[0].Buckets) != 60 {
			b.Fatalf("window of %d buckets, want 60", len(ws[0].Buckets))
		}
	}
}
