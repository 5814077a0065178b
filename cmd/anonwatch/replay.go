package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/logsource"
	"github.com/anonwatch/anonwatch/internal/memstate"
	"github.com/anonwatch/anonwatch/internal/rules"
)

// maxWorkers bounds --workers: past the cores there is nothing to gain,
// and each worker may hold a batch.
const maxWorkers = 256

// replayed is a batch prepared for commit: by the detector for state
// (prepared), or aggregated for --report (aggs and res).
type replayed struct {
	prepared *detect.Prepared
	aggs     []detect.Aggregate
	res      detect.Result
}

// inputError marks a failure to read input: exit status 2, like usage.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func replayCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesFile := fs.String("rules", "", "rule file (default: the embedded rules)")
	cluster := fs.String("cluster", "local", "cluster name for input that carries no log group: JSON lines, CloudWatch Logs exports, filter-log-events and get-log-events output, messages Firehose extracted")
	report := fs.Bool("report", false, "print the aggregate table over the whole input, ignoring thresholds, windows and suppression")
	table := fs.String("table", "", "use this DynamoDB table for state instead of memory (honours AWS_ENDPOINT_URL_DYNAMODB); in the function's table, events from when the function began counting are left to it")
	liveSince := fs.String("live-since", "", "with --table: count only the events before this time, RFC 3339 or a date, or every event with \"none\" (default: the time the function began counting, which it keeps in the table)")
	topic := fs.String("topic", "", "with --table: publish to this SNS topic (honours AWS_ENDPOINT_URL_SNS) each finding whose last request is within its rule's suppression period of now, as the function would; print the older ones")
	publishAll := fs.Bool("publish", false, "with --topic: publish the older findings too")
	format := fs.String("format", "json", "how to print each finding: json (the document, one per line), email (subject and body), chat (the Amazon Q notification) or slack (the Block Kit message, one per line)")
	logGroup := fs.String("log-group", "", "read this CloudWatch Logs log group through FilterLogEvents (the SDK's standard configuration; AWS_ENDPOINT_URL_CLOUDWATCH_LOGS honoured), between --start and --end")
	start := fs.String("start", "", "with --log-group: the first event time to read, RFC 3339 or a date (default: 24 hours before --end)")
	end := fs.String("end", "", "with --log-group: the time to read up to, not included, RFC 3339 or a date (default: now)")
	pattern := fs.String("pattern", "", "with --log-group: the filter pattern the server applies (default: a text-term pattern of the rules' pre-filter strings, as the template deploys; the detector judges every event it gets either way)")
	account := fs.String("account", "", "the AWS account of input that does not name it (every format but subscription events and payloads, which carry their owner); findings name it")
	region := fs.String("region", "", "the AWS region of the input (no format names it); findings name it")
	qualify := fs.Bool("qualify", false, "keep apart clusters of one name in different accounts and regions, as an organization stack's detector does (QUALIFY_CLUSTERS); needed to replay into that stack's --table")
	maxPayload := fs.Int64("max-payload", cwlogs.DefaultLimits.MaxDecompressed>>20, "MiB of log lines one delivery may keep (the function's bound): lines past it are cut to their first 8 KiB and reported as damaged; raise it to replay such a delivery whole")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "inputs read and batches decoded at once, by default one per core Go may use; state, findings and the report still take batches one at a time in input order, so the output is the same for any number")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: anonwatch replay [--rules FILE] [--cluster NAME] [--format json|email|chat|slack] [--report] [--table NAME [--live-since TIME|none] [--topic ARN [--publish]]] [--max-payload MIB] [--workers N] FILE|FOLDER|s3://BUCKET/PREFIX...")
		fmt.Fprintln(stderr, "       anonwatch replay [flags] --log-group NAME [--start TIME] [--end TIME] [--pattern PATTERN]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 && *logGroup == "" {
		fs.Usage()
		return exitUsage
	}
	var from, to time.Time
	if *logGroup != "" {
		var err error
		to = time.Now().UTC()
		if *end != "" {
			if to, err = parseTime(*end); err != nil {
				fmt.Fprintln(stderr, "anonwatch replay: --end:", err)
				return exitUsage
			}
		}
		from = to.Add(-24 * time.Hour)
		if *start != "" {
			if from, err = parseTime(*start); err != nil {
				fmt.Fprintln(stderr, "anonwatch replay: --start:", err)
				return exitUsage
			}
		}
		if !from.Before(to) {
			fmt.Fprintln(stderr, "anonwatch replay: --start must come before --end")
			return exitUsage
		}
	} else if *start != "" || *end != "" || *pattern != "" {
		fmt.Fprintln(stderr, "anonwatch replay: --start, --end and --pattern go with --log-group")
		return exitUsage
	}
	if *maxPayload <= 0 || *maxPayload > 1<<20 {
		fmt.Fprintln(stderr, "anonwatch replay: --max-payload must be between 1 and 1048576 (MiB)")
		return exitUsage
	}
	if *workers < 1 || *workers > maxWorkers {
		fmt.Fprintf(stderr, "anonwatch replay: --workers must be between 1 and %d\n", maxWorkers)
		return exitUsage
	}
	if *report && *table != "" {
		fmt.Fprintln(stderr, "anonwatch replay: --report and --table exclude each other")
		return exitUsage
	}
	if *table == "" && (*liveSince != "" || *topic != "") {
		fmt.Fprintln(stderr, "anonwatch replay: --live-since and --topic go with --table")
		return exitUsage
	}
	if *publishAll && *topic == "" {
		fmt.Fprintln(stderr, "anonwatch replay: --publish goes with --topic")
		return exitUsage
	}
	var override *time.Time
	switch *liveSince {
	case "":
	case "none":
		override = new(time.Time)
	default:
		t, err := parseTime(*liveSince)
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch replay: --live-since:", err)
			return exitUsage
		}
		override = &t
	}
	pub, err := newPublisher(*format, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch replay:", err)
		return exitUsage
	}
	if *report && *format != "json" {
		fmt.Fprintln(stderr, "anonwatch replay: --report and --format "+*format+" exclude each other: the report lists aggregates, not findings")
		return exitUsage
	}
	set, err := loadRules(*rulesFile)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch replay:", err)
		return exitUsage
	}
	inputs, err := expandInputs(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch replay:", err)
		return exitUsage
	}
	logger := slog.New(orderedHandler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})})
	lim := cwlogs.DefaultLimits
	lim.MaxDecompressed = *maxPayload << 20
	lim.MaxInflated = max(lim.MaxInflated, lim.MaxDecompressed)
	rd := &reader{cluster: *cluster, lim: lim, maxLine: audit.DefaultMaxSize}

	var (
		state detect.State
		calls func() int64
		fence *liveFence
		route *router
	)
	switch {
	case *table != "":
		st, err := newTableState(ctx, *table)
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch replay:", err)
			return exitError
		}
		state, calls = st, st.Calls
		fence = &liveFence{marks: st, override: override}
		if *topic != "" {
			sns, err := newTopicPublisher(ctx, *topic)
			if err != nil {
				fmt.Fprintln(stderr, "anonwatch replay:", err)
				return exitError
			}
			route = newRouter(sns, pub, set, *publishAll, time.Now)
			pub = route
		}
	default:
		state = memstate.New(time.Now, memstate.DefaultLease)
	}
	maxGroups := 0 // the function's bound, so replay finds what it would
	if *report {
		maxGroups = -1 // a report lists every source
	}
	cfg := detect.Config{
		Rules:     set,
		State:     state,
		Publisher: pub,
		Logger:    logger,
		MaxGroups: maxGroups,
		// Held findings merged in order: a digest samples the same
		// sources every run, and from a table as from memory.
		HoldWorkers: 1,
		Qualify:     *qualify,
	}
	if fence != nil {
		// A subscription event (from the dead-letter queue) is the
		// function's delivery: applied here, it marks the cluster as
		// the function would have, so that a backfill leaves it alone.
		cfg.Fence, cfg.MarkLive = fence.fence, true
	}
	det, err := detect.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch replay:", err)
		return exitUsage
	}

	rd.keep = det.Keep

	began := time.Now()
	var total totals
	var rep *reportTable
	if *report {
		rep = newReportTable(set)
	}
	// findings counts what was published so far, for the progress line,
	// which the readers print while commit runs.
	var findings atomic.Int64
	var srcs *sources
	if *logGroup != "" || slices.ContainsFunc(inputs, isS3) {
		srcs = newSources(ctx, stderr)
	}
	var group *logsource.LogGroup
	if *logGroup != "" {
		p := *pattern
		if p == "" {
			p = textPattern(set)
		}
		group = &logsource.LogGroup{Name: *logGroup, Start: from, End: to, Pattern: p}
		inputs = append(inputs, logGroupInput)
	}
	count := func() int { return int(findings.Load()) }
	prog := newProgress(stderr, inputs)
	evalBefore := set.EvalErrors()
	pl := pipeline[replayed]{
		workers: *workers,
		read: func(name string, emit func(*cwlogs.Batch) error) error {
			switch {
			case name == logGroupInput:
				return srcs.logGroup(ctx, group, emit, count)
			case isS3(name):
				return srcs.prefix(ctx, name, func(obj string, r io.Reader) error { return rd.each(obj, r, emit) }, count)
			}
			return withInput(name, stdin, prog, func(r io.Reader) error {
				return rd.each(name, r, emit)
			})
		},
		prepare: func(pctx context.Context, b *cwlogs.Batch) replayed {
			if b.Owner == "" {
				b.Owner = *account
			}
			if b.Region == "" {
				b.Region = *region
			}
			if rep != nil {
				aggs, res := det.AggregateContext(pctx, b)
				return replayed{aggs: aggs, res: res}
			}
			return replayed{prepared: det.Prepare(pctx, b)}
		},
		commit: func(r replayed) error {
			if rep != nil {
				total.add(&r.res)
				rep.add(r.aggs)
				return nil
			}
			res, err := det.Commit(ctx, r.prepared)
			total.add(&res)
			findings.Add(int64(res.Published))
			if err != nil {
				return &pipelineError{err}
			}
			return nil
		},
	}
	err = pl.run(ctx, inputs)
	prog.done()
	// Summed over the run, not over batches: those prepared at once
	// would count each other's errors.
	total.evalErrors = set.EvalErrors() - evalBefore
	if err != nil {
		fmt.Fprintln(stderr, "anonwatch replay:", err)
		var ie inputError
		if errors.As(err, &ie) {
			return exitUsage
		}
		return exitError
	}
	if rep != nil {
		if err := rep.write(stdout); err != nil {
			fmt.Fprintln(stderr, "anonwatch replay:", err)
			return exitError
		}
	}
	total.files = len(inputs)
	if fence != nil {
		total.fences = fence.marksRead()
	}
	if route != nil {
		total.routed = [2]int64{route.published.Load(), route.printed.Load()}
	}
	fmt.Fprintln(stderr, total.summary(*report, time.Since(began), calls))
	return exitOK
}

