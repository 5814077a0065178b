// Package logsource reads audit history from where AWS keeps it: a log
// group, page by page through the CloudWatch Logs FilterLogEvents API, and
// the objects under an S3 prefix (CloudWatch Logs exports, Firehose
// archives), one object at a time as a stream. It is an adapter: the CLI
// decodes what it yields as it decodes files.
package logsource

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

// LogsAPI is the part of the CloudWatch Logs client a LogGroup uses.
type LogsAPI interface {
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// LogGroup reads the events of one log group between Start and End.
type LogGroup struct {
	API  LogsAPI
	Name string
	// Start and End bound the events' CloudWatch timestamps: [Start, End).
	Start, End time.Time
	// Pattern is the filter pattern the server applies. It only saves
	// transfer: the detector judges every event it gets, and an emulator
	// that ignores a pattern (moto ignores JSON ones) changes nothing.
	Pattern string
	// PageSize, when set, bounds the events of one page (the API's
	// default, and most, is 10,000).
	PageSize int32
}

// Progress is what a source has read so far.
type Progress struct {
	Events  int64     // log events read
	Reached time.Time // the latest CloudWatch timestamp read
	Pages   int64     // API pages or objects read
}

// Each calls fn with the events of each page, one batch per log stream in
// the page, in the order the page lists the streams first. Pages come in
// the order the API gives them, which promises no time order across
// streams: the detector needs none. progress, when set, is called after
// each page.
func (g *LogGroup) Each(ctx context.Context, fn func(*cwlogs.Batch) error, progress func(Progress)) error {
	in := &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(g.Name),
	}
	if !g.Start.IsZero() {
		in.StartTime = aws.Int64(g.Start.UnixMilli())
	}
	if !g.End.IsZero() {
		// EndTime is inclusive; End is not.
		in.EndTime = aws.Int64(g.End.UnixMilli() - 1)
	}
	if g.Pattern != "" {
		in.FilterPattern = aws.String(g.Pattern)
	}
	if g.PageSize > 0 {
		in.Limit = aws.Int32(g.PageSize)
	}
	var p Progress
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(g.API, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("log group %s: FilterLogEvents after %d events: %w", g.Name, p.Events, err)
		}
		p.Pages++
		byStream := map[string]*cwlogs.Batch{}
		var order []string
		for _, e := range out.Events {
			stream := aws.ToString(e.LogStreamName)
			b := byStream[stream]
			if b == nil {
				b = &cwlogs.Batch{
					MessageType: cwlogs.DataMessage,
					LogGroup:    g.Name,
					LogStream:   stream,
					Cluster:     cwlogs.ClusterName(g.Name),
					// Cut from pages, not delivered: replay --table
					// leaves out what the function counted of it.
					Gathered: true,
				}
				byStream[stream] = b
				order = append(order, stream)
			}
			msg := aws.ToString(e.Message)
			b.Events = append(b.Events, cwlogs.LogEvent{
				ID:        aws.ToString(e.EventId),
				Timestamp: aws.ToInt64(e.Timestamp),
				Message:   []byte(msg),
				Size:      len(msg),
			})
			p.Events++
			if t := time.UnixMilli(aws.ToInt64(e.Timestamp)); t.After(p.Reached) {
				p.Reached = t.UTC()
			}
		}
		for _, s := range order {
			if err := fn(byStream[s]); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(p)
		}
	}
	return nil
}

// S3API is the part of the S3 client a Prefix uses.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Prefix reads the objects under one S3 prefix.
type Prefix struct {
	API    S3API
	Bucket string
	Prefix string
}

// ParseS3URL splits s3://bucket/prefix into its bucket and prefix.
func ParseS3URL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", s)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}

// Each lists the objects under the prefix, in key order, and calls fn with
// each one's key and body, streamed: fn reads it and must not keep it.
// Objects of 0 bytes (the folder markers the console writes) and S3's own
// aws-logs-write-test object are skipped.
func (p *Prefix) Each(ctx context.Context, fn func(key string, body io.Reader) error, progress func(Progress)) error {
	var prog Progress
	pages := s3.NewListObjectsV2Paginator(p.API, &s3.ListObjectsV2Input{
		Bucket: aws.String(p.Bucket),
		Prefix: aws.String(p.Prefix),
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3://%s/%s: list: %w", p.Bucket, p.Prefix, err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			if aws.ToInt64(o.Size) == 0 || strings.HasSuffix(key, "aws-logs-write-test") {
				continue
			}
			if err := p.read(ctx, key, fn); err != nil {
				return err
			}
			prog.Pages++
			if progress != nil {
				progress(prog)
			}
		}
	}
	return nil
}

func (p *Prefix) read(ctx context.Context, key string, fn func(string, io.Reader) error) error {
	obj, err := p.API.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("s3://%s/%s: get: %w", p.Bucket, key, err)
	}
	defer obj.Body.Close()
	if err := fn(key, obj.Body); err != nil {
		return fmt.Errorf("s3://%s/%s: %w", p.Bucket, key, err)
	}
	return nil
}

// NewClients returns the CloudWatch Logs and S3 clients of cfg, the SDK's
// standard configuration (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS and
// AWS_ENDPOINT_URL_S3 included). With an S3 endpoint of its own (an
// emulator, a VPC endpoint by address) the S3 client addresses buckets by
// path, since bucket.host names do not resolve there.
func NewClients(cfg aws.Config) (*cloudwatchlogs.Client, *s3.Client) {
	pathStyle := os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	return cloudwatchlogs.NewFromConfig(cfg), s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		// An object without a checksum (an emulator's, an old upload's)
		// is read all the same; the SDK need not say so on stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}
