package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// Issue 18: a rolling restart of the gateways behind a load balancer fails
// no request. Everything here is real: redis-server, two gateway
// processes, and nginx balancing them.

// rollingShutdownDelay is server.shutdown_delay for the rolling restart:
// short, so the test stays quick.
const rollingShutdownDelay = time.Second

// rollingNginx is an nginx server block balancing the replicas, as an
// operator without a Kubernetes Service would put one in front.
//
// nginx open source has no active health checks, so it never reads /ready:
// zero failures come from the gateway and proxy_next_upstream together.
// During shutdown_delay the stopping gateway still serves everything sent
// to it. After the delay it closes its listener: a new connection to it is
// refused, and nginx passes the request on to the other server ("error").
// Its idle keep-alive connections are closed by the gateway's drain; a
// request nginx had just written on one fails while the response header is
// awaited, which is an "error" too, retried elsewhere (GETs are
// idempotent, and nginx gives a failed cached connection an extra try).
// Requests in flight when the listener closes are finished by the drain.
// max_fails=0 keeps nginx from marking a server down after a refused
// connection: without it, a replica refused during its own restart would
// still be marked down (fail_timeout, 10s) when the other one stops, and
// with both marked down nginx answers 502 at once ("no live upstreams").
// /slow is pinned to the first replica, for the request in flight across
// its SIGTERM.
func rollingNginx(listen string, replicas []*replica) string {
	var servers strings.Builder
	for _, rp := range replicas {
		fmt.Fprintf(&servers, "        server %s max_fails=0;\n", strings.TrimPrefix(rp.url, "http://"))
	}
	return fmt.Sprintf(`
    upstream portcullis {
%s        keepalive 16;
    }
    server {
        listen %s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout;
        location / {
            proxy_pass http://portcullis;
        }
        location = /slow {
            proxy_pass http://%s;
        }
    }
`, servers.String(), listen, strings.TrimPrefix(replicas[0].url, "http://"))
}

// loadResult is what a load run saw.
type loadResult struct {
	sent, failed int64
	failures     []string // the first few, for the log
}

// checkedLoad sends GETs to url with the signed-in browser c's cookies from
// workers goroutines, back to back, until stop. A request fails unless it
// answers 200 with the upstream's JSON for path, carrying c's identity
// (user); a transport error fails too. No redirect is followed: a 302 to
// sign in is a failure.
func checkedLoad(t *testing.T, c *http.Client, url, path, user string, workers int) (stop func() loadResult) {
	t.Helper()
	client := &http.Client{
		Jar:           c.Jar,
		Transport:     &http.Transport{MaxIdleConnsPerHost: workers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)
	var (
		sent, failed atomic.Int64
		mu           sync.Mutex
		failures     []string
		wg           sync.WaitGroup
	)
	done := make(chan struct{})
	fail := func(why string) {
		failed.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, time.Now().Format("15:04:05.000")+" "+why)
		}
	}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Get(url)
				if err != nil {
					fail(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var seen seenRequest
				switch {
				case err != nil:
					fail(fmt.Sprintf("%d, reading the body: %v", resp.StatusCode, err))
				case resp.StatusCode != http.StatusOK:
					fail(fmt.Sprintf("%d %.200s", resp.StatusCode, b))
				case json.Unmarshal(b, &seen) != nil || seen.Path != path:
					fail(fmt.Sprintf("200 but not the upstream's answer for %s: %.200s", path, b))
				case seen.Header.Get("X-Forwarded-User") != user:
					fail(fmt.Sprintf("200 for user %q, want %q", seen.Header.Get("X-Forwarded-User"), user))
				}
			}
		})
	}
	return func() loadResult {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return loadResult{sent.Load(), failed.Load(), failures}
	}
}

// servedCount is how many requests for path a replica's current process
// logged as answered 200.
func servedCount(rp *replica, path string) int {
	return strings.Count(rp.logs.String(), "path="+path+" status=200")
}

