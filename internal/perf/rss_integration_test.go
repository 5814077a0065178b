//go:build integration

package perf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/anonwatch/anonwatch/internal/e2e/rie"
)

// The emulator test needs, from the environment:
//
//	ANONWATCH_BIN            folder with aws-lambda-rie and goaws (scripts/tools.sh)
//	ANONWATCH_DYNALITE_CLI   dynalite's cli.js (default tools/node/node_modules/dynalite/cli.js)
//
// and node on PATH. It starts its own dynalite and goaws on free loopback
// ports and stops them by PID; it never touches the ones scripts/test.sh
// or scripts/dynalite.sh run.

// goawsAccount is the account goaws puts in its ARNs.
const goawsAccount = "100010001000"

// perfTopic is the findings topic the private goaws declares.
const perfTopic = "perf-findings"

// TestBootstrapPeakRSS invokes the detector's bootstrap, built as
// deployed, under the Lambda Runtime Interface Emulator with each
// delivery, one fresh process per delivery, and reads the bootstrap's peak
// resident set (VmHWM), which is what Lambda's "Max Memory Used" reports.
// Every delivery CloudWatch Logs can send must stay within the budget
// (budgetKiB of the template's MemorySize).
func TestBootstrapPeakRSS(t *testing.T) {
	env := setupEmulators(t)
	files := eventFilesFor(t)
	budget := budgetKiB(env.memorySize)
	t.Logf("MemorySize %d (template.yaml): budget %s MiB; bootstrap amd64, %d bytes", env.memorySize, mib(budget<<10), env.bootstrapBytes)
	t.Logf("%-26s %-10s %8s %10s %9s %9s %9s", "delivery", "GOMEMLIMIT", "events", "dynamodb", "sns", "RSS MiB", "invoke ms")
	for _, d := range deliveries {
		variants := []string{""}
		if d.withLimit {
			variants = append(variants, gomemlimit)
		}
		for _, lim := range variants {
			r := env.invoke(t, d, files[d.name].Path, lim)
			t.Logf("%-26s %-10s %8s %10s %9s %9s %9.0f", d.name, lim, field(r.summary, "events"), field(r.summary, "dynamodb_calls"), field(r.summary, "sns_calls"), mib(r.peakKiB<<10), r.millis)
			if damaged := r.summary["damaged"] != nil && r.summary["damaged"] != float64(0); damaged != d.overBound {
				t.Errorf("%s: %v damaged lines; over the bound %v", d.name, r.summary["damaged"], d.overBound)
			}
			if r.errType != "" || r.summary["events"] != float64(files[d.name].Events) {
				t.Errorf("%s: function error %q (%s), summary %v; want %d events handled", d.name, r.errType, r.errMsg, r.summary, files[d.name].Events)
			}
			// On fresh state every finding due goes out on its own or is
			// held for its rule's digest.
			if sent := r.summary["findings_published"].(float64) - r.summary["digests_published"].(float64); d.findings != 0 &&
				(r.summary["findings_due"] != float64(d.findings) || sent+r.summary["findings_held"].(float64) != float64(d.findings)) {
				t.Errorf("%s: findings due %v, sent on their own %v, held %v; want %d due, each sent or held",
					d.name, r.summary["findings_due"], sent, r.summary["findings_held"], d.findings)
			}
			if lim != "" || !d.async {
				continue
			}
			if r.peakKiB > budget {
				t.Errorf("%s: peak RSS %s MiB, over the budget of %s MiB", d.name, mib(r.peakKiB<<10), mib(budget<<10))
			}
		}
	}
}

// field formats a summary counter, or "-" when the line has none (a
// refused delivery's summary has only the error).
func field(summary map[string]any, key string) string {
	if v, ok := summary[key]; ok {
		return fmt.Sprint(v)
	}
	return "-"
}

// emulators is what the test started.
type emulators struct {
	dir            string // the function's directory, with bootstrap
	emulator       string
	dynamoURL      string
	snsURL         string
	memorySize     int
	bootstrapBytes int64
}

// invocation is one delivery's outcome.
type invocation struct {
	peakKiB         int64
	millis          float64
	errType, errMsg string
	summary         map[string]any
}

