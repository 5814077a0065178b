package detect

import (
	"slices"
	"sort"
)

// distinctSet collects the distinct values of one field in one bucket of a
// batch, keeping at most DistinctCap. Up to the cap it holds the raw
// values, hashed once when the bucket is built; past it, the DistinctCap
// smallest hashes. So which values a saturated set keeps depends only on
// the values, not on the order the batch holds them in: a batch read in
// any order builds the same aggregate. (A threshold never depends on which
// ones are kept: rules.MaxDistinct is below the cap.)
type distinctSet struct {
	raw    map[string]struct{}
	hashes []string // ascending; set once the set saturates, then raw is nil
}

func (s *distinctSet) add(v string) {
	if s.hashes == nil {
		if _, ok := s.raw[v]; ok {
			return
		}
		if len(s.raw) < DistinctCap {
			if s.raw == nil {
				s.raw = make(map[string]struct{})
			}
			s.raw[v] = struct{}{}
			return
		}
		s.hashes = s.sorted()
		s.raw = nil
	}
	h := DistinctHash(v)
	if h >= s.hashes[len(s.hashes)-1] {
		return
	}
	i, found := slices.BinarySearch(s.hashes, h)
	if found {
		return
	}
	copy(s.hashes[i+1:], s.hashes[i:len(s.hashes)-1])
	s.hashes[i] = h
}

// saturated reports whether values were dropped or the set is full.
func (s *distinctSet) saturated() bool { return s.hashes != nil || len(s.raw) >= DistinctCap }

// sorted returns the set's hashes, ascending.
func (s *distinctSet) sorted() []string {
	if s.hashes != nil {
		return slices.Clone(s.hashes)
	}
	hs := make([]string, 0, len(s.raw))
	for v := range s.raw {
		hs = append(hs, DistinctHash(v))
	}
	sort.Strings(hs)
	return hs
}
