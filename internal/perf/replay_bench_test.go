package perf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/anonwatch/anonwatch/internal/synth"
)

// Environment of BenchmarkReplay.
const (
	// replayEventsEnv sets the archive's events; 1,000,000 when unset.
	replayEventsEnv = "ANONWATCH_REPLAY_EVENTS"
	// replayArchiveEnv names a folder to keep the archive in between
	// runs; unset, it is written into a temporary folder each run.
	replayArchiveEnv = "ANONWATCH_REPLAY_ARCHIVE"
	// replayBeforeEnv names another anonwatch binary to replay the same
	// archive with, in the same run, as replay-before: a build to
	// compare with.
	replayBeforeEnv = "ANONWATCH_REPLAY_BEFORE"
)

// replayProcs is the cores the whole-process figures are measured on: the
// issue's machine has two.
const replayProcs = 2

var (
	archiveOnce sync.Once
	archiveDir  string
	archive     archiveInfo
	archiveErr  error

	cliOnce sync.Once
	cliBin  string
	cliErr  error
)

func replayArchive(b *testing.B) (string, archiveInfo) {
	b.Helper()
	archiveOnce.Do(func() {
		n := 1_000_000
		if s := os.Getenv(replayEventsEnv); s != "" {
			if n, archiveErr = strconv.Atoi(s); archiveErr != nil {
				return
			}
		}
		archiveDir = os.Getenv(replayArchiveEnv)
		if archiveDir == "" {
			archiveDir = filepath.Join(workDir, "archive")
		}
		archive, archiveErr = writeArchive(archiveDir, n)
	})
	if archiveErr != nil {
		b.Fatal(archiveErr)
	}
	return archiveDir, archive
}

