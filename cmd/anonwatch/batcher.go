package main

import "github.com/anonwatch/anonwatch/internal/cwlogs"

// origin is where log events come from: what the events of one batch
// share. The log stream matters to the detector, which counts a damaged
// line from an audit log stream as an audit event, and names the stream
// in its log lines.
type origin struct {
	owner, logGroup, logStream string
	cluster                    string
}

// batcher gathers log events into batches for fn, one batch per origin, in
// the order the events come: an archive mixes log streams (a Firehose
// object holds deliveries from every stream, filter-log-events interleaves
// them), and CloudWatch delivers each stream's events apart. A batch holds
// at most linesPerBatch events and about maxBytes of messages, and all the
// batches it holds together no more, so memory stays that of one batch
// however many streams an archive interleaves: past that, the largest goes.
//
// Nothing here depends on the events' order: CloudWatch does not promise
// time order inside an export, a Firehose object or pages from several
// streams, and the detector does not need it.
type batcher struct {
	fn       func(*cwlogs.Batch) error
	maxBytes int

	pending []*pendingBatch // in the order of their first events
	events  int             // in pending, all together
	bytes   int
}

// pendingBatch is a batch being gathered.
type pendingBatch struct {
	o     origin
	b     cwlogs.Batch
	bytes int
	arena []byte // what addCopy copies messages to
}

// The buffers addCopy copies a batch's messages into double in size from
// minArena to maxArena, so that a batch of few lines, one of many streams
// an archive interleaves, holds little more than its lines.
const (
	minArena = 4 << 10
	maxArena = 256 << 10
)

// add adds e, from o, to its batch.
func (bt *batcher) add(o origin, e cwlogs.LogEvent) error {
	return bt.addTo(bt.pendingFor(o), e)
}

// addCopy is add for an event whose message is in memory the batch must
// not hold: cwlogs decodes a payload's messages into buffers of at least
// 64 KiB, and a Firehose archive holds many deliveries of a few lines each.
func (bt *batcher) addCopy(o origin, e cwlogs.LogEvent) error {
	p := bt.pendingFor(o)
	n := len(e.Message)
	if cap(p.arena)-len(p.arena) < n {
		p.arena = make([]byte, 0, max(min(2*cap(p.arena), maxArena), minArena, n))
	}
	start := len(p.arena)
	p.arena = append(p.arena, e.Message...)
	e.Message = p.arena[start : start+n : start+n]
	return bt.addTo(p, e)
}

// pendingFor returns the batch being gathered for o, starting one.
func (bt *batcher) pendingFor(o origin) *pendingBatch {
	var p *pendingBatch
	for _, q := range bt.pending {
		if q.o == o {
			p = q
			break
		}
	}
	if p == nil {
		p = &pendingBatch{o: o, b: cwlogs.Batch{
			MessageType: cwlogs.DataMessage,
			Owner:       o.owner,
			LogGroup:    o.logGroup,
			LogStream:   o.logStream,
			Cluster:     o.cluster,
		}}
		bt.pending = append(bt.pending, p)
	}
	return p
}

func (bt *batcher) addTo(p *pendingBatch, e cwlogs.LogEvent) error {
	p.b.Events = append(p.b.Events, e)
	p.bytes += len(e.Message)
	bt.events++
	bt.bytes += len(e.Message)
	switch {
	case len(p.b.Events) >= linesPerBatch || p.bytes >= bt.maxBytes:
		return bt.send(p)
	case bt.events >= linesPerBatch || bt.bytes >= bt.maxBytes:
		largest := bt.pending[0]
		for _, q := range bt.pending[1:] {
			if len(q.b.Events) > len(largest.b.Events) {
				largest = q
			}
		}
		return bt.send(largest)
	}
	return nil
}

// flush sends every batch held, in the order of their first events.
func (bt *batcher) flush() error {
	for len(bt.pending) > 0 {
		if err := bt.send(bt.pending[0]); err != nil {
			return err
		}
	}
	return nil
}

// send removes p from the batches held and passes it to fn.
func (bt *batcher) send(p *pendingBatch) error {
	for i, q := range bt.pending {
		if q == p {
			bt.pending = append(bt.pending[:i], bt.pending[i+1:]...)
			break
		}
	}
	bt.events -= len(p.b.Events)
	bt.bytes -= p.bytes
	p.b.Gathered = true
	return bt.fn(&p.b)
}
