package detect

import (
	"slices"
	"sort"
	"unicode/utf8"
)

// valueSet keeps the max smallest distinct strings added to it, so merging
// two capped sets gives the same result as capping the union: the property
// that lets per-batch aggregates merge exactly.
type valueSet struct {
	max       int
	vals      []string // sorted
	truncated bool
}

func (s *valueSet) add(v string) {
	i, found := slices.BinarySearch(s.vals, v)
	if found {
		return
	}
	if len(s.vals) >= s.max {
		s.truncated = true
		if i >= s.max {
			return
		}
		s.vals = s.vals[:len(s.vals)-1]
	}
	s.vals = slices.Insert(s.vals, i, v)
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

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
