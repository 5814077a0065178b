package rules

import "bytes"

// multiSearch reports whether a text contains any of a set of literals, in
// one pass that skips ahead by up to the shortest literal's length (the
// Wu-Manber algorithm, with two-byte blocks). The pre-filter runs on every
// log line, most of which hold none of the literals, and bytes.Contains per
// literal is slow on audit JSON: its first-byte scan stops at every "s" of
// "system:" and "status".
type multiSearch struct {
	lits [][]byte
	// m is the length of the shortest literal; every literal is matched
	// by its first m bytes, then checked in full.
	m int
	// shift is, for the hash of two bytes ending at the current position,
	// how far the window of m bytes may move without passing the end of
	// some literal's prefix; 0 means a literal's prefix may end here.
	shift [1 << hashBits]uint8
	// ends lists, for shift 0, which literals' prefixes end in that hash.
	ends []hashLit
}

type hashLit struct {
	hash uint16
	lit  int
}

const hashBits = 12

func hash2(a, b byte) uint16 {
	return (uint16(a)<<5 ^ uint16(b)) & (1<<hashBits - 1)
}

// newMultiSearch prepares a search for lits, which must be non-empty.
func newMultiSearch(lits [][]byte) *multiSearch {
	s := &multiSearch{lits: lits, m: len(lits[0])}
	for _, l := range lits {
		s.m = min(s.m, len(l))
	}
	if s.m < 2 {
		return s // contains falls back to bytes.Contains
	}
	// A shift fits in a uint8; a longer skip would be capped anyway.
	s.m = min(s.m, 255)
	for i := range s.shift {
		s.shift[i] = uint8(s.m - 1)
	}
	for li, l := range lits {
		p := l[:s.m]
		for j := 1; j < s.m; j++ {
			h := hash2(p[j-1], p[j])
			s.shift[h] = min(s.shift[h], uint8(s.m-1-j))
		}
		s.ends = append(s.ends, hashLit{hash2(p[s.m-2], p[s.m-1]), li})
	}
	return s
}

func (s *multiSearch) contains(text []byte) bool {
	if s.m < 2 {
		for _, l := range s.lits {
			if bytes.Contains(text, l) {
				return true
			}
		}
		return false
	}
	m := s.m
	for pos := m - 1; pos < len(text); {
		h := hash2(text[pos-1], text[pos])
		if sh := s.shift[h]; sh > 0 {
			pos += int(sh)
			continue
		}
		start := pos - m + 1
		for _, e := range s.ends {
			if e.hash == h && bytes.HasPrefix(text[start:], s.lits[e.lit]) {
				return true
			}
		}
		pos++
	}
	return false
}
