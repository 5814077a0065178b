package perf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/handler"
	"github.com/anonwatch/anonwatch/internal/jsonlpub"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// Environment of a child process: it builds the deliveries or measures
// one, and exits.
const (
	childModeEnv  = "ANONWATCH_PERF_CHILD" // a mode below
	childEventEnv = "ANONWATCH_PERF_EVENT" // the event file (modeAggregate, modeHandler)
	childDirEnv   = "ANONWATCH_PERF_DIR"   // where modeBuild writes the events
)

// Modes: what a child does.
const (
	// modeBuild writes every delivery's event into a folder and prints
	// the list (builtFile) as JSON.
	modeBuild = "build"
	// modeAggregate is what BenchmarkPipeline times: decode with the
	// rules' pre-filter, parse, match, aggregate; no state, no publishing.
	modeAggregate = "aggregate"
	// modeHandler is the function's handler as functions/detector wires
	// it, with in-memory state and a publisher that discards, in place of
	// DynamoDB and SNS: the Lambda event is unmarshalled as the runtime
	// does, then handled whole.
	modeHandler = "handler"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	if workDir, err = os.MkdirTemp("", "anonwatch-perf-"); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		return 1
	}
	defer os.RemoveAll(workDir)
	return m.Run()
}

// workDir holds the child binary and the events, for all tests of a run.
var workDir string

// The children run a copy of this package's tests built without the race
// detector, whatever the parent was built with: under -race (as `make
// test` runs) memory and time would be the detector's, not the
// function's. The copy also builds the deliveries, which is the heavy
// part of setting up.
var (
	childOnce sync.Once
	childBin  string
	childErr  error

	eventsOnce sync.Once
	eventFiles map[string]builtFile
	eventsErr  error
)

// childBinary returns the path of the test binary the children run.
func childBinary(t testing.TB) string {
	t.Helper()
	childOnce.Do(func() {
		childBin = filepath.Join(workDir, "perf.test")
		cmd := exec.Command("go", "test", "-c", "-o", childBin, ".")
		// GOFLAGS could carry -race; the children must not.
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			childErr = fmt.Errorf("go test -c: %v\n%s", err, out)
		}
	})
	if childErr != nil {
		t.Fatal(childErr)
	}
	return childBin
}

// eventFilesFor returns the deliveries' event files, built once per run by a
// child.
func eventFilesFor(t testing.TB) map[string]builtFile {
	t.Helper()
	bin := childBinary(t)
	eventsOnce.Do(func() {
		dir := filepath.Join(workDir, "events")
		if eventsErr = os.Mkdir(dir, 0o755); eventsErr != nil {
			return
		}
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childModeEnv+"="+modeBuild, childDirEnv+"="+dir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			eventsErr = fmt.Errorf("building the deliveries: %v\n%s", err, stderr.Bytes())
			return
		}
		eventsErr = json.Unmarshal(stdout.Bytes(), &eventFiles)
	})
	if eventsErr != nil {
		t.Fatal(eventsErr)
	}
	if len(eventFiles) != len(deliveries) {
		t.Fatalf("%d deliveries built, want %d", len(eventFiles), len(deliveries))
	}
	return eventFiles
}

