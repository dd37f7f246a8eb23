package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Header spoofing (SECURITY.md BCP-11, HS-*, §2.8-5/6; oauth2-proxy
// CVE-2025-64484 and PR #624, CVE-2026-40575; Louketo CVE-2020-14359;
// Traefik CVE-2026-35051): identity headers in every spelling on protected
// and public routes and in forward-auth answers; hop-by-hop Connection
// naming identity headers; forwarded-request headers from peers that are
// not trusted proxies changing neither decision nor redirect.

// spoofNames are headers an upstream or an ingress might believe.
var spoofNames = []string{
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Access-Token", "X-Forwarded-Name", "X-Auth-Request-User", "X-Auth-Request-Email",
	"X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Access-Token",
	"Remote-User", "X-Remote-User", "X-Webauth-User", "X-Webauth-Email", "X-Auth-User", "X-Portcullis-Assertion",
}

// spellings turns a canonical header name into the ways a client can spell
// it so that some framework still maps it to the same variable.
var spellings = []struct {
	name string
	fn   func(string) string
}{
	{"canonical", func(s string) string { return s }},
	{"lower", strings.ToLower},
	{"upper", strings.ToUpper},
	{"underscores", func(s string) string { return strings.ReplaceAll(s, "-", "_") }},
	{"lower underscores", func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }},
	{"mixed separators", func(s string) string {
		b := []byte(s)
		for i, n := 0, 0; i < len(b); i++ {
			if b[i] == '-' {
				if n%2 == 0 {
					b[i] = '_'
				}
				n++
			}
		}
		return string(b)
	}},
	{"alternating case", func(s string) string {
		b := []byte(strings.ToLower(s))
		for i := 0; i < len(b); i += 2 {
			if b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
		return string(b)
	}},
}

const spoofValue = "mallory-spoofed"

// noSpoof fails when any header the upstream (or the ingress) received
// carries the spoofed value, or a spelling variant of a gateway header.
func noSpoof(t *testing.T, where string, h http.Header) {
	t.Helper()
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, spoofValue) {
				t.Errorf("%s: %s carries the spoofed value %q", where, k, v)
			}
		}
	}
}

func TestSpoofedIdentityEverySpelling(t *testing.T) {
	e := hostileEnv(t)
	alice := e.alice()
	for _, name := range spoofNames {
		for _, sp := range spellings {
			key := sp.fn(name)
			t.Run(name+"/"+sp.name, func(t *testing.T) {
				for _, tt := range []struct {
					route, target, cookie, wantUser string
				}{
					{"protected", "https://gw.example.com/app", alice, "alice"},
					{"public signed out", "https://gw.example.com/public/x", "", ""},
					{"public signed in", "https://gw.example.com/public/x", alice, "alice"},
				} {
					r := get(tt.target)
					if tt.cookie != "" {
						r.Header.Set("Cookie", tt.cookie)
					}
					r.Header[key] = []string{spoofValue, spoofValue + "-2"} // raw key, two values
					resp := e.do(r)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d", tt.route, resp.StatusCode)
					}
					up := e.last().Header
					noSpoof(t, tt.route, up)
					if got := up.Values("X-Forwarded-User"); tt.wantUser == "" && len(got) != 0 ||
						tt.wantUser != "" && (len(got) != 1 || got[0] != tt.wantUser) {
						t.Errorf("%s: X-Forwarded-User = %q, want %q", tt.route, got, tt.wantUser)
					}
				}
				// Forward-auth: signed in (202 with our headers), signed out
				// on a protected path (401), and on a public path (202).
				for _, tt := range []struct {
					name, uri, cookie string
					want              int
				}{
					{"allowed", "/admin/x", alice, http.StatusAccepted},
					{"signed out", "/admin/x", "", http.StatusUnauthorized},
					{"public", "/public/x", "", http.StatusAccepted},
				} {
					r := authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", tt.uri)
					if tt.cookie != "" {
						r.Header.Set("Cookie", tt.cookie)
					}
					r.Header[key] = []string{spoofValue}
					resp := e.do(r)
					if resp.StatusCode != tt.want {
						t.Fatalf("forward-auth %s: %d, want %d", tt.name, resp.StatusCode, tt.want)
					}
					noSpoof(t, "forward-auth "+tt.name, resp.Header)
					users := resp.Header.Values(hdrAuthUser)
					if tt.cookie != "" && (len(users) != 1 || users[0] != "alice") {
						t.Errorf("forward-auth %s: %s = %q, want alice", tt.name, hdrAuthUser, users)
					}
					if tt.cookie == "" && len(users) != 0 {
						t.Errorf("forward-auth %s: %s = %q without a session", tt.name, hdrAuthUser, users)
					}
				}
			})
		}
	}
	if e.count() == 0 {
		t.Fatal("nothing reached the upstream: the table tested nothing")
	}
}