// anonwatchBinary builds the CLI as `make build` does.
func anonwatchBinary(b *testing.B) string {
	b.Helper()
	cliOnce.Do(func() {
		cliBin = filepath.Join(workDir, "anonwatch")
		cmd := exec.Command("go", "build", "-trimpath", "-o", cliBin, "github.com/anonwatch/anonwatch/cmd/anonwatch")
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		b.Fatal(cliErr)
	}
	return cliBin
}

// BenchmarkReplay measures `anonwatch replay` over the busy cluster's
// archive (archive_test.go) as a whole process (the built binary, start to
// exit, GOMAXPROCS=2, findings to /dev/null), beside, in the same run and
// on the same two cores, the floor (base64 and gunzip of every delivery,
// and nothing else) and the naive baseline (aws-lambda-go's events.Parse
// of every delivery, then encoding/json of every line into a full audit
// struct, as BenchmarkPipeline defines it), each spreading the archive's
// files over the cores. replay-1core is the whole process on one core.
// scripts/bench-replay.sh prints the table; each figure is events/s and
// the time 10 million events would take at that rate.
func BenchmarkReplay(b *testing.B) {
	dir, info := replayArchive(b)
	bin := anonwatchBinary(b)
	files := make([]string, len(info.Files))
	for i, f := range info.Files {
		files[i] = filepath.Join(dir, f)
	}
	inProcess := func(name string, fn func(string) error) {
		b.Run(name, func(b *testing.B) {
			before := cpuTime(syscall.RUSAGE_SELF)
			for range b.N {
				if err := eachFile(files, fn); err != nil {
					b.Fatal(err)
				}
			}
			perArchive(b, info, cpuTime(syscall.RUSAGE_SELF)-before)
		})
	}
	inProcess("floor", floorFile)
	inProcess("naive", naiveFile)
	run := func(name, bin string, procs int) {
		b.Run(name, func(b *testing.B) {
			var rss int64
			var cpu float64
			for range b.N {
				peak, used, err := replayProcess(bin, dir, procs, info.Events)
				if err != nil {
					b.Fatal(err)
				}
				rss = max(rss, peak)
				cpu += used
			}
			perArchive(b, info, cpu)
			b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
		})
	}
	run("replay", bin, replayProcs)
	run("replay-1core", bin, 1)
	if before := os.Getenv(replayBeforeEnv); before != "" {
		run("replay-before", before, replayProcs)
	}
}

// perArchive reports the rate over the archive, the time 10 million
// events would take at it, and the CPU time (user and system, all cores)
// one pass over the archive took: a figure that other load on the machine
// disturbs less than the time.
func perArchive(b *testing.B, info archiveInfo, cpu float64) {
	rate := float64(info.Events*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(archiveDay/rate, "s/10M")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	b.ReportMetric(0, "ns/op")
}

func cpuTime(who int) float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return seconds(ru.Utime) + seconds(ru.Stime)
}

func seconds(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// eachFile runs fn over files, replayProcs at a time.
func eachFile(files []string, fn func(string) error) error {
	next := make(chan string)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range replayProcs {
		wg.Go(func() {
			for f := range next {
				if err := fn(f); err != nil {
					errs <- fmt.Errorf("%s: %w", f, err)
				}
			}
		})
	}
	for _, f := range files {
		next <- f
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// eachLine calls fn with each line of path.
func eachLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

var dataKey = []byte(`"data":"`)

// floorFile base64-decodes and gunzips every delivery of path, finding its
// data by searching, not parsing.
func floorFile(path string) error {
	var raw []byte
	zr := new(gzip.Reader)
	return eachLine(path, func(line []byte) error {
		i := bytes.Index(line, dataKey)
		j := bytes.LastIndexByte(line, '"')
		if i < 0 || j < i+len(dataKey) {
			return fmt.Errorf("no awslogs.data in %.40q", line)
		}
		data := line[i+len(dataKey) : j]
		raw = slicesGrow(raw, base64.StdEncoding.DecodedLen(len(data)))
		n, err := base64.StdEncoding.Decode(raw, data)
		if err != nil {
			return err
		}
		if err := zr.Reset(bytes.NewReader(raw[:n])); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, zr)
		return err
	})
}

func slicesGrow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// naiveFile decodes every delivery of path as aws-lambda-go does and every
// line into a full audit struct with encoding/json.
func naiveFile(path string) error {
	return eachLine(path, func(line []byte) error {
		var ev events.CloudwatchLogsEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return err
		}
		p, err := ev.AWSLogs.Parse()
		if err != nil {
			return err
		}
		for _, le := range p.LogEvents {
			var e synth.NaiveEvent
			_ = json.Unmarshal([]byte(le.Message), &e) // skipped, as the detector skips it
		}
		return nil
	})
}

var summaryEvents = regexp.MustCompile(`batches \(\d+ control\), (\d+) events`)

// replayProcess runs `bin replay dir` on procs cores and returns its peak
// resident set in KiB and its CPU time in seconds, after checking that it
// read every event. The peak is the child's VmHWM, read every 20 ms while
// it runs: the last reading misses at most what it grew by in its last
// 20 ms. (Its rusage would not do: a child started by os/exec shares the
// parent's memory until it execs, and Linux keeps the parent's peak as
// the child's.)
func replayProcess(bin, dir string, procs, events int) (peakKiB int64, cpu float64, err error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, 0, err
	}
	defer null.Close()
	cmd := exec.Command(bin, "replay", dir)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = null, &stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	done := make(chan struct{})
	sampled := make(chan int64)
	go func() {
		pid := strconv.Itoa(cmd.Process.Pid)
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procStatusOf(pid, "VmHWM"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-done:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	peakKiB = <-sampled
	if err != nil {
		return 0, 0, fmt.Errorf("%s replay: %v\n%s", bin, err, stderr.Bytes())
	}
	m := summaryEvents.FindSubmatch(stderr.Bytes())
	if m == nil || string(m[1]) != strconv.Itoa(events) {
		return 0, 0, fmt.Errorf("%s replay: want %d events in the summary:\n%s", bin, events, stderr.Bytes())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return 0, 0, errors.New("no resource usage: not Linux?")
	}
	return peakKiB, seconds(ru.Utime) + seconds(ru.Stime), nil
}
