package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/anonwatch/anonwatch/internal/rules"
)

func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: anonwatch rules check FILE | anonwatch rules list [--rules FILE]")
		return exitUsage
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: anonwatch rules check FILE")
			return exitUsage
		}
		src, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch rules check:", err)
			return exitUsage
		}
		set, err := rules.Load(args[1], src)
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch rules check:", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: %d rules OK\n", args[1], len(set.Rules()))
		return exitOK
	case "list":
		path := ""
		switch {
		case len(args) == 3 && args[1] == "--rules":
			path = args[2]
		case len(args) == 2 && strings.HasPrefix(args[1], "--rules="):
			path = strings.TrimPrefix(args[1], "--rules=")
		case len(args) != 1:
			fmt.Fprintln(stderr, "usage: anonwatch rules list [--rules FILE]")
			return exitUsage
		}
		set, err := loadRules(path)
		if err != nil {
			fmt.Fprintln(stderr, "anonwatch rules list:", err)
			return exitUsage
		}
		listRules(stdout, set)
		return exitOK
	}
	fmt.Fprintln(stderr, "anonwatch rules: unknown subcommand", args[0])
	return exitUsage
}

func listRules(w io.Writer, set *rules.Set) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tTHRESHOLD\tGROUP BY\tTITLE")
	for _, r := range set.Rules() {
		sev := r.Severity.String()
		for _, e := range r.Escalate {
			sev += "→" + e.Severity.String()
		}
		th := fmt.Sprintf("count %d", r.Threshold.Count)
		if r.Threshold.Distinct != "" {
			th = fmt.Sprintf("distinct %s %d", r.Threshold.Distinct, r.Threshold.DistinctN)
		}
		th += " / " + formatWindow(r.Threshold.Window.String())
		groups := make([]string, len(r.GroupBy))
		for i, g := range r.GroupBy {
			groups[i] = string(g)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, sev, th, strings.Join(groups, ","), r.Title)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nVariables a rule's match, exclude and when expressions can use:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range rules.Variables() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, v.Type, v.Doc)
	}
	tw.Flush()
}

// formatWindow trims Go's zero units: "1h0m0s" → "1h", "30m0s" → "30m".
func formatWindow(s string) string {
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
