package memstate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

func Example() {
	st := memstate.New(time.Now, memstate.DefaultLease)
	ctx := context.Background()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	agg := detect.Aggregate{
		Key:    "probe#203.0.113.7",
		Window: 5 * time.Minute,
		Buckets: []detect.Bucket{{
			Start: start, Count: 12, First: start.Add(time.Second), Last: start.Add(50 * time.Second),
			Values: map[string][]string{"path": {"/version", "/api"}},
		}},
	}
	ws, _ := st.Apply(ctx, "batch-1", []detect.Aggregate{agg})
	ws, _ = st.Apply(ctx, "batch-1", []detect.Aggregate{agg}) // a Lambda retry: not counted again
	b := ws[0].Buckets[0]
	fmt.Println(b.Count, b.Values["path"])

	period := detect.PeriodStart(b.Last, time.Hour)
	c := detect.Claim{Key: agg.Key, FindingID: "f1", Batch: "batch-1", Severity: rules.Medium,
		Period: period, PeriodEnd: period.Add(time.Hour)}
	g, _ := st.Claim(ctx, c)
	fmt.Println("claimed:", g.OK)
	_ = st.MarkSent(ctx, c)
	c.Batch = "batch-2"
	g, _ = st.Claim(ctx, c)
	fmt.Println("claimed again in the same period:", g.OK)
	c.Severity = rules.High
	g, _ = st.Claim(ctx, c)
	fmt.Println("claimed at a higher severity:", g.OK, "above", g.Sent)
	// Output:
	// 12 [/api /version]
	// claimed: true
	// claimed again in the same period: false
	// claimed at a higher severity: true above medium
}
