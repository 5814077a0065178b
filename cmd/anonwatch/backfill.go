package main

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// liveFence is detect.Config.Fence for a replay into the function's table:
// per cluster, the marks of its streams the function keeps there
// (detect.LiveMarks), read once, or the time --live-since gave for every
// stream.
type liveFence struct {
	marks    detect.LiveMarks
	override *time.Time // --live-since; a zero time: count everything

	mu    sync.Mutex
	since map[string]map[string]time.Time // cluster → stream → mark
}

func (f *liveFence) fence(ctx context.Context, cluster, stream string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	marks, ok := f.since[cluster]
	if !ok {
		if f.override != nil {
			// For the summary too, --live-since's as the table's.
			marks = map[string]time.Time{"": *f.override}
		} else {
			var err error
			if marks, err = f.marks.LiveSince(ctx, cluster); err != nil {
				return time.Time{}, err
			}
		}
		if f.since == nil {
			f.since = make(map[string]map[string]time.Time)
		}
		f.since[cluster] = marks
	}
	if f.override != nil {
		return *f.override, nil
	}
	return detect.FenceOf(marks, stream), nil
}

// marksRead returns the marks of each cluster read so far, for the summary.
func (f *liveFence) marksRead() map[string]map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[string]time.Time, len(f.since))
	for c, m := range f.since {
		out[c] = maps.Clone(m)
	}
	return out
}

// router publishes to the topic the findings that the function would still
// be sending now, their last request within the rule's suppression period
// of now, and prints the others: history nobody should be paged for, unless
// all is set (--publish). Either way the detector marks the finding sent,
// so neither the function nor the next replay sends it again.
type router struct {
	topic, print detect.Publisher
	suppress     map[string]time.Duration // by rule ID
	now          func() time.Time
	all          bool

	published, printed atomic.Int64
}

func newRouter(topic, print detect.Publisher, set *rules.Set, all bool, now func() time.Time) *router {
	r := &router{topic: topic, print: print, suppress: map[string]time.Duration{}, all: all, now: now}
	for _, ru := range set.Rules() {
		r.suppress[ru.ID] = ru.Suppress
	}
	return r
}

func (r *router) Publish(ctx context.Context, f *detect.Finding) error {
	if r.all || r.current(f) {
		if err := r.topic.Publish(ctx, f); err != nil {
			return err
		}
		r.published.Add(1)
		return nil
	}
	if err := r.print.Publish(ctx, f); err != nil {
		return err
	}
	r.printed.Add(1)
	return nil
}

// current reports whether f's last request is within its rule's
// suppression period of now: the function, had it seen the requests as
// they came, could still be suppressing the group on f's account.
func (r *router) current(f *detect.Finding) bool {
	at := f.LastSeen
	if f.Digest != nil && f.Digest.PeriodEnd.After(at) {
		at = f.Digest.PeriodEnd
	}
	return !at.Add(r.suppress[f.Rule]).Before(r.now())
}
