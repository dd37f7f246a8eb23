package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// FuzzHandler sends arbitrary methods, request-targets and one arbitrary
// header through Handler.ServeHTTP, signed out, as bob (not an admin) or
// as alice (an admin), from an untrusted or a trusted peer. Invariants: no
// panic; no 5xx other than 502/503/504 (and the upstream never answers
// with those here); the upstream is reached only for the public route or
// with the session's own identity, /admin/ only by alice, and never with a
// client's copy of an identity header.

// fuzzProvider is a provider that remembers nothing between calls.
type fuzzProvider struct{}

func (fuzzProvider) ID() string                  { return "corp" }
func (fuzzProvider) Name() string                { return "corp" }
func (fuzzProvider) Issuer() string              { return "https://idp.test" }
func (fuzzProvider) Ready(context.Context) error { return nil }
func (fuzzProvider) AuthCodeURL(_ context.Context, a providers.Attempt) (string, error) {
	return "https://idp.test/authorize?state=" + url.QueryEscape(a.State), nil
}
func (fuzzProvider) CheckResponse(context.Context, url.Values) error { return nil }
func (fuzzProvider) Redeem(context.Context, string, providers.Attempt) (*session.Session, error) {
	return nil, providers.ErrRejected
}

// fuzzUpstream records what reached it, in memory.
type fuzzUpstream struct {
	mu   sync.Mutex
	last *http.Request
}

func (u *fuzzUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	u.mu.Lock()
	u.last = r
	u.mu.Unlock()
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
}

func (u *fuzzUpstream) take() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.last
	u.last = nil
	return r
}

