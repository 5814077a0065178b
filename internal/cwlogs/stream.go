package cwlogs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// This file decodes a payload as it inflates, through a window: a buffer
// the input is read into and parsed from, whose parsed part is dropped. A
// line's message is copied out of the window, unescaped, into an arena of
// the batch's own (a few large buffers that the kept messages share), or
// cut there to a prefix when it does not fit in the budget, so what the
// decoder holds is the budget and the window, whatever the payload inflates
// to.
//
// It parses the payload object and CloudWatch's events, {"id":"<digits>",
// "timestamp":<integer>,"message":"<string>"}, the latter on a path of its
// own, and any event object of the same members, in any order, with white
// space and other members, as long as each member but a message fits in
// the window. Anything else (invalid JSON, null or mistyped values,
// repeated keys, keys that match a field only as encoding/json matches
// them) is left to encoding/json (errFallback), which needs the payload
// whole.

// CutPrefix is the most of a cut line that its LogEvent keeps: enough to
// show what the line is.
const CutPrefix = 8 << 10

// eventOverhead is what each event costs against Limits.MaxDecompressed
// besides its id and message: its LogEvent (unsafe.Sizeof, checked in a
// test).
const eventOverhead = 64

// shares divides a budget (Limits.MaxDecompressed): messages may make what
// the batch holds at most msg, and a line longer than CutPrefix at most
// long. The events' overhead may use it all.
//
// The last eighth is the events': were it the messages' too, lines padded
// to fill the budget to the byte would make every event after them fail
// the delivery. An eighth of 32 MiB is 4 MiB, the overhead of 35,000
// events with CloudWatch's 56-digit ids; a delivery is at most 1 MB of
// base64, the densest measured holds 14,782 events (docs/performance.md),
// and an audit line, with its random auditID, does not compress below a
// few dozen bytes.
//
// The 32nd before it is for short lines, and the prefixes of cut ones:
// padded lines, which must be long to make the payload large, stop short
// of it, so the ordinary lines after them still fit. That leaves 27 MiB
// for long lines, more than the densest real traffic holds (node status
// patches, 27 MB of payload from a full 1 MB delivery: less once
// unescaped).
func shares(budget int64) (msg, long int64) {
	msg = budget - budget/8
	return msg, msg - budget/32
}

// Window sizes. The window starts at windowSize; it grows, doubling, to
// hold an element longer than the part of it left: up to elementMax for
// any element but a message, up to messageMax for a message, so that keep
// can see it whole. CloudWatch's events are at most 1 MB, so messageMax
// holds one escaped however it is (\u0001 is six bytes for one).
const (
	windowSize = 256 << 10
	elementMax = 1 << 20
	messageMax = 8 << 20
	// headMax is how much of an event the decoder makes sure it has before
	// it tries CloudWatch's form on it: an event's head, up to its
	// message, is about 100 bytes.
	headMax = 4 << 10
)

// errFallback means the streaming decoder cannot decode the payload and
// encoding/json must: it is not valid JSON, or not in a form the decoder
// parses.
var errFallback = errors.New("cwlogs: payload left to encoding/json")

// windows holds windows of windowSize, for the next decode.
var windows = sync.Pool{New: func() any { b := make([]byte, windowSize); return &b }}

// sizes are the decoder's window sizes, variables for tests.
type sizes struct {
	window, element, message int
}

var defaultSizes = sizes{window: windowSize, element: elementMax, message: messageMax}

// decoder is the state of one streaming decode.
type decoder struct {
	src     io.Reader
	readErr func(error) error // wraps an error from src
	in      int64             // bytes read from src
	maxIn   int64             // Limits.MaxInflated
	eof     bool
	sz      sizes

	// buf is the window: buf[pos:] is input read and not yet parsed.
	buf    []byte
	pos    int
	pooled *[]byte

	keep func([]byte) bool
	// charged is what the batch holds, against budget: each event's
	// overhead and id, and its message or the prefix kept of it. Messages
	// may take it to msgBudget, long ones to longBudget (see shares).
	charged, budget, msgBudget, longBudget int64
	hint                                   int64 // the payload's length, if known
	arena                                  []byte
	arenaTotal, kept                       int64 // bytes allocated for and kept in arenas

	b Batch
}

