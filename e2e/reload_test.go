package e2e

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// steadyLoad sends the signed-in browser c's requests to path, one after
// another, until stop is called; it returns how many were sent and how
// many did not reach the upstream with c's identity.
func steadyLoad(t *testing.T, c *http.Client, url string) (stop func() (sent, failed int64)) {
	t.Helper()
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				sent.Add(1)
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				if seen := decodeSeen(t, resp); resp.StatusCode != http.StatusOK || seen.Header.Get("X-Forwarded-Email") == "" {
					failed.Add(1)
				}
			}
		}()
	}
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return sent.Load(), failed.Load()
	}
}

// rewrite replaces old with new in the gateway's configuration file.
func rewrite(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q (%v)", file, old, err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// publicStatus is what an anonymous, non-following client gets at url.
func publicStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := noFollow(&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadOnHangup: SIGHUP with a valid change (a new public route and a
// new upstream) and
// then with an invalid file, under steady load from a signed-in user: no
// request fails, the new route is in force after the first, the second is
// refused with the reason in the log and a metric, and the session lives
// through both.
func TestReloadOnHangup(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{extraConfig: "metrics:\n  listen: {{METRICS}}\n"})
	rp := w.replicas[0]
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	if got := publicStatus(t, w.gateway+"/open/x"); got != http.StatusFound {
		t.Fatalf("/open/ before the reload: %d, want 302 to sign in", got)
	}
	stop := steadyLoad(t, c, w.gateway+"/steady")
	time.Sleep(300 * time.Millisecond)

	second := newRecorder(t) // a new upstream
	rewrite(t, rp.config, "policy:\n  email_domains: [example.com]\n",
		"policy:\n  email_domains: [example.com]\n  routes:\n    - {path: /open/, public: true}\n")
	rewrite(t, rp.config, "upstreams:\n", "upstreams:\n  - path: /new/\n    url: "+second.URL+"\n")
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !w.logs.waitFor("configuration reloaded", "kept=\"[sessions audit log providers]\"") {
		t.Fatalf("no reload log line:\n%s", w.logs.String())
	}
	if got := publicStatus(t, w.gateway+"/open/x"); got != http.StatusOK {
		t.Errorf("/open/ after the reload: %d, want 200 (public)", got)
	}
	// The new upstream serves its prefix, to the session signed in before.
	resp, err := c.Get(w.gateway + "/new/x")
	if err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "u-alice" || second.count() != 1 {
		t.Errorf("/new/ after the reload: the new upstream got %d requests, identity %q; want alice's request there",
			second.count(), seen.Header.Get("X-Forwarded-User"))
	}
	time.Sleep(300 * time.Millisecond)

	rewrite(t, rp.config, "policy:\n", "polcy:\n")
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !w.logs.waitFor("configuration reload refused", "polcy") {
		t.Fatalf("no refusal naming the bad key:\n%s", w.logs.String())
	}
	time.Sleep(300 * time.Millisecond)
	sent, failed := stop()
	t.Logf("steady load across a reload and a refused reload: %d requests, %d failed", sent, failed)
	if failed != 0 || sent < 20 {
		t.Errorf("%d of %d requests failed across the reloads", failed, sent)
	}
	if got := publicStatus(t, w.gateway+"/open/x"); got != http.StatusOK {
		t.Errorf("/open/ after the refused reload: %d, want the last good configuration's 200", got)
	}
	for _, line := range []string{`portcullis_config_reload_total{result="success"} 1`, `portcullis_config_reload_total{result="failure"} 1`} {
		if !scrapeHas(t, rp.metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if w.cmd.ProcessState != nil {
		t.Fatalf("gateway exited: %v", w.cmd.ProcessState)
	}
}

// TestReloadWatchConfig: with server.watch_config, editing the file is
// enough; a change to what needs a restart is named, the rest applies.
func TestReloadWatchConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{serverExtra: "  watch_config: true\n"})
	rp := w.replicas[0]
	second := newRecorder(t) // a new upstream
	rewrite(t, rp.config, "policy:\n  email_domains: [example.com]\n",
		"policy:\n  email_domains: [example.com]\n  routes:\n    - {path: /open/, public: true}\n")
	rewrite(t, rp.config, "upstreams:\n", "upstreams:\n  - path: /new/\n    url: "+second.URL+"\n")
	rewrite(t, rp.config, "log:\n  level: debug\n", "log:\n  level: info\n")
	deadline := time.Now().Add(10 * time.Second)
	for publicStatus(t, w.gateway+"/open/x") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/open/ not public 10s after the file changed:\n%s", w.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !w.logs.waitFor("trigger=watch_config", "needs a restart", "setting=log.level") {
		t.Errorf("no watch_config reload or restart note:\n%s", w.logs.String())
	}
}
