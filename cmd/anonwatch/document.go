package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// documentDecoder reads a stream of JSON documents as json.Decoder does,
// faster when each is a line of its own, as in a capture of subscription
// events: such a line is validated by jsonscan in one pass and returned
// whole, where json.Decoder scans every byte of a document three times
// before handing it over. From the first line that is not one whole
// document (a pretty-printed one, or two on a line), the rest of the stream
// goes to json.Decoder, so what it accepts and the errors it returns are
// json.Decoder's.
type documentDecoder struct {
	br  *bufio.Reader
	dec *json.Decoder // nil while the documents are lines
}

func newDocumentDecoder(r io.Reader) *documentDecoder {
	return &documentDecoder{br: bufio.NewReaderSize(r, 256<<10)}
}

// Decode stores the next document in raw, a copy of its bytes, or returns
// io.EOF after the last.
func (d *documentDecoder) Decode(raw *json.RawMessage) error {
	for d.dec == nil {
		line, err := readWholeLine(d.br)
		if err != nil && err != io.EOF {
			return err
		}
		i := jsonscan.SkipSpace(line, 0)
		if i == len(line) {
			if err == io.EOF {
				return io.EOF
			}
			continue
		}
		if end, ok := jsonscan.SkipValue(line, i, 0); ok && jsonscan.SkipSpace(line, end) == len(line) {
			*raw = line[i:end]
			return nil
		}
		d.dec = json.NewDecoder(io.MultiReader(bytes.NewReader(line), d.br))
	}
	return d.dec.Decode(raw)
}

// readWholeLine returns the next line, its newline included, in bytes of
// its own.
func readWholeLine(br *bufio.Reader) ([]byte, error) {
	frag, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return bytes.Clone(frag), err
	}
	line := bytes.Clone(frag)
	for err == bufio.ErrBufferFull {
		frag, err = br.ReadSlice('\n')
		line = append(line, frag...)
	}
	return line, err
}

// awslogsData returns awslogs.data of a Lambda event in exactly the shape
// CloudWatch Logs sends, {"awslogs":{"data":"..."}} with data ASCII and free
// of escapes, and false for any other document, which encoding/json must
// read.
func awslogsData(doc []byte) (string, bool) {
	i := jsonscan.SkipSpace(doc, 0)
	var ok bool
	for _, name := range []string{"awslogs", "data"} {
		if i >= len(doc) || doc[i] != '{' {
			return "", false
		}
		var k []byte
		if k, i, _, ok = jsonscan.Key(doc, jsonscan.SkipSpace(doc, i+1)); !ok || string(k) != name {
			return "", false
		}
	}
	if i >= len(doc) || doc[i] != '"' {
		return "", false
	}
	end, esc, ok := jsonscan.SkipString(doc, i)
	if !ok || esc {
		return "", false
	}
	data := doc[i+1 : end-1]
	// encoding/json would make invalid UTF-8 U+FFFD; base64 is ASCII.
	if !isASCII(data) {
		return "", false
	}
	// Both objects close, and nothing follows.
	for range 2 {
		if end = jsonscan.SkipSpace(doc, end); end >= len(doc) || doc[end] != '}' {
			return "", false
		}
		end++
	}
	if jsonscan.SkipSpace(doc, end) != len(doc) {
		return "", false
	}
	return string(data), true
}

// isASCII reports whether b is ASCII, eight bytes at a time: it sees every
// byte of every delivery.
func isASCII(b []byte) bool {
	const high = 0x8080808080808080
	var acc uint64
	for ; len(b) >= 8; b = b[8:] {
		acc |= binary.LittleEndian.Uint64(b)
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&high == 0
}
