package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLongestPrefixRouting(t *testing.T) {
	apiSeen := make(chan string, 10)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiSeen <- r.URL.Path
		io.WriteString(w, "api")
	}))
	defer api.Close()
	e := newEnv(t, func(c *Config) {
		c.Upstreams = append(c.Upstreams, UpstreamConfig{Path: "/api/", URL: api.URL}, UpstreamConfig{Path: "/api/v2", URL: api.URL + "/base"})
	})
	jar := e.sessionCookie("alice", "alice@example.com")
	for _, tt := range []struct {
		path, wantBody, wantPath string
	}{
		{"/", "upstream saw /", ""},
		{"/apis", "upstream saw /apis", ""},
		{"/api", "upstream saw /api", ""},
		{"/api/", "api", "/api/"},
		{"/api/items", "api", "/api/items"},
		{"/api/v2", "api", "/base/api/v2"},
		{"/api/v2/x", "api", "/base/api/v2/x"},
		{"/api/v20", "api", "/api/v20"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp := e.do(get("https://gw.example.com"+tt.path, "Cookie", jar))
			if b := body(resp); b != tt.wantBody {
				t.Errorf("body = %q, want %q", b, tt.wantBody)
			}
			if tt.wantPath != "" {
				if got := <-apiSeen; got != tt.wantPath {
					t.Errorf("api upstream path = %q, want %q", got, tt.wantPath)
				}
			}
		})
	}
}

func TestUpstreamGetsTheJudgedPath(t *testing.T) {
	e := newEnv(t, nil)
	jar := e.sessionCookie("alice", "alice@example.com")
	for _, tt := range []struct {
		name, target, wantPath, wantRaw string
		status                          int
	}{
		{"plain", "/a/b", "/a/b", "", 200},
		{"encoded letter decoded", "/%61dmin", "/admin", "", 200},
		{"space stays encoded", "/a%20b", "/a b", "", 200},
		{"dot segment", "/public/../admin", "", "", 400},
		{"encoded slash", "/public%2F..%2Fadmin", "", "", 400},
		{"double slash", "//admin", "", "", 400},
		{"semicolon", "/admin;x=1", "", "", 400},
		{"backslash", `/public\..\admin`, "", "", 400},
		{"encoded dot dot", "/public/%2e%2e/admin", "", "", 400},
		{"encoded hash", "/secret%23/x", "", "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			// As the server parses a request line: no reference resolution.
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatalf("ParseRequestURI(%q): %v", tt.target, err)
			}
			r := get("https://gw.example.com/", "Cookie", jar)
			r.URL, r.RequestURI = u, tt.target
			resp := e.do(r)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				if e.count() != before {
					t.Error("a rejected path reached the upstream")
				}
				return
			}
			if got := e.last().Path; got != tt.wantPath {
				t.Errorf("upstream path = %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer slow.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, tt := range []struct {
		name string
		up   UpstreamConfig
		want int
	}{
		{"connection refused", UpstreamConfig{Path: "/", URL: deadURL}, http.StatusBadGateway},
		{"timeout", UpstreamConfig{Path: "/", URL: slow.URL, Timeout: 50 * time.Millisecond}, http.StatusGatewayTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Upstreams = []UpstreamConfig{tt.up} })
			resp := e.do(get("https://gw.example.com/x", "Cookie", e.sessionCookie("alice", "alice@example.com"), "Accept", "text/html"))
			b := body(resp)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if strings.Contains(b, "127.0.0.1") || strings.Contains(b, "dial") {
				t.Errorf("error page leaks internals: %s", b)
			}
			if !strings.Contains(b, "Request id") {
				t.Errorf("error page has no request id: %s", b)
			}
		})
	}
}

func TestUpstreamCannotSetGatewayCookies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "__Host-_portcullis=evil; Path=/; Secure")
		w.Header().Add("Set-Cookie", "__Host-_portcullis_login_x=evil; Path=/; Secure")
		w.Header().Add("Set-Cookie", "app=fine; Path=/")
	}))
	defer up.Close()
	e := newEnv(t, func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: up.URL}} })
	resp := e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("alice", "alice@example.com")))
	got := resp.Header.Values("Set-Cookie")
	if len(got) != 1 || !strings.HasPrefix(got[0], "app=fine") {
		t.Errorf("Set-Cookie reaching the browser = %q, want only app=fine", got)
	}
}

// TestStreaming checks that a response streamed by the upstream reaches the
// client piece by piece: the upstream waits for the client to have read the
// first line before it sends the second.
func TestStreaming(t *testing.T) {
	firstRead := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-firstRead:
		case <-time.After(10 * time.Second):
			return // the client never saw the first event: the test fails below
		}
		io.WriteString(w, "data: two\n\n")
	}))
	defer up.Close()
	e := newEnv(t, func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: up.URL}} })
	gw := httptest.NewServer(e.h)
	defer gw.Close()
	req, _ := http.NewRequest("GET", gw.URL+"/events", nil)
	req.Header.Set("Cookie", e.sessionCookie("alice", "alice@example.com"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	close(firstRead)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: two") {
		t.Errorf("rest = %q, want the second event", rest)
	}
}

