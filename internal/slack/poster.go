// Package slack delivers findings to a Slack channel through an incoming
// webhook: Poster sends one payload with bounded retries, and Notifier is
// the body of the slack-notifier Lambda function, which turns each SNS
// notification into a Block Kit message.
//
// The webhook URL is a credential (anyone holding it can post to the
// channel), so nothing here puts it in an error or a log line.
package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultPolicy's bounds.
const (
	// MaxAttempts bounds the requests one Post makes.
	MaxAttempts = 4
	// RetryBudget bounds the total time one Post waits between attempts.
	// A Retry-After longer than what is left of the budget ends the
	// retries, since posting earlier than Slack asked would only be
	// refused again.
	RetryBudget = 30 * time.Second
)

const (
	// FirstBackoff is the wait before the second attempt when Slack gives
	// no Retry-After; it doubles for each later attempt.
	FirstBackoff = time.Second
	// AttemptTimeout bounds one request of the default client, answer
	// included.
	AttemptTimeout = 10 * time.Second
	// maxErrorBody bounds how much of Slack's error answer is kept. Slack
	// answers a short code such as "invalid_payload".
	maxErrorBody = 256
)

// Poster posts payloads to one Slack incoming webhook. It is safe for
// concurrent use.
type Poster struct {
	url    string
	policy Policy
	client *http.Client
	sleep  func(context.Context, time.Duration) error
	now    func() time.Time // reference time for an HTTP-date Retry-After without a Date header
}

// New returns a Poster for the webhook at url that retries as policy says
// (the zero Policy means DefaultPolicy; a MaxAttempts below 1 means one
// attempt). A nil client means a client with a timeout of AttemptTimeout.
// sleep waits between attempts and returns early with the context's error
// when ctx ends; nil means a real timer. Tests pass a sleep that records the
// durations and returns at once.
func New(url string, policy Policy, client *http.Client, sleep func(context.Context, time.Duration) error) *Poster {
	policy = policy.orDefault()
	policy.MaxAttempts = max(policy.MaxAttempts, 1)
	if client == nil {
		client = &http.Client{Timeout: AttemptTimeout, CheckRedirect: noRedirects}
	}
	if sleep == nil {
		sleep = Sleep
	}
	return &Poster{url: url, policy: policy, client: client, sleep: sleep, now: time.Now}
}

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// StatusError is Slack's answer to a post that failed: the HTTP status and
// the start of the body, which for a webhook is an error code such as
// "invalid_payload" or "no_service".
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("slack webhook answered %d %s", e.Code, strconv.Quote(e.Body))
}

// Permanent reports whether retrying the same payload cannot succeed: any
// answer but 429 and 5xx. Slack answers 400 for a bad payload, 403 and 404
// for a revoked webhook or a missing channel, 410 for an archived one.
func (e *StatusError) Permanent() bool {
	return e.Code != http.StatusTooManyRequests && e.Code < 500
}

// Post sends payload, a Block Kit JSON document, to the webhook.
//
// It retries a 429, a 5xx and a request that got no answer, up to the
// policy's MaxAttempts requests in all, waiting as Retry-After says (in
// seconds or as an HTTP date) or, without one, FirstBackoff doubled per
// attempt; the waits add up to at most the policy's Budget. Any other
// answer (400, 403, 404, 410...) and an unusable URL are permanent and
// returned at once. A request whose answer was lost may have been posted,
// so a retry can show the message twice.
//
// The error names no URL. It wraps a *StatusError when Slack answered, and
// ctx's error when the context ended first.
func (p *Poster) Post(ctx context.Context, payload []byte) error {
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		delay, err := p.try(ctx, payload)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("post to slack (attempt %d): %w", attempt, ctx.Err())
		}
		var se *StatusError
		if errors.As(err, &se) && se.Permanent() || errors.Is(err, errInvalidURL) {
			return fmt.Errorf("post to slack: %w", err)
		}
		if attempt == p.policy.MaxAttempts {
			return fmt.Errorf("post to slack: gave up after %d attempts: %w", attempt, err)
		}
		if delay < 0 {
			delay = FirstBackoff << (attempt - 1)
		}
		if waited+delay > p.policy.Budget {
			return fmt.Errorf("post to slack: gave up after %d attempts, next wait %v would pass the %v retry budget: %w",
				attempt, delay, p.policy.Budget, err)
		}
		if err := p.sleep(ctx, delay); err != nil {
			return fmt.Errorf("post to slack (waiting to retry after %d attempts): %w", attempt, err)
		}
		waited += delay
	}
}

// errInvalidURL replaces the URL parser's error, which would quote the URL.
var errInvalidURL = errors.New("invalid webhook URL")

// try makes one request. After a retryable failure it returns the wait
// Retry-After asked for, or -1 when there was none.
func (p *Poster) try(ctx context.Context, payload []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(payload))
	if err != nil {
		// The parse error would quote the URL.
		return -1, errInvalidURL
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return -1, redact(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	return retryAfter(resp.Header, p.now, p.policy.Budget), &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
}

// redact drops the *url.Error layer, whose message quotes the request URL,
// and keeps what went wrong (a refused connection, a timeout).
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s webhook: %w", ue.Op, ue.Err)
	}
	return err
}

// retryAfter returns the wait the Retry-After header asks for, never more
// than a second past budget (a longer one ends the retries anyway), or -1
// when the header is missing or unreadable. An HTTP date is taken relative
// to the response's Date header, so a skewed local clock does not stretch
// the wait, or to now() when there is no Date.
func retryAfter(h http.Header, now func() time.Time, budget time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		return time.Duration(min(secs, int64(budget/time.Second)+1)) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return -1
	}
	ref := now()
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = d
	}
	return min(max(at.Sub(ref), 0), budget+time.Second)
}

// noRedirects makes a redirect the answer: the webhook URL was checked
// against the allowed prefixes, and a redirect must not take the finding
// anywhere else. A 3xx is then a failed post.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
