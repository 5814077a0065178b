package cwlogs

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Sentinel errors, for errors.Is. Every error the decoders return wraps
// exactly one of them, except read errors from a caller's io.Reader.
var (
	// ErrBase64 means awslogs.data is not standard base64.
	ErrBase64 = errors.New("cwlogs: data is not base64")
	// ErrGzip means the decoded data is not a whole, intact gzip stream.
	ErrGzip = errors.New("cwlogs: data is not a gzip stream")
	// ErrTooLarge means the data or the payload is longer than the
	// Limits allow.
	ErrTooLarge = errors.New("cwlogs: payload exceeds limit")
	// ErrPayload means the payload is not a subscription payload: bad
	// JSON, a field of the wrong type, or a missing or unknown
	// messageType.
	ErrPayload = errors.New("cwlogs: malformed subscription payload")
)

// Limits bound the memory and work spent on one subscription payload. A
// zero or negative field means the DefaultLimits value.
type Limits struct {
	// MaxCompressed bounds the gzip stream, after base64 decoding.
	MaxCompressed int64
	// MaxDecompressed bounds what a Batch holds: the bytes of its messages
	// and, for each event, 64 bytes and its id. Messages may take seven
	// eighths of it, lines longer than CutPrefix a 32nd less, the rest
	// being kept for the events (see shares). A line that does not fit in
	// what is left is cut (LogEvent.Cut); an event that does not fit fails
	// the decode with ErrTooLarge. A payload that only encoding/json
	// decodes (see DecodeData) must also be no longer than this.
	MaxDecompressed int64
	// MaxInflated bounds the payload as it inflates: a payload longer than
	// this fails with ErrTooLarge, whatever it holds.
	MaxInflated int64
}

// DefaultLimits accepts every payload CloudWatch Logs can deliver, keeps
// what a batch holds inside the function's 128 MB, and stops a gzip bomb.
//
// The service limits they are derived from (AWS documentation, 2025):
//   - CloudWatch Logs PutLogEvents: one log event is at most 1 MB (it was
//     256 KB until 2025); one call is at most 10,000 events and 1,048,576
//     bytes, counted as the messages' UTF-8 bytes plus 26 bytes per event.
//     How many calls' events one delivery holds is not documented.
//   - Lambda Invoke: an asynchronous invocation, which is how a subscription
//     filter calls its function, carries at most 1 MB (256 KB until 2025);
//     a synchronous one, such as `sam local invoke`, at most 6 MB.
//
// MaxCompressed is 6 MiB, the largest request Lambda accepts at all, so the
// compressed bound never refuses a real delivery; it only caps what the CLI
// will read from a file.
//
// MaxDecompressed is 32 MiB. The payload streams, so a delivery's size does
// not matter, only what its batch keeps: real traffic inflates 16x to 35x
// (a full 1 MB invocation to 13 MB to 27 MB, docs/performance.md), which
// fits whole. Lines padded to compress better (a 1 MB request URI of one
// repeated character inflates 500x) are kept while they fit and cut past
// that, one by one, so the delivery's other lines still reach the detector,
// which reports the cut ones.
//
// MaxInflated is 1 GiB: a 1 MB invocation holds about 786 KB of gzip after
// base64, and deflate inflates at most about 1032 to 1, to 811 MB, so the
// bound never refuses a real delivery. It stops a larger gzip bomb, which
// only a synchronous invocation or a file can carry; the decoder holds
// none of what it inflates but the lines it keeps, so the bound is on the
// time a bomb takes, not on memory.
var DefaultLimits = Limits{
	MaxCompressed:   6 << 20,
	MaxDecompressed: 32 << 20,
	MaxInflated:     1 << 30,
}

func (l Limits) orDefault() Limits {
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = DefaultLimits.MaxCompressed
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultLimits.MaxDecompressed
	}
	if l.MaxInflated <= 0 {
		l.MaxInflated = DefaultLimits.MaxInflated
	}
	return l
}

