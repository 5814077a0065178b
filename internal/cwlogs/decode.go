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

// Limits bound the memory spent on one subscription payload. A zero or
// negative field means the DefaultLimits value.
type Limits struct {
	// MaxCompressed bounds the gzip stream, after base64 decoding.
	MaxCompressed int64
	// MaxDecompressed bounds the payload JSON, after gunzip.
	MaxDecompressed int64
}

// DefaultLimits accepts every payload CloudWatch Logs can deliver from real
// audit traffic and refuses a gzip bomb after inflating at most 32 MiB.
//
// The service limits they are derived from (AWS documentation, 2025):
//   - CloudWatch Logs PutLogEvents: one log event is at most 1 MB (it was
//     256 KB until 2025); one call is at most 10,000 events and 1,048,576
//     bytes, counted as the messages' UTF-8 bytes plus 26 bytes per event.
//   - Lambda Invoke: an asynchronous invocation, which is how a subscription
//     filter calls its function, carries at most 1 MB (256 KB until 2025);
//     a synchronous one, such as `sam local invoke`, at most 6 MB.
//
// MaxCompressed is 6 MiB, the largest request Lambda accepts at all, so the
// compressed bound never refuses a real delivery; it only caps what the CLI
// will read from a file.
//
// MaxDecompressed is 32 MiB. AWS documents no bound on the uncompressed size
// of a delivery, only the 1 MB invocation, which holds about 786 KB of gzip
// after base64. How far that inflates depends on how alike the lines are.
// Measured on internal/synth output: a cluster's mixed traffic compresses
// 16x (786 KB would inflate to 13 MB), a flood of identical anonymous probes
// 21x (16 MB), repeated node status patches 35x (27 MB). A bound under those
// would let the very flood anonwatch must report make its batches too large
// to read. Only lines an attacker pads to compress better still (1 MB
// request URIs of one repeated string inflate 500x) reach the bound; the
// function holds the payload whole, so the bound is also what keeps such a
// delivery inside 128 MB (docs/performance.md). A refused delivery fails
// the invocation and, after Lambda's retries, lands in the dead-letter
// queue, from which `anonwatch replay --max-payload` can read it.
var DefaultLimits = Limits{
	MaxCompressed:   6 << 20,
	MaxDecompressed: 32 << 20,
}

func (l Limits) orDefault() Limits {
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = DefaultLimits.MaxCompressed
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultLimits.MaxDecompressed
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
// error (ErrGzip), not a payload to try as plain JSON.
//
// The gzip stream is inflated through a bound: a stream that would inflate
// past lim.MaxDecompressed fails with ErrTooLarge as soon as it crosses it,
// whatever it holds. A CONTROL_MESSAGE decodes to a Batch with no events.
//
// The payload is inflated into one buffer and then parsed, rather than
// parsed as it streams: the bound makes the buffer safe, and the events'
// Messages are unescaped in place in it, so a batch costs one allocation of
// about the payload's size rather than one per line. (json.Decoder's token
// stream was also slower, and quadratic in a long run of white space.)
// Each Message's capacity equals its length, so appending to one cannot
// overwrite its neighbour.
func DecodeData(data string, lim Limits) (Batch, error) {
	return DecodeDataKeep(data, lim, nil)
}

// DecodeDataKeep is DecodeData for a caller that wants only some lines. keep
// sees each message as it stands in the payload, still JSON-escaped; a line
// it rejects is never unescaped (most of the work of decoding a message)
// and comes back with Dropped set and no Message. A nil keep keeps all.
//
// keep must not depend on escaping: the detector's pre-filter qualifies,
// because its literals hold no character a JSON encoder escapes, so a
// literal occurs in the escaped form of a line exactly where it occurs in
// the line. A payload that needs the encoding/json fallback is decoded
// whole, every line kept.
//
// keep is called on each message as the payload is parsed, while the
// message is in cache, so it may already have seen some lines of a payload
// that then needs the fallback, and its answers for them are discarded:
// it must have no side effects.
//
// When keep drops most lines, the Messages it keeps are copied out of the
// payload buffer, which a later call then inflates into.
func DecodeDataKeep(data string, lim Limits, keep func(escaped []byte) bool) (Batch, error) {
	lim = lim.orDefault()
	// Refuse before allocating when even the decoded length is too long.
	if int64(base64.StdEncoding.DecodedLen(len(data))) > lim.MaxCompressed+2 {
		return Batch{}, fmt.Errorf("%w: %d bytes of base64 for at most %d compressed bytes", ErrTooLarge, len(data), lim.MaxCompressed)
	}
	gz, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrBase64, err)
	}
	if int64(len(gz)) > lim.MaxCompressed {
		return Batch{}, fmt.Errorf("%w: %d compressed bytes, limit %d", ErrTooLarge, len(gz), lim.MaxCompressed)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrGzip, err)
	}
	// The trailer records the payload's length (mod 2^32): a hint that
	// lets a real payload inflate into one allocation.
	var hint int64
	if len(gz) >= 18 {
		hint = int64(binary.LittleEndian.Uint32(gz[len(gz)-4:]))
	}
	var spare []byte
	if p, ok := spareBuffers.Get().(*[]byte); ok {
		spare = *p
	}
	payload, over, err := readAll(zr, hint, lim.MaxDecompressed, spare)
	switch {
	case over:
		return Batch{}, fmt.Errorf("%w: inflates past %d bytes", ErrTooLarge, lim.MaxDecompressed)
	case err != nil:
		return Batch{}, fmt.Errorf("%w: %v", ErrGzip, err)
	}
	b, err := decodePayload(payload, keep)
	if err == nil && detachKept(&b, len(payload)) {
		spareBuffers.Put(&payload)
	}
	return b, err
}

