package emu

import (
	"context"
	_ "embed" // the goaws configuration template
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
	"text/template"
	"time"
)

// Server is an emulator process a test started: dynalite or goaws. It can
// be killed and started again on the same port, as restart drills need, and
// is stopped by its own PID (process group), never by name. Its methods are
// safe for concurrent use.
type Server struct {
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
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// launch starts the emulator on s.port and waits until it is ready.
func (s *Server) launch() error {
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
func (s *Server) start() error {
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

// Kill ends the emulator with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
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

// Restart starts a killed emulator again on the same port.
func (s *Server) Restart() error { return s.launch() }

// Stop kills the emulator; calling it again does nothing.
func (s *Server) Stop() { s.Kill() }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartDynalite starts dynalite, run by node from its cli.js, on a free
// loopback port, writing its output to logPath. With dataDir it
// keeps its tables in LevelDB there, so they outlive a kill and a restart
// on the same port; without, in memory.
func StartDynalite(node, cli, logPath, dataDir string) (*Server, error) {
	s := &Server{
		name:    "dynalite",
		logPath: logPath,
		args: func(port int) []string {
			a := []string{node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
				"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
			if dataDir != "" {
				a = append(a, "--path", dataDir)
			}
			return a
		},
		ready: listening,
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// StartKinesalite starts kinesalite on a free loopback port, in memory,
// through the project's launcher (tools/node/kinesalite-loopback.js),
// which binds it to 127.0.0.1 as its own cli.js does not.
func StartKinesalite(node, launcher, logPath string) (*Server, error) {
	s := &Server{
		name:    "kinesalite",
		logPath: logPath,
		args:    func(port int) []string { return []string{node, launcher, strconv.Itoa(port)} },
		ready:   listening,
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// listening is a Server's ready check for an emulator whose port answers
// once it serves: a TCP connection is accepted.
func listening(ctx context.Context, url string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", url[len("http://"):])
	if err == nil {
		c.Close()
	}
	return err
}

// GoawsAccount is the account in every goaws configuration StartGoaws
// writes, and so in its ARNs and queue URLs.
const GoawsAccount = "100010001000"

// goawsConfig is the generated configuration of one goaws. A topic and
// queue declared in it are recreated on every start; those created through
// the API are lost with everything else when goaws stops, as are the
// messages in every queue.
var goawsConfig = template.Must(template.New("goaws.yaml.tmpl").Parse(goawsConfigText))

//go:embed goaws.yaml.tmpl
var goawsConfigText string

// Topology names the topic and the raw-delivery queue subscribed to it
// that a goaws configuration declares.
type Topology struct {
	Topic, Queue string
}

// StartGoaws starts the goaws binary bin on a free loopback port with a
// configuration written in dir, declaring topo when not nil; name tells
// apart the configurations and logs of several in one dir.
func StartGoaws(bin, dir, name string, topo *Topology) (*Server, error) {
	cfg := filepath.Join(dir, "goaws-"+name+".yaml")
	s := &Server{name: "goaws", logPath: filepath.Join(dir, "goaws-"+name+".log")}
	s.args = func(port int) []string {
		return []string{bin, "-config", cfg, "Local"}
	}
	s.ready = func(ctx context.Context, url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := Loopback.Do(req)
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
		data := map[string]any{"Port": strconv.Itoa(port), "Account": GoawsAccount, "Topology": topo}
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

// ConfigTopic is the ARN of the topic named name that a goaws
// configuration declares (see Topology).
func ConfigTopic(name string) string {
	return "arn:aws:sns:us-east-1:" + GoawsAccount + ":" + name
}

// ConfigQueue is the queue named name that s's configuration declares (see
// Topology); its URL follows goaws's scheme.
func (s *Server) ConfigQueue(name string) Queue {
	return Queue{Endpoint: s.URL(), URL: s.URL() + "/" + GoawsAccount + "/" + name}
}
