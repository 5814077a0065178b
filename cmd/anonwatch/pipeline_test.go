package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// fakeInputs are inputs for a pipeline test: name → the number of batches
// it holds. A batch is named input/k in its LogStream and holds one line of
// size bytes.
type fakeInputs struct {
	names   []string
	batches map[string]int
	size    int
	// failAt makes read of an input fail after that many batches.
	failAt map[string]int
}

func (f *fakeInputs) read(name string, emit func(*cwlogs.Batch) error) error {
	for k := range f.batches[name] {
		if n, ok := f.failAt[name]; ok && k == n {
			return fmt.Errorf("%s: broken after %d batches", name, n)
		}
		b := &cwlogs.Batch{LogStream: fmt.Sprintf("%s/%d", name, k),
			Events: []cwlogs.LogEvent{{ID: "1", Message: make([]byte, f.size)}}}
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// all is every batch of every input, in order, up to the first that fails.
func (f *fakeInputs) all() []string {
	var out []string
	for _, name := range f.names {
		for k := range f.batches[name] {
			if n, ok := f.failAt[name]; ok && k == n {
				return out
			}
			out = append(out, fmt.Sprintf("%s/%d", name, k))
		}
	}
	return out
}

func newFakeInputs(counts ...int) *fakeInputs {
	f := &fakeInputs{batches: map[string]int{}, size: 100, failAt: map[string]int{}}
	for i, n := range counts {
		name := fmt.Sprintf("in%d", i)
		f.names = append(f.names, name)
		f.batches[name] = n
	}
	return f
}

// TestPipeline checks that whatever the workers, every batch is committed
// in input order, up to the first failure, which run returns.
func TestPipeline(t *testing.T) {
	errCommit := errors.New("commit failed")
	tests := []struct {
		name       string
		inputs     *fakeInputs
		ahead      int64
		failCommit int // fail the commit of this batch (from 1); 0: none
		want       int // batches committed; -1: all
		wantErr    string
	}{
		{name: "no inputs", inputs: newFakeInputs(), want: -1},
		{name: "empty inputs", inputs: newFakeInputs(0, 0, 0), want: -1},
		{name: "uneven inputs", inputs: newFakeInputs(3, 0, 40, 1, 7, 25), want: -1},
		{name: "one long input", inputs: newFakeInputs(300), want: -1},
		{name: "little read-ahead", inputs: newFakeInputs(20, 20, 20, 20), ahead: 1, want: -1},
		{name: "an input fails", inputs: func() *fakeInputs {
			f := newFakeInputs(10, 10, 10, 10)
			f.failAt["in2"] = 4
			return f
		}(), want: -1, wantErr: "in2: broken after 4 batches"},
		{name: "an input fails first", inputs: func() *fakeInputs {
			f := newFakeInputs(10, 10)
			f.failAt["in0"] = 0
			return f
		}(), want: -1, wantErr: "in0: broken after 0 batches"},
		{name: "a commit fails", inputs: newFakeInputs(10, 10, 10), failCommit: 15, want: 14, wantErr: errCommit.Error()},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 2, 3, 8} {
			t.Run(fmt.Sprintf("%s/%d workers", tt.name, workers), func(t *testing.T) {
				var (
					mu        sync.Mutex
					committed []string
					finished  atomic.Bool
				)
				p := pipeline[string]{
					workers: workers,
					ahead:   tt.ahead,
					read: func(name string, emit func(*cwlogs.Batch) error) error {
						return tt.inputs.read(name, emit)
					},
					prepare: func(_ context.Context, b *cwlogs.Batch) string {
						if finished.Load() {
							t.Error("prepare after run returned")
						}
						return b.LogStream
					},
					commit: func(s string) error {
						if finished.Load() {
							t.Error("commit after run returned")
						}
						mu.Lock()
						defer mu.Unlock()
						if len(committed)+1 == tt.failCommit {
							return errCommit
						}
						committed = append(committed, s)
						return nil
					},
				}
				err := p.run(context.Background(), tt.inputs.names)
				finished.Store(true)
				if got := fmt.Sprint(err); tt.wantErr != "" && got != tt.wantErr || tt.wantErr == "" && err != nil {
					t.Errorf("run() = %v, want %q", err, tt.wantErr)
				}
				want := tt.inputs.all()
				if tt.want >= 0 {
					want = want[:tt.want]
				}
				if diff := cmp.Diff(want, committed); diff != "" {
					t.Errorf("committed batches mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestPipelineCancel checks that run returns the context's error once it
// is cancelled, having committed nothing after.
func TestPipelineCancel(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			inputs := newFakeInputs(50, 50, 50)
			var n int
			p := pipeline[string]{
				workers: workers,
				read:    inputs.read,
				prepare: func(_ context.Context, b *cwlogs.Batch) string { return b.LogStream },
				commit: func(string) error {
					if n++; n == 20 {
						cancel()
					}
					return nil
				},
			}
			if err := p.run(ctx, inputs.names); !errors.Is(err, context.Canceled) {
				t.Errorf("run() = %v, want %v", err, context.Canceled)
			}
			if n > 21 {
				t.Errorf("%d batches committed, want at most 21", n)
			}
		})
	}
}

// TestPipelineLogs checks that the records prepare logs come out with its
// batch's commit, in input order, whatever the workers, and records logged
// outside a batch at once.
func TestPipelineLogs(t *testing.T) {
	inputs := newFakeInputs(5, 7, 3)
	var want string
	for _, workers := range []int{1, 2, 8} {
		var out strings.Builder
		log := slog.New(orderedHandler{slog.NewTextHandler(&out, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		})})
		p := pipeline[string]{
			workers: workers,
			read:    inputs.read,
			prepare: func(ctx context.Context, b *cwlogs.Batch) string {
				log.WarnContext(ctx, "prepared", "batch", b.LogStream)
				log.With("and", "more").InfoContext(ctx, "prepared again", "batch", b.LogStream)
				return b.LogStream
			},
			commit: func(s string) error {
				log.Info("committed", "batch", s)
				return nil
			},
		}
		if err := p.run(context.Background(), inputs.names); err != nil {
			t.Fatal(err)
		}
		if workers == 1 {
			want = out.String()
			continue
		}
		if diff := cmp.Diff(want, out.String()); diff != "" {
			t.Errorf("%d workers: log mismatch (-1 worker +%d):\n%s", workers, workers, diff)
		}
	}
	if n := strings.Count(want, "committed"); n != 15 {
		t.Errorf("%d commits logged, want 15:\n%s", n, want)
	}
}

func TestReadAheadFits(t *testing.T) {
	const head = 3
	tests := []struct {
		name  string
		held  map[int]int64 // by input
		input int
		n     int64
		want  bool
	}{
		{"the input being committed, nothing held", nil, head, 500, true},
		{"the input being committed, within", map[int]int64{head: 30, 4: 40}, head, 30, true},
		{"the input being committed, over", map[int]int64{head: 30, 4: 40}, head, 31, false},
		{"the input being committed, holding nothing, over", map[int]int64{4: 50, 5: 50}, head, 500, true},
		{"a later input, within its half", map[int]int64{head: 90, 4: 20}, 4, 30, true},
		{"a later input, over its half", map[int]int64{head: 10, 4: 20}, 4, 31, false},
		{"another later input, over their half", map[int]int64{4: 30, 5: 10}, 5, 11, false},
		{"a later input holding nothing, over", map[int]int64{4: 50}, 5, 500, true},
	}
	for _, tt := range tests {
		ra := newReadAhead(100)
		ra.head = head
		for in, n := range tt.held {
			ra.byInput[in] = n
			ra.used += n
		}
		if got := ra.fits(tt.input, tt.n); got != tt.want {
			t.Errorf("%s: fits(%d, %d) = %v, want %v", tt.name, tt.input, tt.n, got, tt.want)
		}
	}
}