// logGroupInput stands for --log-group among the inputs: no file name can
// be empty.
const logGroupInput = ""

// withInput opens name ("-" is stdin) and runs fn over it. Errors opening
// or reading the input are inputErrors.
func withInput(name string, stdin io.Reader, prog *progress, fn func(io.Reader) error) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return inputError{err}
		}
		defer f.Close()
		r = f
	}
	err := fn(prog.wrap(r))
	var pe *pipelineError
	if err != nil && !errors.As(err, &pe) {
		return inputError{err}
	}
	return err
}

// pipelineError marks a failure of state or publishing, as opposed to input.
type pipelineError struct{ err error }

func (e *pipelineError) Error() string { return e.err.Error() }
func (e *pipelineError) Unwrap() error { return e.err }

func loadRules(path string) (*rules.Set, error) {
	if path == "" {
		return rules.Default()
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return rules.Load(path, src)
}

// totals adds up batch results for the summary line.
type totals struct {
	files, batches, control                     int
	events, filtered, parsed, matched, due, pub int
	suppressed, aggregates, damaged             int
	evalErrors                                  int64 // over the run, from the rule set
	skipped                                     map[string]int
	fenced                                      int
	fences                                      map[string]map[string]time.Time // per cluster and stream, the function's marks
	routed                                      [2]int64                        // with --topic: published to it, printed
}

func (t *totals) add(r *detect.Result) {
	t.batches++
	if r.Control {
		t.control++
	}
	t.events += r.Events
	t.filtered += r.Filtered
	t.parsed += r.Parsed
	t.damaged += r.Damaged
	t.matched += r.Matched
	t.aggregates += r.Aggregates
	t.due += r.Due
	t.pub += r.Published
	t.suppressed += r.Suppressed
	t.fenced += r.Fenced
	for k, v := range r.Skipped {
		if t.skipped == nil {
			t.skipped = map[string]int{}
		}
		t.skipped[k] += v
	}
}

func (t *totals) summary(report bool, took time.Duration, calls func() int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "anonwatch replay: %d files, %d batches (%d control), %d events: %d filtered, %d parsed", t.files, t.batches, t.control, t.events, t.filtered, t.parsed)
	if t.damaged > 0 {
		fmt.Fprintf(&b, " (%d damaged: cut, too large or not JSON, salvaged)", t.damaged)
	}
	fmt.Fprintf(&b, ", %d skipped", sum(t.skipped))
	if len(t.skipped) > 0 {
		keys := make([]string, 0, len(t.skipped))
		for k := range t.skipped {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, t.skipped[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "; %d matches", t.matched)
	if t.evalErrors > 0 {
		fmt.Fprintf(&b, ", %d rule evaluation errors", t.evalErrors)
	}
	if !report {
		fmt.Fprintf(&b, "; %d findings due, %d published, %d suppressed", t.due, t.pub, t.suppressed)
		if t.routed != [2]int64{} {
			fmt.Fprintf(&b, " (%d to the topic, %d printed)", t.routed[0], t.routed[1])
		}
	}
	if t.fenced > 0 || len(t.fences) > 0 {
		fmt.Fprintf(&b, "; %d events left to the function", t.fenced)
		clusters := slices.Sorted(maps.Keys(t.fences))
		var parts []string
		for _, c := range clusters {
			var first, last time.Time
			n := 0
			for _, m := range t.fences[c] {
				if m.IsZero() {
					continue
				}
				if n++; n == 1 || m.Before(first) {
					first = m
				}
				if m.After(last) {
					last = m
				}
			}
			switch {
			case n == 1:
				parts = append(parts, fmt.Sprintf("%s from %s", c, first.Format(time.RFC3339Nano)))
			case n > 1:
				parts = append(parts, fmt.Sprintf("%s's %d log streams from %s to %s", c, n, first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano)))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, ", which counts %s", strings.Join(parts, ", "))
		}
	}
	if calls != nil {
		fmt.Fprintf(&b, "; %d DynamoDB calls", calls())
	}
	fmt.Fprintf(&b, " (%s)", took.Round(time.Millisecond))
	return b.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// reportTable merges aggregates over the whole input.
type reportTable struct {
	rules map[string]*rules.Rule
	aggs  map[string]*detect.Aggregate
}

func newReportTable(set *rules.Set) *reportTable {
	t := &reportTable{rules: map[string]*rules.Rule{}, aggs: map[string]*detect.Aggregate{}}
	for _, r := range set.Rules() {
		t.rules[r.ID] = r
	}
	return t
}

func (t *reportTable) add(aggs []detect.Aggregate) {
	for i := range aggs {
		a := &aggs[i]
		if cur := t.aggs[a.Key]; cur != nil {
			cur.Merge(a)
			continue
		}
		cp := *a
		cp.Buckets = nil
		t.aggs[a.Key] = &cp
	}
}

// reportValueFields are the values of ESCU's stats clause, the columns of
// every --report line.
var reportValueFields = []rules.Field{rules.FieldReason, rules.FieldCode, rules.FieldUserAgent, rules.FieldVerb, rules.FieldRequestURI}

// reportRow is one line of --report, in the shape of an ESCU stats search.
// Group fields are pointers so a field the rule does not group by is left
// out, while a grouped empty value still prints.
type reportRow struct {
	Rule            string              `json:"rule"`
	SrcIP           *string             `json:"src_ip,omitempty"`
	SrcNet          *string             `json:"src_net,omitempty"`
	ClusterName     *string             `json:"cluster_name,omitempty"`
	User            *string             `json:"user,omitempty"`
	Groups          *[]string           `json:"groups,omitempty"`
	UserAgent       *string             `json:"user_agent,omitempty"`
	Count           int64               `json:"count"`
	FirstSeen       string              `json:"first_seen"`
	LastSeen        string              `json:"last_seen"`
	Values          map[string][]string `json:"values"`
	ValuesTruncated bool                `json:"values_truncated,omitempty"`
}

func (t *reportTable) write(w io.Writer) error {
	keys := make([]string, 0, len(t.aggs))
	for k := range t.aggs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := t.aggs[keys[i]], t.aggs[keys[j]]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return keys[i] < keys[j]
	})
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, k := range keys {
		a := t.aggs[k]
		row := reportRow{
			Rule:            a.Rule,
			Count:           a.Count,
			FirstSeen:       a.FirstSeen.UTC().Format(time.RFC3339Nano),
			LastSeen:        a.LastSeen.UTC().Format(time.RFC3339Nano),
			Values:          map[string][]string{},
			ValuesTruncated: a.ValuesTruncated,
		}
		g := a.Group
		for _, f := range t.rules[a.Rule].GroupBy {
			switch f {
			case rules.FieldSrcIP:
				row.SrcIP = &g.SrcIP
			case rules.FieldSrcNet:
				row.SrcNet = &g.SrcNet
			case rules.FieldClusterName:
				row.ClusterName = &g.ClusterName
			case rules.FieldUser:
				row.User = &g.User
			case rules.FieldGroups:
				gs := g.Groups
				if gs == nil {
					gs = []string{}
				}
				row.Groups = &gs
			case rules.FieldUserAgent:
				row.UserAgent = &g.UserAgent
			}
		}
		for _, f := range reportValueFields {
			if vs := a.Values[string(f)]; len(vs) > 0 {
				row.Values[string(f)] = vs
			} else {
				row.Values[string(f)] = []string{}
			}
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}