// TestSpoofedIdentityOnTheWire sends duplicate and differently-spelled
// header lines through a real server, where net/http canonicalises some
// spellings and keeps others.
func TestSpoofedIdentityOnTheWire(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	var spoof []string
	for _, name := range spoofNames {
		for _, sp := range spellings {
			spoof = append(spoof, sp.fn(name), spoofValue)
		}
	}
	for _, tt := range []struct {
		name, target, cookie, user string
	}{
		{"protected", "/app", e.alice(), "alice"},
		{"public signed out", "/public/x", "", ""},
		{"public signed in", "/public/x", e.alice(), "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append([]string{}, spoof...)
			if tt.cookie != "" {
				hdr = append(hdr, "Cookie", tt.cookie)
			}
			resp := rawDo(t, srv, "GET "+tt.target+" HTTP/1.1", hdr...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body(resp))
			}
			up := e.last().Header
			noSpoof(t, "upstream", up)
			if got := strings.Join(up.Values("X-Forwarded-User"), ","); got != tt.user {
				t.Errorf("X-Forwarded-User = %q, want %q", got, tt.user)
			}
		})
	}
}

// TestSeveralCookieLines: browsers send one Cookie line, HTTP/2 and some
// proxies several. The session is found in any line, the first copy of a
// name sent with two different values signs nobody in (cookie tossing,
// RFC 6265bis §8.6), and the gateway's cookies are removed from every line.
func TestSeveralCookieLines(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	alice, bob := e.alice(), e.bob()
	name := e.store.Name()
	for _, tt := range []struct {
		name       string
		lines      []string
		status     int
		user       string
		upstreamCk string
	}{
		{"session in the second line", []string{"a=1", alice}, 200, "alice", "a=1"},
		{"session in the third line", []string{"a=1", "b=2", alice + "; c=3"}, 200, "alice", "a=1; b=2; c=3"},
		{"two copies across lines sign nobody in", []string{bob, alice}, 401, "", ""},
		{"garbage first copy signs nobody in", []string{name + "=garbage", alice}, 401, "", ""},
		{"miscapitalised copy in another line stripped", []string{alice, "__HOST-_PORTCULLIS=x; keep=1"}, 200, "alice", "keep=1"},
		{"login cookie in another line stripped", []string{"k=v", name + "_login_0123456789abcdef=x", alice}, 200, "alice", "k=v"},
		{"chunk names in another line sign nobody in", []string{alice, name + "_0=x"}, 401, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			hdr := []string{"Accept", "application/json"}
			for _, l := range tt.lines {
				hdr = append(hdr, "Cookie", l)
			}
			resp := rawDo(t, srv, "GET /app HTTP/1.1", hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				if e.count() != before {
					t.Error("reached the upstream")
				}
				return
			}
			up := e.last().Header
			if got := up.Get("X-Forwarded-User"); got != tt.user {
				t.Errorf("user = %q, want %q", got, tt.user)
			}
			if got := strings.Join(up.Values("Cookie"), "; "); got != tt.upstreamCk {
				t.Errorf("upstream Cookie = %q, want %q", got, tt.upstreamCk)
			}
		})
	}
}