// measurement is what a child reports.
type measurement struct {
	Mode string `json:"mode"`
	// Refused is the decoder's refusal (cwlogs.ErrTooLarge), if any.
	Refused string `json:"refused,omitempty"`
	// Result is the batch's summary; empty when refused.
	Result detect.Result `json:"result"`
	// BaseRSSKiB is the resident set after init (rules compiled, event
	// file read, one GC), before the delivery.
	BaseRSSKiB int64 `json:"base_rss_kib"`
	// PeakRSSKiB is the process's peak resident set (VmHWM) over its
	// whole life, init included, as Lambda's "Max Memory Used" counts it.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// PeakHeapBytes is the largest heap in use (bytes of objects, live or
	// not yet swept) seen by sampling runtime/metrics every 100µs while
	// the delivery was handled: a lower bound on the true peak, and the
	// figure the garbage collector works against.
	PeakHeapBytes int64 `json:"peak_heap_bytes"`
	// HeapSysBytes is the heap's address space obtained from the OS by
	// the end, which never shrinks: an upper bound on the heap's peak.
	HeapSysBytes int64 `json:"heap_sys_bytes"`
	// AllocBytes is what handling the delivery allocated in total.
	AllocBytes int64 `json:"alloc_bytes"`
	// GCs is the number of collections while handling it.
	GCs      uint32  `json:"gcs"`
	Millis   float64 `json:"ms"`
	GOMemLim string  `json:"gomemlimit,omitempty"`
}

// child builds the deliveries or measures one, as mode says, and writes
// the outcome as JSON on stdout. It returns the exit status.
func child(mode string) int {
	var out any
	var err error
	switch mode {
	case modeBuild:
		out = writeEvents(exitFailer{}, os.Getenv(childDirEnv))
	default:
		out, err = measure(mode, os.Getenv(childEventEnv))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "perf child:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "perf child:", err)
		return 1
	}
	return 0
}

func measure(mode, eventPath string) (*measurement, error) {
	set, err := rules.Default()
	if err != nil {
		return nil, err
	}
	m := &measurement{Mode: mode, GOMemLim: os.Getenv("GOMEMLIMIT")}
	var run func(raw []byte) (detect.Result, error)
	switch mode {
	case modeAggregate:
		d, err := detect.New(detect.Config{Rules: set})
		if err != nil {
			return nil, err
		}
		run = func(raw []byte) (detect.Result, error) {
			var ev events.CloudwatchLogsEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return detect.Result{}, err
			}
			b, err := cwlogs.DecodeDataKeep(ev.AWSLogs.Data, cwlogs.DefaultLimits, d.Keep)
			if err != nil {
				return detect.Result{}, err
			}
			aggs, res := d.Aggregate(&b)
			runtime.KeepAlive(aggs)
			return res, nil
		}
	case modeHandler:
		d, err := detect.New(detect.Config{Rules: set, State: memstate.New(time.Now, 0), Publisher: jsonlpub.New(io.Discard)})
		if err != nil {
			return nil, err
		}
		rec := &recorder{p: d}
		h := &handler.Handler{
			Processor: rec,
			Log:       slog.New(slog.DiscardHandler),
			Metrics:   io.Discard,
			Limits:    cwlogs.DefaultLimits,
			Keep:      d.Keep,
			Now:       time.Now,
		}
		run = func(raw []byte) (detect.Result, error) {
			// As aws-lambda-go does: the invoke's body, unmarshalled
			// into the handler's argument.
			var ev events.CloudwatchLogsEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return detect.Result{}, err
			}
			err := h.Handle(context.Background(), ev)
			return rec.res, err
		}
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}

	raw, err := os.ReadFile(eventPath)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	if m.BaseRSSKiB, err = procStatus("VmRSS"); err != nil {
		return nil, err
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var peak atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			if v := int64(sample[0].Value.Uint64()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	began := time.Now()
	res, err := run(raw)
	m.Millis = float64(time.Since(began).Microseconds()) / 1000
	close(stop)
	<-done
	runtime.KeepAlive(raw)

	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	switch {
	case errors.Is(err, cwlogs.ErrTooLarge):
		m.Refused = err.Error()
	case err != nil:
		return nil, err
	}
	m.Result = res
	m.PeakHeapBytes = peak.Load()
	m.HeapSysBytes = int64(after.HeapSys)
	m.AllocBytes = int64(after.TotalAlloc - before.TotalAlloc)
	m.GCs = after.NumGC - before.NumGC
	if m.PeakRSSKiB, err = procStatus("VmHWM"); err != nil {
		return nil, err
	}
	return m, nil
}

// recorder keeps the Result of the batch it passes on.
type recorder struct {
	p   handler.Processor
	res detect.Result
}

func (r *recorder) Process(ctx context.Context, b *cwlogs.Batch) (detect.Result, error) {
	res, err := r.p.Process(ctx, b)
	r.res = res
	return res, err
}

// procStatus returns a "kB" field of /proc/self/status, in KiB.
func procStatus(field string) (int64, error) {
	return procStatusOf("self", field)
}

// procStatusOf returns a "kB" field of /proc/<pid>/status, in KiB.
func procStatusOf(pid, field string) (int64, error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%s/status", field, pid)
}

// runChild measures event in mode in a fresh process of this test binary,
// with the extra environment env.
func runChild(t *testing.T, mode, event string, env ...string) *measurement {
	t.Helper()
	cmd := exec.Command(childBinary(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childModeEnv + "=" + mode, childEventEnv + "=" + event}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s %s: %v\n%s", mode, event, err, stderr.Bytes())
	}
	var m measurement
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("child %s %s: %v\n%s", mode, event, err, stdout.Bytes())
	}
	return &m
}

