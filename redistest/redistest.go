// Package redistest holds test helpers that start real redis-server
// processes on free loopback ports: a standalone server, a Sentinel set
// (master, replica, three sentinels) and a three-master Cluster. The session
// tests and the e2e package use it; nothing in the gateway imports it.
//
// Every process runs with its data directory in t.TempDir(), binds
// 127.0.0.1 only, persists nothing, and is killed in t.Cleanup, whether the
// test passed or not. The machine's own Redis (port 6379) is never touched.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Require skips t when redis-server or redis-cli is not on PATH, naming the
// package to install. Under CI=true a missing tool fails the test instead:
// CI must run every test.
func Require(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " not found; install it: apt-get install redis-server"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// startTimeout bounds how long a process may take to answer PING.
const startTimeout = 15 * time.Second

// Server is one redis-server process (a data node or a sentinel).
type Server struct {
	t        testing.TB
	dir      string
	conf     string
	port     int
	sentinel bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Standalone starts one redis-server with no persistence and waits until it
// answers PING. It is killed when the test ends.
func Standalone(t testing.TB) *Server {
	t.Helper()
	Require(t)
	return newServer(t, "redis", nil, false)
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Kill stops the process at once (SIGKILL), as a crash or a lost host would.
// It is a no-op when the process is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the process again on the same port with the same
// configuration (killing it first if it still runs), for outage tests.
// Data is gone: nothing is persisted.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	if err := s.startLocked(); err != nil {
		s.t.Fatalf("redistest: restarting %s: %v", s.Addr(), err)
	}
}

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, MaxRetries: -1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// newServer picks a free port, writes a config with the given directives
// and starts the process, retrying with another port when the chosen one
// was taken in between.
func newServer(t testing.TB, kind string, directives func(port int) []string, sentinel bool) *Server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		dir := filepath.Join(t.TempDir(), kind+"-"+strconv.Itoa(port))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		lines := []string{
			"port " + strconv.Itoa(port),
			"bind 127.0.0.1",
			"dir " + dir,
			"logfile " + filepath.Join(dir, "redis.log"),
			"daemonize no",
		}
		if !sentinel {
			// No persistence; replicas sync at once instead of after the
			// default 5 s diskless-sync delay.
			lines = append(lines, `save ""`, "appendonly no", "repl-diskless-sync-delay 0")
		}
		if directives != nil {
			lines = append(lines, directives(port)...)
		}
		conf := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{t: t, dir: dir, conf: conf, port: port, sentinel: sentinel}
		s.mu.Lock()
		err = s.startLocked()
		s.mu.Unlock()
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("redistest: %s log tail:\n%s", s.Addr(), s.logTail(15))
				}
				s.Kill()
			})
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("redistest: starting %s: %v", kind, lastErr)
	return nil
}

// freePort returns a loopback port that was free a moment ago. For Cluster
// nodes the bus port is chosen separately (cluster-port), so any port works.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 6379 && port != 26379 {
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}

func (s *Server) startLocked() error {
	args := []string{s.conf}
	if s.sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command("redis-server", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %s %s", strings.TrimSpace(out.String()), s.logTail(5))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("no PING answer after %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// poll calls fn every interval until it returns nil, the context ends, or
// timeout passes, and returns fn's last error in the latter cases.
func poll(ctx context.Context, timeout, interval time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(interval):
		}
	}
}
