package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// This file reads JSON from a stream one value at a time, so that an
// archive of any size costs the memory of its largest value, not of the
// archive: Firehose writes subscription payloads back to back, and the AWS
// CLI writes every page of filter-log-events into one document.

// valueScan finds where a JSON value ends in input given piece by piece. It
// follows strings and nesting only and validates nothing, so that what it
// passes on is judged by the decoder that reads it, which reports bad JSON
// in its own words. It reads no further than the value's end, so that
// splitting values back to back costs their length, not the input's.
type valueScan struct {
	// lines makes a newline end the scan too, wherever it is: in JSON
	// lines, one ends a line, damaged or not. newline reports that it did.
	lines, newline bool

	started bool
	scalar  bool // a number or a literal, which ends at a delimiter
	depth   int
	inStr   bool
	esc     bool
}

// scan returns the index in p just past the value's last byte (or of the
// newline that ended it, with lines), or -1 when the value goes on past p.
func (s *valueScan) scan(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	if !s.started {
		s.started = true
		s.scalar = p[0] != '{' && p[0] != '[' && p[0] != '"'
	}
	if s.scalar {
		return s.stop(bytes.IndexAny(p, ",]} \t\r\n"), p)
	}
	structural := "\"{}[]"
	if s.lines {
		structural = "\"{}[]\n"
	}
	quote := -1 // the next '"' in p at or after i, once looked for; -2: none
	for i := 0; i < len(p); {
		if s.esc {
			if s.lines && p[i] == '\n' {
				return s.stop(i, p)
			}
			s.esc = false
			i++
			continue
		}
		if s.inStr {
			// Most of a payload is strings: jump to the quote, then look
			// for an escape (and a newline) only before it.
			if quote != -2 && quote < i {
				if k := bytes.IndexByte(p[i:], '"'); k >= 0 {
					quote = i + k
				} else {
					quote = -2
				}
			}
			seg := p[i:]
			if quote >= 0 {
				seg = p[i:quote]
			}
			if b := bytes.IndexByte(seg, '\\'); b >= 0 {
				seg = seg[:b]
			}
			if s.lines {
				if k := bytes.IndexByte(seg, '\n'); k >= 0 {
					return s.stop(i+k, p)
				}
			}
			switch i += len(seg); {
			case i == len(p):
				return -1
			case p[i] == '\\':
				s.esc = true
				i++
				continue
			}
			s.inStr = false
			i++
			if s.depth == 0 {
				return i
			}
			continue
		}
		k := bytes.IndexAny(p[i:], structural)
		if k < 0 {
			return -1
		}
		i += k
		switch p[i] {
		case '\n':
			return s.stop(i, p)
		case '"':
			s.inStr = true
		case '{', '[':
			s.depth++
		default:
			if s.depth--; s.depth <= 0 {
				return i + 1
			}
		}
		i++
	}
	return -1
}

// stop returns i, the index of the byte that ends a scalar or, with
// lines, a newline, noting which.
func (s *valueScan) stop(i int, p []byte) int {
	if i >= 0 && p[i] == '\n' {
		s.newline = s.lines
	}
	return i
}

// buffered returns at least one byte of br without consuming it, or the
// error that ends br.
func buffered(br *bufio.Reader) ([]byte, error) {
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	return br.Peek(br.Buffered())
}

// valueReader reads one JSON value from br, its last byte included, and
// then reports io.EOF, leaving br just past the value.
type valueReader struct {
	br   *bufio.Reader
	sc   valueScan
	done bool
}

func (v *valueReader) Read(p []byte) (int, error) {
	if v.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	buf, err := buffered(v.br)
	if err == io.EOF {
		return 0, io.ErrUnexpectedEOF
	} else if err != nil {
		return 0, err
	}
	buf = buf[:min(len(buf), len(p))]
	if end := v.sc.scan(buf); end >= 0 {
		buf, v.done = buf[:end], true
	}
	n := copy(p, buf)
	v.br.Discard(n)
	return n, nil
}

// readValue reads the next JSON value from br. It keeps at most max+1
// bytes of it, so that a caller bounding values by max sees one too long
// (over), and discards the rest.
func readValue(br *bufio.Reader, max int) (raw []byte, over bool, err error) {
	var sc valueScan
	for {
		buf, err := buffered(br)
		if err == io.EOF {
			return raw, len(raw) > max, io.ErrUnexpectedEOF
		} else if err != nil {
			return nil, false, err
		}
		end := sc.scan(buf)
		if end >= 0 {
			buf = buf[:end]
		}
		if room := max + 1 - len(raw); room > 0 {
			raw = append(raw, buf[:min(len(buf), room)]...)
		}
		br.Discard(len(buf))
		if end >= 0 {
			return raw, len(raw) > max, nil
		}
	}
}

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace moves br past white space and returns the next byte, unread.
func skipSpace(br *bufio.Reader) (byte, error) {
	for {
		buf, err := buffered(br)
		if err != nil {
			return 0, err
		}
		i := 0
		for i < len(buf) && isSpace(buf[i]) {
			i++
		}
		br.Discard(i)
		if i < len(buf) {
			return buf[i], nil
		}
	}
}

// expect moves br past white space and the byte c.
func expect(br *bufio.Reader, c byte) error {
	got, err := skipSpace(br)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	} else if err != nil {
		return err
	}
	if got != c {
		return fmt.Errorf("found %q where JSON has %q", got, c)
	}
	br.Discard(1)
	return nil
}

// maxKey bounds an object key read by members.
const maxKey = 4 << 10

// members calls fn for each member of the object next in br, with its key
// and br at its value, which fn must read or skip (with skipValue).
func members(br *bufio.Reader, fn func(key string) error) error {
	if err := expect(br, '{'); err != nil {
		return err
	}
	return elementsOf(br, '}', func() error {
		raw, over, err := readValue(br, maxKey)
		if err != nil {
			return err
		}
		var key string
		if over || json.Unmarshal(raw, &key) != nil {
			return fmt.Errorf("bad object key %.40q", raw)
		}
		if err := expect(br, ':'); err != nil {
			return err
		}
		if _, err := skipSpace(br); err != nil {
			return err
		}
		return fn(key)
	})
}

// elements calls fn for each element of the array next in br, with br at
// the element, which fn must read or skip.
func elements(br *bufio.Reader, fn func() error) error {
	if err := expect(br, '['); err != nil {
		return err
	}
	return elementsOf(br, ']', fn)
}

// elementsOf reads the items of a container whose opener br is past, up
// to and including closer, calling item with br at each.
func elementsOf(br *bufio.Reader, closer byte, item func() error) error {
	c, err := skipSpace(br)
	if err != nil {
		return unexpectedEOF(err)
	}
	if c == closer {
		br.Discard(1)
		return nil
	}
	for {
		if _, err := skipSpace(br); err != nil {
			return unexpectedEOF(err)
		}
		if err := item(); err != nil {
			return unexpectedEOF(err)
		}
		c, err := skipSpace(br)
		if err != nil {
			return unexpectedEOF(err)
		}
		br.Discard(1)
		switch c {
		case ',':
		case closer:
			return nil
		default:
			return fmt.Errorf("found %q where JSON has ',' or %q", c, closer)
		}
	}
}

// skipValue reads past the next JSON value, keeping none of it.
func skipValue(br *bufio.Reader) error {
	_, _, err := readValue(br, 0)
	return err
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