// DecodeEvent decodes the whole Lambda event {"awslogs":{"data":"..."}}, as
// the CLI reads it from a file.
func DecodeEvent(raw []byte, lim Limits) (Batch, error) {
	var ev struct {
		AWSLogs *struct {
			Data *string `json:"data"`
		} `json:"awslogs"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Batch{}, fmt.Errorf("%w: lambda event: %v", ErrPayload, err)
	}
	if ev.AWSLogs == nil || ev.AWSLogs.Data == nil {
		return Batch{}, fmt.Errorf("%w: lambda event has no awslogs.data", ErrPayload)
	}
	return DecodeData(*ev.AWSLogs.Data, lim)
}

// DecodeData decodes awslogs.data: base64 of a gzip stream of the payload
// JSON. CloudWatch Logs always compresses, so data that is not gzip is an
// error (ErrGzip), not a payload to try as plain JSON. A CONTROL_MESSAGE
// decodes to a Batch with no events.
//
// The payload is parsed as it inflates, so memory follows what the batch
// keeps, bounded by lim.MaxDecompressed, not what the payload inflates to:
// a line that does not fit is cut (LogEvent.Cut) and the rest decoded. A
// payload that inflates past lim.MaxInflated fails with ErrTooLarge.
//
// Messages are unescaped into a few large buffers they share, so a batch
// costs a few allocations of about the payload's size rather than one per
// line. Each Message's capacity equals its length, so appending to one
// cannot overwrite its neighbour.
//
// A payload not in the shape CloudWatch writes (null or mistyped values,
// repeated keys, keys in another case) is decoded whole by encoding/json
// instead, if it is no longer than lim.MaxDecompressed, and fails with
// ErrTooLarge if it is longer.
func DecodeData(data string, lim Limits) (Batch, error) {
	return DecodeDataKeep(data, lim, nil)
}

// DecodeDataKeep is DecodeData for a caller that wants only some lines. keep
// sees each message as it stands in the payload, still JSON-escaped; a line
// it rejects is never unescaped (most of the work of decoding a message)
// and comes back with Dropped set and no Message. A nil keep keeps all.
//
// keep is not asked about a line that is cut, which always comes back, nor
// about one longer than 8 MiB escaped, which the decoder unescapes as it
// reads rather than holds (no CloudWatch line is: they are at most 1 MB),
// and which comes back whole if it fits. A payload that needs the
// encoding/json fallback is decoded whole, every line kept. So keep is a
// filter the caller must not rely on to see every line.
//
// keep must not depend on escaping: the detector's pre-filter qualifies,
// because its literals hold no character a JSON encoder escapes, so a
// literal occurs in the escaped form of a line exactly where it occurs in
// the line. keep is called as the payload is parsed, so it may already
// have seen some lines of a payload that then needs the fallback, and its
// answers for them are discarded: it must have no side effects. The slice
// it is given is the decoder's, valid only during the call.
func DecodeDataKeep(data string, lim Limits, keep func(escaped []byte) bool) (Batch, error) {
	lim = lim.orDefault()
	// Refuse before allocating when even the decoded length is too long.
	if int64(base64.StdEncoding.DecodedLen(len(data))) > lim.MaxCompressed+2 {
		return Batch{}, fmt.Errorf("%w: %d bytes of base64 for at most %d compressed bytes", ErrTooLarge, len(data), lim.MaxCompressed)
	}
	buf := compressedBuffer(base64.StdEncoding.DecodedLen(len(data)))
	defer compressedBuffers.Put(buf)
	n, err := base64.StdEncoding.Decode(*buf, []byte(data))
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrBase64, err)
	}
	return DecodeGzipKeep((*buf)[:n], lim, keep)
}

// DecodeGzipKeep is DecodeDataKeep for a payload's gzip bytes as they
// stand, as a Kinesis record of a CloudWatch Logs destination carries
// them. The batch does not refer to gz.
func DecodeGzipKeep(gz []byte, lim Limits, keep func(escaped []byte) bool) (Batch, error) {
	lim = lim.orDefault()
	if int64(len(gz)) > lim.MaxCompressed {
		return Batch{}, fmt.Errorf("%w: %d compressed bytes, limit %d", ErrTooLarge, len(gz), lim.MaxCompressed)
	}
	zr, err := gzipReader(bytes.NewReader(gz))
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrGzip, err)
	}
	defer gzipReaders.Put(zr)
	in := input{
		r:       zr,
		readErr: func(err error) error { return fmt.Errorf("%w: %v", ErrGzip, err) },
		restart: func() (io.Reader, error) {
			if err := zr.Reset(bytes.NewReader(gz)); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrGzip, err)
			}
			return zr, nil
		},
	}
	// The trailer records the payload's length (mod 2^32): a hint that
	// sizes the buffers kept messages go to. A stream of several gzip
	// members announces only its last one's, so nothing relies on it.
	if len(gz) >= 18 {
		in.hint = int64(binary.LittleEndian.Uint32(gz[len(gz)-4:]))
	}
	b, _, err := decode(in, lim, keep, defaultSizes)
	return b, err
}

// A delivery's compressed bytes and its gzip reader (a 32 KiB window and
// Huffman tables) are needed only while it is decoded: the batch refers to
// neither. DecodeDataKeep takes them from these pools, so that replaying
// thousands of deliveries does not allocate them thousands of times.
var (
	compressedBuffers sync.Pool // of *[]byte
	gzipReaders       sync.Pool // of *gzip.Reader
)

// compressedBuffer returns a buffer of n bytes from compressedBuffers. Put
// it back when done.
func compressedBuffer(n int) *[]byte {
	b, _ := compressedBuffers.Get().(*[]byte)
	if b == nil {
		b = new([]byte)
	}
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

// gzipReader returns a reader of the gzip stream r from gzipReaders. Put
// it back when done.
func gzipReader(r io.Reader) (*gzip.Reader, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		return gzip.NewReader(r)
	}
	if err := zr.Reset(r); err != nil {
		gzipReaders.Put(zr)
		return nil, err
	}
	return zr, nil
}

// DecodePayload decodes an already decompressed payload JSON, as the CLI's
// replay reads it from a file, as DecodeData decodes it inflated. A payload
// longer than lim.MaxInflated fails with ErrTooLarge. An error from r is
// returned wrapped, without a sentinel. The encoding/json fallback reads
// the payload again: from where it started, if r is an io.Seeker, or else
// from a copy of it kept as it is read, up to lim.MaxDecompressed.
func DecodePayload(r io.Reader, lim Limits) (Batch, error) {
	lim = lim.orDefault()
	in := input{readErr: func(err error) error { return fmt.Errorf("cwlogs: reading payload: %w", err) }}
	if l, ok := r.(interface{ Len() int }); ok {
		in.hint = int64(l.Len())
	}
	if s, ok := r.(io.ReadSeeker); ok {
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			in.r = s
			in.restart = func() (io.Reader, error) {
				if _, err := s.Seek(off, io.SeekStart); err != nil {
					return nil, in.readErr(err)
				}
				return s, nil
			}
		}
	}
	if in.r == nil {
		t := &tee{r: r, max: lim.MaxDecompressed}
		in.r, in.restart = t, t.restart
	}
	b, _, err := decode(in, lim, nil, defaultSizes)
	return b, err
}

// input is a payload to decode: r reads it, and restart reads it again from
// the start, for the encoding/json fallback, or returns a nil reader when
// it cannot because the payload is longer than Limits.MaxDecompressed.
type input struct {
	r       io.Reader
	hint    int64 // the payload's length, if known
	readErr func(error) error
	restart func() (io.Reader, error)
}

// decode decodes the payload streaming, or whole with encoding/json when
// the streaming decoder cannot (whole reports that).
func decode(in input, lim Limits, keep func([]byte) bool, sz sizes) (b Batch, whole bool, err error) {
	d := newDecoder(in.r, in.readErr, in.hint, lim, keep, sz)
	b, err = d.decode()
	d.release()
	if err == errFallback {
		whole = true
		b, err = decodeWhole(in, lim)
	}
	if err != nil {
		return Batch{}, whole, err
	}
	b, err = finish(b)
	return b, whole, err
}

// finish checks the message type of a decoded payload and fills in what
// follows from the payload as a whole.
func finish(b Batch) (Batch, error) {
	switch b.MessageType {
	case DataMessage:
	case ControlMessage:
		// A health check from CloudWatch; its events are not log lines.
		b.Events = nil
	case "":
		return Batch{}, fmt.Errorf("%w: no messageType", ErrPayload)
	default:
		return Batch{}, fmt.Errorf("%w: unknown messageType %q", ErrPayload, b.MessageType)
	}
	b.Cluster = ClusterName(b.LogGroup)
	return b, nil
}

// decodeWhole decodes the payload with encoding/json, which needs it
// whole: so only a payload no longer than lim.MaxDecompressed, and with no
// more log events than their overhead allows (counted first, as
// encoding/json allocates them all).
func decodeWhole(in input, lim Limits) (Batch, error) {
	tooLong := fmt.Errorf("%w: payload not in CloudWatch's form, to decode whole, is longer than %d bytes", ErrTooLarge, lim.MaxDecompressed)
	r, err := in.restart()
	if err != nil {
		return Batch{}, err
	}
	if r == nil {
		return Batch{}, tooLong
	}
	payload, over, err := readAll(r, in.hint, min(lim.MaxDecompressed, lim.MaxInflated))
	switch {
	case over:
		return Batch{}, tooLong
	case err != nil:
		return Batch{}, in.readErr(err)
	}
	if n := maxEvents(payload); int64(n)*eventOverhead > lim.MaxDecompressed {
		return Batch{}, fmt.Errorf("%w: %d log events, more than Limits.MaxDecompressed (%d bytes) holds at %d bytes each", ErrTooLarge, n, lim.MaxDecompressed, eventOverhead)
	}
	b, err := decodeStd(payload)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if err := applyBudget(&b, lim.MaxDecompressed); err != nil {
		return Batch{}, err
	}
	return b, nil
}

// tee is a reader that keeps a copy of what is read through it while that
// is at most max bytes, so that a payload can be read again from the start.
type tee struct {
	r    io.Reader
	buf  []byte
	max  int64
	over bool
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if !t.over {
		if int64(len(t.buf)+n) > t.max {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	return n, err
}

func (t *tee) restart() (io.Reader, error) {
	if t.over {
		return nil, nil
	}
	return io.MultiReader(bytes.NewReader(t.buf), t.r), nil
}

// ClusterName returns <cluster> for an EKS control-plane log group
// /aws/eks/<cluster>/cluster, and any other log group as it stands, so a
// finding always names where its lines came from.
func ClusterName(logGroup string) string {
	if name, ok := clusterOf(logGroup); ok {
		return name
	}
	return logGroup
}

// IsClusterLogGroup reports whether logGroup is an EKS cluster's control
// plane log group, /aws/eks/<cluster>/cluster.
func IsClusterLogGroup(logGroup string) bool {
	_, ok := clusterOf(logGroup)
	return ok
}

func clusterOf(logGroup string) (string, bool) {
	name, ok := strings.CutPrefix(logGroup, "/aws/eks/")
	if ok {
		name, ok = strings.CutSuffix(name, "/cluster")
	}
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// readAll reads r to its end, or reports over as soon as it has read more
// than limit bytes: so a gzip bomb inflates no further than limit+1 bytes.
// A positive hint sizes the buffer.
//
// When the hint falls short (a stream of several gzip members announces only
// its last member's size), full buffers are kept as they are and joined once
// at the end, rather than copied into a buffer twice the size at each step:
// a stream that crosses the limit then holds limit+1 bytes, not the limit
// and the half-size buffer before it, so refusing a bomb costs no more
// memory than the limit says (internal/drills measures it in the function).
func readAll(r io.Reader, hint, limit int64) (b []byte, over bool, err error) {
	size := hint
	if size <= 0 {
		size = 64 << 10
	}
	// One byte more than expected, so that reaching the end needs no
	// growth; at most limit+1, the byte that proves the excess.
	b = make([]byte, 0, min(size, limit)+1)
	var full [][]byte
	var total int64 // bytes in full
	for {
		if len(b) == cap(b) {
			// total+len(b) is at most limit, or the excess was reported.
			full = append(full, b)
			total += int64(len(b))
			b = make([]byte, 0, min(2*int64(cap(b)), limit+1-total))
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if total+int64(len(b)) > limit {
			return nil, true, nil
		}
		if err == io.EOF {
			if len(full) == 0 {
				return b, false, nil
			}
			joined := make([]byte, 0, total+int64(len(b)))
			for _, f := range full {
				joined = append(joined, f...)
			}
			return append(joined, b...), false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
