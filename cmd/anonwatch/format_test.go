package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

// formatInput gives four findings: two sources each make an allowed
// anonymous proxy request (critical) and a low scan finding. The request
// URI holds a URL, which the e-mail must defang.
const formatInput = "testdata/replay-format.jsonl"

// TestReplayFormats checks that each --format prints, for every finding
// that --format json prints and in the same order, the rendering that
// subscriber gets, and that the renderings show what matters.
func TestReplayFormats(t *testing.T) {
	code, jsonOut, stderr := runCLI(t, "", "replay", "--cluster", "demo", formatInput)
	if code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	var findings []*detect.Finding
	for _, line := range strings.SplitAfter(jsonOut, "\n") {
		if line == "" {
			continue
		}
		var f detect.Finding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("replay output line %q: %v", line, err)
		}
		findings = append(findings, &f)
	}
	if len(findings) < 2 {
		t.Fatalf("%s gives %d findings; the test needs several, to see them kept apart", formatInput, len(findings))
	}

	lines := func(out string) []string {
		ls := strings.SplitAfter(out, "\n")
		return ls[:len(ls)-1] // after the last newline
	}
	tests := []struct {
		format string
		// split cuts the output into one part per finding.
		split func(string) []string
		// want renders f as the part for it should read.
		want func(t *testing.T, f *detect.Finding) string
		// check looks at one part.
		check func(t *testing.T, part string)
		// has and hasNot are in, and absent from, the whole output.
		has, hasNot []string
	}{
		{
			format: "json",
			split:  lines,
			want: func(t *testing.T, f *detect.Finding) string {
				b, err := render.JSON(f)
				if err != nil {
					t.Fatal(err)
				}
				return string(b) + "\n"
			},
			check: func(t *testing.T, part string) {},
		},
		{
			format: "email",
			split:  func(out string) []string { return strings.Split(out, separator) },
			want: func(t *testing.T, f *detect.Finding) string {
				return "Subject: " + render.EmailSubject(f) + "\n\n" + strings.TrimSuffix(render.EmailBody(f), "\n") + "\n"
			},
			check: func(t *testing.T, part string) {
				if !strings.HasPrefix(part, "Subject: [") {
					t.Errorf("e-mail does not start with its subject:\n%s", part)
				}
			},
			has: []string{
				"Subject: [CRITICAL] anonymous-request-allowed on demo from 203.0.113.9\n",
				"Subject: [LOW] eks-cluster-scan on demo from 198.51.100.23\n",
				`"/api/v1/namespaces/default/services/web:80/proxy/?url=http[:]//www[.]evil.example/latest/meta-data/"`,
				"WHAT TO DO",
			},
			hasNot: []string{"http://www.evil.example"},
		},
		{
			format: "chat",
			split:  func(out string) []string { return strings.Split(out, separator) },
			want: func(t *testing.T, f *detect.Finding) string {
				b, err := render.Chat(f)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := json.Indent(&out, b, "", "  "); err != nil {
					t.Fatal(err)
				}
				return out.String() + "\n"
			},
			check: func(t *testing.T, part string) {
				var n struct {
					Version, Source string
					Content         struct{ Title, Description string }
				}
				if err := json.Unmarshal([]byte(part), &n); err != nil {
					t.Fatalf("chat notification is not JSON: %v\n%s", err, part)
				}
				if n.Version != "1.0" || n.Source != "custom" || n.Content.Title == "" || n.Content.Description == "" {
					t.Errorf("not an Amazon Q custom notification: %+v", n)
				}
			},
			has: []string{`"title": ":rotating_light: CRITICAL: Anonymous request allowed on demo"`},
		},
		{
			format: "slack",
			split:  lines,
			want: func(t *testing.T, f *detect.Finding) string {
				b, err := render.SlackBlocks(f)
				if err != nil {
					t.Fatal(err)
				}
				return string(b) + "\n"
			},
			check: func(t *testing.T, part string) {
				var m struct {
					Text   string
					Blocks []struct{ Type string }
				}
				if err := json.Unmarshal([]byte(part), &m); err != nil {
					t.Fatalf("Slack message is not JSON: %v\n%s", err, part)
				}
				if m.Text == "" || len(m.Blocks) < 2 || m.Blocks[0].Type != "header" {
					t.Errorf("not a Block Kit message with a header: %s", part)
				}
			},
			has: []string{`"text":"CRITICAL: Anonymous request allowed on demo"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			code, out, stderr := runCLI(t, "", "replay", "--cluster", "demo", "--format", tt.format, formatInput)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if tt.format == "json" && out != jsonOut {
				t.Errorf("--format json differs from replay without --format")
			}
			parts := tt.split(out)
			if len(parts) != len(findings) {
				t.Fatalf("%d parts in the output, want one per finding (%d):\n%s", len(parts), len(findings), out)
			}
			for i, f := range findings {
				if diff := cmp.Diff(tt.want(t, f), parts[i]); diff != "" {
					t.Errorf("finding %d (%s, %s) mismatch (-want +got):\n%s", i, f.Rule, f.SrcIP, diff)
				}
				tt.check(t, parts[i])
			}
			for _, s := range tt.has {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(out, s) {
					t.Errorf("output holds %q", s)
				}
			}
		})
	}
}

func TestReplayFormatUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown format", []string{"--format", "xml"}, `unknown --format "xml" (want json, email, chat or slack)`},
		{"upper case", []string{"--format", "JSON"}, `unknown --format "JSON"`},
		{"empty", []string{"--format", ""}, `unknown --format ""`},
		{"with --report", []string{"--report", "--format", "slack"}, "--report and --format slack exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"replay"}, tt.args...), formatInput)
			code, out, stderr := runCLI(t, "", args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr)
			}
			if out != "" {
				t.Errorf("printed %q before failing", out)
			}
		})
	}
}
