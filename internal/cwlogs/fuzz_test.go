package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// FuzzDecodeData feeds DecodeData both raw awslogs.data strings (mutating
// the base64 and gzip layers) and payloads that the test compresses itself
// (mutating the JSON). DecodeData must not panic, must wrap exactly one
// sentinel in an error, must never succeed on a payload that inflates past
// MaxInflated, and must never return a batch holding more than
// MaxDecompressed.
func FuzzDecodeData(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		b, err := cwlogs.DecodeEvent(raw, cwlogs.DefaultLimits)
		if err != nil {
			f.Fatal(err)
		}
		payload, err := cwlogs.EncodePayload(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
		f.Add(payload, true)
	}
	f.Add([]byte(`{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"x"}]}`), true)
	f.Add([]byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"\ud83d\ude00\u0000\\\"\ud800"}]}`), true)

	const limit = 4 << 10
	lim := cwlogs.Limits{MaxCompressed: limit, MaxDecompressed: limit / 2, MaxInflated: limit}
	f.Fuzz(func(t *testing.T, in []byte, compress bool) {
		data := string(in)
		if compress {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(in)
			zw.Close()
			data = base64.StdEncoding.EncodeToString(buf.Bytes())
		}
		b, err := cwlogs.DecodeData(data, lim)
		if err != nil {
			n := 0
			for _, s := range []error{cwlogs.ErrBase64, cwlogs.ErrGzip, cwlogs.ErrTooLarge, cwlogs.ErrPayload} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("DecodeData() error %v wraps %d sentinels, want 1", err, n)
			}
			return
		}
		// It succeeded: measure the payload independently.
		gz, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			t.Fatalf("DecodeData() accepted data that is not base64: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("DecodeData() accepted data that is not gzip: %v", err)
		}
		n, err := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
		if err != nil {
			t.Fatalf("DecodeData() accepted a broken gzip stream: %v", err)
		}
		if n > limit {
			t.Fatalf("DecodeData() accepted a payload of more than %d bytes", limit)
		}
		if b.MessageType != cwlogs.DataMessage && b.MessageType != cwlogs.ControlMessage {
			t.Fatalf("DecodeData() accepted messageType %q", b.MessageType)
		}
		if b.MessageType == cwlogs.ControlMessage && len(b.Events) != 0 {
			t.Fatalf("DecodeData() returned %d events for a CONTROL_MESSAGE", len(b.Events))
		}
		var held int64
		for _, e := range b.Events {
			held += 64 + int64(len(e.ID)+len(e.Message))
		}
		if held > lim.MaxDecompressed {
			t.Fatalf("DecodeData() returned a batch holding %d bytes, limit %d", held, lim.MaxDecompressed)
		}
	})
}
