//go:build integration

package dynamostate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

// TestAttackShape sends 100,000 requests from one address, each with its
// own long user agent and path, over 20 minutes in 100 batches, and checks
// that counts stay exact and no item grows anywhere near DynamoDB's limit.
func TestAttackShape(t *testing.T) {
	const (
		events    = 100_000
		batches   = 100
		minutes   = 20
		key       = "scan#198.51.100.9"
		maxItem   = 64 << 10
		perBatch  = events / batches
		spacingNs = int64(minutes) * int64(time.Minute) / events
	)
	client := newClient(endpoint)
	table := newTable(t, client)
	st := dynamostate.New(client, table, time.Now)
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	window := 10 * time.Minute
	pad := strings.Repeat("A", 300) // longer than StoredValueLen
	for b := range batches {
		evs := make([]event, perBatch)
		for i := range evs {
			n := b*perBatch + i
			evs[i] = event{
				at:        t0.Add(time.Duration(int64(n) * spacingNs)),
				userAgent: fmt.Sprintf("%06d-%s", n, pad),
				path:      fmt.Sprintf("/api/%06d/%s", n, pad),
			}
		}
		if _, err := st.Apply(ctx, fmt.Sprintf("attack-%03d", b), []detect.Aggregate{aggregate(key, window, evs)}); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	t.Logf("%d batches, %d DynamoDB calls", batches, st.Calls())

	// Read every bucket back through a window long enough to cover them.
	last := t0.Add(minutes*time.Minute - time.Minute)
	ws, err := st.Apply(ctx, "read", []detect.Aggregate{{Key: key, Window: time.Hour, Buckets: []detect.Bucket{{Start: last, First: last, Last: last}}}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range ws[0].Buckets {
		total += b.Count
		if len(b.Values["path"]) > detect.BucketValuesBudget+detect.BucketValuesCap {
			t.Errorf("bucket %v holds %d paths", b.Start, len(b.Values["path"]))
		}
		if got := b.Saturated; !cmp.Equal(got, []string{"path", "user_agent"}) {
			t.Errorf("bucket %v saturated %v, want both fields", b.Start, got)
		}
	}
	if total != events || len(ws[0].Buckets) != minutes {
		t.Errorf("read %d events in %d buckets, want %d in %d", total, len(ws[0].Buckets), events, minutes)
	}

	largest, items := 0, 0
	var largestKey string
	pager := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			items++
			if n := itemSize(item); n > largest {
				largest = n
				largestKey = item["sk"].(*types.AttributeValueMemberS).Value
			}
		}
	}
	t.Logf("%d items; largest %d bytes (%s)", items, largest, largestKey)
	if largest >= maxItem {
		t.Errorf("largest item is %d bytes, want under %d", largest, maxItem)
	}
}

// TestConcurrentOverlappingBatches has 8 goroutines apply overlapping
// batches for the same 10 addresses (each batch twice, from two goroutines)
// with small shards, so writers race for the same items and shards fill
// and open under contention. Below the caps merging commutes, so the result
// must equal memstate's after the same batches in any order.
func TestConcurrentOverlappingBatches(t *testing.T) {
	client := newClient(endpoint)
	table := newTable(t, client)
	now := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	st := dynamostate.New(client, table, now, dynamostate.WithBatchesPerItem(3))
	ref := memstate.New(now, 0)
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	const goroutines, batchesEach, addrs = 8, 5, 10
	batch := func(id int) []detect.Aggregate {
		var aggs []detect.Aggregate
		for a := range addrs {
			var bs []detect.Bucket
			for m := range 3 {
				s := t0.Add(time.Duration((id+a+m)%4) * time.Minute)
				if len(bs) > 0 && !s.After(bs[len(bs)-1].Start) {
					continue
				}
				bs = append(bs, detect.Bucket{
					Start: s, Count: int64(1 + id%3), First: s, Last: s.Add(time.Second),
					Distinct: map[string][]string{"path": {fmt.Sprintf("h%02d", id)}},
					Marks:    []int{id % 4},
				})
			}
			aggs = append(aggs, detect.Aggregate{Key: fmt.Sprintf("probe#10.0.0.%d", a), Window: 10 * time.Minute, Buckets: bs})
		}
		return aggs
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range batchesEach {
				id := (g/2)*batchesEach + i
				if _, err := st.Apply(ctx, fmt.Sprintf("b%02d", id), batch(id)); err != nil {
					t.Errorf("Apply b%02d: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	for id := range goroutines / 2 * batchesEach {
		if _, err := ref.Apply(ctx, fmt.Sprintf("b%02d", id), batch(id)); err != nil {
			t.Fatal(err)
		}
	}
	read := make([]detect.Aggregate, addrs)
	end := t0.Add(5 * time.Minute)
	for a := range read {
		read[a] = detect.Aggregate{Key: fmt.Sprintf("probe#10.0.0.%d", a), Window: 10 * time.Minute, Buckets: []detect.Bucket{{Start: end, First: end, Last: end}}}
	}
	got, err := st.Apply(ctx, "read", read)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Apply(ctx, "read", read)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("windows after concurrent batches (-memstate +dynamostate):\n%s", d)
	}
	t.Logf("%d DynamoDB calls", st.Calls())
}
