package synth_test

import (
	"fmt"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/synth"
)

func ExampleProbe_Line() {
	line := synth.Probe{
		At:        time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		SrcIP:     "203.0.113.7",
		UserAgent: "masscan/1.3",
		URI:       "/api/v1/namespaces/kube-system/secrets",
	}.Line()
	e, _ := audit.Parse(line, 0)
	fmt.Println(e.Verb, e.ResponseCode, e.Decision, e.ObjectRef.Resource)
	// Output: list 403 forbid secrets
}

func ExampleLines() {
	lines := synth.Lines(1000, 0.05, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Millisecond)
	anonymous := 0
	for _, l := range lines {
		if e, err := audit.Parse(l, 0); err == nil && e.IsAnonymous() {
			anonymous++
		}
	}
	fmt.Println(len(lines), anonymous)
	// Output: 1000 47
}
