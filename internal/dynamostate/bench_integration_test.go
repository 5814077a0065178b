//go:build integration

package dynamostate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// On-demand request prices in us-east-1, US$ per million request units
// (after the November 2024 reduction; see the README's state section).
const (
	usdPerMillionWRU = 0.625
	usdPerMillionRRU = 0.125
)

// benchApply applies makeBatch(i) as batch i, b.N times, and reports
// DynamoDB calls, capacity units and on-demand cost per operation and per
// million matched events.
func benchApply(b *testing.B, events int, makeBatch func(i int) []detect.Aggregate) {
	// dynalite is one Node.js process: on a loaded machine requests queue
	// there past the production per-attempt timeout, and the retries would
	// distort the count. A long timeout measures what DynamoDB would see.
	client := newClient(endpoint, func(o *dynamodb.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(time.Minute)
	})
	table := newTable(b, client)
	st := dynamostate.New(client, table, time.Now, dynamostate.WithConsumedCapacity())
	ctx := context.Background()
	batches := make([][]detect.Aggregate, b.N)
	for i := range batches {
		batches[i] = makeBatch(i)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.Apply(ctx, fmt.Sprintf("batch-%d", i), batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	read, write := st.ConsumedReadWrite()
	b.ReportMetric(float64(st.Calls())/n, "calls/op")
	b.ReportMetric(read/n, "RRU/op")
	b.ReportMetric(write/n, "WRU/op")
	if events > 0 {
		usd := (read*usdPerMillionRRU + write*usdPerMillionWRU) / 1e6 / n
		b.ReportMetric(usd/float64(events)*1e6, "USD/Mevents")
	}
}

// (a) One address, one rule, 10,000 events over five minutes per batch;
// consecutive batches move on in time, as a sustained scan does.
func BenchmarkApplyOneAddress10kEvents(b *testing.B) {
	const events, minutes = 10_000, 5
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	benchApply(b, events, func(i int) []detect.Aggregate {
		start := t0.Add(time.Duration(i*minutes) * time.Minute)
		evs := make([]event, events)
		for j := range evs {
			evs[j] = event{
				at:        start.Add(time.Duration(j) * minutes * time.Minute / events),
				userAgent: fmt.Sprintf("scanner/%d", j%50),
				path:      fmt.Sprintf("/api/v1/namespaces/ns-%d/secrets", j),
			}
		}
		return []detect.Aggregate{aggregate("scan#198.51.100.9", 10*time.Minute, evs)}
	})
}

// (b) 1,000 addresses with 10 events each, matched by three rules: 3,000
// aggregates of one bucket each.
func BenchmarkApplyThousandAddresses(b *testing.B) {
	const addrs, perAddr, rulesN = 1000, 10, 3
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	benchApply(b, addrs*perAddr, func(i int) []detect.Aggregate {
		start := t0.Add(time.Duration(i) * time.Minute)
		var aggs []detect.Aggregate
		for a := range addrs {
			evs := make([]event, perAddr)
			for j := range evs {
				evs[j] = event{at: start.Add(time.Duration(j) * time.Second), userAgent: "curl/8.5.0", path: fmt.Sprintf("/path-%d", j)}
			}
			for r := range rulesN {
				aggs = append(aggs, aggregate(fmt.Sprintf("rule-%d#10.%d.%d.1", r, a/256, a%256), 10*time.Minute, evs))
			}
		}
		return aggs
	})
}

// (c) A batch that matched nothing.
func BenchmarkApplyNoAggregates(b *testing.B) {
	benchApply(b, 0, func(int) []detect.Aggregate { return nil })
}

// (d) A sustained scan from one address seen by two API-server streams,
// each delivering every 5 s: a minute's bucket takes 24 batches of 10
// requests to distinct paths, the streams' deliveries in turn, the second
// stream one delivery behind, so half the batches are earlier within their
// minute than what is stored, and the values budget is spent after the
// fourth batch of a minute.
func BenchmarkApplyTwoStreams(b *testing.B) {
	const perBatch, slots = 10, 12
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	benchApply(b, perBatch, func(i int) []detect.Aggregate {
		minute, slot, stream := i/(2*slots), (i%(2*slots))/2, i%2
		if stream == 1 && slot > 0 {
			slot-- // one delivery behind
		}
		start := t0.Add(time.Duration(minute)*time.Minute + time.Duration(slot)*5*time.Second)
		evs := make([]event, perBatch)
		for j := range evs {
			evs[j] = event{
				at:        start.Add(time.Duration(j)*450*time.Millisecond + time.Duration(stream)*100*time.Millisecond),
				userAgent: "nuclei",
				path:      fmt.Sprintf("/api/v1/namespaces/ns-%d/secrets", i*perBatch+j),
			}
		}
		return []detect.Aggregate{aggregate("scan#198.51.100.9", 10*time.Minute, evs)}
	})
}