func newDecoder(src io.Reader, readErr func(error) error, hint int64, lim Limits, keep func([]byte) bool, sz sizes) *decoder {
	d := &decoder{
		src: src, readErr: readErr, maxIn: lim.MaxInflated, sz: sz,
		keep: keep, budget: lim.MaxDecompressed, hint: hint,
	}
	d.msgBudget, d.longBudget = shares(d.budget)
	if sz.window == windowSize {
		d.pooled = windows.Get().(*[]byte)
		d.buf = (*d.pooled)[:0]
	} else {
		d.buf = make([]byte, 0, sz.window)
	}
	return d
}

// release returns the window to the pool; the batch never refers to it.
func (d *decoder) release() {
	if d.pooled != nil {
		windows.Put(d.pooled)
		d.pooled, d.buf = nil, nil
	}
}

// decode decodes the payload.
func (d *decoder) decode() (Batch, error) {
	if err := d.payload(); err != nil {
		return Batch{}, err
	}
	return d.b, nil
}

// more reads input into the window, keeping its unparsed part, which it
// moves to the front. When that part fills the window, it first doubles
// the window, up to max; at max it reads nothing. It reads until the
// window is full or the input ends, and reports whether it read anything.
func (d *decoder) more(max int) (bool, error) {
	if d.eof {
		return false, nil
	}
	n := len(d.buf) - d.pos
	if d.pos > 0 {
		copy(d.buf, d.buf[d.pos:])
		d.buf, d.pos = d.buf[:n], 0
	}
	if n == cap(d.buf) {
		if n >= max {
			return false, nil
		}
		b := make([]byte, n, min(2*n, max))
		copy(b, d.buf)
		d.buf = b
	}
	for len(d.buf) < cap(d.buf) {
		p := d.buf[len(d.buf):cap(d.buf)]
		if rest := d.maxIn + 1 - d.in; int64(len(p)) > rest {
			p = p[:rest]
		}
		k, err := d.src.Read(p)
		d.buf = d.buf[:len(d.buf)+k]
		d.in += int64(k)
		if d.in > d.maxIn {
			return false, fmt.Errorf("%w: inflates past %d bytes", ErrTooLarge, d.maxIn)
		}
		if err == io.EOF {
			d.eof = true
			break
		}
		if err != nil {
			return false, d.readErr(err)
		}
	}
	return len(d.buf) > n, nil
}

// skipSpace moves past white space, reading on as it runs out; what it
// passes is dropped.
func (d *decoder) skipSpace() error {
	for {
		d.pos = jsonscan.SkipSpace(d.buf, d.pos)
		if d.pos < len(d.buf) || d.eof {
			return nil
		}
		if _, err := d.more(0); err != nil {
			return err
		}
	}
}

// peek returns the next byte after white space.
func (d *decoder) peek() (byte, error) {
	if err := d.skipSpace(); err != nil {
		return 0, err
	}
	if d.pos == len(d.buf) {
		return 0, errFallback
	}
	return d.buf[d.pos], nil
}

// element runs parse on the window at d.pos and returns the index after
// what it parsed. It reads more and tries again, growing the window up to
// elementMax, while parse fails, or succeeds at the window's end (where a
// number may go on); past that it gives up, as parse may fail on invalid
// input that no more input mends. odd means parse found a whole element
// it leaves to encoding/json.
func (d *decoder) element(parse func(buf []byte, i int) (end int, ok, odd bool)) (int, error) {
	for {
		end, ok, odd := parse(d.buf, d.pos)
		if ok && (end < len(d.buf) || d.eof) {
			if odd {
				return 0, errFallback
			}
			return end, nil
		}
		read, err := d.more(d.sz.element)
		if err != nil {
			return 0, err
		}
		if !read {
			return 0, errFallback
		}
	}
}

