package cwlogs_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// bomb returns awslogs.data for one gzip member that inflates to prefix
// followed by n MiB of fill. It costs about a kilobyte per MiB and takes
// milliseconds to build: a sync-flushed deflate stream ends on a byte
// boundary, so the compressed form of one MiB of fill can be repeated, and
// back-references into the previous copy still find the same byte.
func bomb(t testing.TB, prefix string, fill byte, n int) string {
	t.Helper()
	deflate := func(p []byte) []byte {
		var buf bytes.Buffer
		w, err := flate.NewWriter(&buf, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	mib := bytes.Repeat([]byte{fill}, 1<<20)
	// Header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, deflate([]byte(prefix))...)
	chunk := deflate(mib)
	crc := crc32.ChecksumIEEE([]byte(prefix))
	for range n {
		out = append(out, chunk...)
		crc = crc32.Update(crc, crc32.IEEETable, mib)
	}
	out = append(out, 0x03, 0x00) // an empty final block, fixed Huffman codes
	out = binary.LittleEndian.AppendUint32(out, crc)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(prefix)+n<<20))
	return base64.StdEncoding.EncodeToString(out)
}

// TestGzipBomb feeds DecodeData gzip streams of about a megabyte that inflate
// to more than 1 GiB, and checks that it stops at MaxInflated: it fails with
// ErrTooLarge, and allocates no more than MaxDecompressed and 16 MiB besides
// (the decoded base64, gzip's window, the decoder's window grown to hold a
// long message, slack), whatever it has inflated.
func TestGzipBomb(t *testing.T) {
	const gib = 1100 // MiB of fill: a little over 1 GiB, past DefaultLimits' MaxInflated
	// Past small's MaxInflated: inflating a bomb is what takes the time,
	// and a gibibyte per case is a minute under the race detector.
	const past = 300
	head := `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/x/cluster","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"`
	small := cwlogs.Limits{MaxDecompressed: 8 << 20, MaxInflated: 256 << 20}
	tests := []struct {
		name string
		data string
		lim  cwlogs.Limits
	}{
		// Not JSON: left to encoding/json, which reads MaxDecompressed.
		{name: "NUL bytes", data: bomb(t, "", 0, past), lim: small},
		// The message is cut, and streams on to MaxInflated.
		{name: "one endless message", data: bomb(t, head, '0', past), lim: small},
		{name: "endless white space", data: bomb(t, `{"messageType":"DATA_MESSAGE","logEvents":[`, ' ', past), lim: small},
		{name: "DefaultLimits", data: bomb(t, head, '0', gib), lim: cwlogs.DefaultLimits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := len(tt.data); n > 2<<20 {
				t.Fatalf("bomb is %d bytes of base64, want a small one", n)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := cwlogs.DecodeData(tt.data, tt.lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, cwlogs.ErrTooLarge) {
				t.Fatalf("DecodeData() error = %v, want ErrTooLarge", err)
			}
			limit := uint64(tt.lim.MaxDecompressed)
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > limit+16<<20 {
				t.Errorf("DecodeData() allocated %d MiB with a limit of %d MiB", alloc>>20, limit>>20)
			}
			t.Logf("allocated %.1f MiB: %v", float64(alloc)/(1<<20), err)
		})
	}
}

// TestBombIsValidGzip checks the bomb builder itself on a small bomb: it
// must be a well-formed gzip stream whose payload is what DecodeData reads.
func TestBombIsValidGzip(t *testing.T) {
	payload := `{"messageType":"DATA_MESSAGE","logEvents":[]}`
	data := bomb(t, payload, ' ', 2)
	b, err := cwlogs.DecodeData(data, cwlogs.Limits{MaxDecompressed: 3 << 20})
	if err != nil {
		t.Fatalf("DecodeData() of a 2 MiB bomb with a 3 MiB limit: error = %v", err)
	}
	if b.MessageType != cwlogs.DataMessage || len(b.Events) != 0 {
		t.Errorf("DecodeData() = %+v, want an empty DATA_MESSAGE", b)
	}
}
