package cwlogs

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

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

// TestReadAllBound checks that readAll, which reads a payload whole for
// the encoding/json fallback, refuses a stream longer than the limit after
// limit+1 bytes, whatever its hint says.
func TestReadAllBound(t *testing.T) {
	const limit = 1 << 16
	for _, hint := range []int64{0, 100, limit, 4 * limit} {
		r := &endless{}
		_, over, err := readAll(r, hint, limit)
		if err != nil || !over {
			t.Fatalf("hint %d: readAll() = over %v, error %v; want over", hint, over, err)
		}
		if r.n != limit+1 {
			t.Errorf("hint %d: readAll() read %d bytes with a limit of %d, want %d", hint, r.n, limit, limit+1)
		}
	}
	src := bytes.Repeat([]byte("abcdefghij"), 1000)
	for _, hint := range []int64{0, 10, int64(len(src)), 1 << 20} {
		b, over, err := readAll(bytes.NewReader(src), hint, limit)
		if err != nil || over || !bytes.Equal(b, src) {
			t.Errorf("hint %d: readAll() = %d bytes, over %v, error %v; want the %d written", hint, len(b), over, err, len(src))
		}
	}
}

// TestDecoderInflatedBound checks that the streaming decoder reads no more
// than MaxInflated+1 bytes of an endless payload, whatever it is, and that
// it leaves one that is not JSON to encoding/json at once.
func TestDecoderInflatedBound(t *testing.T) {
	const limit = 3 << 20
	tests := []struct {
		prefix string
		want   error
	}{
		{``, errFallback}, // 'a' is not JSON
		{` `, errFallback},
		{`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"`, ErrTooLarge},
		{`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"x"}` + strings.Repeat(" ", 1<<20), ErrTooLarge},
	}
	for _, tt := range tests {
		r := &endless{}
		src := io.MultiReader(strings.NewReader(tt.prefix), r)
		if tt.want == ErrTooLarge && strings.HasSuffix(tt.prefix, " ") {
			src = io.MultiReader(strings.NewReader(tt.prefix), &spaces{r})
		}
		d := newDecoder(src, func(err error) error { return err }, 0, Limits{MaxDecompressed: 1 << 20, MaxInflated: limit}, nil, defaultSizes)
		_, err := d.decode()
		d.release()
		if !errors.Is(err, tt.want) {
			t.Errorf("%.20q...: error %v, want %v", tt.prefix, err, tt.want)
		}
		read := r.n + int64(len(tt.prefix))
		if tt.want == errFallback && read > windowSize || read > limit+1 {
			t.Errorf("%.20q...: read %d bytes, limit %d", tt.prefix, read, limit)
		}
	}
}

// spaces is an endless reader of white space, counted in r.
type spaces struct{ r *endless }

func (s *spaces) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for i := range p[:n] {
		p[i] = ' '
	}
	return n, err
}
