package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// TestGzipBombShortTrailer feeds DecodeData a payload whose size hint lies:
// a stream of gzip members (which gunzip, like Go, reads as one) ending in a
// small member, whose trailer is the one the decoder reads its size hint
// from, holding one line of 80 MiB. The line is cut, and decoding it must
// allocate no more than MaxDecompressed and 16 MiB besides, as TestGzipBomb
// requires of a bomb with an honest trailer; past MaxInflated, it fails.
// (When the payload was read whole, a buffer doubled and copied up to the
// limit allocated about twice that.)
func TestGzipBombShortTrailer(t *testing.T) {
	member := func(p []byte) []byte {
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(p)
		zw.Close()
		return b.Bytes()
	}
	var gz bytes.Buffer
	gz.Write(member([]byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"`)))
	fill := member(bytes.Repeat([]byte("A"), 8<<20))
	for range 10 { // 80 MiB, past DefaultLimits' 32
		gz.Write(fill)
	}
	gz.Write(member([]byte(`"}]}`)))
	data := base64.StdEncoding.EncodeToString(gz.Bytes())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := cwlogs.DecodeData(data, cwlogs.DefaultLimits)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("DecodeData() error = %v", err)
	}
	if e := b.Events[0]; len(b.Events) != 1 || !e.Cut || e.Size != 80<<20 || string(e.Message) != strings.Repeat("A", cwlogs.CutPrefix) {
		t.Errorf("DecodeData() = %d events, the first cut %v, size %d, %d bytes kept; want one of 80 MiB, cut to %d", len(b.Events), e.Cut, e.Size, len(e.Message), cwlogs.CutPrefix)
	}
	limit := uint64(cwlogs.DefaultLimits.MaxDecompressed)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit+16<<20 {
		t.Errorf("DecodeData() allocated %d MiB with a limit of %d MiB", alloc>>20, limit>>20)
	}

	lim := cwlogs.DefaultLimits
	lim.MaxInflated = 64 << 20
	if _, err := cwlogs.DecodeData(data, lim); !errors.Is(err, cwlogs.ErrTooLarge) {
		t.Errorf("DecodeData() of 80 MiB with MaxInflated 64 MiB: error = %v, want ErrTooLarge", err)
	}
}

// TestReadShortTrailer checks that a valid multi-member payload, whose hint
// is short, still decodes whole once its chunks are joined.
func TestReadShortTrailer(t *testing.T) {
	payload := `{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/x/cluster","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"` +
		string(bytes.Repeat([]byte("m"), 3<<20)) + `"}]}`
	var gz bytes.Buffer
	for _, part := range []string{payload[:len(payload)-4], payload[len(payload)-4:]} {
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(part))
		zw.Close()
	}
	b, err := cwlogs.DecodeData(base64.StdEncoding.EncodeToString(gz.Bytes()), cwlogs.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || len(b.Events[0].Message) != 3<<20 || b.Cluster != "x" {
		t.Errorf("DecodeData() = %d events, first message %d bytes, cluster %q; want 1 of %d bytes, cluster x", len(b.Events), len(b.Events[0].Message), b.Cluster, 3<<20)
	}
}