// key parses an object key at d.pos, refusing one that encoding/json
// could match to a name it is not spelled as (see objectKey), and moves to
// its value. The key is valid until the window moves.
func (d *decoder) key(names []string) ([]byte, error) {
	var key []byte
	end, err := d.element(func(buf []byte, i int) (int, bool, bool) {
		_, next, _, ok := jsonscan.Key(buf, i)
		if !ok {
			return 0, false, false
		}
		k, _, takes := objectKey(buf, i, names)
		key = k
		return next, true, !takes
	})
	if err != nil {
		return nil, err
	}
	d.pos = end
	return key, d.skipSpace()
}

// separator moves past the ',' or closer after a member or element and
// white space; done reports the closer.
func (d *decoder) separator(closer byte) (done bool, err error) {
	c, err := d.peek()
	if err != nil {
		return false, err
	}
	d.pos++
	switch c {
	case ',':
		return false, d.skipSpace()
	case closer:
		return true, nil
	}
	return false, errFallback
}

// open moves past the opener of an object or array and white space, and
// past the closer too when it is empty.
func (d *decoder) open(opener, closer byte) (empty bool, err error) {
	c, err := d.peek()
	if err != nil {
		return false, err
	}
	if c != opener {
		return false, errFallback
	}
	d.pos++
	if c, err = d.peek(); err != nil {
		return false, err
	}
	if c == closer {
		d.pos++
		return true, nil
	}
	return false, nil
}

func (d *decoder) stringValue() (string, error) {
	var s string
	end, err := d.element(func(buf []byte, i int) (end int, ok, odd bool) {
		s, end, ok = stringValue(buf, i)
		return end, ok, false
	})
	d.pos = end
	return s, err
}

func (d *decoder) skipValue(depth int) error {
	end, err := d.element(func(buf []byte, i int) (int, bool, bool) {
		end, ok := jsonscan.SkipValue(buf, i, depth)
		return end, ok, false
	})
	d.pos = end
	return err
}

// payload decodes the payload object into d.b.
func (d *decoder) payload() error {
	empty, err := d.open('{', '}')
	for seen := 0; err == nil && !empty; {
		var key []byte
		if key, err = d.key(payloadKeys); err != nil {
			break
		}
		// A repeat is left to encoding/json before its value is read, as
		// it may replace what came first.
		bit := payloadBit(key)
		if seen&bit != 0 {
			return errFallback
		}
		seen |= bit
		switch bit {
		case seenMessageType:
			d.b.MessageType, err = d.stringValue()
		case seenOwner:
			d.b.Owner, err = d.stringValue()
		case seenLogGroup:
			d.b.LogGroup, err = d.stringValue()
		case seenLogStream:
			d.b.LogStream, err = d.stringValue()
		case seenLogEvents:
			err = d.logEvents()
		default:
			err = d.skipValue(1)
		}
		if err == nil {
			empty, err = d.separator('}')
		}
	}
	if err != nil {
		return err
	}
	// Only white space may follow, to the end of the input: reading to it
	// also checks the gzip trailer.
	if err := d.skipSpace(); err != nil {
		return err
	}
	if d.pos < len(d.buf) {
		return errFallback
	}
	return nil
}

// logEvents decodes the array at d.pos.
func (d *decoder) logEvents() error {
	empty, err := d.open('[', ']')
	for err == nil && !empty {
		if err = d.event(); err == nil {
			empty, err = d.separator(']')
		}
	}
	return err
}

// charge adds n bytes to what the batch holds, refusing the payload once
// that is more than the budget: only an event's overhead and id are
// charged this way, so it takes as many events as the reserve pays for.
func (d *decoder) charge(n int) error {
	d.charged += int64(n)
	if d.charged > d.budget {
		return tooManyEvents(d.budget)
	}
	return nil
}

