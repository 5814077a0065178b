package rules

import (
	"testing"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// Mixes of events for the benchmarks.
const (
	// mixAnonymous is the anonymous requests of testdata/cases.jsonl:
	// scans, probes, health checks, allowed and refused. On an exposed
	// cluster they are the bulk of what passes the pre-filter.
	mixAnonymous = iota
	// mixPrefiltered is everything that reaches Match in production: every
	// line of testdata/cases.jsonl plus the system lines the pre-filter
	// keeps. A quarter of it are RBAC writes with a request body, whose
	// decoding dominates; real traffic has far fewer.
	mixPrefiltered
	// mixAll adds authenticated system traffic at four lines in five, as a
	// busy EKS audit log has it, as if there were no pre-filter.
	mixAll
)

// benchMix returns the events of a mix and their raw lines.
func benchMix(b *testing.B, mix int) ([]audit.Event, [][]byte) {
	b.Helper()
	s := mustDefault(b)
	var evs []audit.Event
	var lines [][]byte
	add := func(fx fixture, anonymousOnly bool) {
		if fx.Damage != "" {
			return // not a line the API server wrote whole
		}
		ev, err := fx.event()
		if err != nil {
			b.Fatalf("%s: %v", fx.Name, err)
		}
		if anonymousOnly && !ev.IsAnonymous() {
			return
		}
		evs = append(evs, ev)
		lines = append(lines, fx.Event)
	}
	cases := readFixtures(b, "testdata/cases.jsonl")
	system := readFixtures(b, "testdata/system_traffic.jsonl")
	for _, fx := range cases {
		add(fx, mix == mixAnonymous)
	}
	if mix == mixAnonymous {
		return evs, lines
	}
	for _, fx := range system {
		if s.Prefilter(fx.Event) {
			add(fx, false)
		}
	}
	if mix == mixAll {
		for len(evs) < 5*len(cases) {
			for _, fx := range system {
				add(fx, false)
			}
		}
	}
	return evs, lines
}

// BenchmarkMatch reports the cost of matching one event against the default
// rules: ns/op and allocs/op are per event.
func BenchmarkMatch(b *testing.B) {
	for _, bm := range []struct {
		name string
		mix  int
	}{{"anonymous", mixAnonymous}, {"prefiltered", mixPrefiltered}, {"all", mixAll}} {
		b.Run(bm.name, func(b *testing.B) {
			s := mustDefault(b)
			evs, _ := benchMix(b, bm.mix)
			var n int
			fn := func(*Rule, []int) { n++ }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Match(&evs[i%len(evs)], "prod", fn)
			}
			b.StopTimer()
			if n == 0 || s.EvalErrors() != 0 {
				b.Fatalf("%d matches, %d eval errors", n, s.EvalErrors())
			}
		})
	}
}

// BenchmarkPrefilter reports the cost of the pre-filter per raw line, over
// mixAll.
func BenchmarkPrefilter(b *testing.B) {
	s := mustDefault(b)
	_, lines := benchMix(b, mixAll)
	var kept int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Prefilter(lines[i%len(lines)]) {
			kept++
		}
	}
	b.StopTimer()
	if kept == 0 || kept == b.N && b.N > len(lines) {
		b.Fatalf("Prefilter kept %d of %d", kept, b.N)
	}
}

// BenchmarkLoadDefault reports the start-up cost of compiling the defaults.
func BenchmarkLoadDefault(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}
