package cwlogs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// testSizes are window sizes to decode with: tiny ones put every element
// across the window's edge, and make messages stream.
var testSizes = []sizes{
	{window: 16, element: 64, message: 128},
	{window: 24, element: 1 << 10, message: 32},
	{window: 100, element: 100, message: 1 << 10},
	{window: 1 << 10, element: 4 << 10, message: 64 << 10},
	defaultSizes,
}

// decodeBytes decodes payload as DecodePayload does, through a window of
// sizes sz; whole reports that encoding/json decoded it.
func decodeBytes(payload []byte, lim Limits, keep func([]byte) bool, sz sizes) (Batch, bool, error) {
	r := bytes.NewReader(payload)
	in := input{
		r:       r,
		hint:    int64(len(payload)),
		readErr: func(err error) error { return err },
		restart: func() (io.Reader, error) {
			_, err := r.Seek(0, io.SeekStart)
			return r, err
		},
	}
	return decode(in, lim.orDefault(), keep, sz)
}

// decodeRef decodes payload with encoding/json alone, the budget applied
// after: the reference. Unlike the decoder's own fallback, it takes a
// payload of any length.
func decodeRef(payload []byte, lim Limits) (Batch, error) {
	lim = lim.orDefault()
	b, err := decodeStd(payload)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if err := applyBudget(&b, lim.MaxDecompressed); err != nil {
		return Batch{}, err
	}
	return finish(b)
}

func sentinel(err error) error {
	for _, s := range []error{ErrBase64, ErrGzip, ErrTooLarge, ErrPayload} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// checkAgainstRef fails t unless the streaming decoder, through a window of
// sizes sz, decodes payload as the reference does. It may fail where the
// reference does not only with ErrTooLarge, once it has left the payload
// to encoding/json, which needs it no longer than MaxDecompressed and with
// no more array elements than that holds events; and where both fail, it
// may fail with ErrTooLarge for a payload the reference finds invalid
// further on.
func checkAgainstRef(t *testing.T, payload []byte, lim Limits, sz sizes) (Batch, bool) {
	t.Helper()
	lim = lim.orDefault()
	want, wantErr := decodeRef(payload, lim)
	got, whole, err := decodeBytes(payload, lim, nil, sz)
	switch {
	case err != nil && wantErr != nil:
		if s := sentinel(err); s != sentinel(wantErr) && s != ErrTooLarge {
			t.Fatalf("sizes %+v, budget %d: error %v, reference error %v", sz, lim.MaxDecompressed, err, wantErr)
		}
		return got, whole
	case err != nil:
		if !(whole && errors.Is(err, ErrTooLarge)) {
			t.Fatalf("sizes %+v, budget %d (whole %v): error %v; the reference decodes it", sz, lim.MaxDecompressed, whole, err)
		}
		return got, whole
	case wantErr != nil:
		t.Fatalf("sizes %+v, budget %d (whole %v): decoded; the reference fails: %v", sz, lim.MaxDecompressed, whole, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("sizes %+v, budget %d (whole %v): differs from the reference (-want +got):\n%s", sz, lim.MaxDecompressed, whole, diff)
	}
	for i, e := range got.Events {
		if len(e.Message) != cap(e.Message) {
			t.Fatalf("event %d: message has len %d, cap %d; appending would overwrite the next", i, len(e.Message), cap(e.Message))
		}
	}
	return got, whole
}

// refPayloads are payloads in and out of CloudWatch's shape.
func refPayloads() []string {
	long := strings.Repeat(`{\"kind\":\"Event\",\"uri\":\"/api/v1/x?q=\u00e9\ud83d\ude00\"}`, 40)
	p := []string{
		`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/a/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":[` +
			`{"id":"1","timestamp":1,"message":"` + long + `"},` +
			`{"id":"2","timestamp":2,"message":"short"},` +
			`{"id":"3","timestamp":3,"message":"` + strings.Repeat("x", 3000) + `"},` +
			`{"id":"4","timestamp":4,"message":"` + long + long + `"},` +
			`{"id":"5","timestamp":5,"message":"tail \\ \" \n"}]}`,
		// CloudWatch's extractedFields, after the message.
		`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"` + long + `","extractedFields":{"a":"b","c":["d",1]}},{"id":"2","timestamp":2,"message":"x"}]}`,
		// Pretty-printed, keys in another order.
		"{\n  \"logEvents\" : [\n    { \"message\" : \"" + long + "\" , \"timestamp\" : 7 },\n    { \"id\" : \"9\" , \"message\" : \"m\" }\n  ],\n  \"messageType\" : \"DATA_MESSAGE\"\n}\n",
		// The id after the message: left to encoding/json.
		`{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1,"message":"` + long + `","id":"late"}]}`,
		// Invalid UTF-8 and lone surrogates.
		"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"id\":\"1\",\"timestamp\":1,\"message\":\"" + strings.Repeat("caf\xc3 \xff\\ud800x", 200) + "\"}]}",
		// Many small events.
		`{"messageType":"DATA_MESSAGE","logEvents":[` + strings.Repeat(`{"id":"12345678901234567890123456789012345678901234567890123456","timestamp":1735787045000,"message":"a b c"},`, 200) + `{}]}`,
		// Invalid after many events.
		`{"messageType":"DATA_MESSAGE","logEvents":[` + strings.Repeat(`{"id":"1","timestamp":1,"message":"abc"},`, 50) + `{"id":"1","timestamp":1,"message":"\x01"}]}`,
		`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"` + strings.Repeat("y", 500) + `\q"}]}`,
		`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"` + strings.Repeat("y", 500),
		`{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":0,"message":"CWL CONTROL MESSAGE"}]}`,
	}
	return append(p, payloadSeeds...)
}

// TestStreamMatchesReference decodes payloads with every window size and
// a range of budgets, from one that takes them whole to one that cuts
// every line or refuses the events, and checks each against encoding/json
// with the budget applied.
func TestStreamMatchesReference(t *testing.T) {
	for k, p := range refPayloads() {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			for _, sz := range testSizes {
				for _, budget := range []int64{0, int64(len(p)) * 2, int64(len(p)), int64(len(p)) / 2, int64(len(p)) / 5, 1000, 300, 100} {
					checkAgainstRef(t, []byte(p), Limits{MaxDecompressed: budget}, sz)
				}
			}
		})
	}
}

