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
	"github.com/anonwatch/anonwatch/internal/faultproxy"
	"github.com/anonwatch/anonwatch/internal/rules"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
)

// publisher counts publishes per finding id.
type publisher struct {
	mu    sync.Mutex
	count map[string]int
}

func (p *publisher) publish(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == nil {
		p.count = make(map[string]int)
	}
	p.count[id]++
}

// threshold is the window count at which the drill's rule fires.
const threshold = 5

// invoke does what the detector does with one batch: Apply, then for each
// window over threshold Claim → publish → MarkSent. Any error fails the
// invocation, which Lambda would retry with the same batch.
func invoke(ctx context.Context, st detect.State, pub *publisher, batch string, aggs []detect.Aggregate) ([]detect.Window, error) {
	ws, err := st.Apply(ctx, batch, aggs)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		var total int64
		for _, b := range w.Buckets {
			total += b.Count
		}
		if total < threshold {
			continue
		}
		period := detect.PeriodStart(w.Buckets[len(w.Buckets)-1].Start, time.Hour)
		c := detect.Claim{
			Key: w.Key, FindingID: batch + "/" + w.Key, Batch: batch, Severity: rules.Medium,
			Period: period, PeriodEnd: period.Add(time.Hour),
		}
		g, err := st.Claim(ctx, c)
		if err != nil {
			return nil, err
		}
		if !g.OK {
			continue
		}
		pub.publish(c.FindingID)
		if err := st.MarkSent(ctx, c); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// drillAggs is the batch under test for keys under prefix: a and b cross
// the threshold (findings), c does not; a and b span two buckets.
func drillAggs(prefix string) []detect.Aggregate {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ev := func(m, s int, ua, path string) event {
		return event{at: t0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second), userAgent: ua, path: path}
	}
	return []detect.Aggregate{
		aggregate(prefix+"#a", 5*time.Minute, []event{ev(0, 1, "curl", "/api"), ev(0, 2, "curl", "/version"), ev(1, 3, "nmap", "/healthz"), ev(1, 4, "nmap", "/api")}),
		aggregate(prefix+"#b", 5*time.Minute, []event{ev(0, 5, "zgrab", "/"), ev(1, 6, "zgrab", "/api/v1"), ev(1, 7, "zgrab", "/apis"), ev(1, 8, "x", "/y"), ev(1, 9, "x", "/z")}),
		aggregate(prefix+"#c", 5*time.Minute, []event{ev(1, 10, "go", "/metrics")}),
	}
}

// seedAggs is an earlier batch from the same sources, so windows merge
// more than the drilled batch.
func seedAggs(prefix string) []detect.Aggregate {
	t0 := time.Date(2024, 5, 1, 11, 58, 0, 0, time.UTC)
	return []detect.Aggregate{
		aggregate(prefix+"#a", 5*time.Minute, []event{{at: t0, userAgent: "curl", path: "/"}, {at: t0.Add(2 * time.Minute), userAgent: "curl", path: "/api"}}),
		aggregate(prefix+"#b", 5*time.Minute, []event{{at: t0.Add(time.Minute), userAgent: "zgrab", path: "/"}}),
	}
}

func stripPrefix(ws []detect.Window, prefix string) []detect.Window {
	out := make([]detect.Window, len(ws))
	for i, w := range ws {
		out[i] = w
		out[i].Key = strings.TrimPrefix(w.Key, prefix)
	}
	return out
}