// invoke runs d in a fresh function on a fresh table, with GOMEMLIMIT set
// to lim when not empty.
func (e *emulators) invoke(t *testing.T, d delivery, path, lim string) invocation {
	t.Helper()
	event, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("perf-%s-%d", d.name, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dynamostate.CreateTable(ctx, e.dynamo(), table); err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		t.Fatal(err)
	}
	fenv := []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + e.dynamoURL,
		"AWS_ENDPOINT_URL_SNS=" + e.snsURL,
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_NAME=anonwatch-detector",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(e.memorySize),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=900",
		"TABLE_NAME=" + table,
		"TOPIC_ARN=arn:aws:sns:us-east-1:" + goawsAccount + ":" + perfTopic,
	}
	if lim != "" {
		fenv = append(fenv, "GOMEMLIMIT="+lim)
	}
	fn, err := rie.Start(ctx, rie.Config{Emulator: e.emulator, Dir: e.dir, Env: fenv})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	ictx, icancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer icancel()
	resp, err := fn.Invoke(ictx, event)
	if err != nil {
		t.Fatalf("%s: %v\n%.4000s", d.name, err, fn.Output())
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: emulator answered %d: %s\n%.4000s", d.name, resp.Status, resp.Body, fn.Output())
	}
	pid, err := fn.FunctionPID()
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's only child is the function; make sure of it, so the
	// figure is never the emulator's own.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.HasPrefix(string(cmdline), "./bootstrap\x00") {
		t.Fatalf("process %d runs %q (%v), not ./bootstrap", pid, cmdline, err)
	}
	peak, err := procStatusOf(strconv.Itoa(pid), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	r := invocation{peakKiB: peak, millis: float64(resp.Latency.Microseconds()) / 1000}
	if fe, ok := resp.FunctionError(); ok {
		r.errType, r.errMsg = fe.Type, fe.Message
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := fn.WaitOutput(wctx, "REPORT RequestId: "+resp.RequestID); err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	for _, line := range strings.Split(fn.Output(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["requestId"] != resp.RequestID {
			continue
		}
		if msg := l["message"]; msg == "batch processed" || msg == "invocation failed" {
			r.summary = l
		}
	}
	if r.summary == nil {
		t.Fatalf("%s: no summary line for %s in the emulator's output:\n%.4000s", d.name, resp.RequestID, fn.Output())
	}
	return r
}

func (e *emulators) dynamo() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.dynamoURL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second},
	})
}

// setupEmulators builds the bootstrap, starts a private dynalite and goaws
// and reads MemorySize from the template. It fails, never skips, when
// something it needs is missing: the integration tag means "run".
func setupEmulators(t *testing.T) *emulators {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("ANONWATCH_BIN")
	if bin == "" {
		t.Fatal("ANONWATCH_BIN is not set: this test needs aws-lambda-rie and goaws from it (scripts/tools.sh installs them into .bin)")
	}
	cli := os.Getenv("ANONWATCH_DYNALITE_CLI")
	if cli == "" {
		cli = filepath.Join(root, "tools", "node", "node_modules", "dynalite", "cli.js")
	}
	e := &emulators{emulator: filepath.Join(bin, "aws-lambda-rie")}
	goaws := filepath.Join(bin, "goaws")
	for _, p := range []string{e.emulator, goaws, cli} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v (scripts/tools.sh installs the emulators)", err)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("dynalite needs node: %v", err)
	}
	if e.memorySize, err = memorySize(filepath.Join(root, "template.yaml")); err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	e.dir = filepath.Join(tmp, "function")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(e.dir, "bootstrap"), "./functions/detector")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(e.dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	e.bootstrapBytes = st.Size()

	dynPort := freePort(t)
	startServer(t, filepath.Join(tmp, "dynalite.log"), "", node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(dynPort),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	e.dynamoURL = "http://127.0.0.1:" + strconv.Itoa(dynPort)
	waitListening(t, dynPort)

	snsPort := freePort(t)
	cfg := filepath.Join(tmp, "goaws.yaml")
	if err := os.WriteFile(cfg, []byte(goawsConfig(snsPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	startServer(t, filepath.Join(tmp, "goaws.log"), tmp, goaws, "-config", cfg, "Local")
	e.snsURL = "http://127.0.0.1:" + strconv.Itoa(snsPort)
	waitListening(t, snsPort)
	return e
}

// goawsConfig declares the findings topic, with no subscriber: the test
// measures the function, not deliveries.
func goawsConfig(port int) string {
	return fmt.Sprintf(`Local:
  Host: 127.0.0.1
  Port: "%d"
  Region: us-east-1
  AccountId: "%s"
  LogToFile: false
  Topics:
    - Name: %s
`, port, goawsAccount, perfTopic)
}

// startServer starts an emulator in its own process group, logging to
// logPath, and stops it by that group when the test ends.
func startServer(t testing.TB, logPath, dir string, argv ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s:\n%.4000s", filepath.Base(logPath), b)
			}
		}
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on port.
func waitListening(t testing.TB, port int) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