// TestMemoryEnvelope measures every delivery in both modes, each in a
// fresh process, and holds the handler to the budget (budgetKiB) on every
// delivery CloudWatch Logs can send.
func TestMemoryEnvelope(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc: Linux only")
	}
	size, err := memorySize(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	budget := budgetKiB(size)
	files := eventFilesFor(t)
	t.Logf("MemorySize %d (template.yaml): budget %s MiB", size, mib(budget<<10))
	t.Logf("%-26s %-9s %-10s %8s %8s %9s %9s %9s %9s %5s %8s", "delivery", "mode", "GOMEMLIMIT", "events", "aggs", "heap MiB", "sys MiB", "alloc MiB", "RSS MiB", "GCs", "ms")
	for _, d := range deliveries {
		f := files[d.name]
		t.Log(describe(f))
		variants := []string{""}
		if d.withLimit {
			variants = append(variants, gomemlimit)
		}
		for _, lim := range variants {
			for _, mode := range []string{modeAggregate, modeHandler} {
				var env []string
				if lim != "" {
					env = append(env, "GOMEMLIMIT="+lim)
				}
				m := runChild(t, mode, f.Path, env...)
				t.Logf("%-26s %-9s %-10s %8d %8d %9s %9s %9s %9s %5d %8.0f", d.name, mode, m.GOMemLim, m.Result.Events, m.Result.Aggregates,
					mib(m.PeakHeapBytes), mib(m.HeapSysBytes), mib(m.AllocBytes), mib(m.PeakRSSKiB<<10), m.GCs, m.Millis)
				if m.Refused != "" {
					t.Errorf("%s (%s): refused (%q): no delivery may be refused whole", d.name, mode, m.Refused)
				}
				if m.Result.Events != f.Events {
					t.Errorf("%s (%s): %d events handled, want %d", d.name, mode, m.Result.Events, f.Events)
				}
				if damaged := m.Result.Damaged > 0; damaged != d.overBound {
					t.Errorf("%s (%s): %d damaged lines; over the bound %v", d.name, mode, m.Result.Damaged, d.overBound)
				}
				if d.aggregates != 0 && m.Result.Aggregates != d.aggregates {
					t.Errorf("%s (%s): %d aggregates, want %d", d.name, mode, m.Result.Aggregates, d.aggregates)
				}
				if m.Result.Matched == 0 {
					t.Errorf("%s (%s): no rule matched: the delivery would not exercise aggregation", d.name, mode)
				}
				if mode != modeHandler || lim != "" || !d.async {
					continue
				}
				if m.PeakRSSKiB > budget {
					t.Errorf("%s: the handler's peak RSS is %s MiB, over the budget of %s MiB", d.name, mib(m.PeakRSSKiB<<10), mib(budget<<10))
				}
			}
		}
	}
}
