package rie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The test binary doubles as a fake emulator, so Start, Invoke and Stop are
// tested without aws-lambda-rie: with fakeEnv set, TestMain serves the
// invoke path the way the emulator does and starts Config.Command as its
// child, like the emulator's cold start.
const fakeEnv = "RIE_TEST_FAKE_EMULATOR"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		fakeEmulator(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

// fakeEmulator takes the emulator's arguments, echoes each invoke's body
// and request ID, and prints a line per invoke as the emulator does.
func fakeEmulator(args []string) {
	var addr string
	var command []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--runtime-interface-emulator-address":
			i++
			addr = args[i]
		case "--runtime-api-address":
			i++
		default:
			command = args[i:]
			i = len(args)
		}
	}
	switch os.Getenv("FAKE_MODE") {
	case "exit":
		fmt.Println("fake: exiting at once")
		os.Exit(3)
	case "hang":
		time.Sleep(time.Minute) // never listens
		os.Exit(4)
	}
	child := exec.Command(command[0], command[1:]...)
	if err := child.Start(); err != nil {
		fmt.Println("fake:", err)
		os.Exit(1)
	}
	http.HandleFunc(InvokePath, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("START RequestId: %s\n", r.Header.Get("X-Amzn-RequestId"))
		if string(body) == "fail" {
			w.Write([]byte(`{"errorMessage":"it broke","errorType":"EnvelopeError"}`))
			return
		}
		w.Write(body)
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("fake:", err)
		os.Exit(1)
	}
	http.Serve(l, nil)
}

func startFake(t *testing.T, env ...string) *Instance {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Start(context.Background(), Config{
		Emulator: exe,
		Dir:      t.TempDir(),
		Command:  []string{"sleep", "60"},
		Env:      append([]string{fakeEnv + "=1", "PATH=" + os.Getenv("PATH")}, env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	return in
}

func TestInvokeAndStop(t *testing.T) {
	in := startFake(t)
	ctx := context.Background()

	resp, err := in.Invoke(ctx, []byte(`{"awslogs":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Body), `{"awslogs":{}}`; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.Status)
	}
	if _, ok := resp.FunctionError(); ok {
		t.Errorf("FunctionError reported for a success body %s", resp.Body)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := in.WaitOutput(wctx, "START RequestId: "+resp.RequestID+"\n"); err != nil {
		t.Errorf("request ID %s not sent to the emulator: %v; output:\n%s", resp.RequestID, err, in.Output())
	}

	again, err := in.Invoke(ctx, []byte("fail"))
	if err != nil {
		t.Fatal(err)
	}
	if again.RequestID == resp.RequestID {
		t.Errorf("two invokes share request ID %s", resp.RequestID)
	}
	fe, ok := again.FunctionError()
	if diff := cmp.Diff(FunctionError{Type: "EnvelopeError", Message: "it broke"}, fe); !ok || diff != "" {
		t.Errorf("FunctionError() = %v (-want +got):\n%s", ok, diff)
	}

	child, err := in.FunctionPID()
	if err != nil {
		t.Fatal(err)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child)); !strings.HasPrefix(string(cmdline), "sleep\x00") {
		t.Errorf("FunctionPID() = %d running %q, want the sleep child", child, cmdline)
	}

	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Exited():
	default:
		t.Error("Stop returned before the emulator exited")
	}
	// The child is in the emulator's process group and must be gone too.
	// Orphaned, it is reaped by PID 1, which may take its time; a zombie
	// runs nothing, so it counts as gone.
	deadline := time.Now().Add(2 * time.Second)
	for running(child) {
		if time.Now().After(deadline) {
			t.Fatalf("function process %d still runs after Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := in.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// running reports whether pid is a process that has not exited.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestInstancesRunSideBySide(t *testing.T) {
	a, b := startFake(t), startFake(t)
	if a.URL == b.URL || a.RuntimeAPI == b.RuntimeAPI {
		t.Fatalf("instances share an address: %s %s, %s %s", a.URL, a.RuntimeAPI, b.URL, b.RuntimeAPI)
	}
	for _, in := range []*Instance{a, b} {
		resp, err := in.Invoke(context.Background(), []byte(in.URL))
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != in.URL {
			t.Errorf("%s answered %q", in.URL, resp.Body)
		}
	}
}

func TestStartFails(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "no emulator binary",
			cfg:  Config{Emulator: "/nonexistent/aws-lambda-rie", Dir: t.TempDir()},
			want: "no such file",
		},
		{
			name: "emulator exits",
			cfg: Config{Emulator: exe, Dir: t.TempDir(), Command: []string{"true"},
				Env: []string{fakeEnv + "=1", "FAKE_MODE=exit"}},
			want: "fake: exiting at once",
		},
		{
			name: "incomplete config",
			cfg:  Config{Emulator: exe},
			want: "needs Emulator and Dir",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Start(context.Background(), tc.cfg)
			if err == nil {
				in.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestStartGivesUp(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Emulator: exe, Dir: t.TempDir(), Env: []string{fakeEnv + "=1", "FAKE_MODE=hang"}}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(cancelled, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context: %v, want context.Canceled", err)
	}

	cfg.StartTimeout = 100 * time.Millisecond
	began := time.Now()
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "not listening") {
		t.Errorf("Start of an emulator that never listens: %v", err)
	}
	// Three attempts of 100 ms each, plus stopping each hung fake.
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Start took %v to give up", took)
	}
}

func TestFunctionError(t *testing.T) {
	for _, tc := range []struct {
		body   string
		want   FunctionError
		wantOK bool
	}{
		{body: `null`},
		{body: ``},
		{body: `{"statusCode":200}`},
		{body: `"text"`},
		{body: `{"errorMessage":"m","errorType":"T"}`, want: FunctionError{Type: "T", Message: "m"}, wantOK: true},
		{body: `{"errorType":"Runtime.ExitError"}`, want: FunctionError{Type: "Runtime.ExitError"}, wantOK: true},
	} {
		got, ok := (&Response{Body: []byte(tc.body)}).FunctionError()
		if ok != tc.wantOK {
			t.Errorf("FunctionError(%q) ok = %v, want %v", tc.body, ok, tc.wantOK)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("FunctionError(%q) (-want +got):\n%s", tc.body, diff)
		}
	}
}