// TestStreamTakesCloudWatchShape checks that payloads in CloudWatch's shape,
// and white space and other members besides, are decoded by the streaming
// decoder itself, however small its window, and the odd ones are not.
func TestStreamTakesCloudWatchShape(t *testing.T) {
	p := refPayloads()
	for k, wantWhole := range map[int]bool{0: false, 1: false, 2: false, 3: true, 4: false, 5: false} {
		for _, sz := range testSizes[1:] {
			if sz.element < 1<<10 {
				continue // too small for the keys and ids of these
			}
			if _, whole, err := decodeBytes([]byte(p[k]), Limits{}, nil, sz); err != nil || whole != wantWhole {
				t.Errorf("payload %d, sizes %+v: whole = %v, error %v; want whole %v", k, sz, whole, err, wantWhole)
			}
		}
	}
}

func TestLogEventOverhead(t *testing.T) {
	if n := unsafe.Sizeof(LogEvent{}); n > eventOverhead {
		t.Errorf("a LogEvent is %d bytes, more than the eventOverhead of %d charged for it", n, eventOverhead)
	}
}

// TestCutPrefixEscapes cuts lines whose CutPrefix-th byte falls inside what
// an escape or a multi-byte character decodes to, and checks that the
// prefix kept is the decoded line's start, ends at a rune boundary (so no
// escape is split), and is as long as that allows; both when the line is
// in the window and when it streams.
func TestCutPrefixEscapes(t *testing.T) {
	tests := []struct {
		name string
		esc  string // at CutPrefix-1 of the decoded line
		dec  string
	}{
		{"quote", `\"`, `"`},
		{"backslash", `\\`, `\`},
		{"newline", `\n`, "\n"},
		{"e acute escaped", `\u00e9`, "é"},
		{"euro escaped", `\u20ac`, "€"},
		{"surrogate pair", `\ud83d\ude00`, "😀"},
		{"lone surrogate", `\ud800`, "\uFFFD"},
		{"e acute raw", "é", "é"},
		{"invalid byte", "\xff", "\uFFFD"},
	}
	// A budget whose share for long lines a line of 520 KiB exceeds, and
	// whose share for messages leaves a cut line its CutPrefix bytes.
	lim := Limits{MaxDecompressed: 600 << 10}
	msg, long := shares(lim.MaxDecompressed)
	if left := msg - eventOverhead - 1; left/64 < CutPrefix || long-eventOverhead-1 > 520<<10 {
		t.Fatalf("the budget's shares, %d and %d, do not cut a line of 520 KiB to %d bytes", msg, long, CutPrefix)
	}
	for _, tt := range tests {
		for _, at := range []int{CutPrefix - 3, CutPrefix - 2, CutPrefix - 1, CutPrefix} {
			head := strings.Repeat("a", at)
			tail := strings.Repeat(`b\"`, 260<<10)
			payload := `{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"` + head + tt.esc + tail + `"}]}`
			line := head + tt.dec + strings.Repeat(`b"`, 260<<10)
			for _, sz := range testSizes {
				b, _ := checkAgainstRef(t, []byte(payload), lim, sz)
				e := b.Events[0]
				if !e.Cut || e.Size != len(line) {
					t.Fatalf("%s at %d, sizes %+v: Cut %v, Size %d; want cut, %d", tt.name, at, sz, e.Cut, e.Size, len(line))
				}
				n := len(e.Message)
				want := CutPrefix
				if at+len(tt.dec) > CutPrefix {
					want = at // the character does not fit whole
				}
				if n != want || string(e.Message) != line[:n] || !utf8.Valid(e.Message) {
					t.Fatalf("%s at %d, sizes %+v: prefix of %d bytes ending %q; want the line's first %d", tt.name, at, sz, n, e.Message[max(n-8, 0):], want)
				}
			}
		}
	}
}