func tooManyEvents(budget int64) error {
	return fmt.Errorf("%w: more events than Limits.MaxDecompressed (%d bytes) holds at %d bytes each and their ids", ErrTooLarge, budget, eventOverhead)
}

// left returns how many more bytes a message may take, a long one (more
// than CutPrefix) or not.
func (d *decoder) left(long bool) int64 {
	if long {
		return max(d.longBudget-d.charged, 0)
	}
	return max(d.msgBudget-d.charged, 0)
}

// prefixLen returns how many bytes a cut line may keep: CutPrefix, and no
// more than a 64th of what messages may still take, so that cut lines,
// however many, never use it all up for the lines after them.
func (d *decoder) prefixLen() int { return int(min(CutPrefix, d.left(false)/64)) }

// event decodes the event at d.pos and appends it to the batch.
func (d *decoder) event() error {
	if err := d.charge(eventOverhead); err != nil {
		return err
	}
	if len(d.buf)-d.pos < headMax && !d.eof {
		if _, err := d.more(0); err != nil {
			return err
		}
	}
	var e LogEvent
	var seen int
	var done bool
	var err error
	if id, ts, q, ok := cloudWatchHead(d.buf, d.pos); ok {
		e.ID, e.Timestamp = string(id), ts
		d.pos = q
		if err = d.charge(len(id)); err == nil {
			err = d.message(&e)
		}
		// Most often the event ends here; if not, its other members
		// follow, parsed as any object's.
		seen = seenID | seenTimestamp | seenMessage
		if err == nil && d.pos < len(d.buf) && d.buf[d.pos] == '}' {
			d.pos++
			done = true
		} else if err == nil {
			done, err = d.separator('}')
		}
	} else {
		done, err = d.open('{', '}')
	}
	for err == nil && !done {
		if err = d.member(&e, &seen); err == nil {
			done, err = d.separator('}')
		}
	}
	if err != nil {
		return err
	}
	d.b.Events = append(d.b.Events, e)
	return nil
}

// member decodes the event member at d.pos into e; seen has the bits of
// the members e has had.
func (d *decoder) member(e *LogEvent, seen *int) error {
	key, err := d.key(eventKeys)
	if err != nil {
		return err
	}
	bit := eventBit(key)
	if *seen&bit != 0 {
		return errFallback
	}
	*seen |= bit
	switch bit {
	case seenID:
		// A message before it has been charged as if the event had no
		// id; applyBudget, the reference, charges the id first.
		if *seen&seenMessage != 0 {
			return errFallback
		}
		if e.ID, err = d.stringValue(); err != nil {
			return err
		}
		return d.charge(len(e.ID))
	case seenTimestamp:
		end, err := d.element(func(buf []byte, i int) (end int, ok, odd bool) {
			switch {
			case i >= len(buf):
				return 0, false, false
			case buf[i] != '-' && (buf[i] < '0' || buf[i] > '9'):
				return i, true, true // not a number
			}
			if end, ok = jsonscan.SkipNumber(buf, i); !ok {
				return 0, false, false
			}
			// A fraction, an exponent, an overflow: also left to
			// encoding/json.
			e.Timestamp, _, ok = intValue(buf, i)
			return end, true, !ok
		})
		d.pos = end
		return err
	case seenMessage:
		if c, err := d.peek(); err != nil || c != '"' {
			return cmp.Or(err, errFallback) // null, or not a string
		}
		return d.message(e)
	}
	return d.skipValue(3)
}

// payloadBit returns the seen bit of a payload's key, 0 for one the
// decoder skips.
func payloadBit(key []byte) int {
	switch string(key) {
	case "messageType":
		return seenMessageType
	case "owner":
		return seenOwner
	case "logGroup":
		return seenLogGroup
	case "logStream":
		return seenLogStream
	case "logEvents":
		return seenLogEvents
	}
	return 0
}