// spareBuffers holds buffers that payloads were inflated into, once no
// Batch refers to them (see detachKept), for the next DecodeDataKeep to
// inflate into. A new buffer costs more than its allocation: make clears
// it, and the inflater then writes it again, from cache lines long since
// evicted. When the pre-filter drops most lines, reusing the buffer made
// a batch of synthetic EKS lines (5% anonymous) about 6% faster to detect
// on. A sync.Pool, because the garbage collector empties it: an idle
// function does not hold on to a payload-sized buffer.
var spareBuffers sync.Pool // of *[]byte

// DecodePayload decodes an already decompressed payload JSON, as the CLI's
// replay reads it from a file. A payload longer than lim.MaxDecompressed
// fails with ErrTooLarge. An error from r is returned wrapped, without a
// sentinel. Messages share one buffer, as in DecodeData.
func DecodePayload(r io.Reader, lim Limits) (Batch, error) {
	lim = lim.orDefault()
	payload, over, err := readAll(r, 0, lim.MaxDecompressed, nil)
	switch {
	case over:
		return Batch{}, fmt.Errorf("%w: longer than %d bytes", ErrTooLarge, lim.MaxDecompressed)
	case err != nil:
		return Batch{}, fmt.Errorf("cwlogs: reading payload: %w", err)
	}
	return decodePayload(payload, nil)
}

// ClusterName returns <cluster> for an EKS control-plane log group
// /aws/eks/<cluster>/cluster, and any other log group as it stands, so a
// finding always names where its lines came from.
func ClusterName(logGroup string) string {
	name, ok := strings.CutPrefix(logGroup, "/aws/eks/")
	if ok {
		name, ok = strings.CutSuffix(name, "/cluster")
	}
	if !ok || name == "" || strings.Contains(name, "/") {
		return logGroup
	}
	return name
}

// readAll reads r to its end, or reports over as soon as it has read more
// than limit bytes: so a gzip bomb inflates no further than limit+1 bytes.
// A positive hint sizes the buffer. It reads into spare's storage, which
// the caller gives up, when that is at least the size it needs and at most
// twice it; so a hint that lies small does not make it hold a large spare.
//
// When the hint falls short (a stream of several gzip members announces only
// its last member's size), full buffers are kept as they are and joined once
// at the end, rather than copied into a buffer twice the size at each step:
// a stream that crosses the limit then holds limit+1 bytes, not the limit
// and the half-size buffer before it, so refusing a bomb costs no more
// memory than the limit says (internal/drills measures it in the function).
func readAll(r io.Reader, hint, limit int64, spare []byte) (b []byte, over bool, err error) {
	size := hint
	if size <= 0 {
		size = 64 << 10
	}
	// One byte more than expected, so that reaching the end needs no
	// growth; at most limit+1, the byte that proves the excess.
	c := min(size, limit) + 1
	if n := int64(cap(spare)); n >= c && n <= 2*c {
		b = spare[:0:c]
	} else {
		b = make([]byte, 0, c)
	}
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

// decodePayload decodes the payload JSON, which it may modify: messages are
// unescaped in place.
func decodePayload(payload []byte, keep func([]byte) bool) (Batch, error) {
	return decodePayloadWith(payload, true, keep)
}

// decodePayloadWith is decodePayload; fast false decodes with encoding/json
// alone, the reference the fast path is tested against.
func decodePayloadWith(payload []byte, fast bool, keep func([]byte) bool) (Batch, error) {
	var b Batch
	ok := false
	if fast {
		b, ok = parsePayload(payload, keep)
	}
	if !ok {
		var err error
		if b, err = decodeStd(payload); err != nil {
			return Batch{}, fmt.Errorf("%w: %v", ErrPayload, err)
		}
	}
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