// TestConnectionNamesIdentityHeaders: hop-by-hop removal (RFC 9110 §7.6.1)
// of headers named in Connection must not remove what the gateway sets
// (§2.8-6: Director mode did), on any route, nor let a client's copy
// survive.
func TestConnectionNamesIdentityHeaders(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	names := "X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Forwarded-Preferred-Username, X-Request-Id, X-Forwarded-For, X-Forwarded-Host, Cookie"
	for _, tt := range []struct {
		name, target, cookie string
		want                 map[string]string
	}{
		{"protected", "/app", e.alice(), map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "admins", "X-Forwarded-Preferred-Username": "alice"}},
		{"public signed in", "/public/x", e.alice(), map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com"}},
		{"public signed out", "/public/x", "", map[string]string{"X-Forwarded-User": ""}},
	} {
		for _, conn := range []string{"close, " + names, "keep-alive, " + strings.ReplaceAll(names, "-", "_"), strings.ToLower(names)} {
			t.Run(tt.name+"/"+conn, func(t *testing.T) {
				hdr := []string{"Connection", conn, "X-Forwarded-User", spoofValue, "X_Forwarded_Email", spoofValue}
				if tt.cookie != "" {
					hdr = append(hdr, "Cookie", tt.cookie)
				}
				resp := rawDo(t, srv, "GET "+tt.target+" HTTP/1.1", hdr...)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				up := e.last().Header
				noSpoof(t, "upstream", up)
				for k, want := range tt.want {
					if got := up.Get(k); got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				if up.Get("X-Request-Id") == "" {
					t.Error("the gateway's X-Request-Id was dropped")
				}
			})
		}
	}
	// Forward-auth answers are not proxied: Connection in the check request
	// changes nothing in them.
	resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", "/admin/", "Cookie", e.alice(),
		"Connection", "close, X-Auth-Request-User, X-Auth-Request-Email"))
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get(hdrAuthUser) != "alice" || resp.Header.Get(hdrAuthEmail) != "alice@example.com" {
		t.Errorf("forward-auth with Connection naming its headers: %d %v", resp.StatusCode, resp.Header)
	}
}

// forwardedSpoofs are request-describing headers a client can send. From a
// peer outside server.trusted_proxies each must change nothing.
var forwardedSpoofs = []struct {
	name   string
	header []string
}{
	{"traefik names public", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.com", "X-Forwarded-Uri", "/public/x"}},
	{"nginx names public", []string{"X-Original-URI", "/public/x", "X-Original-Method", "GET"}},
	{"ingress-nginx names public", []string{"X-Original-URL", "https://evil.com/public/x"}},
	{"RFC 7239 Forwarded", []string{"Forwarded", `for=192.0.2.10;host=evil.com;proto=http, for="[2001:db8::1]"`}},
	{"forwarded prefix", []string{"X-Forwarded-Prefix", "/public"}},
	{"rewrite url", []string{"X-Rewrite-URL", "/public/x", "X-Original-Url", "/public/x"}},
	{"claims to be the trusted ingress", []string{"X-Forwarded-For", "192.0.2.10", "X-Real-IP", "192.0.2.10", "X-Forwarded-Uri", "/public/x"}},
	{"underscore spellings", []string{"X_Forwarded_Uri", "/public/x", "X_Original_URI", "/public/x", "X_Forwarded_Host", "evil.com"}},
	{"forwarded port and ssl", []string{"X-Forwarded-Port", "1", "X-Forwarded-Ssl", "on", "X-Forwarded-Server", "evil.com"}},
	{"redirect header", []string{"X-Auth-Request-Redirect", "https://app.example.com/stolen"}},
	{"method override", []string{"X-Forwarded-Method", "OPTIONS", "X-Original-Method", "OPTIONS"}},
	{"all at once", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Host", "evil.com", "X-Forwarded-Uri", "/public/x",
		"X-Original-URI", "/public/x", "X-Original-URL", "https://evil.com/public/x", "Forwarded", "host=evil.com",
		"X-Forwarded-Prefix", "/public", "X-Auth-Request-Redirect", "https://app.example.com/stolen", "X-Forwarded-For", "192.0.2.10"}},
}

