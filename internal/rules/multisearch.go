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

// contains reports whether text holds one of the literals.
//
// Each step of the search loads a shift that depends on the position the
// previous step reached, so a single search runs at the latency of that
// chain of loads, with the processor mostly idle. A text long enough is
// therefore searched as four quarters at once, in one loop, whose chains
// overlap: on audit lines that is about three times as fast. Each window
// (the m bytes ending at a position) is checked by the quarter its last
// byte falls in, so the quarters miss nothing; a literal is verified in
// the whole text, past the end of its quarter if need be.
func (s *multiSearch) contains(text []byte) bool {
	if s.m < 2 {
		for _, l := range s.lits {
			if bytes.Contains(text, l) {
				return true
			}
		}
		return false
	}
	lo, hi := s.m-1, len(text) // the last bytes of the windows to check
	if hi-lo < 4*minQuarter {
		return s.scan(text, lo, hi)
	}
	q := (hi - lo) / 4
	p0, p1, p2, p3 := lo, lo+q, lo+2*q, lo+3*q
	e0, e1, e2, e3 := p1, p2, p3, hi
	for p0 < e0 && p1 < e1 && p2 < e2 && p3 < e3 {
		s0 := s.shift[hash2(text[p0-1], text[p0])]
		s1 := s.shift[hash2(text[p1-1], text[p1])]
		s2 := s.shift[hash2(text[p2-1], text[p2])]
		s3 := s.shift[hash2(text[p3-1], text[p3])]
		if s0 == 0 || s1 == 0 || s2 == 0 || s3 == 0 {
			if s0 == 0 {
				if s.match(text, p0) {
					return true
				}
				s0 = 1
			}
			if s1 == 0 {
				if s.match(text, p1) {
					return true
				}
				s1 = 1
			}
			if s2 == 0 {
				if s.match(text, p2) {
					return true
				}
				s2 = 1
			}
			if s3 == 0 {
				if s.match(text, p3) {
					return true
				}
				s3 = 1
			}
		}
		p0 += int(s0)
		p1 += int(s1)
		p2 += int(s2)
		p3 += int(s3)
	}
	// One quarter is done; finish the others one at a time.
	return s.scan(text, p0, e0) || s.scan(text, p1, e1) || s.scan(text, p2, e2) || s.scan(text, p3, e3)
}

// minQuarter is the least length of text, per quarter, worth the set-up of
// searching the quarters at once.
const minQuarter = 64

// scan reports whether a literal's prefix ends at a position in [pos, hi)
// of text, and the whole literal follows it there.
func (s *multiSearch) scan(text []byte, pos, hi int) bool {
	for pos < hi {
		sh := s.shift[hash2(text[pos-1], text[pos])]
		if sh == 0 {
			if s.match(text, pos) {
				return true
			}
			sh = 1
		}
		pos += int(sh)
	}
	return false
}

// match reports whether some literal starts at pos-m+1 in text; shift is 0
// at pos.
func (s *multiSearch) match(text []byte, pos int) bool {
	h := hash2(text[pos-1], text[pos])
	start := pos - s.m + 1
	for _, e := range s.ends {
		if e.hash == h && bytes.HasPrefix(text[start:], s.lits[e.lit]) {
			return true
		}
	}
	return false
}
