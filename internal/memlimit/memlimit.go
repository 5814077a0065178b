// Package memlimit sizes the Go collector's soft memory limit to the
// memory Lambda gives the function.
package memlimit

import (
	"strconv"
	"strings"
)

// Fraction of the function's memory the Go runtime may use before its
// collector works harder: 9/16, 72 MiB of 128 MB. The rest is what the
// limit does not count (the binary's mapped text, about 20 MiB for the
// detector) and a margin. Measured on the largest deliveries CloudWatch
// Logs can send (docs/performance.md, "Memory"): a 14,782-address sweep
// peaks at 82 MiB with it and 89 MiB without, a decoder-bound delivery at
// 79 MiB and 104 MiB.
const (
	num = 9
	den = 16
)

// For returns the soft limit, in bytes, for a function given what its
// environment says, and false when it should leave the runtime's as it
// is: GOMEMLIMIT set (the user's choice wins; the runtime has read it) or
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (MB) absent or not a size, as outside
// Lambda.
func For(getenv func(string) string) (int64, bool) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(strings.TrimSpace(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")), 10, 64)
	if err != nil || mb <= 0 || mb > 1<<20 {
		return 0, false
	}
	return mb << 20 * num / den, true
}