func TestWebsocketUpgrade(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-User") != "alice" {
			http.Error(w, "want an authenticated upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo: "+line)
		brw.Flush()
	}))
	defer up.Close()
	e := newEnv(t, func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: up.URL}} })
	gw := httptest.NewServer(e.h)
	defer gw.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: %s\r\n\r\n", e.sessionCookie("alice", "alice@example.com"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	fmt.Fprint(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Errorf("echo = %q, %v", line, err)
	}
}

func TestPingAndUnknownEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	if resp := e.do(get("https://gw.example.com/ping")); resp.StatusCode != 200 || body(resp) != "OK\n" {
		t.Errorf("/ping = %d", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/oauth2/nope")); resp.StatusCode != 404 {
		t.Errorf("/oauth2/nope = %d, want 404", resp.StatusCode)
	}
	if e.count() != 0 {
		t.Error("gateway endpoints reached the upstream")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no public url", func(c *Config) { c.Server.PublicURL = "" }, "server.public_url is required"},
		{"public url with path", func(c *Config) { c.Server.PublicURL = "https://gw/x" }, "no path"},
		{"host policy route with a host-less upstream", func(c *Config) {
			c.Policy.Routes = []RouteConfig{{Host: "grafana.example.com", Path: "/", Groups: []string{"g"}}}
		}, "serves any host"},
		{"bad trusted proxy", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies"},
		{"bad upstream host", func(c *Config) { c.Upstreams[0].Host = "a/b" }, "not a host name"},
		{"upstream path not canonical", func(c *Config) { c.Upstreams[0].Path = "/a/../b" }, "not a canonical path"},
		{"upstream url with query", func(c *Config) { c.Upstreams[0].URL = "http://x/?a=1" }, "without credentials, query"},
		{"upstream url scheme", func(c *Config) { c.Upstreams[0].URL = "ftp://x" }, "must be http(s)"},
		{"duplicate upstream", func(c *Config) { c.Upstreams = append(c.Upstreams, c.Upstreams[0]) }, "listed twice"},
		{"upstream under prefix", func(c *Config) { c.Upstreams[0].Path = "/oauth2/x" }, "inside the gateway's own prefix"},
		{"bad user header", func(c *Config) { c.Headers.User = "name" }, "headers.user"},
		{"bad email", func(c *Config) { c.Policy.Emails = []string{"nope"} }, "not an email address"},
		{"bad redirect host", func(c *Config) { c.Server.AllowedRedirectHosts = []string{"*"} }, "allowed_redirect_hosts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryNew(t, tt.mutate)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestUpstreamTimeouts: response_header_timeout ends a slow upstream's
// request with the 504 page and its request id; the settings are
// validated, and reach the upstream's transport.
func TestUpstreamTimeouts(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	e := newEnv(t, func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: slow.URL, ResponseHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 7 * time.Second}}
		c.Policy.Routes = []RouteConfig{{Path: "/", Public: true}}
	})
	resp := e.do(get("https://gw.example.com/report"))
	b := body(resp)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(b, "Request id: <code>"+resp.Header.Get("X-Request-Id")+"</code>") {
		t.Errorf("slow upstream: %d, want the 504 page with the request id:\n%s", resp.StatusCode, b)
	}
	tr := e.h.upstreams[0].rp.Transport.(*http.Transport)
	if tr.ResponseHeaderTimeout != 100*time.Millisecond || tr.IdleConnTimeout != 7*time.Second {
		t.Errorf("transport: header timeout %v, idle %v", tr.ResponseHeaderTimeout, tr.IdleConnTimeout)
	}

	for _, tt := range []struct {
		name string
		up   UpstreamConfig
		want string
	}{
		{"both names, different values", UpstreamConfig{Timeout: time.Second, ResponseHeaderTimeout: 2 * time.Second}, "set one"},
		{"negative dial", UpstreamConfig{DialTimeout: -time.Second}, "must be positive"},
		{"negative idle", UpstreamConfig{IdleTimeout: -time.Second}, "must be positive"},
	} {
		up := tt.up
		up.Path, up.URL = "/", "http://127.0.0.1:1"
		c := Config{Server: ServerConfig{PublicURL: "https://gw.example.com"}, Upstreams: []UpstreamConfig{up},
			Policy: PolicyConfig{EmailDomains: []string{"example.com"}}}
		if _, err := c.Validate(Known{Providers: []string{"corp"}}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
