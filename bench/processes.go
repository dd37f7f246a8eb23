package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// processes.go starts every child in its own process group, remembers it,
// and ends them all when the harness stops, however it stops.

// child is one process the harness started.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, once done is closed
	log  string        // file with the process's output, when it has one
}

// children are all the processes the harness has started and not yet seen
// exit.
type children struct {
	mu      sync.Mutex
	running map[*child]bool
	stopped bool
}

// start runs cmd in a new process group that dies with the harness.
func (cs *children) start(name string, cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = childAttr()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stopped {
		return nil, fmt.Errorf("not starting %s: the harness is stopping", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	if cs.running == nil {
		cs.running = map[*child]bool{}
	}
	cs.running[c] = true
	go func() {
		c.err = cmd.Wait()
		cs.mu.Lock()
		delete(cs.running, c)
		cs.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// server starts a long-running process whose output goes to a file in dir,
// so the harness spends nothing on copying it.
func (cs *children) server(name, dir string, cmd *exec.Cmd) (*child, error) {
	logFile := dir + "/" + name + ".log"
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	c, err := cs.start(name, cmd)
	if c != nil {
		c.log = logFile
	}
	return c, err
}

// output runs a short-lived command to completion and returns its
// combined output; ctx ending kills its process group.
func (cs *children) output(ctx context.Context, name string, cmd *exec.Cmd) ([]byte, error) {
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := cs.start(name, cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.kill(syscall.SIGKILL)
		<-c.done
	}
	return out.Bytes(), c.err
}

// stopAll ends every child: SIGTERM to each process group, then SIGKILL to
// whatever is still there after a grace period. No child starts after it.
func (cs *children) stopAll(grace time.Duration) {
	cs.mu.Lock()
	cs.stopped = true
	var list []*child
	for c := range cs.running {
		list = append(list, c)
	}
	cs.mu.Unlock()
	for _, c := range list {
		c.kill(syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for _, c := range list {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	for _, c := range list {
		c.kill(syscall.SIGKILL)
	}
	deadline = time.After(time.Second)
	for _, c := range list {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
}

// kill signals the child's whole process group.
func (c *child) kill(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	syscall.Kill(-c.cmd.Process.Pid, sig)
}

// alive reports whether the child is still running; if not, the error says
// how it ended and shows the end of its log.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v)%s", c.name, c.err, c.tail())
	default:
		return nil
	}
}

// tail is the last lines of the child's log, for error messages.
func (c *child) tail() string {
	if c.log == "" {
		return ""
	}
	b, err := os.ReadFile(c.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "; its log ends:\n    " + strings.Join(lines, "\n    ")
}

// rssKB is the resident set size of the child's process, from
// /proc/PID/status.
func (c *child) rssKB() (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", c.name)
}

// openFDs is how many descriptors the child's process has open: the
// entries of /proc/PID/fd.
func (c *child) openFDs() (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	return len(fds), err
}

// cpu is the CPU time of every child running now, for what the machine's
// other work used meanwhile.
func (cs *children) cpu() time.Duration {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var sum time.Duration
	for c := range cs.running {
		if d, err := c.cpuTime(); err == nil {
			sum += d
		}
	}
	return sum
}

// cpuTime is the CPU time (user + system) the process has used so far.
func (c *child) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat for %s", c.name)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc stat for %s", c.name)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitListening waits until c accepts TCP connections on addr.
func waitListening(c *child, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		if err := c.alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening on %s after 15s%s", c.name, addr, c.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady polls a Portcullis /ready until it answers 200.
func waitReady(c *child, base string) error {
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(base + "/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := c.alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %s is not ready after 20s%s", c.name, base, c.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b...)
}