// TestWindowIndependence decodes the same payloads through windows of
// every size, with and without keep, and checks the batches are the same:
// which lines are kept, dropped or cut depends on the payload only (and on
// messageMax, past which keep is not asked: a constant), not on where the
// window's edges fall or how the input's reads break it, so a retried
// delivery decodes the same.
func TestWindowIndependence(t *testing.T) {
	keep := func(esc []byte) bool { return !bytes.Contains(esc, []byte("drop")) }
	var events []string
	for i := range 60 {
		verb := "keep"
		if i%3 == 0 {
			verb = "drop"
		}
		events = append(events, fmt.Sprintf(`{"id":"%d","timestamp":%d,"message":"%s %d \"%s\""}`, i, i, verb, i, strings.Repeat("z", i*37%400)))
	}
	payload := []byte(`{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/w/cluster","logEvents":[` + strings.Join(events, ",") + `]}`)
	for _, budget := range []int64{0, 40000, 16000, 8000} {
		lim := Limits{MaxDecompressed: budget}
		first, _, firstErr := decodeBytes(payload, lim, keep, defaultSizes)
		for _, sz := range testSizes {
			sz.message = max(sz.message, 1<<10) // longer than any line here
			got, whole, err := decodeBytes(payload, lim, keep, sz)
			if whole || sentinel(err) != sentinel(firstErr) {
				t.Fatalf("budget %d, sizes %+v: whole %v, error %v; with the default window, error %v", budget, sz, whole, err, firstErr)
			}
			if diff := cmp.Diff(first, got); diff != "" {
				t.Fatalf("budget %d, sizes %+v: differs from the default window (-want +got):\n%s", budget, sz, diff)
			}
		}
	}
}

// TestStreamedMessageKeep checks that a message too long for the window,
// which keep is not shown, comes back whole when it fits, and that the
// lines around it are still shown to keep.
func TestStreamedMessageKeep(t *testing.T) {
	big := strings.Repeat(`drop \"x\" `, 100)
	payload := []byte(`{"messageType":"DATA_MESSAGE","logEvents":[` +
		`{"id":"1","timestamp":1,"message":"drop 1"},` +
		`{"id":"2","timestamp":2,"message":"` + big + `"},` +
		`{"id":"3","timestamp":3,"message":"keep 3"}]}`)
	var seen []string
	keep := func(esc []byte) bool {
		seen = append(seen, string(esc))
		return bytes.HasPrefix(esc, []byte("keep"))
	}
	b, whole, err := decodeBytes(payload, Limits{}, keep, sizes{window: 64, element: 256, message: 256})
	if err != nil || whole {
		t.Fatalf("whole %v, error %v", whole, err)
	}
	want := []LogEvent{
		{ID: "1", Timestamp: 1, Dropped: true, Size: 6},
		{ID: "2", Timestamp: 2, Message: []byte(strings.ReplaceAll(big, `\"`, `"`)), Size: 900},
		{ID: "3", Timestamp: 3, Message: []byte("keep 3"), Size: 6},
	}
	if diff := cmp.Diff(want, b.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"drop 1", "keep 3"}, seen); diff != "" {
		t.Errorf("keep saw (-want +got):\n%s", diff)
	}
}

