package slack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// secretPath stands for the secret part of a webhook URL; no error may
// contain it.
const secretPath = "/services/T000SECRET/B000SECRET/XXXXSECRETXXXX"

// reply is one scripted answer of the fake Slack.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeSlack answers the i-th request with replies[i] (the last one once
// they run out) and records every request.
type fakeSlack struct {
	mu       sync.Mutex
	replies  []reply
	bodies   []string
	ctypes   []string
	paths    []string
	requests int
}

func (s *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	rep := s.replies[min(s.requests, len(s.replies)-1)]
	s.requests++
	s.bodies = append(s.bodies, string(b))
	s.ctypes = append(s.ctypes, r.Header.Get("Content-Type"))
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// sleepRecorder stands in for time: it records each wait and returns at
// once, or returns err.
type sleepRecorder struct {
	waits []time.Duration
	err   error
}

func (s *sleepRecorder) sleep(_ context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	return s.err
}

var ok200 = reply{status: 200, body: "ok"}

func retryAfterSecs(v string) reply {
	return reply{status: 429, header: map[string]string{"Retry-After": v}, body: "rate_limited"}
}

// TestPostRetriesThenSucceeds is the scenario of a rate-limited, then
// failing, then healthy Slack.
func TestPostRetriesThenSucceeds(t *testing.T) {
	fake := &fakeSlack{replies: []reply{retryAfterSecs("2"), {status: 500, body: "rollup_error"}, ok200}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s := &sleepRecorder{}
	payload := []byte(`{"text":"finding","blocks":[]}`)

	err := New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep).Post(context.Background(), payload)
	if err != nil {
		t.Fatalf("Post() = %v, want nil", err)
	}
	// 2s as Retry-After asked, then 2s of backoff for the second attempt.
	if diff := cmp.Diff([]time.Duration{2 * time.Second, 2 * time.Second}, s.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if fake.requests != 3 {
		t.Errorf("%d requests, want 3", fake.requests)
	}
	for i := range fake.requests {
		if fake.bodies[i] != string(payload) || fake.ctypes[i] != "application/json" || fake.paths[i] != "POST "+secretPath {
			t.Errorf("request %d = %s %q with Content-Type %q, want POST %s %q application/json",
				i, fake.paths[i], fake.bodies[i], fake.ctypes[i], secretPath, payload)
		}
	}
}

func TestPost(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	httpDate := func(t time.Time) string { return t.Format(http.TimeFormat) }
	tests := []struct {
		name       string
		replies    []reply
		wantReqs   int
		wantWaits  []time.Duration
		wantErr    string // substring; "" means success
		wantStatus int    // StatusError code in the error, 0 for none
	}{
		{"ok at once", []reply{ok200}, 1, nil, "", 0},
		{"400 is permanent", []reply{{status: 400, body: "invalid_payload"}, ok200}, 1, nil, `400 "invalid_payload"`, 400},
		{"403 is permanent", []reply{{status: 403, body: "action_prohibited"}, ok200}, 1, nil, "403", 403},
		{"404 is permanent", []reply{{status: 404, body: "no_service"}, ok200}, 1, nil, "404", 404},
		{"410 is permanent", []reply{{status: 410, body: "channel_is_archived"}, ok200}, 1, nil, "410", 410},
		{"5xx until attempts run out", []reply{{status: 503}}, MaxAttempts,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, "gave up after 4 attempts", 503},
		{"Retry-After above the budget ends retries", []reply{retryAfterSecs("60"), ok200}, 1, nil, "retry budget", 429},
		{"Retry-After adds up to the budget exactly", []reply{retryAfterSecs("10"), retryAfterSecs("10"), retryAfterSecs("10"), ok200}, 4,
			[]time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second}, "", 0},
		{"Retry-After adds up past the budget", []reply{retryAfterSecs("11")}, 3,
			[]time.Duration{11 * time.Second, 11 * time.Second}, "retry budget", 429},
		{"Retry-After as HTTP date, against Date", []reply{
			{status: 429, header: map[string]string{"Date": httpDate(date), "Retry-After": httpDate(date.Add(5 * time.Second))}}, ok200},
			2, []time.Duration{5 * time.Second}, "", 0},
		{"Retry-After as HTTP date in the past", []reply{
			{status: 429, header: map[string]string{"Date": httpDate(date), "Retry-After": httpDate(date.Add(-time.Minute))}}, ok200},
			2, []time.Duration{0}, "", 0},
		{"Retry-After unreadable: backoff", []reply{retryAfterSecs("soon"), ok200}, 2, []time.Duration{time.Second}, "", 0},
		{"Retry-After negative: backoff", []reply{retryAfterSecs("-3"), ok200}, 2, []time.Duration{time.Second}, "", 0},
		{"429 without Retry-After: backoff", []reply{{status: 429}, {status: 429}, ok200}, 3,
			[]time.Duration{time.Second, 2 * time.Second}, "", 0},
		{"204 is success", []reply{{status: 204}}, 1, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeSlack{replies: tt.replies}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			s := &sleepRecorder{}
			err := New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep).Post(context.Background(), []byte(`{}`))
			checkErr(t, err, tt.wantErr)
			if fake.requests != tt.wantReqs {
				t.Errorf("%d requests, want %d", fake.requests, tt.wantReqs)
			}
			if diff := cmp.Diff(tt.wantWaits, s.waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			var se *StatusError
			gotStatus := 0
			if errors.As(err, &se) {
				gotStatus = se.Code
			}
			if gotStatus != tt.wantStatus {
				t.Errorf("StatusError code = %d, want %d", gotStatus, tt.wantStatus)
			}
		})
	}
}

