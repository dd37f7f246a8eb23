package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// instance is an application instance that says which one it is.
func instance(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func publicUpstream(up UpstreamConfig) func(*Config) {
	return func(c *Config) {
		up.Path = "/"
		c.Upstreams = []UpstreamConfig{up}
		c.Policy.Routes = []RouteConfig{{Path: "/", Public: true}}
	}
}

// TestUpstreamURLsRoundRobin: requests go to every instance in turn, and
// one that refuses connections is skipped without a failed request, even
// with passive health off.
func TestUpstreamURLsRoundRobin(t *testing.T) {
	a, b := instance(t, "a"), instance(t, "b")
	e := newEnv(t, publicUpstream(UpstreamConfig{URLs: []string{a.URL, b.URL, "http://" + deadAddr(t)}}))
	served := map[string]int{}
	for range 30 {
		resp := e.do(get("https://gw.example.com/x"))
		got := body(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %q: a refused connection must move on to the next instance", resp.StatusCode, got)
		}
		served[got]++
	}
	if served["a"] < 10 || served["b"] < 10 {
		t.Errorf("served %v, want both instances to share the 30 requests", served)
	}
}

// TestUpstreamMaxFails: a dead upstream is taken out after max_fails
// refused connections, answered with a 503 and Retry-After at once while
// it rests, probed by one request after fail_timeout, and back in service
// when the probe succeeds.
func TestUpstreamMaxFails(t *testing.T) {
	addr := deadAddr(t)
	e := newEnv(t, publicUpstream(UpstreamConfig{URL: "http://" + addr, MaxFails: 2, FailTimeout: 30 * time.Second}))
	bal := e.h.upstreams[0].rp.Transport.(*balancer)
	var mu sync.Mutex
	now := time.Now()
	bal.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	for i := range 2 {
		if resp := e.do(get("https://gw.example.com/")); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("refused connection %d: %d, want 502", i+1, resp.StatusCode)
		}
	}
	resp := e.do(get("https://gw.example.com/"))
	page := body(resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" ||
		!strings.Contains(page, "Request id: <code>"+resp.Header.Get("X-Request-Id")+"</code>") {
		t.Errorf("after max_fails: %d Retry-After %q, want 503 with Retry-After 30 and the request id:\n%s",
			resp.StatusCode, resp.Header.Get("Retry-After"), page)
	}
	if !strings.Contains(e.logs.String(), "upstream backend taken out") {
		t.Errorf("no log line says the backend was taken out:\n%s", e.logs)
	}

	// The application comes back; after fail_timeout one probe finds it.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "back") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if resp := e.do(get("https://gw.example.com/")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("still resting: %d, want 503 (no request before fail_timeout)", resp.StatusCode)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	for i := range 3 {
		if resp := e.do(get("https://gw.example.com/")); resp.StatusCode != http.StatusOK || body(resp) != "back" {
			t.Fatalf("request %d after fail_timeout: %d, want the recovered application", i+1, resp.StatusCode)
		}
	}
	if !strings.Contains(e.logs.String(), "upstream backend back in service") {
		t.Errorf("no log line says the backend is back:\n%s", e.logs)
	}
}

// TestUpstreamProbeIsOne: while a resting backend's probe is in flight,
// other requests are not sent to it.
func TestUpstreamProbeIsOne(t *testing.T) {
	b := &balancer{backends: []*backend{{host: "x"}}, maxFails: 1, failTimeout: time.Second, now: time.Now}
	be := b.backends[0]
	be.downUntil = time.Now().Add(-time.Millisecond)
	if probe, ok := b.admit(be); !probe || !ok {
		t.Fatalf("first request after fail_timeout: probe %v ok %v, want the probe", probe, ok)
	}
	if _, ok := b.admit(be); ok {
		t.Error("a second request was admitted while the probe is in flight")
	}
}

// TestUnsent: only a request that never left is tried again elsewhere.
func TestUnsent(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	withBody := httptest.NewRequest("POST", "http://x/", strings.NewReader("a=1"))
	for _, tt := range []struct {
		name string
		req  *http.Request
		err  error
		want bool
	}{
		{"GET, refused", httptest.NewRequest("GET", "http://x/", nil), dial, true},
		{"GET, reset after sending", httptest.NewRequest("GET", "http://x/", nil), read, false},
		{"POST with a body, refused", withBody, dial, false},
		{"timeout", httptest.NewRequest("GET", "http://x/", nil), errors.New("timeout awaiting response headers"), false},
	} {
		if got := unsent(tt.req, tt.err); got != tt.want {
			t.Errorf("%s: unsent = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUpstreamURLsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		up   UpstreamConfig
		want string
	}{
		{"url and urls", UpstreamConfig{URL: "http://a", URLs: []string{"http://b"}}, "url and urls both set"},
		{"neither", UpstreamConfig{}, "url (or urls) is required"},
		{"schemes differ", UpstreamConfig{URLs: []string{"http://a", "https://b"}}, "differ in scheme or path"},
		{"paths differ", UpstreamConfig{URLs: []string{"http://a/x", "http://b/y"}}, "differ in scheme or path"},
		{"bad second", UpstreamConfig{URLs: []string{"http://a", "http://u:p@b"}}, "without credentials"},
		{"negative max_fails", UpstreamConfig{URL: "http://a", MaxFails: -1}, "cannot be negative"},
	} {
		up := tt.up
		up.Path = "/"
		c := Config{Server: ServerConfig{PublicURL: "https://gw.example.com"}, Upstreams: []UpstreamConfig{up},
			Policy: PolicyConfig{EmailDomains: []string{"example.com"}}}
		if _, err := c.Validate(Known{Providers: []string{"corp"}}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestUpstreamTrouble: an upstream that refuses, resets mid-response or
// sends huge headers gets the right answer, and nothing is left behind:
// the goroutines come back to where they were.
func TestUpstreamTrouble(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			w.Header().Set("X-Big", strings.Repeat("a", maxUpstreamHeaderBytes+1))
			io.WriteString(w, "never")
		case "/reset":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.(*net.TCPConn).SetLinger(0) // an RST, not a FIN
			conn.Close()
		default:
			io.WriteString(w, "fine")
		}
	}))
	t.Cleanup(app.Close)
	e := newEnv(t, publicUpstream(UpstreamConfig{URL: app.URL}))
	gw := httptest.NewServer(e.h)
	t.Cleanup(gw.Close)
	before := runtimeGoroutines()

	for range 20 {
		resp, err := http.Get(gw.URL + "/huge")
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, resp.Header.Get("X-Request-Id")) {
			t.Fatalf("huge headers: %d, want the 502 page with the request id", resp.StatusCode)
		}
		resp, err = http.Get(gw.URL + "/reset")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("reset mid-response: the client read a complete body; the truncation must reach it")
		}
		resp, err = http.Get(gw.URL + "/ok")
		if err != nil || body(resp) != "fine" {
			t.Fatalf("after the trouble: %v", err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	e.h.upstreams[0].rp.Transport.(*http.Transport).CloseIdleConnections()
	gw.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtimeGoroutines() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtimeGoroutines(); n > before+2 {
		t.Errorf("goroutines %d after 60 troubled requests, %d before: something leaks", n, before)
	}
}

func runtimeGoroutines() int { return runtime.NumGoroutine() }
