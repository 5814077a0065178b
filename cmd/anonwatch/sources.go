package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/logsource"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// isS3 reports whether an input names an S3 prefix rather than a file.
func isS3(name string) bool { return strings.HasPrefix(name, "s3://") }

// textPattern is a CloudWatch Logs text-term pattern that forwards every
// line one of set's rules can match: each rule's pre-filter strings, any
// of them. A JSON pattern would drop the cut lines salvage reads. It is ""
// (every line) when a rule has no pre-filter. The default rules give the
// template's pattern, with the string "[Truncated...]" in it as well.
func textPattern(set *rules.Set) string {
	var terms []string
	for _, r := range set.Rules() {
		if len(r.RequiresAny) == 0 {
			return ""
		}
		for _, s := range r.RequiresAny {
			if !slices.Contains(terms, s) {
				terms = append(terms, s)
			}
		}
	}
	var b strings.Builder
	for i, s := range terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("?" + strconv.Quote(s))
	}
	return b.String()
}

// parseTime reads a --start or --end: RFC 3339, or a date (UTC midnight).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date (2026-11-01)", s)
}

// sources opens what replay reads through AWS: a log group and S3
// prefixes, with the SDK's standard configuration, once either is asked
// for.
type sources struct {
	cfgErr error
	logs   logsource.LogsAPI
	store  logsource.S3API
	// status prints progress to a terminal; nil when stderr is not one.
	status io.Writer
}

func newSources(ctx context.Context, stderr io.Writer) *sources {
	s := &sources{}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		s.cfgErr = fmt.Errorf("load AWS config: %w", err)
		return s
	}
	s.logs, s.store = logsource.NewClients(cfg)
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.status = stderr
		}
	}
	return s
}

// logGroup reads g's events, showing events read and time reached.
func (s *sources) logGroup(ctx context.Context, g *logsource.LogGroup, fn func(*cwlogs.Batch) error, findings func() int) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	g.API = s.logs
	defer s.clear()
	return g.Each(ctx, fn, func(p logsource.Progress) {
		s.show("log group %s: %d events, reached %s, %d findings", g.Name, p.Events, p.Reached.Format(time.RFC3339), findings())
	})
}

// prefix reads every object under url as a file of its own.
func (s *sources) prefix(ctx context.Context, url string, read func(name string, r io.Reader) error, findings func() int) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	bucket, prefix, err := logsource.ParseS3URL(url)
	if err != nil {
		return err
	}
	defer s.clear()
	p := &logsource.Prefix{API: s.store, Bucket: bucket, Prefix: prefix}
	return p.Each(ctx, func(key string, body io.Reader) error {
		return read("s3://"+bucket+"/"+key, body)
	}, func(p logsource.Progress) {
		s.show("%s: %d objects, %d findings", url, p.Pages, findings())
	})
}

func (s *sources) show(format string, args ...any) {
	if s.status != nil {
		fmt.Fprintf(s.status, "\r\033[Kanonwatch replay: "+format, args...)
	}
}

func (s *sources) clear() {
	if s.status != nil {
		fmt.Fprint(s.status, "\r\033[K")
	}
}