// refusesConnections waits until nothing accepts connections at rp's
// address any more: its listener is closed.
func refusesConnections(t *testing.T, rp *replica, within time.Duration) time.Time {
	t.Helper()
	addr := strings.TrimPrefix(rp.url, "http://")
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return time.Now()
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections %v after SIGTERM", rp.url, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRollingRestart: two gateways on one Redis behind nginx, under
// steady load from a signed-in user; each replica in turn gets SIGTERM,
// exits cleanly and is started again. No request fails, a request in
// flight on the first replica across its SIGTERM completes, and each
// replica serves again after its restart.
//
// Not parallel: the load keeps both cores busy, which would slow the
// timing-sensitive tests around it, and them it.
func TestRollingRestart(t *testing.T) {
	rs := redistest.Standalone(t)
	front := freeAddr(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2, frontAddr: front,
		serverExtra: fmt.Sprintf("  shutdown_delay: %v\n", rollingShutdownDelay)})
	runNginx(t, front, rollingNginx(front, w.replicas))

	alice := browser(t)
	if seen := decodeSeen(t, w.signIn(alice, "/", "alice")); seen.Header.Get("X-Forwarded-User") != "u-alice" {
		t.Fatalf("signed in through nginx, the upstream saw %v", seen.Header)
	}

	stop := checkedLoad(t, alice, w.gateway+"/load", "/load", "u-alice", 4)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	for i, rp := range w.replicas {
		if servedCount(rp, "/load") == 0 {
			t.Errorf("replica %d served none of the load before its restart: nginx does not balance", i)
		}
	}

	// Replica 0, with a long request in flight across its SIGTERM: the
	// drain lets it finish after the listener has closed.
	type result struct {
		resp *http.Response
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := alice.Get(w.gateway + "/slow")
		slow <- result{resp, err}
	}()
	select {
	case <-w.upstream.slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	rp0 := w.replicas[0]
	signalled := time.Now()
	if err := rp0.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- rp0.cmd.Wait() }()
	closed := refusesConnections(t, rp0, 10*time.Second)
	if took := closed.Sub(signalled); took < rollingShutdownDelay {
		t.Errorf("replica 0 closed its listener %v after SIGTERM, within its %v shutdown_delay", took, rollingShutdownDelay)
	}
	select {
	case err := <-exited:
		t.Fatalf("replica 0 exited (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(w.upstream.release)
	r := <-slow
	if r.err != nil {
		t.Errorf("the request in flight across SIGTERM failed: %v", r.err)
	} else if seen := decodeSeen(t, r.resp); seen.Path != "/slow" {
		t.Errorf("the request in flight across SIGTERM got the upstream's answer for %q", seen.Path)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("replica 0 exited with %v; output:\n%s", err, rp0.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("replica 0 did not exit after its last request")
	}
	if !strings.Contains(rp0.logs.String(), "draining: /ready answers 503") {
		t.Errorf("replica 0 did not wait out its shutdown_delay:\n%s", rp0.logs.String())
	}
	rp0.start(t)
	time.Sleep(2 * time.Second)

	// Replica 1: SIGTERM and a clean exit (stop), started again.
	rp1 := w.replicas[1]
	rp1.stop(t)
	rp1.start(t)
	time.Sleep(2 * time.Second)

	res := stop()
	stopped = true
	t.Logf("rolling restart: %d failed of %d requests", res.failed, res.sent)
	for _, f := range res.failures {
		t.Logf("failed: %s", f)
	}
	if res.failed != 0 {
		t.Errorf("%d of %d requests failed across the rolling restart", res.failed, res.sent)
	}
	if res.sent < 100 {
		t.Errorf("only %d requests sent: the load was not steady", res.sent)
	}
	for i, rp := range w.replicas {
		n := servedCount(rp, "/load")
		t.Logf("replica %d served %d requests after its restart", i, n)
		if n == 0 {
			t.Errorf("replica %d served no request after its restart", i)
		}
		if strings.Contains(rp.logs.String(), "status=500") {
			t.Errorf("replica %d answered a 500:\n%s", i, rp.logs.String())
		}
	}
}