func TestUntrustedForwardedHeaders(t *testing.T) {
	e := hostileEnv(t)
	bob := e.bob()
	withSpoof := func(r *http.Request, h []string) *http.Request {
		for i := 0; i+1 < len(h); i += 2 {
			r.Header[h[i]] = append(r.Header[h[i]], h[i+1]) // raw keys: underscores stay
		}
		return r
	}
	for _, sp := range forwardedSpoofs {
		t.Run(sp.name, func(t *testing.T) {
			// The decision is about the request's own path: bob stays out
			// of /admin/.
			if resp := e.do(withSpoof(authReq(untrustedPeer, "/admin/x", "Cookie", bob), sp.header)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob on /admin/x: %d, want 403", resp.StatusCode)
			}
			// Signed out: a sign-in that returns to the request's own path.
			start := e.do(withSpoof(authReq(untrustedPeer, "/admin/x?q=1", "Accept", "text/html"), sp.header))
			if got := e.finish(start, "alice", "alice@example.com", "admins").Header.Get("Location"); got != "/admin/x?q=1" {
				t.Errorf("after sign-in went to %q, want /admin/x?q=1", got)
			}
			// JSON clients get a login_url on the gateway, to the same path.
			resp := e.do(withSpoof(authReq(untrustedPeer, "/admin/x", "Accept", "application/json"), sp.header))
			if m := decodeJSON(t, resp); m["login_url"] != "https://gw.example.com/oauth2/start?rd=%2Fadmin%2Fx" {
				t.Errorf("login_url = %v", m["login_url"])
			}
			// /oauth2/start ignores X-Auth-Request-Redirect.
			start = e.do(withSpoof(authReq(untrustedPeer, "/oauth2/start"), sp.header))
			if got := e.finish(start, "alice", "alice@example.com").Header.Get("Location"); got != "/" {
				t.Errorf("/oauth2/start then sign-in went to %q, want /", got)
			}
			// Forward-auth decides the fixed target (GET / on the gateway):
			// signed out 401 (never a redirect built from the headers), bob 202.
			resp = e.do(withSpoof(authReq(untrustedPeer, "/oauth2/auth"), sp.header))
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
				t.Errorf("forward-auth signed out: %d to %q, want 401", resp.StatusCode, resp.Header.Get("Location"))
			}
			if resp := e.do(withSpoof(authReq(untrustedPeer, "/oauth2/auth", "Cookie", bob), sp.header)); resp.StatusCode != http.StatusAccepted {
				t.Errorf("forward-auth as bob: %d, want 202", resp.StatusCode)
			}
			// What the upstream is told comes from the connection, not the
			// client's headers.
			before := e.count()
			if resp := e.do(withSpoof(authReq(untrustedPeer, "/app", "Cookie", bob), sp.header)); resp.StatusCode != http.StatusOK {
				t.Fatalf("bob on /app: %d", resp.StatusCode)
			}
			if e.count() != before+1 {
				t.Fatal("the request did not reach the upstream")
			}
			up := e.last()
			if up.Path != "/app" || up.Host != "gw.example.com" {
				t.Errorf("upstream got %s %s", up.Host, up.Path)
			}
			for _, k := range []string{"X-Forwarded-Prefix", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-Uri",
				"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Server", "X-Auth-Request-Redirect"} {
				if v := up.Header.Values(k); len(v) > 0 {
					t.Errorf("upstream received %s: %q", k, v)
				}
			}
			for k := range up.Header {
				if strings.Contains(k, "_") {
					t.Errorf("upstream received %s", k)
				}
			}
			// Whatever X-Forwarded-*, X-Real-Ip and Forwarded the upstream
			// gets (see TestUpstreamToldClientAddress) is not the client's.
			if got := strings.Join(up.Header.Values("X-Real-Ip"), ","); got != "203.0.113.5" {
				t.Errorf("X-Real-Ip = %q, want the peer 203.0.113.5", got)
			}
			if got := strings.Join(up.Header.Values("Forwarded"), ","); got != "for=203.0.113.5;host=gw.example.com;proto=https" {
				t.Errorf("Forwarded = %q, want the peer's", got)
			}
			if got := strings.Join(up.Header.Values("X-Forwarded-For"), ","); strings.Contains(got, "192.0.2.10") {
				t.Errorf("X-Forwarded-For = %q carries the client's claim", got)
			}
			if got := strings.Join(up.Header.Values("X-Forwarded-Host"), ","); strings.Contains(got, "evil.com") {
				t.Errorf("X-Forwarded-Host = %q carries the client's claim", got)
			}
		})
	}
}

