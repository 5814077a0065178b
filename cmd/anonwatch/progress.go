package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// progressMin is the input size above which a terminal gets a progress line.
const progressMin = 32 << 20

// progress prints bytes read to a terminal on stderr, at most 4 times a
// second. It is silent when stderr is not a terminal or the input is small.
// Inputs read at once may share it.
type progress struct {
	w     io.Writer
	total int64
	read  atomic.Int64

	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newProgress(stderr io.Writer, inputs []string) *progress {
	p := &progress{}
	f, ok := stderr.(*os.File)
	if !ok {
		return p
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return p
	}
	for _, name := range inputs {
		if fi, err := os.Stat(name); err == nil {
			p.total += fi.Size()
		}
	}
	if p.total >= progressMin {
		p.w = stderr
	}
	return p
}

func (p *progress) wrap(r io.Reader) io.Reader {
	if p.w == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	p := pr.p
	done := p.read.Add(int64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) > 250*time.Millisecond {
		p.last = now
		p.shown = true
		fmt.Fprintf(p.w, "\ranonwatch replay: %d / %d MiB (%d%%)", done>>20, p.total>>20, done*100/max(p.total, 1))
	}
	return n, err
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
