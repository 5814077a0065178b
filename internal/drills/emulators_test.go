//go:build integration

package drills

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// server is an emulator process the drills started: dynalite or goaws. It
// can be killed and started again on the same port, as the restart drills
// need, and is stopped by its own PID (process group), never by name.
type server struct {
	name    string
	port    int
	args    func(port int) []string // the command line for a port
	ready   func(ctx context.Context, url string) error
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startTimeout bounds one start, to listening.
const startTimeout = 15 * time.Second

// URL returns the emulator's endpoint.
func (s *server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// launch starts the emulator on s.port and waits until it is ready.
func (s *server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := s.args(s.port)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := s.ready(ctx, s.URL())
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready on port %d (log %s)", s.name, s.port, s.logPath)
		case <-ctx.Done():
			s.killLocked()
			return fmt.Errorf("%s not ready on port %d within %v: %v (log %s)", s.name, s.port, startTimeout, err, s.logPath)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// start picks a free port and launches the emulator on it, trying other
// ports when another process takes the port between the pick and the
// emulator binding it.
func (s *server) start() error {
	var errs []error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
		if err = s.launch(); err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kill ends the emulator with SIGKILL, as a crash would, and waits for it.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *server) killLocked() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// restart starts a killed emulator again on the same port.
func (s *server) restart() error { return s.launch() }

// stop kills the emulator; calling it again does nothing.
func (s *server) stop() { s.kill() }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startDynalite starts dynalite on a free loopback port. With dataDir it
// keeps its tables in LevelDB there, so they outlive a kill and a restart
// on the same port; without, in memory.
func startDynalite(logPath, dataDir string) (*server, error) {
	s := &server{
		name:    "dynalite",
		logPath: logPath,
		args: func(port int) []string {
			a := []string{nodeBin, dynaliteCLI, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
				"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
			if dataDir != "" {
				a = append(a, "--path", dataDir)
			}
			return a
		},
		ready: func(ctx context.Context, url string) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", url[len("http://"):])
			if err == nil {
				c.Close()
			}
			return err
		},
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// goawsAccount is the account in every goaws configuration here, and so in
// its ARNs and queue URLs.
const goawsAccount = "100010001000"

// goawsConfig is the generated configuration of one goaws. A topic and
// queue declared in it are recreated on every start; those created through
// the API are lost with everything else when goaws stops, as are the
// messages in every queue.
var goawsConfig = template.Must(template.ParseFiles(filepath.Join("testdata", "goaws.yaml.tmpl")))

// goawsTopology names the topic and the raw-delivery queue subscribed to
// it that a goaws configuration declares.
type goawsTopology struct {
	Topic, Queue string
}

// startGoaws starts goaws on a free loopback port with a configuration
// written in dir, declaring topo when not nil.
func startGoaws(dir, name string, topo *goawsTopology) (*server, error) {
	cfg := filepath.Join(dir, "goaws-"+name+".yaml")
	s := &server{name: "goaws", logPath: filepath.Join(dir, "goaws-"+name+".log")}
	s.args = func(port int) []string {
		return []string{goawsBin, "-config", cfg, "Local"}
	}
	s.ready = func(ctx context.Context, url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := loopback.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	}
	// The port is in the configuration, so each try writes it anew.
	var errs []error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		f, err := os.Create(cfg)
		if err != nil {
			return nil, err
		}
		data := map[string]any{"Port": strconv.Itoa(port), "Account": goawsAccount, "Topology": topo}
		if err := goawsConfig.Execute(f, data); err != nil {
			f.Close()
			return nil, err
		}
		f.Close()
		s.port = port
		if err = s.launch(); err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// privateDynalite starts a dynalite that keeps its data in the test's
// temporary folder, for drills that kill it, and stops it when the test
// ends.
func privateDynalite(t testing.TB) *server {
	t.Helper()
	dir := t.TempDir()
	s, err := startDynalite(filepath.Join(dir, "dynalite.log"), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// privateGoaws starts a goaws declaring topo, for drills that kill it, and
// stops it when the test ends.
func privateGoaws(t testing.TB, topo goawsTopology) *server {
	t.Helper()
	s, err := startGoaws(t.TempDir(), "private", &topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}
