package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// liveFence is detect.Config.Fence for a replay into the function's table:
// per cluster, the mark the function keeps there (detect.LiveMarks), read
// once, or the time --live-since gave for every cluster.
type liveFence struct {
	marks    detect.LiveMarks
	override *time.Time // --live-since; a zero time: count everything

	mu    sync.Mutex
	since map[string]time.Time
}

func (f *liveFence) fence(ctx context.Context, cluster string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.since[cluster]; ok {
		return t, nil
	}
	var t time.Time
	if f.override != nil {
		t = *f.override
	} else {
		var err error
		if t, err = f.marks.LiveSince(ctx, cluster); err != nil {
			return time.Time{}, err
		}
	}
	if f.since == nil {
		f.since = make(map[string]time.Time)
	}
	// For the summary too, --live-since's as the table's.
	f.since[cluster] = t
	return t, nil
}

// marks returns the fence of each cluster read so far, for the summary.
func (f *liveFence) marksRead() map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]time.Time, len(f.since))
	for c, t := range f.since {
		out[c] = t
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
