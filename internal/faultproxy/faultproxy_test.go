package faultproxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/faultproxy"
	"github.com/google/go-cmp/cmp"
)

// backend counts the requests that reach it and echoes what it saw.
type backend struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Target", r.Header.Get("X-Amz-Target"))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func newProxy(t *testing.T, b *backend) *faultproxy.Proxy {
	t.Helper()
	p := faultproxy.New(b.srv.URL)
	t.Cleanup(p.Close)
	return p
}

type result struct {
	Status      int
	ContentType string
	Body        string
	Err         bool
}

func post(t *testing.T, client *http.Client, url, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/path?q=1", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.UpdateItem")
	resp, err := client.Do(req)
	if err != nil {
		return result{Err: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{Err: true}
	}
	return result{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(b)}
}

func TestFaults(t *testing.T) {
	ok := result{Status: 200, ContentType: "text/plain; charset=utf-8", Body: "POST /path?q=1 hello"}
	tests := []struct {
		name     string
		protocol *faultproxy.Protocol
		fault    faultproxy.Fault
		want     result
		wantHits int64 // requests that reached the backend, of three
	}{
		{"pass", nil, faultproxy.Fault{}, ok, 3},
		{"server error", nil, faultproxy.Fault{Kind: faultproxy.ServerError}, result{Status: 500, ContentType: "application/x-amz-json-1.0", Body: faultproxy.AWSJSON.ServerErrorBody}, 2},
		{"throttle, JSON", nil, faultproxy.Fault{Kind: faultproxy.Throttle}, result{Status: 400, ContentType: "application/x-amz-json-1.0", Body: `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected by faultproxy"}`}, 2},
		{"throttle, query protocol", &faultproxy.AWSQuery, faultproxy.Fault{Kind: faultproxy.Throttle}, result{Status: 400, ContentType: "text/xml", Body: faultproxy.AWSQuery.ThrottleBody}, 2},
		{"drop", nil, faultproxy.Fault{Kind: faultproxy.Drop}, result{Err: true}, 2},
		{"forward then drop", nil, faultproxy.Fault{Kind: faultproxy.ForwardThenDrop}, result{Err: true}, 3},
		{"short delay", nil, faultproxy.Fault{Kind: faultproxy.Delay, Delay: 10 * time.Millisecond}, ok, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			p := newProxy(t, b)
			if tc.protocol != nil {
				p.SetProtocol(*tc.protocol)
			}
			client := &http.Client{Transport: &http.Transport{}}
			p.FailNth(2, tc.fault)
			var got []result
			for range 3 {
				got = append(got, post(t, client, p.URL(), "hello"))
			}
			if d := cmp.Diff([]result{ok, tc.want, ok}, got); d != "" {
				t.Errorf("responses (-want +got):\n%s", d)
			}
			if got := b.hits.Load(); got != tc.wantHits {
				t.Errorf("backend saw %d requests, want %d", got, tc.wantHits)
			}
			if got := p.Requests(); got != 3 {
				t.Errorf("Requests() = %d, want 3", got)
			}
			wantInjected := int64(1)
			if tc.fault.Kind == faultproxy.Pass {
				wantInjected = 0
			}
			if got := p.Injected(); got != wantInjected {
				t.Errorf("Injected() = %d, want %d", got, wantInjected)
			}
		})
	}
}

func TestForwardsHostAndHeaders(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b)
	req, err := http.NewRequest(http.MethodPost, p.URL()+"/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.Query")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := map[string]string{"host": resp.Header.Get("X-Seen-Host"), "target": resp.Header.Get("X-Seen-Target")}
	want := map[string]string{"host": strings.TrimPrefix(p.URL(), "http://"), "target": "DynamoDB_20120810.Query"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("what the backend saw (-want +got):\n%s", d)
	}
}

func TestDelayPastClientTimeoutIsNotForwarded(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b)
	p.FailNth(1, faultproxy.Fault{Kind: faultproxy.Delay, Delay: 5 * time.Second})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if got := post(t, client, p.URL(), "x"); !got.Err {
		t.Fatalf("got %+v, want a client timeout", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client waited %v", d)
	}
	// The handler notices the client left; give it a moment, then check.
	time.Sleep(200 * time.Millisecond)
	if got := b.hits.Load(); got != 0 {
		t.Errorf("backend saw %d requests, want 0", got)
	}
}

func TestRule(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b)
	p.SetRule(func(n int64, r *http.Request) faultproxy.Fault {
		if n%2 == 0 {
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		}
		return faultproxy.Fault{}
	})
	p.FailNth(3, faultproxy.Fault{Kind: faultproxy.Throttle}) // overrides the rule for request 3
	var got []int
	for range 5 {
		got = append(got, post(t, http.DefaultClient, p.URL(), "").Status)
	}
	if d := cmp.Diff([]int{200, 500, 400, 500, 200}, got); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	p.Reset()
	if got := post(t, http.DefaultClient, p.URL(), "").Status; got != 200 {
		t.Errorf("after Reset: status %d, want 200", got)
	}
}

func TestConcurrentRequestsAreCounted(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b)
	const n = 40
	p.SetRule(func(i int64, r *http.Request) faultproxy.Fault {
		if i%4 == 0 {
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		}
		return faultproxy.Fault{}
	})
	var wg sync.WaitGroup
	var oks, fails atomic.Int64
	for range n {
		wg.Go(func() {
			switch post(t, http.DefaultClient, p.URL(), "x").Status {
			case 200:
				oks.Add(1)
			case 500:
				fails.Add(1)
			}
		})
	}
	wg.Wait()
	got := []int64{p.Requests(), p.Injected(), oks.Load(), fails.Load(), b.hits.Load()}
	if d := cmp.Diff([]int64{n, n / 4, n - n/4, n / 4, n - n/4}, got); d != "" {
		t.Errorf("[requests injected ok failed backend] (-want +got):\n%s", d)
	}
}

func TestBodyTooLarge(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b)
	got := post(t, http.DefaultClient, p.URL(), strings.Repeat("x", faultproxy.MaxBody+1))
	if got.Status != http.StatusRequestEntityTooLarge || b.hits.Load() != 0 {
		t.Errorf("status %d, backend hits %d; want 413 and 0", got.Status, b.hits.Load())
	}
}

func TestRefusesNonLoopbackTarget(t *testing.T) {
	for _, target := range []string{"http://192.0.2.1:80", "https://127.0.0.1:443", "http://example.com", "::"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q) did not panic", target)
				}
			}()
			p := faultproxy.New(target)
			p.Close()
		}()
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.New(b.srv.URL)
	p.Close()
	p.Close()
	if got := post(t, http.DefaultClient, p.URL(), ""); !got.Err {
		t.Errorf("request after Close got %+v, want an error", got)
	}
}
