package slack

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name             string
		attempts, budget string
		want             Policy
		wantErr          string // substring; "" means success
		wantMax          time.Duration
	}{
		{"both empty: the default", "", "", DefaultPolicy, "", 4*AttemptTimeout + 30*time.Second},
		{"attempts only", "20", "", Policy{20, RetryBudget}, "", 20*AttemptTimeout + RetryBudget},
		{"budget only", "", "3m", Policy{MaxAttempts, 3 * time.Minute}, "", 4*AttemptTimeout + 3*time.Minute},
		{"both", "20", "180s", Policy{20, 180 * time.Second}, "", 380 * time.Second},
		{"spaces around", " 20 ", " 180s ", Policy{20, 180 * time.Second}, "", 380 * time.Second},
		{"one attempt, no waiting", "1", "0s", Policy{1, 0}, "", AttemptTimeout},
		{"zero budget without unit", "", "0", Policy{MaxAttempts, 0}, "", 4 * AttemptTimeout},
		{"exactly the Lambda maximum", "30", "10m", Policy{30, 10 * time.Minute}, "", 15 * time.Minute},
		{"zero attempts", "0", "", Policy{}, "not a whole number from 1 up", 0},
		{"negative attempts", "-3", "", Policy{}, "not a whole number from 1 up", 0},
		{"attempts not a number", "many", "", Policy{}, `"many"`, 0},
		{"attempts fractional", "2.5", "", Policy{}, "not a whole number", 0},
		{"attempts overflow", "99999999999999999999", "", Policy{}, "not a whole number", 0},
		{"budget without unit", "", "30", Policy{}, "not a duration such as 30s", 0},
		{"budget negative", "", "-5s", Policy{}, "not a duration", 0},
		{"budget not a duration", "", "soon", Policy{}, `"soon"`, 0},
		{"past the Lambda maximum", "31", "10m", Policy{}, "longer than the 15m0s a Lambda function may run", 0},
		{"budget alone past it", "", "16m", Policy{}, "longer than the 15m0s", 0},
		{"attempts alone past it", "91", "0s", Policy{}, "longer than the 15m0s", 0},
		{"huge attempts do not overflow the check", "9223372036854775807", "0s", Policy{}, "longer than the 15m0s", 0},
		{"huge budget does not overflow the check", "1", "2562047h", Policy{}, "longer than the 15m0s", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy(tt.attempts, tt.budget)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParsePolicy(%q, %q) = %v", tt.attempts, tt.budget, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ParsePolicy(%q, %q) error = %v, want one containing %q", tt.attempts, tt.budget, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePolicy(%q, %q) (-want +got):\n%s", tt.attempts, tt.budget, diff)
			}
			if err == nil {
				if d := got.MaxDuration(); d != tt.wantMax {
					t.Errorf("MaxDuration() = %v, want %v", d, tt.wantMax)
				}
			}
		})
	}
}

func TestZeroPolicyIsDefault(t *testing.T) {
	if got, want := (Policy{}).MaxDuration(), DefaultPolicy.MaxDuration(); got != want {
		t.Errorf("Policy{}.MaxDuration() = %v, want DefaultPolicy's %v", got, want)
	}
	fake := &fakeSlack{replies: []reply{{status: 503}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s := &sleepRecorder{}
	err := New(srv.URL+secretPath, Policy{}, srv.Client(), s.sleep).Post(context.Background(), []byte(`{}`))
	checkErr(t, err, "gave up after 4 attempts")
	if fake.requests != MaxAttempts {
		t.Errorf("%d requests with the zero Policy, want DefaultPolicy's %d", fake.requests, MaxAttempts)
	}
}

// TestPostPolicy is the difference between the two notifier functions: the
// same 429 storm that makes the default policy give up is waited out by a
// more patient one, still only as long as Slack asks.
func TestPostPolicy(t *testing.T) {
	storm := func(n int, retryAfter string) []reply {
		var r []reply
		for range n {
			r = append(r, retryAfterSecs(retryAfter))
		}
		return append(r, ok200)
	}
	repeat := func(n int, d time.Duration) []time.Duration {
		var w []time.Duration
		for range n {
			w = append(w, d)
		}
		return w
	}
	patient := Policy{MaxAttempts: 20, Budget: 3 * time.Minute}
	tests := []struct {
		name      string
		policy    Policy
		replies   []reply
		wantReqs  int
		wantWaits []time.Duration
		wantErr   string
	}{
		{"default gives up on a storm of 8 one-second limits", DefaultPolicy, storm(8, "1"), MaxAttempts,
			repeat(3, time.Second), "gave up after 4 attempts"},
		{"patient waits the same storm out", patient, storm(8, "1"), 9, repeat(8, time.Second), ""},
		{"default refuses a 60s Retry-After at once", DefaultPolicy, storm(1, "60"), 1, nil, "retry budget"},
		{"patient waits 60s as asked", patient, storm(1, "60"), 2, []time.Duration{time.Minute}, ""},
		{"patient stops at its budget", patient, storm(4, "60"), 4, repeat(3, time.Minute), "next wait 1m0s would pass the 3m0s retry budget"},
		{"patient stops at its attempts", patient, storm(25, "1"), 20, repeat(19, time.Second), "gave up after 20 attempts"},
		{"patient backs off without Retry-After", patient, []reply{{status: 503}, {status: 503}, {status: 503}, ok200}, 4,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, ""},
		{"patient does not retry a permanent answer", patient, []reply{{status: 404, body: "no_service"}, ok200}, 1, nil, "404"},
		{"MaxAttempts below 1 is one attempt", Policy{MaxAttempts: -1, Budget: time.Minute}, storm(1, "1"), 1, nil, "gave up after 1 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeSlack{replies: tt.replies}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			s := &sleepRecorder{}
			err := New(srv.URL+secretPath, tt.policy, srv.Client(), s.sleep).Post(context.Background(), []byte(`{}`))
			checkErr(t, err, tt.wantErr)
			if fake.requests != tt.wantReqs {
				t.Errorf("%d requests, want %d", fake.requests, tt.wantReqs)
			}
			if diff := cmp.Diff(tt.wantWaits, s.waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}
