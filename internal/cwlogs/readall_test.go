package cwlogs

import (
	"bytes"
	"io"
	"testing"
)

// TestReadAllSpare checks when readAll inflates into the spare buffer it is
// given: when the spare is the size it needs, up to twice that, and not
// otherwise, so that a small hint does not tie up a large spare.
func TestReadAllSpare(t *testing.T) {
	const n = 1000 // bytes to read; with the hint, readAll needs n+1
	tests := []struct {
		name  string
		spare int // capacity; -1 for none
		reuse bool
	}{
		{"none", -1, false},
		{"too small", n, false},
		{"exact", n + 1, true},
		{"twice", 2 * (n + 1), true},
		{"more than twice", 2*(n+1) + 1, false},
	}
	src := bytes.Repeat([]byte("abcdefghij"), n/10)
	for _, tt := range tests {
		var spare []byte
		if tt.spare >= 0 {
			spare = make([]byte, 0, tt.spare)
		}
		b, over, err := readAll(bytes.NewReader(src), n, 1<<20, spare)
		if err != nil || over {
			t.Fatalf("%s: readAll() = over %v, error %v", tt.name, over, err)
		}
		if !bytes.Equal(b, src) {
			t.Fatalf("%s: readAll() read %d bytes that differ from the %d written", tt.name, len(b), len(src))
		}
		if reused := spare != nil && &spare[:1][0] == &b[0]; reused != tt.reuse {
			t.Errorf("%s: readAll() read into the spare = %v, want %v", tt.name, reused, tt.reuse)
		}
	}
}

// endless is a reader of an unending stream of 'a's that counts what it
// gives.
type endless struct{ n int64 }

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += int64(len(p))
	return len(p), nil
}

var _ io.Reader = (*endless)(nil)

// TestReadAllSpareBound checks that a spare does not widen readAll's bound:
// a stream longer than the limit is refused after limit+1 bytes, whatever
// the size of the spare it reads into.
func TestReadAllSpareBound(t *testing.T) {
	const limit = 1 << 16
	for _, spare := range []int{0, limit + 1, 2*limit + 2} {
		r := &endless{}
		_, over, err := readAll(r, limit, limit, make([]byte, 0, spare))
		if err != nil || !over {
			t.Fatalf("spare of %d: readAll() = over %v, error %v; want over", spare, over, err)
		}
		if r.n != limit+1 {
			t.Errorf("spare of %d: readAll() read %d bytes with a limit of %d, want %d", spare, r.n, limit, limit+1)
		}
	}
}
