//go:build integration

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/e2e/emu"
)

// The benchmarks report medians over their iterations, one fresh emulator
// (a cold start) per iteration; run them with -benchtime 10x for a median
// of ten. ns/op counts the invokes only, not creating tables or starting
// the emulator.

// latencySample is the events/ sample the latency benchmark invokes: the
// one with the most findings, so an invoke does every kind of work (parse,
// match, DynamoDB updates and reads, SNS publishes).
const latencySample = "cluster-scan-masscan.json"

// BenchmarkInvoke measures, through the emulator on a fresh table:
//   - init-ms: the emulator's INIT REPORT duration, from starting the
//     bootstrap to its first request for work (config, clients, rules);
//   - first-invoke-ms: the first invoke as the caller sees it, init
//     included;
//   - warm-invoke-ms: a second invoke of the same events under another
//     cluster name, so that it does the same work on fresh state rather
//     than taking the cheaper path of a retry;
//   - first-handler-ms and warm-handler-ms: the handler's own duration_ms
//     from its summary line, most of which is DynamoDB and SNS calls, so
//     that the emulator's share and the emulators' speed can be told apart.
func BenchmarkInvoke(b *testing.B) {
	cold := emu.ReadEvent(b, repoRoot, latencySample)
	warm := reclustered(b, cold, "warm")
	want := float64(len(samples[latencySample]))
	var inits, firsts, warms, firstHandler, warmHandler []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		table, topic := emu.NewTable(b, dynamoURL, "e2e-"), newTopic(b)
		fn := startFunction(b, functionEnv(table, topic))
		b.StartTimer()
		first := invokeOK(b, fn, cold)
		second := invokeOK(b, fn, warm)
		b.StopTimer()
		var handler [2]float64
		for i, r := range []string{first.RequestID, second.RequestID} {
			sum := summary(b, fn, r)
			if n := sum["findings_published"]; n != want {
				b.Fatalf("invoke %s published %v findings, want %v: the figures would not be of the full path", r, n, want)
			}
			handler[i], _ = sum["duration_ms"].(float64)
		}
		init, err := initReport(fn.Output())
		if err != nil {
			b.Fatal(err)
		}
		fn.Stop()
		inits = append(inits, init)
		firsts = append(firsts, ms(first.Latency))
		warms = append(warms, ms(second.Latency))
		firstHandler = append(firstHandler, handler[0])
		warmHandler = append(warmHandler, handler[1])
		b.StartTimer()
	}
	b.StopTimer()
	b.Logf("%s, %d cold starts: init-ms %v; first-invoke-ms %v; warm-invoke-ms %v; first-handler-ms %v; warm-handler-ms %v",
		latencySample, b.N, inits, firsts, warms, firstHandler, warmHandler)
	b.ReportMetric(median(inits), "init-ms")
	b.ReportMetric(median(firsts), "first-invoke-ms")
	b.ReportMetric(median(warms), "warm-invoke-ms")
	b.ReportMetric(median(firstHandler), "first-handler-ms")
	b.ReportMetric(median(warmHandler), "warm-handler-ms")
}

// BenchmarkPeakRSS invokes a fresh function with the largest events/
// sample and reads the peak resident set size (VmHWM) of the bootstrap
// process, which is what Lambda's "Max Memory Used" reports.
func BenchmarkPeakRSS(b *testing.B) {
	sample, size := largestSample(b)
	event := emu.ReadEvent(b, repoRoot, sample)
	var peaks []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		table, topic := emu.NewTable(b, dynamoURL, "e2e-"), newTopic(b)
		fn := startFunction(b, functionEnv(table, topic))
		b.StartTimer()
		invokeOK(b, fn, event)
		b.StopTimer()
		pid, err := fn.FunctionPID()
		if err != nil {
			b.Fatal(err)
		}
		// The emulator's only child is the function; make sure of it, so
		// the figure is never the emulator's own.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.HasPrefix(string(cmdline), "./bootstrap\x00") {
			b.Fatalf("process %d runs %q (%v), not ./bootstrap", pid, cmdline, err)
		}
		kib, err := vmHWM(pid)
		if err != nil {
			b.Fatal(err)
		}
		fn.Stop()
		peaks = append(peaks, kib)
		b.StartTimer()
	}
	b.StopTimer()
	b.Logf("%s (%d bytes), %d processes: VmHWM KiB %v", sample, size, b.N, peaks)
	b.ReportMetric(median(peaks), "peak-rss-KiB")
	b.ReportMetric(slices.Max(peaks), "max-peak-rss-KiB")
}

// reclustered returns event with its log group, and so its cluster name,
// changed: the same audit events, keyed apart from the original's state.
func reclustered(tb testing.TB, event []byte, cluster string) []byte {
	tb.Helper()
	batch, err := cwlogs.DecodeEvent(event, cwlogs.DefaultLimits)
	if err != nil {
		tb.Fatal(err)
	}
	batch.LogGroup = "/aws/eks/" + cluster + "/cluster"
	batch.Cluster = cluster
	out, err := cwlogs.Encode(batch)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// largestSample returns the name and size of the largest events/*.json.
func largestSample(tb testing.TB) (string, int64) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "events", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no events/*.json: %v", err)
	}
	var name string
	var size int64 = -1
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Size() > size {
			name, size = filepath.Base(f), st.Size()
		}
	}
	return name, size
}

var initReportRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// initReport returns the duration of the emulator's first INIT REPORT, in
// milliseconds. (The emulator's REPORT line also has an "Init Duration",
// but it times only handing the init to the sandbox, not the init itself.)
func initReport(out string) (float64, error) {
	m := initReportRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no INIT REPORT in the emulator's output:\n%s", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// vmHWM returns the peak resident set size of a process, in KiB.
func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