// TestAbsoluteFormHost: GET http://evil.com/x sets r.Host to evil.com
// (§2.8-4). Neither the sign-in URL nor the return target is built from it.
func TestAbsoluteFormHost(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	resp := rawDo(t, srv, "GET http://evil.com/dashboard?x=1 HTTP/1.1", "Host", "gw.example.com", "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if m := decodeJSON(t, resp); m["login_url"] != "https://gw.example.com/oauth2/start?rd=%2Fdashboard%3Fx%3D1" {
		t.Errorf("login_url = %v, want one on the gateway returning to a relative path", m["login_url"])
	}
	start := rawDo(t, srv, "GET http://evil.com/dashboard?x=1 HTTP/1.1", "Host", "gw.example.com", "Accept", "text/html")
	loc, _ := url.Parse(start.Header.Get("Location"))
	if start.StatusCode != http.StatusFound || loc == nil || loc.Host != "idp.test" {
		t.Fatalf("sign-in: %d to %q", start.StatusCode, start.Header.Get("Location"))
	}
	if got := e.finish(start, "alice", "alice@example.com").Header.Get("Location"); got != "/dashboard?x=1" {
		t.Errorf("after sign-in went to %q, want /dashboard?x=1", got)
	}
}

// TestUpstreamToldClientAddress: the Rewrite hook calls SetXForwarded so
// the upstream learns the client's address, host and scheme, and then
// strips every managed header, X-Forwarded-For/-Host/-Proto included.
func TestUpstreamToldClientAddress(t *testing.T) {
	e := hostileEnv(t)
	if resp := e.do(authReq(untrustedPeer, "/app", "Cookie", e.bob(), "X-Forwarded-For", "192.0.2.10")); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	up := e.last().Header
	if got := up.Get("X-Forwarded-For"); got != "203.0.113.5" {
		t.Errorf("upstream X-Forwarded-For = %q, want the peer 203.0.113.5 (X-Forwarded-Host %q, X-Forwarded-Proto %q): "+
			"proxy/upstream.go Rewrite runs pr.SetXForwarded() and then h.managed.strip(out), which deletes what SetXForwarded set; strip first, then SetXForwarded",
			got, up.Get("X-Forwarded-Host"), up.Get("X-Forwarded-Proto"))
	}
	if got := up.Get("X-Forwarded-Host"); got != "gw.example.com" {
		t.Errorf("X-Forwarded-Host = %q, want gw.example.com", got)
	}
}

// TestMethodOverrideHeaders: policy routes can differ by method (bob may
// POST to /api/, only admins may DELETE). Many frameworks (Express
// method-override, Laravel, Symfony with http_method_override, Rails'
// Rack::MethodOverride for _method) let a header turn a POST into a
// DELETE; an upstream must not see a client's copy of such a header, or the
// method the policy judged is not the one the application runs.
func TestMethodOverrideHeaders(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{
			{Path: "/api/", Methods: []string{"GET", "POST"}, EmailDomains: []string{"example.com"}},
			{Path: "/api/", Methods: []string{"DELETE"}, Groups: []string{"admins"}},
		}
	})
	bob := e.sessionCookie("bob", "bob@example.com", "devs")
	if resp := e.do(httptest.NewRequest("DELETE", "https://gw.example.com/api/records/1", nil)); resp.StatusCode == http.StatusOK {
		t.Fatal("a signed-out DELETE passed")
	}
	r := httptest.NewRequest("DELETE", "https://gw.example.com/api/records/1", nil)
	r.Header.Set("Cookie", bob)
	if resp := e.do(r); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob's DELETE: %d, want 403", resp.StatusCode)
	}
	var leaked []string
	for _, name := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method"} {
		r := httptest.NewRequest("POST", "https://gw.example.com/api/records/1", nil)
		r.Header.Set("Cookie", bob)
		r.Header.Set(name, "DELETE")
		resp := e.do(r)
		if resp.StatusCode == http.StatusOK && e.last().Header.Get(name) == "DELETE" {
			leaked = append(leaked, name)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("a POST that bob may make reaches the upstream with %v: DELETE, which only admins may send; "+
			"add the method-override headers to managedHeaders (proxy/headers.go) or refuse requests carrying them", leaked)
	}
}

