package slack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/anonwatch/anonwatch/internal/slack"
)

func ExamplePoster_Post() {
	// A stand-in for Slack that is rate-limited once.
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Printf("slack got %s\n", b)
	}))
	defer srv.Close()

	// The sleep is injected; this one only reports the wait.
	sleep := func(_ context.Context, d time.Duration) error {
		fmt.Println("waiting", d)
		return nil
	}
	p := slack.New(srv.URL+"/services/T0/B0/x", slack.DefaultPolicy, nil, sleep)
	err := p.Post(context.Background(), []byte(`{"text":"finding"}`))
	fmt.Println("error:", err)
	// Output:
	// waiting 2s
	// slack got {"text":"finding"}
	// error: <nil>
}
