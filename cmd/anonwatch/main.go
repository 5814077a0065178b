// Command anonwatch runs the anonwatch detector outside Lambda: it replays
// audit logs from files, checks and lists rules, builds subscription events
// for `sam local invoke`, and creates the state table for local use.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a dependency failed mid-run (DynamoDB)
	exitUsage = 2 // bad usage, unreadable input, bad rule file
)

const usage = `usage: anonwatch <command> [flags] [args]

commands:
  replay [--rules FILE] [--cluster NAME] [--format json|email|chat|slack] [--report] [--table NAME [--live-since TIME|none] [--topic ARN [--publish]]] [--max-payload MIB] [--workers N] FILE...
        run the detector over audit logs (FILE may be -, a folder, or .gz);
        --format prints each finding as a subscriber would get it
  rules check FILE      validate a rule file
  rules list [--rules FILE]
        print the active rules and the variables rules can use
  envelope --log-group GROUP [--log-stream NAME] [--control] FILE
        wrap JSON-lines audit events into a CloudWatch Logs subscription event
  table create NAME     create the state table (AWS_ENDPOINT_URL_DYNAMODB for local)

Run 'anonwatch <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "replay":
		return replayCmd(ctx, args[1:], stdin, stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], stdout, stderr)
	case "envelope":
		return envelopeCmd(args[1:], stdin, stdout, stderr)
	case "table":
		return tableCmd(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		io.WriteString(stdout, usage)
		return exitOK
	}
	io.WriteString(stderr, "anonwatch: unknown command "+args[0]+"\n"+usage)
	return exitUsage
}
