// Package rie runs a Lambda function's bootstrap under the AWS Lambda Runtime
// Interface Emulator (aws-lambda-rie) on loopback, so that tests and
// reliability drills invoke the real binary through the same runtime API
// Lambda uses.
//
// Several instances may run at once: each listens on its own pair of free
// loopback ports, because the emulator's runtime API port is fixed per
// instance. The emulator starts the function on the first invoke, as Lambda
// does on a cold start, and passes its own environment to the function.
package rie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// InvokePath is the emulator's invoke endpoint, the path of Lambda's Invoke
// API for a function named "function".
const InvokePath = "/2015-03-31/functions/function/invocations"

// Config describes one emulator instance.
type Config struct {
	// Emulator is the path of the aws-lambda-rie binary.
	Emulator string
	// Dir is the function's directory. The emulator runs there, as Lambda
	// runs a function from its task root, so Command and relative paths
	// in Env are taken from it.
	Dir string
	// Command runs the function; the default is ./bootstrap. An arm64
	// build runs on amd64 with {"qemu-aarch64", "./bootstrap"}.
	Command []string
	// Env is the emulator's whole environment, which it hands on to the
	// function (KEY=VALUE). Nothing is inherited from this process, so a
	// developer's AWS profile never reaches a test. The emulator itself
	// reads AWS_LAMBDA_FUNCTION_TIMEOUT (seconds, default 300) and
	// AWS_LAMBDA_FUNCTION_MEMORY_SIZE from it.
	Env []string
	// Log, when set, also receives everything the emulator and the
	// function write, as it is written.
	Log io.Writer
	// StartTimeout bounds the wait for the emulator to listen; the
	// default is 10 s.
	StartTimeout time.Duration
}

// Instance is one running emulator. Its methods are safe for concurrent use.
type Instance struct {
	// URL is the emulator's base address, http://127.0.0.1:PORT.
	URL string
	// RuntimeAPI is the address of the runtime API the function talks to.
	RuntimeAPI string

	cmd    *exec.Cmd
	out    *buffer
	exited chan struct{}
	client *http.Client

	stopOnce sync.Once
	stopErr  error
}

// startAttempts is how often Start picks new ports: a free port is found by
// listening and closing, so another process can take it before the emulator
// binds it, and the emulator then exits.
const startAttempts = 3

// settle is how long Start watches a listening emulator before trusting it:
// one that lost its runtime API port exits within about 10 ms.
const settle = 50 * time.Millisecond

// Start starts an emulator for cfg and returns once it accepts connections.
// ctx bounds only the start; the instance runs until Stop.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Emulator == "" || cfg.Dir == "" {
		return nil, errors.New("rie: Config needs Emulator and Dir")
	}
	if len(cfg.Command) == 0 {
		cfg.Command = []string{"./bootstrap"}
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	var errs []error
	for range startAttempts {
		in, err := start(ctx, cfg)
		if err == nil {
			return in, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("rie: start %s in %s: %w", strings.Join(cfg.Command, " "), cfg.Dir, errors.Join(errs...))
}

func start(ctx context.Context, cfg Config) (*Instance, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	invokeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	runtimeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))

	args := append([]string{
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
	}, cfg.Command...)
	cmd := exec.Command(cfg.Emulator, args...)
	cmd.Dir = cfg.Dir
	cmd.Env = cfg.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean "inherit"
	}
	out := &buffer{tee: cfg.Log}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so Stop ends the function's process too and
	// a Ctrl-C in the terminal reaches neither behind our back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A function that survived the group kill must not hold Wait forever
	// through the output pipe.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	in := &Instance{
		URL:        "http://" + invokeAddr,
		RuntimeAPI: runtimeAddr,
		cmd:        cmd,
		out:        out,
		exited:     make(chan struct{}),
		// Invokes go to loopback only; no proxy from the environment.
		client: &http.Client{Transport: &http.Transport{Proxy: nil}},
	}
	go func() {
		cmd.Wait()
		close(in.exited)
	}()

	deadline := time.NewTimer(cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			// The emulator binds its runtime API from a goroutine and
			// exits some milliseconds after its invoke address answers
			// when that port was taken meanwhile; wait out that window so
			// Start's retry, not the caller's first invoke, meets it.
			select {
			case <-in.exited:
				return nil, fmt.Errorf("emulator exited right after listening on %s: %v; output:\n%s", invokeAddr, cmd.ProcessState, out.String())
			case <-time.After(settle):
				return in, nil
			}
		}
		select {
		case <-in.exited:
			return nil, fmt.Errorf("emulator exited before listening on %s: %v; output:\n%s", invokeAddr, cmd.ProcessState, out.String())
		case <-ctx.Done():
			in.Stop()
			return nil, ctx.Err()
		case <-deadline.C:
			in.Stop()
			return nil, fmt.Errorf("emulator not listening on %s after %v; output:\n%s", invokeAddr, cfg.StartTimeout, out.String())
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// The listeners are held until all are chosen, so the ports differ.
//
// The ports come from below the kernel's ephemeral range, taken in turn
// from a random start: the kernel hands ports of that range to every
// outgoing connection, and one could take a port between this check and the
// emulator's bind. The emulator opens its runtime API from a goroutine, so
// with that port taken it answers on its invoke address and then exits,
// after Start has returned; the reliability drills, which open hundreds of
// connections a second, met it. Where the range leaves no room below it,
// the kernel picks.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	lo, hi := lowPort, ephemeralStart()
	for try := 0; len(ports) < n && try < 100 && hi-lo >= 1024; try++ {
		p := lo + int((portOffset+portSeq.Add(1))%int64(hi-lo))
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use
		}
		defer l.Close()
		ports = append(ports, p)
	}
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// lowPort is where freePorts starts looking, above the ports services
// commonly use.
const lowPort = 20000