// TestTooManyEvents checks that events whose overhead alone exceeds the
// budget fail the decode, streaming or whole, and that lines filling the
// messages' share to the byte leave the reserve for the events after them.
func TestTooManyEvents(t *testing.T) {
	const budget = 64 << 10
	ev := `{"id":"1","timestamp":1,"message":""}`
	many := []byte(`{"messageType":"DATA_MESSAGE","logEvents":[` + strings.Repeat(ev+",", budget/eventOverhead) + ev + `]}`)
	odd := bytes.ReplaceAll(many, []byte(`"message":""`), []byte(`"message":null`))
	for name, p := range map[string][]byte{"streaming": many, "whole": odd} {
		_, whole, err := decodeBytes(p, Limits{MaxDecompressed: budget}, nil, defaultSizes)
		if !errors.Is(err, ErrTooLarge) || whole != (name == "whole") {
			t.Errorf("%s: %d events of %d bytes for a budget of %d: whole %v, error %v; want ErrTooLarge", name, budget/eventOverhead+1, eventOverhead, budget, whole, err)
		}
	}

	// The first line takes what long lines may, to the byte: the budget
	// less the events' eighth, the short lines' 32nd, and its event's
	// overhead and id. The short lines after it fit in the 32nd (8 KiB)
	// until they are cut, to ever shorter prefixes; and their events'
	// overhead (400 of 65 bytes) fits in the events' eighth (32 KiB).
	const big = 256 << 10
	_, long := shares(big)
	fill := long - eventOverhead - 1
	p := []byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"` + strings.Repeat("f", int(fill)) + `"}` +
		strings.Repeat(`,{"id":"2","timestamp":2,"message":"small line"}`, 400) + `]}`)
	b, err := decodeRef(p, Limits{MaxDecompressed: big})
	if err != nil {
		t.Fatal(err)
	}
	if e := b.Events[0]; e.Cut || int64(len(e.Message)) != fill {
		t.Fatalf("first line: cut %v, %d bytes; want it whole, %d", e.Cut, len(e.Message), fill)
	}
	var whole, cut int
	for _, e := range b.Events[1:] {
		if e.Cut {
			cut++
			if e.Size != 10 || len(e.Message) >= 10 {
				t.Fatalf("short line cut to %q, size %d", e.Message, e.Size)
			}
		} else if whole++; cut > 0 {
			t.Fatalf("a short line whole after %d cut", cut)
		}
	}
	if whole < 100 || cut == 0 {
		t.Errorf("%d short lines whole, %d cut; want the first hundred or so whole, then cut", whole, cut)
	}
	checkAgainstRef(t, p, Limits{MaxDecompressed: big}, defaultSizes)
}

// FuzzFeedString checks feedString, fed a string literal in pieces of every
// size, against jsonscan: it accepts what SkipString accepts, ending where
// it ends, decodes to what AppendUnescaped decodes to, and keeps the longest
// prefix of that, at a rune boundary, within max.
func FuzzFeedString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud83d\ude00"`, `"\ud800\u0041"`, "\"\xff\\n\"", `"{\"a\":\"b\\\\\"}"`, `"\ud83d\ude0"`, `"\ud83d\uzzzz"`, "\"é€😀\"", `"x\`} {
		f.Add([]byte(s), uint8(3), uint16(5))
	}
	f.Fuzz(func(t *testing.T, lit []byte, piece uint8, max uint16) {
		if len(lit) == 0 || lit[0] != '"' {
			return
		}
		wantEnd, _, wantOK := jsonscan.SkipString(lit, 0)
		var want []byte
		if wantOK {
			want = jsonscan.AppendUnescaped(nil, lit[1:wantEnd-1])
			var s string
			if err := json.Unmarshal(lit[:wantEnd], &s); err != nil || s != string(want) {
				t.Fatalf("jsonscan decodes %q to %q; encoding/json to %q (%v)", lit[:wantEnd], want, s, err)
			}
		}
		// Feed it as a reader would: each time up to piece more bytes.
		step := int(piece%16) + 1
		var st strState
		var out []byte
		i, n := 1, 0
		for {
			n = min(n+step, len(lit))
			next, o, done, ok := feedString(lit[:n], i, n == len(lit), out, int(max), &st)
			out = o
			if !ok || done || n == len(lit) {
				// At the end of the input, a string not done is cut short.
				if valid := ok && done; valid != wantOK || valid && next != wantEnd {
					t.Fatalf("feedString(%q) in pieces of %d: next %d, done %v, ok %v; SkipString: end %d, ok %v", lit, step, next, done, ok, wantEnd, wantOK)
				}
				break
			}
			i = next
		}
		if !wantOK {
			return
		}
		if st.size != int64(len(want)) {
			t.Fatalf("feedString(%q) counted %d bytes, want %d", lit, st.size, len(want))
		}
		p := min(int(max), len(want))
		for p < len(want) && p > 0 && !utf8.RuneStart(want[p]) {
			p--
		}
		if string(out) != string(want[:p]) {
			t.Fatalf("feedString(%q) with max %d kept %q, want %q", lit, max, out, want[:p])
		}
	})
}
