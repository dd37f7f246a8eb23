package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// memUpstream answers every request with a small body without touching
// the network, so the benchmarks measure the gateway alone.
type memUpstream struct{}

func (memUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          io.NopCloser(strings.NewReader("hello from the upstream\n")),
		ContentLength: 24,
		Request:       r,
	}, nil
}

func benchHandler(b *testing.B, mutate func(*Config)) (*Handler, *session.CookieStore) {
	b.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		b.Fatal(err)
	}
	store, _ := session.NewCookieStore(session.CookieConfig{}, keys, session.CookieStoreOptions{Lifetime: time.Hour})
	login, _ := session.NewLoginCookies(session.CookieConfig{}, keys, nil)
	cfg := Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "http://app.internal"}},
		Policy: PolicyConfig{EmailDomains: []string{"example.com"}, Routes: []RouteConfig{
			{Path: "/admin/", Groups: []string{"admins"}}, {Path: "/healthz", Public: true},
		}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := build(cfg, Options{Providers: mustSet(b, newFakeProvider()), Sessions: store,
		Login: login, Keys: keys, Transport: memUpstream{}})
	if err != nil {
		b.Fatal(err)
	}
	return h, store
}

func benchCookie(b *testing.B, store *session.CookieStore) string {
	v, err := store.Seal(&session.Session{
		Identity: session.Identity{Issuer: "https://idp.example.com", Subject: "248289761001", Email: "alice@example.com",
			EmailVerified: true, Name: "Alice Example", PreferredUsername: "alice", Groups: []string{"admins", "developers"}},
		Provider: "corp", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), RefreshToken: strings.Repeat("r", 26),
	})
	if err != nil {
		b.Fatal(err)
	}
	return store.Name() + "=" + v
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// serveLoop is the body of the handler benchmarks: r, over and over.
func serveLoop(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// dashboardRequest is the signed-in browser GET the authenticated handler
// benchmark and its floor both send.
func dashboardRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "https://gw.example.com/dashboard/panel?id=7", nil)
	r.Header.Set("Cookie", cookie+"; theme=dark")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("User-Agent", "Mozilla/5.0")
	return r
}

// BenchmarkServeHTTPAuthenticated is one signed-in GET through the whole
// handler: cookie decode, policy, header rewrite, proxying to an in-memory
// upstream.
func BenchmarkServeHTTPAuthenticated(b *testing.B) {
	h, store := benchHandler(b, nil)
	serveLoop(b, h, dashboardRequest(benchCookie(b, store)))
}

// BenchmarkServeHTTPFloor is BenchmarkServeHTTPAuthenticated's request
// through a bare ReverseProxy to the same in-memory upstream: the part of
// the handler benchmarks that is not Portcullis' own.
func BenchmarkServeHTTPFloor(b *testing.B) {
	target, _ := url.Parse("http://app.internal")
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:  memUpstream{},
		BufferPool: copyBuffers,
	}
	serveLoop(b, rp, dashboardRequest("_portcullis="+strings.Repeat("x", 330)))
}

// BenchmarkServeHTTPPublic is a public route without a session.
func BenchmarkServeHTTPPublic(b *testing.B) {
	h, _ := benchHandler(b, nil)
	r := httptest.NewRequest("GET", "https://gw.example.com/healthz", nil)
	serveLoop(b, h, r)
}

// BenchmarkForwardAuth is one nginx auth_request decision.
func BenchmarkForwardAuth(b *testing.B) {
	h, store := benchHandler(b, func(c *Config) { c.Server.TrustedProxies = []string{"127.0.0.1"} })
	r := httptest.NewRequest("GET", "https://gw.example.com/oauth2/auth", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Cookie", benchCookie(b, store))
	r.Header.Set("X-Original-URI", "/dashboard/panel?id=7")
	serveLoop(b, h, r)
}

func BenchmarkPolicyDecide(b *testing.B) {
	p, err := policyTable(issuePolicy)
	if err != nil {
		b.Fatal(err)
	}
	s := &session.Session{Identity: verified("alice@example.com", "admins")}
	t := Target{Method: "GET", Host: "app.example.com", Path: "/admin/users/7"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(t, s, ViaSession); d.Outcome != Allow {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCanonicalPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := canonicalPath("/dashboard/panel/7/edit"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaderRewrite(b *testing.B) {
	s := newHeaderSet(managedHeaders...)
	base := http.Header{
		"Accept": {"text/html"}, "User-Agent": {"Mozilla/5.0"}, "Cookie": {"__Host-_portcullis=abc; theme=dark"},
		"Accept-Language": {"en"}, "X-Forwarded-Email": {"spoof"},
	}
	bases := []string{"__Host-_portcullis", "_portcullis"}
	b.ReportAllocs()
	for b.Loop() {
		h := base.Clone()
		s.strip(h)
		stripGatewayCookies(h, bases)
	}
}

// BenchmarkHandlerAssertion is BenchmarkServeHTTPAuthenticated's cookie-mode
// request with the signed identity assertion (on) and without it (off).
// The same session is sent over and over, so "on" measures the cached
// path: the assertion is signed once per session and refresh.
func BenchmarkHandlerAssertion(b *testing.B) {
	for _, bc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"on", func(c *Config) { c.Upstreams[0].Assertion.Header = "X-Portcullis-Assertion" }},
		{"off", func(c *Config) { c.Upstreams[0].Assertion.Disabled = true }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, store := benchHandler(b, bc.mutate)
			serveLoop(b, h, dashboardRequest(benchCookie(b, store)))
		})
	}
}

// BenchmarkAssertion is the asserter alone: a cache hit (every request of
// a session after its first) and a fresh signature (once per session,
// refresh and half-lifetime).
func BenchmarkAssertion(b *testing.B) {
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, _ := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	a, err := newAsserter(AssertionConfig{}, "https://gw.example.com", keys, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	s := &session.Session{Identity: session.Identity{Issuer: "https://idp.example.com", Subject: "248289761001",
		Email: "alice@example.com", EmailVerified: true, PreferredUsername: "alice", Groups: []string{"admins", "developers"}}}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.header(s, "http://app.internal"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		st, _ := a.current(time.Now())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.signNew(st, s, "http://app.internal", time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
