package main

import (
	"cmp"
	"context"
	"log/slog"
	"sync"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// jobsPerInput bounds the batches of one input read and not committed, as
// readAheadBytes bounds their weight.
const jobsPerInput = 1024

// job is one batch on its way from its input to the state.
type job[T any] struct {
	batch *cwlogs.Batch
	ready chan struct{} // closed once prepared
	// value is what prepare made of the batch, and logs the log records
	// it wrote, for commit to write in input order.
	value  T
	logs   *logBuffer
	weight int64 // of the batch, held from reading to commit
	err    error // set alone: the input failed here, after its earlier batches
}

// pipeline replays inputs in order through prepare, which may run on
// several batches at once, and commit, which runs on one batch at a time in
// input order: the order a sequential replay would give, whatever the
// workers.
type pipeline[T any] struct {
	// workers is how many batches are prepared at once, and inputs read
	// at once. 1 reads, prepares and commits each batch in turn on one
	// goroutine.
	workers int
	// read calls emit with each batch of the input name, in order, and
	// returns the error that ended it, if any.
	read func(name string, emit func(*cwlogs.Batch) error) error
	// prepare works on one batch; it must not touch what commit touches.
	// Its log lines go to ctx (withLogBuffer).
	prepare func(ctx context.Context, b *cwlogs.Batch) T
	// commit takes each prepared batch in input order.
	commit func(T) error
	// ahead bounds the weight of batches read past the input being
	// committed; 0 means readAheadBytes.
	ahead int64
}

// run replays inputs and returns the first error of read or commit, or of
// ctx; after it, nothing of the replay is left running.
func (p *pipeline[T]) run(ctx context.Context, inputs []string) error {
	if p.workers <= 1 {
		for _, name := range inputs {
			var stop error // of commit or ctx, which read may wrap
			err := p.read(name, func(b *cwlogs.Batch) error {
				if stop = ctx.Err(); stop != nil {
					return stop
				}
				j := &job[T]{batch: b}
				p.prepareJob(ctx, j)
				stop = p.commitJob(j)
				return stop
			})
			if stop != nil {
				return stop
			}
			if err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ahead := newReadAhead(cmp.Or(p.ahead, readAheadBytes))
	stop := context.AfterFunc(ctx, ahead.cancel)
	defer stop()
	var (
		work    = make(chan *job[T])
		queues  = make(chan queue[T], len(inputs))
		reading = make(chan struct{}, p.workers) // a token per input being read
		readers sync.WaitGroup
		workers sync.WaitGroup
	)
	for range p.workers {
		workers.Go(func() {
			for j := range work {
				p.prepareJob(ctx, j)
				close(j.ready)
			}
		})
	}
	// The inputs are read in order, p.workers at a time, each into a queue
	// of its jobs in order, as far ahead of the one being committed as
	// readAheadBytes lets them.
	go func() {
		defer func() {
			close(queues)
			readers.Wait()
			close(work)
		}()
		for i, name := range inputs {
			select {
			case reading <- struct{}{}:
			case <-ctx.Done():
				return
			}
			q := queue[T]{input: i, jobs: make(chan *job[T], jobsPerInput)}
			queues <- q // never blocks: there is room for every input
			readers.Go(func() {
				defer func() {
					close(q.jobs)
					<-reading
				}()
				err := p.read(name, func(b *cwlogs.Batch) error {
					j := &job[T]{batch: b, ready: make(chan struct{}), weight: weight(b)}
					if !ahead.acquire(i, j.weight) {
						return ctx.Err()
					}
					for _, c := range []chan *job[T]{q.jobs, work} {
						select {
						case c <- j:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					return nil
				})
				if err != nil && ctx.Err() == nil {
					j := &job[T]{err: err, ready: make(chan struct{})}
					close(j.ready)
					select {
					case q.jobs <- j:
					case <-ctx.Done():
					}
				}
			})
		}
	}()
	err := p.consume(ctx, queues, ahead)
	cancel()
	// Let every reader and worker see the cancellation and end.
	for q := range queues {
		for range q.jobs {
		}
	}
	workers.Wait()
	return err
}

// queue is the jobs of one input, in order.
type queue[T any] struct {
	input int // its index in the inputs
	jobs  chan *job[T]
}

// consume commits the jobs of each queue in turn, in order.
func (p *pipeline[T]) consume(ctx context.Context, queues <-chan queue[T], ahead *readAhead) error {
	for q := range queues {
		ahead.advance(q.input)
		for j := range q.jobs {
			select {
			case <-j.ready:
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if j.err != nil {
				return j.err
			}
			err := p.commitJob(j)
			ahead.release(q.input, j.weight)
			if err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// weight is what a batch is taken to hold in memory until it is
// committed: its lines, and its events' overhead.
func weight(b *cwlogs.Batch) int64 {
	n := int64(4 << 10)
	for i := range b.Events {
		n += 64 + int64(len(b.Events[i].ID)+len(b.Events[i].Message))
	}
	return n
}

// readAheadBytes bounds the weight of the batches read and not yet
// committed. Half of it is for the input being committed; the inputs past
// it are read as far as the other half lets them, so that every core has
// work while one input is committed, and the input being committed still
// has room when they have filled theirs. Each input may always have one
// batch, however heavy, so the replay always moves on. Once prepared, most
// batches hold far less than their weight (lines no rule can match are
// never kept), so this is a bound, not what a replay usually holds.
const readAheadBytes = 128 << 20

// readAhead accounts for the batches read and not yet committed.
type readAhead struct {
	mu        sync.Mutex
	cond      sync.Cond
	max       int64
	used      int64         // by every input
	byInput   map[int]int64 // by each input with batches held
	head      int           // the input being committed
	cancelled bool
}

func newReadAhead(max int64) *readAhead {
	ra := &readAhead{max: max, byInput: make(map[int]int64)}
	ra.cond.L = &ra.mu
	return ra
}

// acquire takes n for a batch of input, waiting until it fits; false means
// the replay was cancelled.
func (ra *readAhead) acquire(input int, n int64) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for !ra.cancelled && !ra.fits(input, n) {
		ra.cond.Wait()
	}
	ra.used += n
	ra.byInput[input] += n
	return !ra.cancelled
}

// fits reports whether a batch of n from input may be read now: when input
// holds nothing, or when the batch fits in the bound, of which the inputs
// past the one being committed share half. ra.mu must be held.
func (ra *readAhead) fits(input int, n int64) bool {
	switch {
	case ra.byInput[input] == 0:
		return true
	case input == ra.head:
		return ra.used+n <= ra.max
	}
	return ra.used-ra.byInput[ra.head]+n <= ra.max/2
}

// release returns n of input's, its batch committed.
func (ra *readAhead) release(input int, n int64) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.used -= n
	if ra.byInput[input] -= n; ra.byInput[input] == 0 {
		delete(ra.byInput, input)
	}
	ra.cond.Broadcast()
}

// advance says that input is now being committed.
func (ra *readAhead) advance(input int) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.head = input
	ra.cond.Broadcast()
}

func (ra *readAhead) cancel() {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.cancelled = true
	ra.cond.Broadcast()
}

func (p *pipeline[T]) prepareJob(ctx context.Context, j *job[T]) {
	j.logs = &logBuffer{}
	j.value = p.prepare(withLogBuffer(ctx, j.logs), j.batch)
	j.batch = nil // its lines are no longer needed
}

func (p *pipeline[T]) commitJob(j *job[T]) error {
	j.logs.flush()
	return p.commit(j.value)
}

// logBuffer holds log records for later. One goroutine at a time uses it.
type logBuffer struct {
	records []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

// flush writes the held records and forgets them.
func (b *logBuffer) flush() {
	for _, hr := range b.records {
		// A handler's error has nowhere better to go than the log.
		_ = hr.h.Handle(context.Background(), hr.r)
	}
	b.records = nil
}

type logBufferKey struct{}

// withLogBuffer returns ctx carrying b: an orderedHandler holds the records
// logged with it in b.
func withLogBuffer(ctx context.Context, b *logBuffer) context.Context {
	return context.WithValue(ctx, logBufferKey{}, b)
}

// orderedHandler is a slog.Handler that holds the records logged with a
// context carrying a logBuffer in it, so that the log lines of batches
// prepared at once come out in input order, when each is committed; it
// writes other records through at once.
type orderedHandler struct{ h slog.Handler }

func (o orderedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return o.h.Enabled(ctx, l)
}

func (o orderedHandler) Handle(ctx context.Context, r slog.Record) error {
	if b, _ := ctx.Value(logBufferKey{}).(*logBuffer); b != nil {
		b.records = append(b.records, heldRecord{o.h, r.Clone()})
		return nil
	}
	return o.h.Handle(ctx, r)
}

func (o orderedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return orderedHandler{o.h.WithAttrs(as)}
}

func (o orderedHandler) WithGroup(name string) slog.Handler {
	return orderedHandler{o.h.WithGroup(name)}
}