// eventBit returns the seen bit of an event's key, 0 for one the decoder
// skips.
func eventBit(key []byte) int {
	switch string(key) {
	case "id":
		return seenID
	case "timestamp":
		return seenTimestamp
	case "message":
		return seenMessage
	}
	return 0
}

// cloudWatchHead parses the start of an event written as CloudWatch Logs
// writes one, {"id":"<digits>","timestamp":<integer>,"message":", and
// returns the index of the message's opening quote. It reports false for
// anything else, which the decoder then parses as any object: the id needs
// no unescaping, the keys are the field names as they are spelled, and
// none repeats. A general object parser here made decoding a batch of
// synthetic EKS lines 7% slower.
func cloudWatchHead(buf []byte, i int) (id []byte, ts int64, quote int, ok bool) {
	const idKey, timestampKey, messageKey = `{"id":"`, `","timestamp":`, `,"message":"`
	if !hasPrefixAt(buf, i, idKey) {
		return nil, 0, 0, false
	}
	i += len(idKey)
	j := i
	for j < len(buf) && '0' <= buf[j] && buf[j] <= '9' {
		j++
	}
	if !hasPrefixAt(buf, j, timestampKey) {
		return nil, 0, 0, false
	}
	id = buf[i:j]
	if ts, j, ok = intValue(buf, j+len(timestampKey)); !ok || !hasPrefixAt(buf, j, messageKey) {
		return nil, 0, 0, false
	}
	return id, ts, j + len(messageKey) - 1, true
}

// message decodes the string at d.pos, an event's message, into e.
func (d *decoder) message(e *LogEvent) error {
	for {
		q := d.pos
		if end, _, ok := jsonscan.SkipString(d.buf, q); ok {
			d.decide(e, d.buf[q+1:end-1])
			d.pos = end
			return nil
		}
		if d.eof {
			return errFallback // invalid, or cut short
		}
		if q > 0 || len(d.buf) < cap(d.buf) {
			// Room to read on without growing the window.
			if _, err := d.more(0); err != nil {
				return err
			}
			continue
		}
		// The message fills the window and goes on, or is invalid.
		var st strState
		st.full = true
		_, _, _, ok := feedString(d.buf, q+1, false, nil, 0, &st)
		switch {
		case !ok:
			return errFallback
		case st.size > CutPrefix && st.size > d.left(true):
			return d.stream(e, true) // certain to be cut
		case len(d.buf) >= d.sz.message:
			return d.stream(e, false)
		}
		if _, err := d.more(d.sz.message); err != nil {
			return err
		}
	}
}

// decide keeps the message whose contents, escaped, are esc, or drops or
// cuts it.
func (d *decoder) decide(e *LogEvent, esc []byte) {
	size := int64(-1)
	// A byte decodes to at most three (U+FFFD for invalid UTF-8), so most
	// messages need no count to be known to fit.
	fits := 3*int64(len(esc)) <= d.left(true)
	if !fits {
		size = decodedLen(esc)
		fits = size <= d.left(size > CutPrefix)
	}
	if !fits {
		// Cut: keep is not asked, as a cut line must reach the detector.
		target := d.prefixLen()
		d.reserve(target)
		start := len(d.arena)
		var st strState
		_, d.arena, _, _ = feedString(esc, 0, true, d.arena, start+target, &st)
		e.Message = d.take(start)
		e.Cut, e.Size = true, int(size)
		return
	}
	if d.keep != nil && !d.keep(esc) {
		e.Dropped, e.Size = true, len(esc)
		return
	}
	e.Message = d.unescape(esc, size)
	e.Size = len(e.Message)
}

