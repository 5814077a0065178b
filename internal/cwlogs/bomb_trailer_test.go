package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"runtime"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// TestGzipBombShortTrailer feeds DecodeData a bomb whose size hint lies: a
// stream of gzip members (which gunzip, like Go, reads as one) ending in a
// small member, whose trailer is the one the decoder reads its size hint
// from. Refusing it must still allocate no more than the limit and 16 MiB
// besides, as TestGzipBomb requires of a bomb with an honest trailer; a
// buffer doubled and copied up to the limit allocated about twice that.
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
	for range 10 { // 80 MiB, past DefaultLimits' 64
		gz.Write(fill)
	}
	gz.Write(member([]byte(`"}]}`)))
	data := base64.StdEncoding.EncodeToString(gz.Bytes())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := cwlogs.DecodeData(data, cwlogs.DefaultLimits)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, cwlogs.ErrTooLarge) {
		t.Fatalf("DecodeData() error = %v, want ErrTooLarge", err)
	}
	limit := uint64(cwlogs.DefaultLimits.MaxDecompressed)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit+16<<20 {
		t.Errorf("DecodeData() allocated %d MiB with a limit of %d MiB", alloc>>20, limit>>20)
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
