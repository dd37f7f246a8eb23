package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Shared by the hostile_*_test.go tables: one gateway configuration with a
// protected and a public route, a trusted ingress, and helpers to drive the
// sign-in flow, send raw request lines through a real server, and check
// every Location and header the gateway writes.

// hostileEnv trusts 192.0.2.0/24 (and nothing on loopback) as its ingress,
// lets redirects go to app.example.com, serves /public/ without sign-in and
// /admin/ to the admins group; everything else to verified example.com
// addresses.
func hostileEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Server.AllowedRedirectHosts = []string{"app.example.com"}
		c.Policy.Routes = []RouteConfig{
			{Path: "/public/", Public: true},
			{Path: "/admin/", Groups: []string{"admins"}},
		}
	})
}

// bob is signed in and passes the default rule, but is not an admin;
// alice is an admin.
func (e *env) bob() string   { return e.sessionCookie("bob", "bob@example.com", "devs") }
func (e *env) alice() string { return e.sessionCookie("alice", "alice@example.com", "admins") }

// serve sends r through the handler and also returns the header map as the
// handler wrote it (before net/http would sanitise it on the wire).
func (e *env) serve(r *http.Request) (*http.Response, http.Header) {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	return rec.Result(), rec.Header()
}

// headerInjection names the first header whose name or value carries a CR,
// LF or NUL, as written by the handler.
func headerInjection(h http.Header) string {
	for k, vs := range h {
		if strings.ContainsAny(k, "\r\n\x00") {
			return k
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return k + ": " + v
			}
		}
	}
	return ""
}

// gatewayOrigins are where a Location written by the gateway may point,
// besides a path on the gateway itself.
var gatewayOrigins = []string{"https://gw.example.com", "https://app.example.com"}

// locationSafe reports whether loc keeps the browser on the gateway (a
// single-slash path without anything a browser reads as an authority) or
// sends it to one of origins.
func locationSafe(loc string, origins ...string) bool {
	if loc == "" {
		return true
	}
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return false
		}
	}
	if strings.HasPrefix(loc, "/") {
		if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
			return false
		}
		u, err := url.Parse(loc)
		return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
	}
	u, err := url.Parse(loc)
	if err != nil || u.User != nil || u.Opaque != "" {
		return false
	}
	for _, o := range origins {
		if u.Scheme+"://"+u.Host == o {
			return true
		}
	}
	return false
}

// finish completes a sign-in begun by a 302 to the provider: it redeems a
// fresh code for sub at the fake provider and sends the callback with the
// login cookie the start response set. It returns the callback's response.
func (e *env) finish(start *http.Response, sub, email string, groups ...string) *http.Response {
	e.t.Helper()
	if start.StatusCode != http.StatusFound {
		e.t.Fatalf("sign-in start = %d, want 302 to the provider", start.StatusCode)
	}
	loc, err := url.Parse(start.Header.Get("Location"))
	if err != nil || loc.Host != "idp.test" {
		e.t.Fatalf("sign-in start went to %q, want the provider", start.Header.Get("Location"))
	}
	state := loc.Query().Get("state")
	var login *http.Cookie
	for _, c := range start.Cookies() {
		if c.MaxAge > 0 {
			login = c
		}
	}
	if login == nil {
		e.t.Fatal("sign-in start set no login cookie")
	}
	code := "code-" + state[:12]
	e.idp.issue(code, sub, email, groups...)
	cb, hdr := e.serve(get("https://gw.example.com/oauth2/callback?code="+code+"&state="+url.QueryEscape(state), "Cookie", login.Name+"="+login.Value))
	if bad := headerInjection(hdr); bad != "" {
		e.t.Errorf("callback header carries CR/LF/NUL: %q", bad)
	}
	return cb
}

// rawServer serves e's handler over real HTTP/1.1 with the gateway's own
// server settings, so request lines are parsed exactly as in production.
func (e *env) rawServer() *httptest.Server {
	e.t.Helper()
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config = e.h.ServerConfig().HTTPServer(e.h, newTestLogger(e.logs))
	srv.Start()
	e.t.Cleanup(srv.Close)
	return srv
}

// rawDo writes one request (request line, headers, blank line: CRLFs are
// added) to srv on a fresh connection and reads the response.
func rawDo(t *testing.T, srv *httptest.Server, requestLine string, header ...string) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(requestLine + "\r\n")
	host := false
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			host = true
		}
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	if !host {
		b.WriteString("Host: gw.example.com\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", requestLine, err)
	}
	return resp
}
