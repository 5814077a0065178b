package rules

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// Set is a loaded, compiled rule file, made by Load or Default. It is safe
// for concurrent use.
type Set struct {
	rules []*Rule
	// literals are the distinct requires_any strings of all rules; when
	// parseAll is set some rule has none and every line must be parsed.
	literals [][]byte
	search   *multiSearch // over literals; nil when there are none
	parseAll bool
	// needsRequestObject is set when some expression references
	// request_object.
	needsRequestObject bool
	evalErrors         atomic.Int64
	pool               sync.Pool // of *activation
}

// whenRef is a compiled per-event escalation and its index in Rule.Escalate.
type whenRef struct {
	index int
	prg   *program
}

func (s *Set) init() {
	s.pool.New = func() any { return newActivation() }
	for _, r := range s.rules {
		if len(r.RequiresAny) == 0 {
			s.parseAll = true
		}
		for _, l := range r.RequiresAny {
			if !slices.ContainsFunc(s.literals, func(b []byte) bool { return string(b) == l }) {
				s.literals = append(s.literals, []byte(l))
			}
		}
		progs := []*program{r.match, r.exclude}
		for _, w := range r.when {
			progs = append(progs, w.prg)
		}
		for _, p := range progs {
			if p != nil && p.usesRequestObject {
				s.needsRequestObject = true
			}
		}
	}
	if len(s.literals) > 0 {
		s.search = newMultiSearch(s.literals)
	}
}

// Rules returns the rules in file order. The caller must not modify them.
func (s *Set) Rules() []*Rule { return slices.Clone(s.rules) }

// Rule returns the rule with the given id, or nil.
func (s *Set) Rule(id string) *Rule {
	for _, r := range s.rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Prefilter reports whether the raw log line may match some rule: it holds
// at least one rule's requires_any string, or some rule has no requires_any.
// A false result means no rule can match the line, so it need not be
// parsed.
func (s *Set) Prefilter(line []byte) bool {
	if s.parseAll {
		return true
	}
	return s.search != nil && s.search.contains(line)
}

// NeedsRequestObject reports whether any rule reads request_object or
// response_object, so a
// caller that keeps events in memory may drop their RequestObject when no
// rule will look at it.
func (s *Set) NeedsRequestObject() bool { return s.needsRequestObject }

// Match calls fn, in file order, for each rule whose match condition is true
// and whose exclude condition is false for ev in cluster. marks holds the
// indices into r.Escalate of the When escalations that ev satisfies; the
// slice is reused once fn returns, so fn must copy it to keep it.
//
// A CEL runtime error in a rule's match or exclude (a missing key in
// request_object, say) means that rule does not match this event; one in a
// When condition leaves that escalation unmarked. Either way Match goes on
// with the other rules and counts the error in EvalErrors.
func (s *Set) Match(ev *audit.Event, cluster string, fn func(r *Rule, marks []int)) {
	a := s.pool.Get().(*activation)
	s.match(a, ev, cluster, fn)
	a.reset(nil, "") // drop the event, so the pool does not keep it alive
	s.pool.Put(a)
}

func (s *Set) match(a *activation, ev *audit.Event, cluster string, fn func(r *Rule, marks []int)) {
	a.reset(ev, cluster)
	for _, r := range s.rules {
		if !s.test(r.match, a, false) || r.exclude != nil && s.test(r.exclude, a, true) {
			continue
		}
		a.marks = a.marks[:0]
		for _, w := range r.when {
			if s.test(w.prg, a, false) {
				a.marks = append(a.marks, w.index)
			}
		}
		fn(r, a.marks)
	}
}

// test evaluates p, counting a runtime error and returning onErr for it.
func (s *Set) test(p *program, a *activation, onErr bool) bool {
	ok, err := p.eval(a)
	if err != nil {
		s.evalErrors.Add(1)
		return onErr
	}
	return ok
}

// EvalErrors returns the number of CEL runtime errors Match has met since
// the Set was loaded, so the caller can report it as a metric.
func (s *Set) EvalErrors() int64 { return s.evalErrors.Load() }