// unescape appends the decoded contents of esc to the arena and returns
// them; size is their length, or -1 if it is not known.
func (d *decoder) unescape(esc []byte, size int64) []byte {
	if size < 0 && utf8.Valid(esc) {
		// Copied, then unescaped in place: it decodes to no more bytes.
		d.reserve(len(esc))
		start := len(d.arena)
		d.arena = append(d.arena, esc...)
		if bytes.IndexByte(esc, '\\') >= 0 {
			m := jsonscan.UnescapeInPlace(d.arena[start:])
			d.arena = d.arena[:start+len(m)]
		}
		return d.take(start)
	}
	// U+FFFD is longer than the byte of invalid UTF-8 it replaces.
	if size < 0 {
		size = decodedLen(esc)
	}
	d.reserve(int(size))
	start := len(d.arena)
	d.arena = jsonscan.AppendUnescaped(d.arena, esc)
	return d.take(start)
}

// take returns the arena's bytes from start, a message, and charges them.
// Its capacity is its length, so that appending to it cannot overwrite its
// neighbour.
func (d *decoder) take(start int) []byte {
	n := len(d.arena) - start
	d.charged += int64(n)
	d.kept += int64(n)
	if n == 0 {
		return []byte{}
	}
	return d.arena[start:len(d.arena):len(d.arena)]
}

// reserve makes room for n more bytes in the arena, starting a new one if
// need be. An arena is sized to what the batch is expected to keep of the
// rest of the payload, when the gzip trailer tells its length: all of it
// when every line is kept, so that a batch costs one allocation as when
// messages were unescaped in the payload's own buffer; when keep drops
// lines, the share kept so far and a quarter more, a 32nd to begin with
// (the function's pre-filter keeps about 2% of ordinary traffic). With no
// length to go by, each arena doubles the total. An arena never exceeds
// what messages may still take, so the arenas add at most what one message
// leaves unused in each to what the batch holds.
func (d *decoder) reserve(n int) {
	if cap(d.arena)-len(d.arena) >= n {
		return
	}
	size := d.arenaTotal
	parsed := d.in - int64(len(d.buf)-d.pos)
	if rest := d.hint - parsed; rest > 0 {
		switch {
		case d.keep == nil:
			size = rest
		case d.kept == 0 || parsed < 1<<20:
			size = rest / 32
		default:
			size = rest * d.kept / parsed
			size += size / 4
		}
	}
	size = max(min(max(size, 64<<10), d.left(false)), int64(n))
	d.arena = make([]byte, 0, size)
	d.arenaTotal += size
}

// stream decodes a message too long for the window, at d.pos, as it
// reads: keep does not see it. Its decoded bytes go to the arena while
// they fit in the budget; once they do not, the message is cut to a
// prefix, and the rest only counted. certain says the message is known to
// be cut, so that no more than its prefix need be made room for.
func (d *decoder) stream(e *LogEvent, certain bool) error {
	target := d.prefixLen()
	room := target
	if !certain {
		room = int(d.left(false))
	}
	d.reserve(room)
	start := len(d.arena)
	var st strState
	out := d.arena
	i := d.pos + 1
	for {
		next, o, done, ok := feedString(d.buf, i, d.eof, out, start+room, &st)
		out = o
		if !ok {
			return errFallback
		}
		// A line past what a short one may take is cut, as is a long
		// one past what long ones may: keep only its prefix, whole runes
		// to at most target bytes.
		if room > target && (st.full || st.size > CutPrefix && st.size > d.left(true)) {
			p := min(len(out)-start, target)
			for p > 0 && p < len(out)-start && !utf8.RuneStart(out[start+p]) {
				p--
			}
			out, room, st.full = out[:start+p], target, true
		}
		if done {
			d.arena = out
			e.Message = d.take(start)
			e.Size = int(st.size)
			e.Cut = room == target && (certain || st.full)
			d.pos = next
			return nil
		}
		d.pos = next
		read, err := d.more(0)
		if err != nil {
			return err
		}
		if !read {
			return errFallback // cut short
		}
		i = d.pos
	}
}