// TestTargetOverrideHeadersEverySpelling: headers that name another
// request target, host, scheme or method than the one judged never reach
// the upstream, in any spelling, on protected and public routes. The
// method overrides carry a method bob may use, so the request passes and
// the test sees what the upstream got.
func TestTargetOverrideHeadersEverySpelling(t *testing.T) {
	e := hostileEnv(t)
	bob := e.bob()
	names := append(slices.Clone(targetOverrideHeaders), "X-Http-Method-Override", "X-Http-Method", "X-Method-Override")
	for _, name := range names {
		for _, sp := range spellings {
			key := sp.fn(name)
			t.Run(name+"/"+sp.name, func(t *testing.T) {
				for _, target := range []string{"https://gw.example.com/app", "https://gw.example.com/public/x"} {
					r := get(target)
					r.Header.Set("Cookie", bob)
					r.Header[key] = []string{"GET"}
					if resp := e.do(r); resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d", target, resp.StatusCode)
					}
					for k := range e.last().Header {
						if normHeader(k) == normHeader(name) {
							t.Errorf("%s: the upstream received %s", target, k)
						}
					}
				}
			})
		}
	}
	// Near misses: names that merely resemble an override pass untouched.
	for _, name := range []string{"X-Original-Language", "X-Url", "X-Methods", "X-Hosting", "X-Override-Theme"} {
		r := get("https://gw.example.com/app")
		r.Header.Set("Cookie", bob)
		r.Header.Set(name, "kept")
		if resp := e.do(r); resp.StatusCode != http.StatusOK || e.last().Header.Get(name) != "kept" {
			t.Errorf("near miss %s: status %d, upstream saw %q", name, resp.StatusCode, e.last().Header.Get(name))
		}
	}
}

// TestQueryMethodOverride: a `_method` query parameter (Rails, Laravel,
// Symfony) is judged for the method it names, however it is spelled.
func TestQueryMethodOverride(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Policy.Routes = []RouteConfig{
			{Path: "/api/", Methods: []string{"GET", "POST"}, EmailDomains: []string{"example.com"}},
			{Path: "/api/", Methods: []string{"DELETE", "PUT", "PATCH"}, Groups: []string{"admins"}},
		}
	})
	bob := e.sessionCookie("bob", "bob@example.com", "devs")
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"_method=DELETE", http.StatusForbidden},
		{"_method=delete", http.StatusForbidden},
		{"_METHOD=PUT", http.StatusForbidden},
		{"%5Fmethod=PATCH", http.StatusForbidden},
		{"_method=%44ELETE", http.StatusForbidden},
		{"a=1;_method=DELETE", http.StatusForbidden},
		{"a=1&_method=POST&_method=DELETE", http.StatusForbidden},
		{"_method=+DELETE+", http.StatusForbidden},
		// Near misses.
		{"_method=POST", http.StatusOK},
		{"_method=", http.StatusOK},
		{"x_method=DELETE", http.StatusOK},
		{"method=DELETE", http.StatusOK},
		{"comment=_method%3DDELETE", http.StatusOK},
	} {
		r := httptest.NewRequest("POST", "https://gw.example.com/api/records/1?"+tt.query, nil)
		r.Header.Set("Cookie", bob)
		if resp := e.do(r); resp.StatusCode != tt.want {
			t.Errorf("POST ?%s: %d, want %d", tt.query, resp.StatusCode, tt.want)
		}
		// Forward-auth judges the forwarded request's query, not the
		// subrequest's.
		r = authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Method", "POST", "X-Forwarded-Proto", "https",
			"X-Forwarded-Host", "gw.example.com", "X-Forwarded-Uri", "/api/records/1?"+tt.query)
		r.Header.Set("Cookie", bob)
		resp := e.do(r)
		if allowed := resp.StatusCode/100 == 2; allowed != (tt.want == http.StatusOK) {
			t.Errorf("forward-auth POST ?%s: %d, want %d", tt.query, resp.StatusCode, tt.want)
		}
	}
}
