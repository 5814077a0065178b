package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// A CloudWatch Logs export to S3 (create-export-task) writes one object per
// log stream and chunk, <prefix>/<task id>/<log stream>/000000.gz, gzipped,
// each line a log event: its timestamp, a space, its message. The objects
// name no log group and hold no event ids, and AWS does not promise time
// order inside one.

// exportStampLayout is how an export writes a log event's timestamp.
const exportStampLayout = "2006-01-02T15:04:05.000Z07:00"

// exportLine returns the line an export writes for a log event.
func exportLine(ms int64, message string) []byte {
	return []byte(time.UnixMilli(ms).UTC().Format(exportStampLayout) + " " + message)
}

// exportStamp returns the timestamp that starts an export's line, in
// milliseconds since the epoch, and the length of the prefix it takes with
// the space after it.
func exportStamp(line []byte) (ms int64, n int, ok bool) {
	sp := bytes.IndexByte(line[:min(len(line), 40)], ' ')
	if sp < len("2006-01-02T15:04:05Z") || line[0] < '0' || line[0] > '9' {
		return 0, 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
	if err != nil {
		return 0, 0, false
	}
	return t.UnixMilli(), sp + 1, true
}

func hasExportStamp(head []byte) bool {
	_, _, ok := exportStamp(head)
	return ok
}

// exportStream returns the log stream an export's object holds, from its
// path laid out as the export's keys are (`aws s3 sync` or `cp --recursive`
// keeps them): .../<log stream>/000000.gz. It returns "" for a path not
// laid out so.
func exportStream(name string) string {
	dir, file := filepath.Split(name)
	file, _ = strings.CutSuffix(file, ".gz")
	if file == "" || dir == "" || !allDigits(file) {
		return ""
	}
	stream := filepath.Base(dir)
	if stream == "." || stream == ".." || stream == string(filepath.Separator) {
		return ""
	}
	return stream
}

// fileStream names the log stream of an input whose content names none
// (JSON lines, get-log-events output, extracted messages): the file's own
// name, without its folders, so that the same file makes the same batches
// (detect.BatchID) wherever it is read from, and replay --table of it
// again changes nothing; and without the extensions replay reads, so that
// a file named after its log stream (kube-apiserver-audit-….jsonl, as
// get-log-events output is saved) is fenced by that stream's live mark
// (detect.FenceOf).
func fileStream(name string) string {
	base := filepath.Base(name)
	if isS3(name) {
		base = path.Base(name)
	}
	for _, ext := range []string{".gz", ".jsonl", ".json"} {
		if s, ok := strings.CutSuffix(base, ext); ok && s != "" {
			base = s
		}
	}
	return base
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// export reads an export's lines. Each keeps its timestamp, and takes an
// id from its content (eventID of the line as it stands). A line without a
// timestamp, such as the second line of a message that spans lines, is an
// event of its own without one. The cluster is --cluster's: neither the
// lines nor the keys name the log group.
func (rd *reader) export(name string, br *bufio.Reader, bt *batcher) error {
	o := origin{cluster: rd.cluster, logStream: exportStream(name)}
	if o.logStream == "" {
		o.logStream = fileStream(name)
	}
	// Room for the timestamp, so that a message is cut where a JSON
	// line would be.
	const stampRoom = 64
	for n := 1; ; n++ {
		line, err := readLine(br, rd.maxLine+stampRoom)
		if len(bytes.TrimSpace(line)) > 0 {
			ms, k, _ := exportStamp(line)
			e := cwlogs.LogEvent{ID: eventID(line), Timestamp: ms, Message: line[k:]}
			if aerr := bt.add(o, e); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
}
