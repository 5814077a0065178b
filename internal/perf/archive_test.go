package perf

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// The archive BenchmarkReplay replays: a busy cluster's audit log as its
// subscription delivered it, kept as files of Lambda events, one
// {"awslogs":{"data":...}} per line, as a capture of the function's input
// or a backfill would hold it.
//
// The cluster writes 10 million audit events a day (one every 8.64 ms),
// 0.1% of them anonymous, from two API server log streams. CloudWatch Logs
// delivers each stream every 5 seconds (the cost model's assumption in
// docs/performance.md), so a delivery holds about 289 events; a file holds
// five minutes of deliveries. Authenticated traffic is 300 nodes' kubelets
// and 3,000 applications' service accounts besides the control plane, and
// anonymous probes come from 254 addresses, so lines repeat neither
// content nor source.
const (
	archiveDay      = 10_000_000
	archiveStep     = 24 * time.Hour / archiveDay
	archiveDelivery = 5 * time.Second
	archiveFileSpan = 5 * time.Minute
	archiveGroup    = "/aws/eks/busy/cluster"
)

// archiveStart is midnight of the archive's day.
var archiveStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// archiveStreams are the API servers' audit log streams.
var archiveStreams = []string{
	"kube-apiserver-audit-1f2e3d4c5b6a79880796a5b4c3d2e1f0",
	"kube-apiserver-audit-9a8b7c6d5e4f30211203f4e5d6c7b8a9",
}

// archiveMix is the traffic of the busy cluster.
func archiveMix() synth.Mix {
	var scanners []string
	// Documentation addresses only (RFC 5737, RFC 3849).
	for i := range 84 {
		scanners = append(scanners,
			fmt.Sprintf("203.0.113.%d", 1+i),
			fmt.Sprintf("198.51.100.%d", 1+i),
			fmt.Sprintf("192.0.2.%d", 1+i))
	}
	scanners = append(scanners, "2001:db8:5c4::17", "2001:db8:a0b:12f0::1")
	return synth.Mix{Anonymous: 0.001, RequestReceived: 0.01, ScannerIPs: scanners, Nodes: 300, Workloads: 3000}
}

// archiveInfo describes a written archive.
type archiveInfo struct {
	Events     int      `json:"events"`
	Deliveries int      `json:"deliveries"`
	Bytes      int64    `json:"bytes"` // of the files
	Files      []string `json:"files"` // base names, in time order
}

// archiveManifest is kept beside the files, so a folder written once can
// serve later runs (ANONWATCH_REPLAY_ARCHIVE).
const archiveManifest = "manifest.txt"

// writeArchive writes the first n events of the busy cluster's day into
// dir, or reuses what an earlier call wrote there for the same n.
func writeArchive(dir string, n int) (archiveInfo, error) {
	var info archiveInfo
	if raw, err := os.ReadFile(filepath.Join(dir, archiveManifest)); err == nil {
		if json.Unmarshal(raw, &info) == nil && info.Events == n {
			return info, nil
		}
		info = archiveInfo{}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return info, err
	}
	g := synth.New(2026, archiveStart, archiveStep, archiveMix())
	perFile := int(archiveFileSpan / archiveStep)
	perDelivery := int(archiveDelivery / archiveStep)
	nextID := 1
	for first := 0; first < n; first += perFile {
		lines := make([][]byte, min(perFile, n-first))
		for i := range lines {
			lines[i] = g.Next()
		}
		// Deliveries in the order CloudWatch Logs would make them: each
		// stream's events of one 5-second span, stream by stream.
		var batches []cwlogs.Batch
		for d := 0; d < len(lines); d += perDelivery {
			span := lines[d:min(d+perDelivery, len(lines))]
			for s, stream := range archiveStreams {
				var own [][]byte
				for i := s; i < len(span); i += len(archiveStreams) {
					own = append(own, span[i])
				}
				batches = append(batches, synth.Batch(own, archiveGroup, stream, nextID))
				nextID += len(own)
			}
		}
		name := fmt.Sprintf("audit-%s.json", archiveStart.Add(time.Duration(first)*archiveStep).Format("20060102T1504"))
		size, err := writeDeliveries(filepath.Join(dir, name), batches)
		if err != nil {
			return info, err
		}
		info.Events += len(lines)
		info.Deliveries += len(batches)
		info.Bytes += size
		info.Files = append(info.Files, name)
	}
	raw, err := json.Marshal(info)
	if err != nil {
		return info, err
	}
	return info, os.WriteFile(filepath.Join(dir, archiveManifest), raw, 0o644)
}

// writeDeliveries writes each batch's Lambda event as a line of path,
// compressing them on every core, and returns the file's size.
func writeDeliveries(path string, batches []cwlogs.Batch) (int64, error) {
	events := make([][]byte, len(batches))
	errs := make([]error, len(batches))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				events[i], errs[i] = cwlogs.Encode(batches[i])
			}
		})
	}
	for i := range batches {
		next <- i
	}
	close(next)
	wg.Wait()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
	var size int64
	for i, ev := range events {
		if errs[i] != nil {
			f.Close()
			return 0, errs[i]
		}
		w.Write(ev)
		w.WriteByte('\n')
		size += int64(len(ev)) + 1
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return size, f.Close()
}