func FuzzHandler(f *testing.F) {
	h, store, up := fuzzGateway(f, Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com", TrustedProxies: []string{"192.0.2.0/24"}, AllowedRedirectHosts: []string{"app.example.com"}},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "http://app.internal"}},
		Policy: PolicyConfig{EmailDomains: []string{"example.com"}, Routes: []RouteConfig{
			{Path: "/public/", Public: true},
			{Path: "/admin/", Groups: []string{"admins"}},
		}},
	})
	seal := func(sub, email string, groups ...string) string {
		v, err := store.Seal(&session.Session{
			Identity: session.Identity{Issuer: "https://idp.test", Subject: sub, Email: email, EmailVerified: true, Groups: groups},
			Provider: "corp", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		})
		if err != nil {
			f.Fatal(err)
		}
		return store.Name() + "=" + v
	}
	cookies := []string{"", seal("bob", "bob@example.com", "devs"), seal("alice", "alice@example.com", "admins")}
	users := []string{"", "bob", "alice"}
	identity := []map[string]string{{},
		{hdrUser: "bob", hdrEmail: "bob@example.com", hdrGroups: "devs"},
		{hdrUser: "alice", hdrEmail: "alice@example.com", hdrGroups: "admins"}}

	for _, s := range []struct {
		method, target, name, value string
		who                         uint8
		trusted                     bool
	}{
		{"GET", "/", "", "", 0, false},
		{"GET", "/admin/x", "X-Forwarded-User", "alice", 1, false},
		{"GET", "/public/../admin/", "", "", 1, false},
		{"GET", "/public/x", "X_Forwarded_Email", "ceo@example.com", 0, false},
		{"POST", "/admin/%2e%2e/", "Content-Length", "0", 2, false},
		{"GET", "/oauth2/auth", "X-Original-URI", "/public/..%2Fadmin", 1, true},
		{"GET", "/oauth2/auth", "X-Forwarded-Uri", "/admin/", 0, true},
		{"GET", "/oauth2/auth/admin/x", "Accept", "application/json", 1, false},
		{"GET", "/oauth2/start?rd=//evil.com", "X-Auth-Request-Redirect", `/\evil.com`, 0, true},
		{"GET", "/oauth2/callback?state=x&code=y", "Cookie", "__Host-_portcullis_login_0=x", 0, false},
		{"POST", "/oauth2/sign_out", "Sec-Fetch-Site", "cross-site", 1, false},
		{"GET", "/oauth2/signed_out?state=a.b.c", "", "", 0, false},
		{"POST", "/oauth2/backchannel_logout", "Content-Type", "application/x-www-form-urlencoded", 0, false},
		{"GET", "/oauth2/userinfo", "Accept", "application/json", 2, false},
		{"GET", "http://evil.com/admin/", "Host", "evil.com", 1, false},
		{"OPTIONS", "*", "", "", 0, false},
		{"GET", "/admin", "Connection", "close, X-Forwarded-User", 1, false},
		{"GET", "/%EF%BC%8Fadmin", "Cookie", "__HOST-_portcullis=x", 0, false},
		{"GET", "/ping", "", "", 0, false},
		{"GET", "/admin/", "Authorization", "Bearer x.y.z", 0, false},
		{"GET", "/x", "Upgrade", "websocket", 1, false},
	} {
		f.Add(s.method, s.target, s.name, s.value, s.who, s.trusted)
	}

	f.Fuzz(func(t *testing.T, method, target, name, value string, who uint8, trusted bool) {
		who %= 3
		raw := method + " " + target + " HTTP/1.1\r\nHost: gw.example.com\r\n"
		if name != "" {
			raw += name + ": " + value + "\r\n"
		}
		if cookies[who] != "" {
			raw += "Cookie: " + cookies[who] + "\r\n"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return // net/http's server would have answered 400 itself
		}
		// What net/http's server does on top of ReadRequest.
		if len(r.Header["Host"]) > 1 || r.Method == "CONNECT" || !validFuzzHeaders(r.Header) {
			return
		}
		r.RemoteAddr = "203.0.113.5:1"
		if trusted {
			r.RemoteAddr = "192.0.2.10:1"
		}
		r = r.WithContext(context.Background())
		rec := httptest.NewRecorder()
		up.take()
		h.ServeHTTP(rec, r)

		if rec.Code >= 500 && rec.Code != 502 && rec.Code != 503 && rec.Code != 504 {
			t.Fatalf("%q → %d %s", raw, rec.Code, rec.Body.String())
		}
		got := up.take()
		if got == nil {
			return
		}
		path := got.URL.Path
		public := path == "/public" || strings.HasPrefix(path, "/public/")
		user := got.Header.Get("X-Forwarded-User")
		if !public && (who == 0 || user != users[who]) {
			t.Fatalf("%q reached the upstream at %q as %q without a session that allows it", raw, path, user)
		}
		if user != users[who] || len(got.Header.Values("X-Forwarded-User")) > 1 {
			t.Fatalf("%q: upstream X-Forwarded-User = %q, want %q", raw, got.Header.Values("X-Forwarded-User"), users[who])
		}
		if (path == "/admin" || strings.HasPrefix(path, "/admin/")) && who != 2 {
			t.Fatalf("%q reached %q as %q", raw, path, user)
		}
		if p, _, err := canonicalPath(got.URL.EscapedPath()); err != nil || p != path {
			t.Fatalf("%q: the upstream got a path that is not canonical: %q (%v)", raw, got.URL.EscapedPath(), err)
		}
		// Managed headers upstream are exactly the gateway's.
		for k, vs := range got.Header {
			switch {
			case !h.managed.has(k), k == hdrRequestID,
				k == "X-Forwarded-For", k == "X-Forwarded-Host", k == "X-Forwarded-Proto", k == "Forwarded": // setForwardedHeaders'
			case k == "X-Real-Ip":
				// Only a trusted peer can name another client.
				if len(vs) != 1 || !trusted && vs[0] != "203.0.113.5" {
					t.Fatalf("%q: the upstream got %s: %q from an untrusted peer", raw, k, vs)
				}
			case k == DefaultAssertionHeader && who != 0:
				// On by default: exactly one, genuine, for this user.
				if c, err := verifyAssertion(h, strings.Join(vs, ","), "http://app.internal"); err != nil || len(vs) != 1 || c["sub"] != users[who] {
					t.Fatalf("%q: the upstream got %s: %q (%v, %v)", raw, k, vs, c, err)
				}
			case len(vs) != 1 || vs[0] != identity[who][k]:
				t.Fatalf("%q: the upstream got %s: %q", raw, k, vs)
			}
		}
	})
}

// validFuzzHeaders applies the header checks net/http's server makes after
// parsing (httpguts.ValidHeaderFieldName/Value).
func validFuzzHeaders(h http.Header) bool {
	for k, vs := range h {
		if k == "" {
			return false
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
				return false
			}
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// fuzzGateway builds a handler for cfg once per fuzz target, with a cookie
// store, a provider that remembers nothing and an in-memory upstream.
func fuzzGateway(f *testing.F, cfg Config) (*Handler, *session.CookieStore, *fuzzUpstream) {
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		f.Fatal(err)
	}
	store, err := session.NewCookieStore(session.CookieConfig{Name: "_portcullis"}, keys, session.CookieStoreOptions{Lifetime: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	login, _ := session.NewLoginCookies(session.CookieConfig{Name: "_portcullis"}, keys, nil)
	up := &fuzzUpstream{}
	h, err := build(cfg, Options{Providers: mustSet(f, fuzzProvider{}), Sessions: store, Login: login, Keys: keys,
		Transport: up, Logger: newTestLogger(io.Discard)})
	if err != nil {
		f.Fatal(err)
	}
	return h, store, up
}
