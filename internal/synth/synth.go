// Package synth generates realistic, deterministic EKS audit log lines for
// benchmarks, tests and the CLI's generated scenarios.
//
// The output depends only on the caller's seed, start time and step, never on
// the clock or global randomness, so a benchmark or a golden file sees the
// same bytes on every run and every machine.
package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Mix describes the traffic a Generator produces.
type Mix struct {
	// Anonymous is the fraction of lines made by system:anonymous:
	// scanner probes and health checks. The rest is the authenticated
	// chatter of a quiet cluster's own components.
	Anonymous float64
	// RequestReceived is the fraction of lines logged at stage
	// RequestReceived; every other line is ResponseComplete.
	RequestReceived float64
	// ScannerIPs are the connection addresses of anonymous scanners.
	// Empty means DefaultScannerIPs.
	ScannerIPs []string
	// Nodes is the number of worker nodes, each with its kubelet's
	// requests and its own address. 0 means 4, a quiet cluster; fewer
	// than 2 means 2.
	Nodes int
	// Workloads, when positive, adds the requests of the applications a
	// busy cluster runs: that many service accounts, spread over
	// namespaces, reading and writing their own objects from pod
	// addresses. A quarter of authenticated lines are theirs. 0 leaves
	// only the control plane's and the nodes' chatter.
	Workloads int
}

// DefaultScannerIPs are documentation addresses (RFC 5737, RFC 3849), used
// so that generated scans never name a real host. A scenario that needs
// addresses an address classifier calls public can set Mix.ScannerIPs.
var DefaultScannerIPs = []string{
	"203.0.113.7",
	"203.0.113.45",
	"198.51.100.23",
	"192.0.2.150",
	"2001:db8:5c4::17",
}

// Generator produces audit lines one at a time. It is not safe for
// concurrent use.
type Generator struct {
	rng     *rand.Rand
	mix     Mix
	start   time.Time
	step    time.Duration
	n       int64
	cluster clusterShape
}

// New returns a Generator whose i-th line (from 0) is received at
// start + i*step. The seed alone decides everything else.
func New(seed uint64, start time.Time, step time.Duration, mix Mix) *Generator {
	if len(mix.ScannerIPs) == 0 {
		mix.ScannerIPs = DefaultScannerIPs
	}
	// The second PCG word is fixed so that one uint64 is the whole seed.
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	return &Generator{
		rng:     rng,
		mix:     mix,
		start:   start.UTC(),
		step:    step,
		cluster: newClusterShape(rng, mix.Nodes),
	}
}

// Lines returns n lines of which about anonFraction are anonymous and 1% are
// at stage RequestReceived, received step apart from start.
func Lines(n int, anonFraction float64, seed uint64, start time.Time, step time.Duration) [][]byte {
	g := New(seed, start, step, Mix{Anonymous: anonFraction, RequestReceived: 0.01})
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Next returns the next line: one audit.k8s.io/v1 Event as compact JSON.
func (g *Generator) Next() []byte {
	at := g.start.Add(time.Duration(g.n) * g.step)
	g.n++
	var ev event
	if g.rng.Float64() < g.mix.Anonymous {
		ev = g.anonymous(at)
	} else {
		ev = g.authenticated(at)
	}
	if g.rng.Float64() < g.mix.RequestReceived {
		ev.toRequestReceived()
	}
	return mustMarshal(ev)
}

// uuid returns a random version-4 UUID drawn from the generator's stream.
func (g *Generator) uuid() string {
	return uuidFrom(g.rng.Uint64(), g.rng.Uint64())
}

func uuidFrom(hi, lo uint64) string {
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// pick returns one element of xs.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// weighted is a choice with a relative weight.
type weighted[T any] struct {
	w int
	v T
}

func pickWeighted[T any](r *rand.Rand, xs []weighted[T]) T {
	total := 0
	for _, x := range xs {
		total += x.w
	}
	n := r.IntN(total)
	for _, x := range xs {
		if n < x.w {
			return x.v
		}
		n -= x.w
	}
	panic("unreachable")
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value marshalled here is built by this package from
		// strings, numbers, maps and slices; failure is a bug.
		panic(fmt.Sprintf("synth: marshal: %v", err))
	}
	return b
}
