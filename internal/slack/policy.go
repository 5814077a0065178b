package slack

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy bounds the retries of one Post: how many requests it makes and how
// long, in all, it waits between them. The zero Policy means DefaultPolicy.
//
// The two Slack notifier functions run this code with different policies:
// the one for critical findings waits out a longer rate limit, because a
// critical finding is rare and must get through while the other one's
// flood keeps Slack busy.
type Policy struct {
	// MaxAttempts is the most requests one Post makes, the first included.
	MaxAttempts int
	// Budget is the most time one Post waits between attempts, in all.
	Budget time.Duration
}

// DefaultPolicy is the policy of a notifier configured with none: four
// attempts within 30 seconds of waiting.
var DefaultPolicy = Policy{MaxAttempts: MaxAttempts, Budget: RetryBudget}

// MaxPostDuration is what one Post may take at most for a policy to be
// accepted: Lambda's longest function timeout, 15 minutes. A policy that
// could outlast it would be cut off by the timeout instead of ending with
// an error that says why.
const MaxPostDuration = 15 * time.Minute

// MaxDuration is the longest one Post with the default client can take
// under p: every attempt running into AttemptTimeout, and every wait the
// budget allows. The function's timeout must be longer, so that a post
// ends with its own error rather than the function being stopped.
func (p Policy) MaxDuration() time.Duration {
	p = p.orDefault()
	return time.Duration(p.MaxAttempts)*AttemptTimeout + p.Budget
}

func (p Policy) orDefault() Policy {
	if p == (Policy{}) {
		return DefaultPolicy
	}
	return p
}

// ParsePolicy reads a policy from the two settings that configure it (the
// notifier's SLACK_MAX_ATTEMPTS and SLACK_RETRY_BUDGET): attempts, a whole
// number from 1 up, and budget, a Go duration such as "30s" or "3m". An
// empty setting keeps DefaultPolicy's value. It refuses a policy whose
// MaxDuration is above MaxPostDuration.
func ParsePolicy(attempts, budget string) (Policy, error) {
	p := DefaultPolicy
	if s := strings.TrimSpace(attempts); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Policy{}, fmt.Errorf("max attempts %q is not a whole number from 1 up", attempts)
		}
		p.MaxAttempts = n
	}
	if s := strings.TrimSpace(budget); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return Policy{}, fmt.Errorf("retry budget %q is not a duration such as 30s or 3m", budget)
		}
		p.Budget = d
	}
	// Each bound alone first, so that MaxDuration's sum cannot overflow.
	if p.MaxAttempts > int(MaxPostDuration/AttemptTimeout) || p.Budget > MaxPostDuration || p.MaxDuration() > MaxPostDuration {
		return Policy{}, fmt.Errorf("%d attempts of up to %v and %v of waiting can take longer than the %v a Lambda function may run",
			p.MaxAttempts, AttemptTimeout, p.Budget, MaxPostDuration)
	}
	return p, nil
}