// TestFaultAtEveryRequest injects one fault at the Nth request of a batch's
// invocation, for every N and every kind of fault, with the production
// retryer and with retries off (so that the fault surfaces as an Apply,
// Claim or MarkSent error and the whole invocation is retried, as Lambda
// would). The final windows must equal a clean run's, and each finding must
// be published once — except in the one case where at-least-once delivery
// shows: a MarkSent that never reached the table after its publish
// succeeded, with no retries left. The retried invocation then holds the
// claim again and re-publishes (same finding id, so consumers can drop it).
func TestFaultAtEveryRequest(t *testing.T) {
	direct := newClient(endpoint)
	table := newTable(t, direct)
	proxy := faultproxy.New(endpoint)
	defer proxy.Close()

	modes := []struct {
		name    string
		retries bool
		client  *dynamodb.Client
	}{
		{"sdk retries", true, newClient(proxy.URL())},
		{"no retries", false, newClient(proxy.URL(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })},
	}
	// Delay is drilled in TestStalledRequest: waiting out the per-attempt
	// timeout at every request would make this test slow.
	faults := []faultproxy.Fault{
		{Kind: faultproxy.ServerError},
		{Kind: faultproxy.Throttle},
		{Kind: faultproxy.Drop},
		{Kind: faultproxy.ForwardThenDrop},
	}
	ctx := context.Background()
	now := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			st := dynamostate.New(mode.client, table, now)
			// The clean run: how many requests one invocation makes, and
			// what it leaves.
			prefix := "clean-" + strings.ReplaceAll(mode.name, " ", "-")
			if _, err := invoke(ctx, st, &publisher{}, "seed", seedAggs(prefix)); err != nil {
				t.Fatal(err)
			}
			before := proxy.Requests()
			cleanPub := &publisher{}
			if _, err := invoke(ctx, st, cleanPub, "batch", drillAggs(prefix)); err != nil {
				t.Fatal(err)
			}
			perInvocation := proxy.Requests() - before
			clean, err := invoke(ctx, st, cleanPub, "batch", drillAggs(prefix))
			if err != nil {
				t.Fatal(err)
			}
			clean = stripPrefix(clean, prefix)
			if len(cleanPub.count) != 2 {
				t.Fatalf("clean run published %v, want two findings", cleanPub.count)
			}
			// Requests are: Apply's (in any order), then Claim a, MarkSent
			// a, Claim b, MarkSent b.
			markSentA, markSentB := perInvocation-2, perInvocation
			t.Logf("one invocation makes %d requests", perInvocation)

			for n := int64(1); n <= perInvocation; n++ {
				for _, f := range faults {
					prefix := fmt.Sprintf("%s-%s-%d", strings.ReplaceAll(mode.name, " ", "-"), f.Kind, n)
					if _, err := invoke(ctx, st, &publisher{}, "seed", seedAggs(prefix)); err != nil {
						t.Fatal(err)
					}
					pub := &publisher{}
					proxy.FailNth(n, f)
					injected := proxy.Injected()
					var errs []error
					for range 3 {
						_, err := invoke(ctx, st, pub, "batch", drillAggs(prefix))
						if err == nil {
							break
						}
						errs = append(errs, err)
					}
					if proxy.Injected() != injected+1 {
						t.Fatalf("%s at request %d: fault not injected", f.Kind, n)
					}
					if len(errs) == 3 {
						t.Fatalf("%s at request %d: invocation still failing: %v", f.Kind, n, errs)
					}
					if mode.retries && len(errs) > 0 {
						t.Errorf("%s at request %d: the SDK should have absorbed one fault, got %v", f.Kind, n, errs)
					}
					if !mode.retries && len(errs) != 1 {
						t.Errorf("%s at request %d: want exactly one failed invocation without retries, got %v", f.Kind, n, errs)
					}
					// Lambda may deliver the batch once more even after a
					// success: nothing may change.
					final, err := invoke(ctx, st, pub, "batch", drillAggs(prefix))
					if err != nil {
						t.Fatal(err)
					}
					if d := cmp.Diff(clean, stripPrefix(final, prefix)); d != "" {
						t.Errorf("%s at request %d: windows differ from the clean run (-clean +got):\n%s", f.Kind, n, d)
					}
					lost := !mode.retries && f.Kind != faultproxy.ForwardThenDrop
					want := map[string]int{"batch/" + prefix + "#a": 1, "batch/" + prefix + "#b": 1}
					if lost && n == markSentA {
						want["batch/"+prefix+"#a"] = 2
					}
					if lost && n == markSentB {
						want["batch/"+prefix+"#b"] = 2
					}
					if d := cmp.Diff(want, pub.count); d != "" {
						t.Errorf("%s at request %d: publishes per finding (-want +got):\n%s", f.Kind, n, d)
					}
				}
			}
		})
	}
}

// TestStalledRequest checks that the per-attempt timeout turns a stalled
// request into a retry, for a read, a merge write and a claim.
func TestStalledRequest(t *testing.T) {
	direct := newClient(endpoint)
	table := newTable(t, direct)
	proxy := faultproxy.New(endpoint)
	defer proxy.Close()
	const attemptTimeout = time.Second
	client := newClient(proxy.URL(), func(o *dynamodb.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(attemptTimeout)
	})
	st := dynamostate.New(client, table, func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) })
	ctx := context.Background()
	for _, n := range []int64{1, 5, 9} { // a Query, a request inside Apply, the first Claim
		prefix := fmt.Sprintf("stall-%d", n)
		if _, err := invoke(ctx, st, &publisher{}, "seed", seedAggs(prefix)); err != nil {
			t.Fatal(err)
		}
		pub := &publisher{}
		proxy.FailNth(n, faultproxy.Fault{Kind: faultproxy.Delay, Delay: 3 * attemptTimeout})
		start := time.Now()
		if _, err := invoke(ctx, st, pub, "batch", drillAggs(prefix)); err != nil {
			t.Fatalf("stall at request %d: %v", n, err)
		}
		if d := time.Since(start); d < attemptTimeout {
			t.Errorf("stall at request %d: invocation took %v, less than the stall it should have waited out", n, d)
		}
		want := map[string]int{"batch/" + prefix + "#a": 1, "batch/" + prefix + "#b": 1}
		if d := cmp.Diff(want, pub.count); d != "" {
			t.Errorf("stall at request %d: publishes (-want +got):\n%s", n, d)
		}
	}
}
