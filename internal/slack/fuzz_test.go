package slack

import (
	"net/http"
	"testing"
	"time"
)

func FuzzDecodeFinding(f *testing.F) {
	f.Add(`{"finding_id":"f-1","rule":"r","severity":"high","count":3}`)
	f.Add(`{"default":"x"}`)
	f.Add(`not json`)
	f.Add(`{"finding_id":"f-1","rule":"r","severity":"high","first_seen":"yesterday"}`)
	f.Fuzz(func(t *testing.T, msg string) {
		got, err := decodeFinding(msg)
		if err != nil {
			return
		}
		if got.ID == "" || got.Rule == "" || got.Severity == "" {
			t.Errorf("decodeFinding(%q) accepted a finding without id, rule or severity: %+v", msg, got)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"2", "0", "-1", "99999999999999999999", "Sun, 01 Mar 2026 12:00:05 GMT", "soon", ""} {
		f.Add(s, "Sun, 01 Mar 2026 12:00:00 GMT", uint16(RetryBudget/time.Second))
	}
	f.Add("200", "", uint16(180))
	f.Fuzz(func(t *testing.T, retry, date string, budgetSecs uint16) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		h.Set("Date", date)
		budget := time.Duration(budgetSecs) * time.Second
		d := retryAfter(h, func() time.Time { return now }, budget)
		if d != -1 && (d < 0 || d > budget+time.Second) {
			t.Errorf("retryAfter(%q, Date %q, budget %v) = %v, want -1 or within [0, %v]", retry, date, budget, d, budget+time.Second)
		}
	})
}