// checkErr checks err against a wanted substring ("" for no error) and
// that it does not leak the webhook's secret path.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("error = %v, want nil", err)
	case want != "" && err == nil:
		t.Fatalf("error = nil, want one containing %q", want)
	case err != nil && !strings.Contains(err.Error(), want):
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q leaks the webhook URL", err)
	}
}

func TestPostRetryAfterDateUsesClockWithoutDateHeader(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// The handler deletes Date, which net/http otherwise adds.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Retry-After", now.Add(7*time.Second).Format(http.TimeFormat))
		w.WriteHeader(429)
	}))
	defer srv.Close()
	s := &sleepRecorder{}
	p := New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep)
	p.now = func() time.Time { return now }
	err := p.Post(context.Background(), []byte(`{}`))
	checkErr(t, err, "gave up after 4 attempts")
	want := []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}
	if diff := cmp.Diff(want, s.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func TestPostUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + secretPath
	ln.Close() // nothing listens there now
	s := &sleepRecorder{}
	err = New(url, DefaultPolicy, nil, s.sleep).Post(context.Background(), []byte(`{}`))
	checkErr(t, err, "gave up after 4 attempts")
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, s.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func TestPostInvalidURL(t *testing.T) {
	s := &sleepRecorder{}
	err := New("http://SECRET host/"+secretPath, DefaultPolicy, nil, s.sleep).Post(context.Background(), []byte(`{}`))
	checkErr(t, err, "invalid webhook URL")
	if len(s.waits) != 0 {
		t.Errorf("waited %v to retry a URL that cannot work", s.waits)
	}
}

func TestPostContextEndsWhileWaiting(t *testing.T) {
	fake := &fakeSlack{replies: []reply{{status: 500}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s := &sleepRecorder{err: context.Canceled}
	err := New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep).Post(context.Background(), []byte(`{}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Post() = %v, want context.Canceled", err)
	}
	if fake.requests != 1 {
		t.Errorf("%d requests, want 1", fake.requests)
	}
}

func TestPostContextAlreadyDone(t *testing.T) {
	fake := &fakeSlack{replies: []reply{ok200}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &sleepRecorder{}
	err := New(srv.URL+secretPath, DefaultPolicy, srv.Client(), s.sleep).Post(ctx, []byte(`{}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Post() = %v, want context.Canceled", err)
	}
	checkErr(t, err, "canceled")
	if len(s.waits) != 0 {
		t.Errorf("waited %v after the context ended", s.waits)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep() = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(canceled) = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Sleep(canceled) took %v", d)
	}
}

// TestPostDoesNotFollowRedirects: the webhook URL was checked against the
// allowed prefixes; a redirect must not carry the finding anywhere else.
func TestPostDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s := &sleepRecorder{}
	err := New(srv.URL+secretPath, DefaultPolicy, nil, s.sleep).Post(context.Background(), []byte(`{"text":"finding"}`))
	if err == nil {
		t.Fatal("a redirect was taken for success")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}
