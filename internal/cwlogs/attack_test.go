package cwlogs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// attackBatch is the delivery the issue describes: n anonymous requests
// whose URIs are padded with one repeated character so that each audit line
// is about 1 MiB (under CloudWatch's 1 MB event limit, and compressing
// 1000 to 1), with one small real line at index real.
func attackBatch(n, real int) (cwlogs.Batch, []byte) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var lines [][]byte
	for i := range n {
		uri := fmt.Sprintf("/api/v1/namespaces/pad-%02d/pods?q=", i) + strings.Repeat("A", 1<<20-1200)
		lines = append(lines, synth.Probe{At: at.Add(time.Duration(i) * time.Millisecond), SrcIP: "203.0.113.9", UserAgent: "padder", URI: uri}.Line())
	}
	small := synth.Probe{At: at, SrcIP: "198.51.100.7", UserAgent: "curl/8.5.0", URI: "/api/v1/secrets"}.Line()
	lines = append(lines[:real], append([][]byte{small}, lines[real:]...)...)
	return synth.Batch(lines, "/aws/eks/prod/cluster", "kube-apiserver-audit-1", 1), small
}

// data returns awslogs.data for b.
func data(t testing.TB, b cwlogs.Batch) string {
	t.Helper()
	env, err := cwlogs.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ AWSLogs struct{ Data string } }
	if err := json.Unmarshal(env, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.AWSLogs.Data
}

// diffBatch describes the first difference between two batches, or returns
// "". (cmp.Diff walks 40 MiB of messages byte by byte.)
func diffBatch(want, got cwlogs.Batch) string {
	w, g := want, got
	w.Events, g.Events = nil, nil
	if diff := cmp.Diff(w, g); diff != "" {
		return diff
	}
	if len(want.Events) != len(got.Events) {
		return fmt.Sprintf("%d events, want %d", len(got.Events), len(want.Events))
	}
	for i, we := range want.Events {
		ge := got.Events[i]
		if !bytes.Equal(we.Message, ge.Message) || (we.Message == nil) != (ge.Message == nil) {
			return fmt.Sprintf("event %d: message of %d bytes, want %d", i, len(ge.Message), len(we.Message))
		}
		we.Message, ge.Message = nil, nil
		if diff := cmp.Diff(we, ge); diff != "" {
			return fmt.Sprintf("event %d: %s", i, diff)
		}
	}
	return ""
}

// TestPaddedLinesAttack decodes a delivery of 40 padded lines of 1 MiB and
// one small real line: 41 MiB inflated, which the decoder used to refuse
// whole. It must decode, keep the real line whole wherever it is, keep the
// padded lines while they fit and cut the others to their first CutPrefix
// bytes, with their full size; decoding it again gives the same batch.
func TestPaddedLinesAttack(t *testing.T) {
	keepAnon := func(esc []byte) bool { return bytes.Contains(esc, []byte("system:anonymous")) }
	for _, real := range []int{40, 0, 20} {
		b, small := attackBatch(40, real)
		d := data(t, b)
		if len(d) > 1<<20 {
			t.Fatalf("the attack is %d bytes of base64, more than an asynchronous invocation carries", len(d))
		}
		want := b
		want.Events = append([]cwlogs.LogEvent(nil), b.Events...)
		if err := cwlogs.ApplyBudget(&want, cwlogs.DefaultLimits.MaxDecompressed); err != nil {
			t.Fatal(err)
		}
		for _, keep := range []func([]byte) bool{nil, keepAnon} {
			got, err := cwlogs.DecodeDataKeep(d, cwlogs.DefaultLimits, keep)
			if err != nil {
				t.Fatalf("real line at %d: DecodeDataKeep() error = %v", real, err)
			}
			again, err := cwlogs.DecodeDataKeep(d, cwlogs.DefaultLimits, keep)
			if err != nil {
				t.Fatal(err)
			}
			if diff := diffBatch(got, again); diff != "" {
				t.Fatalf("real line at %d: a retried decode differs: %s", real, diff)
			}
			if diff := diffBatch(want, got); diff != "" {
				t.Fatalf("real line at %d: differs from the budget applied to the batch: %s", real, diff)
			}
			var cut, whole int
			for i, e := range got.Events {
				line := b.Events[i].Message
				switch {
				case i == real:
					if e.Cut || !bytes.Equal(e.Message, small) {
						t.Errorf("real line at %d: cut %v, %d bytes; want it whole", real, e.Cut, len(e.Message))
					}
				case e.Cut:
					cut++
					if e.Size != len(line) || len(e.Message) != cwlogs.CutPrefix || !bytes.HasPrefix(line, e.Message) {
						t.Errorf("line %d cut: size %d, %d bytes kept; want size %d and its first %d bytes", i, e.Size, len(e.Message), len(line), cwlogs.CutPrefix)
					}
				default:
					whole++
					if !bytes.Equal(e.Message, line) || e.Size != len(line) {
						t.Errorf("line %d: %d bytes, size %d; want it whole, %d", i, len(e.Message), e.Size, len(line))
					}
				}
			}
			if cut == 0 || whole == 0 {
				t.Errorf("real line at %d: %d padded lines whole, %d cut; want both", real, whole, cut)
			}
			if real == 40 && keep == nil {
				t.Logf("%d padded lines of %d bytes whole, %d cut", whole, len(b.Events[0].Message), cut)
			}
		}
	}
}

// TestPaddedLinesAttackMemory measures what decoding the attack allocates,
// in all (TotalAlloc, an upper bound on what the call adds to the heap):
// less than MaxDecompressed and 8 MiB besides, where holding the 41 MiB
// payload would take more.
func TestPaddedLinesAttackMemory(t *testing.T) {
	b, _ := attackBatch(40, 40)
	d := data(t, b)
	keepAnon := func(esc []byte) bool { return bytes.Contains(esc, []byte("system:anonymous")) }
	for name, keep := range map[string]func([]byte) bool{"all": nil, "keep": keepAnon} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got, err := cwlogs.DecodeDataKeep(d, cwlogs.DefaultLimits, keep)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		bound := uint64(cwlogs.DefaultLimits.MaxDecompressed) + 8<<20
		if alloc > bound {
			t.Errorf("%s: decoding the attack allocated %.1f MiB, more than %d MiB", name, float64(alloc)/(1<<20), bound>>20)
		}
		t.Logf("%s: decoding %d events allocated %.1f MiB (%d objects)", name, len(got.Events), float64(alloc)/(1<<20), after.Mallocs-before.Mallocs)
	}
}

// BenchmarkPaddedLinesAttack decodes the attack: 41 MiB inflated, of which
// the batch keeps 27.
func BenchmarkPaddedLinesAttack(b *testing.B) {
	batch, _ := attackBatch(40, 40)
	d := data(b, batch)
	b.SetBytes(int64(40 << 20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cwlogs.DecodeData(d, cwlogs.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}