// portOffset and portSeq walk the ports below the ephemeral range, so that
// instances started together in one process never pick the same one.
var (
	portOffset = mrand.Int64N(1 << 20)
	portSeq    atomic.Int64
)

// ephemeralStart returns the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	return 32768 // Linux's default
}

// Response is the emulator's answer to one invoke.
type Response struct {
	// RequestID is the invocation's request ID, which the function's log
	// lines carry (lambdacontext's logger adds it as requestId).
	RequestID string
	// Status is the HTTP status. A function error is 200, like a success;
	// a failed init is 502 with an empty body.
	Status int
	Body   []byte
	// Latency is the time from sending the event to reading the whole
	// response, as the caller of Lambda's Invoke API would see it.
	Latency time.Duration
}

// FunctionError is the error a handler returned, as Lambda reports it.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

// FunctionError returns the handler's error when the body is one: an
// object with an errorType. A successful invoke of a handler that returns
// nothing has the body null.
func (r *Response) FunctionError() (FunctionError, bool) {
	var fe FunctionError
	if json.Unmarshal(r.Body, &fe) != nil || fe.Type == "" {
		return FunctionError{}, false
	}
	return fe, true
}

// Invoke sends event to the function and waits for its response. A new
// request ID is sent with each call, so a retry of the same event is a new
// invocation, as with Lambda's own retries.
func (in *Instance) Invoke(ctx context.Context, event []byte) (*Response, error) {
	id := newRequestID()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL+InvokePath, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amzn-RequestId", id)
	began := time.Now()
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rie: invoke %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("rie: invoke %s: read response: %w", id, err)
	}
	return &Response{RequestID: id, Status: resp.StatusCode, Body: body, Latency: time.Since(began)}, nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// Output returns everything the emulator and the function have written so
// far: the emulator's own log lines, START/END/REPORT lines, and the
// function's stdout and stderr.
func (in *Instance) Output() string { return in.out.String() }

// WaitOutput waits until Output contains s, the emulator has exited, or ctx
// is done. Output arrives through a pipe, so a line written just before the
// emulator answered an invoke may still be on its way when Invoke returns;
// the emulator's REPORT line for a request ID is written after the
// function's own lines for it, so waiting for it yields them all.
func (in *Instance) WaitOutput(ctx context.Context, s string) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(in.out.String(), s) {
			return nil
		}
		select {
		case <-in.exited:
			if strings.Contains(in.out.String(), s) {
				return nil
			}
			return fmt.Errorf("rie: emulator exited without writing %q", s)
		case <-ctx.Done():
			return fmt.Errorf("rie: waiting for %q: %w", s, ctx.Err())
		case <-tick.C:
		}
	}
}

// PID returns the emulator's process ID.
func (in *Instance) PID() int { return in.cmd.Process.Pid }

// FunctionPID returns the process ID of the running function: the child of
// the emulator started from Config.Command (under qemu-aarch64, the
// emulating process). The function runs only after the first invoke.
func (in *Instance) FunctionPID() (int, error) {
	return childPID(in.cmd.Process.Pid)
}

// childPID finds a live child of parent by scanning /proc, which needs
// nothing beyond procfs (/proc/PID/task/TID/children is not always built
// into the kernel).
func childPID(parent int) (int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended while we looked
		}
		// The command name, in parentheses, may hold spaces; the fields
		// after its closing parenthesis are state, then ppid.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(parent) {
			continue
		}
		return strconv.Atoi(filepath.Base(filepath.Dir(path)))
	}
	return 0, fmt.Errorf("rie: emulator %d has no running child process", parent)
}

// Exited is closed when the emulator process has ended.
func (in *Instance) Exited() <-chan struct{} { return in.exited }

// Stop ends the emulator and the function with SIGTERM, then SIGKILL after
// two seconds, signalling only the process group Start created. It is safe
// to call more than once.
func (in *Instance) Stop() error {
	in.stopOnce.Do(func() {
		pgid := in.cmd.Process.Pid
		select {
		case <-in.exited:
		default:
			syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-in.exited:
			case <-time.After(2 * time.Second):
				syscall.Kill(-pgid, syscall.SIGKILL)
				<-in.exited
			}
		}
		// The function may outlive the emulator in the group; it is ours.
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			in.stopErr = fmt.Errorf("rie: kill process group %d: %w", pgid, err)
		}
		in.client.CloseIdleConnections()
	})
	return in.stopErr
}

// buffer collects output for Output while copying it to tee.
type buffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	tee io.Writer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Write(p)
	if b.tee != nil {
		b.tee.Write(p)
	}
	return len(p), nil
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
