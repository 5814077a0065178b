package detect

import (
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// valueSet keeps the max smallest distinct strings added to it, so merging
// two capped sets gives the same result as capping the union: the property
// that lets per-batch aggregates merge exactly. It keeps copies, so a value
// cut from a longer string (a path from a request URI) does not hold on to
// that string.
type valueSet struct {
	max       int
	vals      []string // sorted
	truncated bool
	// last is the value last found or kept: consecutive requests of a
	// group mostly repeat their agent, verb and code, and each request
	// adds its values to every rule it matches. It is one of the kept
	// copies, never the caller's string (a cut of a 1 MB URI). A value
	// evicted since would be refused again, truncated already set.
	last string
}

func (s *valueSet) add(v string) {
	if v == s.last && v != "" {
		return
	}
	i, found := slices.BinarySearch(s.vals, v)
	if found {
		s.last = s.vals[i]
		return
	}
	if len(s.vals) >= s.max {
		s.truncated = true
		if i >= s.max {
			return
		}
		s.vals = s.vals[:len(s.vals)-1]
	}
	c := strings.Clone(v)
	s.vals = slices.Insert(s.vals, i, c)
	s.last = c
}

// mergeSorted merges sorted b into sorted a, keeping at most max values.
// It reports whether values were dropped.
func mergeSorted(a, b []string, max int) ([]string, bool) {
	out := make([]string, 0, min(len(a)+len(b), max))
	i, j := 0, 0
	for (i < len(a) || j < len(b)) && len(out) < max {
		switch {
		case j >= len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i >= len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	// Whatever is left is a value beyond the cap, unless it duplicates.
	dropped := i < len(a) || j < len(b)
	return out, dropped
}

// ellipsis ends a display value that was cut, so a reader knows there
// was more.
const ellipsis = "…"

// displayValue returns v as stored for display: valid UTF-8 (each run of
// invalid bytes as U+FFFD, as memstate.Clip makes it) of at most n bytes.
// A longer value is cut at a character boundary and ends in ellipsis, within
// the n bytes, so a state that clips to n keeps it as it is.
func displayValue(v string, n int) string {
	if len(v) <= n && utf8.ValidString(v) {
		return v
	}
	var b strings.Builder
	b.Grow(min(len(v), n))
	keep := 0 // the length of b to keep if v is cut, leaving room for the ellipsis
	bad := false
	for i := 0; i < len(v); {
		r, w := utf8.DecodeRuneInString(v[i:])
		c := v[i : i+w]
		i += w
		if r == utf8.RuneError && w == 1 {
			if bad {
				continue // one U+FFFD a run
			}
			c = "\uFFFD"
		}
		bad = r == utf8.RuneError && w == 1
		if b.Len()+len(c) > n {
			return b.String()[:keep] + ellipsis
		}
		b.WriteString(c)
		if b.Len()+len(ellipsis) <= n {
			keep = b.Len()
		}
	}
	return b.String()
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
