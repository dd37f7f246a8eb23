package e2e

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown sends SIGTERM while a request is in flight: the
// request completes, new connections are refused, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Get(w.gateway + "/slow")
		done <- result{resp, err}
	}()
	select {
	case <-w.upstream.slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Once the listener is closed, new connections fail.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(w.gateway + "/ping")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("gateway still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(w.upstream.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", r.err)
	}
	decodeSeen(t, r.resp)
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gateway exit: %v\n%s", err, w.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit")
	}
}

// TestHangupIsNotFatal sends SIGHUP twice with the file unchanged: the
// gateway reloads it, keeps its sessions and keeps serving (SIGHUP's
// default action would exit with 129).
func TestHangupIsNotFatal(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	for range 2 {
		if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if !w.logs.waitFor("configuration reloaded", "trigger=SIGHUP") {
		t.Fatalf("no log line for SIGHUP:\n%s", w.logs.String())
	}
	resp, err := c.Get(w.gateway + "/after-hup")
	if err != nil {
		t.Fatalf("gateway gone after SIGHUP: %v\n%s", err, w.logs.String())
	}
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") == "" {
		t.Errorf("session lost after SIGHUP: upstream saw no user")
	}
	if w.cmd.ProcessState != nil {
		t.Fatalf("gateway exited: %v", w.cmd.ProcessState)
	}
}

// TestShutdownDelay: after SIGTERM with server.shutdown_delay, /ready
// fails at once while requests are still served for the delay, then the
// gateway drains and exits 0.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{serverExtra: "  shutdown_delay: 3s\n"})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	for {
		resp, err := http.Get(w.gateway + "/ready")
		if err != nil {
			t.Fatalf("/ready unreachable during the delay: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Since(sent) > 2*time.Second {
			t.Fatalf("/ready still %d 2s after SIGTERM", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Still serving: the signed-in user gets through, within the delay.
	resp, err := c.Get(w.gateway + "/during-delay")
	if err != nil {
		t.Fatalf("request during the shutdown delay failed: %v", err)
	}
	if seen := decodeSeen(t, resp); seen.Path != "/during-delay" || time.Since(sent) > 3*time.Second {
		t.Fatalf("during the delay: upstream saw %q after %v", seen.Path, time.Since(sent))
	}
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gateway exit: %v\n%s", err, w.logs.String())
		}
		if took := time.Since(sent); took < 3*time.Second {
			t.Errorf("exited %v after SIGTERM, before the 3s shutdown_delay", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not exit")
	}
	if !w.logs.waitFor("draining: /ready answers 503") {
		t.Errorf("no drain log line:\n%s", w.logs.String())
	}
}
