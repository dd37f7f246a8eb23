package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Path canonicalisation over HTTP (SECURITY.md §2.8-3; oauth2-proxy
// CVE-2025-54576 and CVE-2026-41059; Pomerium CVE-2023-33189): each
// request-target below could be read as a path under the protected /admin/
// by some backend, or as one under the public /public/ by a naive matcher.
// Sent as raw request lines to a real server running the gateway's own
// server settings, signed out and as bob (signed in, not an admin), each
// must get a 400 and never reach the upstream; the same path through
// forward-auth (X-Original-URI from the trusted ingress) and through Envoy
// mode (/oauth2/auth<path>) must get a 400 as well, never a 2xx.

var hostilePaths = []struct{ name, target string }{
	{"three dots", "/admin/.../x"},
	// Dot segments, literal and encoded.
	{"dot-dot out of public", "/public/../admin/"},
	{"dot-dot at the end", "/admin/x/.."},
	{"dot at the end", "/admin/."},
	{"dot segment inside", "/public/./../admin/"},
	{"leading dot segment", "/./admin/"},
	{"encoded dot-dot", "/public/%2e%2e/admin/"},
	{"encoded dot-dot upper case", "/public/%2E%2E/admin/"},
	{"half-encoded dot-dot", "/public/.%2e/admin/"},
	{"other half encoded", "/public/%2e./admin/"},
	{"encoded single dot", "/public/%2e/admin/"},
	{"dot-dot two levels", "/public/x/../../admin/"},
	// Encoded slashes and backslashes.
	{"encoded slash", "/public%2F..%2Fadmin/"},
	{"encoded slash lower case", "/public%2f..%2fadmin/"},
	{"encoded slash in admin", "/admin%2Fsecret"},
	{"encoded backslash", "/public/..%5Cadmin/"},
	{"raw backslash", `/public\..\admin/`},
	{"raw backslash alone", `/admin\secret`},
	// Empty segments.
	{"double slash", "/public//admin/"},
	{"leading double slash", "//admin/"},
	{"double slash before public", "//public/../admin/"},
	// Path parameters.
	{"semicolon dot-dot (Tomcat)", "/public/..;/admin/"},
	{"semicolon in segment", "/admin;x=1/"},
	{"semicolon hides public", "/public;/../admin/"},
	{"encoded semicolon", "/admin%3Bjsessionid=1/"},
	// NUL and controls.
	{"encoded NUL", "/admin%00/"},
	{"encoded NUL in public", "/public/%00/../admin/"},
	{"encoded tab", "/admin%09/"},
	{"encoded CR LF", "/admin%0d%0a/"},
	{"encoded DEL", "/admin%7F/"},
	// Fragment and query delimiters inside the path.
	{"raw hash", "/admin#/public/"},
	{"encoded hash", "/admin%23/public/"},
	{"encoded hash then dot-dot", "/public/%23/../admin/"},
	{"encoded question mark", "/admin%3F/public/"},
	{"encoded question mark then dot-dot", "/public/%3F/../admin/"},
	// Double encoding.
	{"double-encoded dot-dot", "/public/%252e%252e/admin/"},
	{"double-encoded slash", "/public%252F..%252Fadmin/"},
	{"double-encoded letter", "/%2561dmin/"},
	{"encoded percent", "/admin%25/"},
	// Malformed escapes.
	{"invalid escape", "/admin%zz/"},
	{"truncated escape", "/admin/%2"},
	// Unicode delimiter look-alikes.
	{"fullwidth dots", "/public/%EF%BC%8E%EF%BC%8E/admin/"},
	{"two-dot leader", "/public/%E2%80%A5/admin/"},
	{"fullwidth solidus", "/public%EF%BC%8F..%EF%BC%8Fadmin/"},
	{"division slash", "/public%E2%88%95..%E2%88%95admin/"},
	{"fullwidth reverse solidus", "/public/..%EF%BC%BCadmin/"},
	{"fullwidth semicolon", "/admin%EF%BC%9B/"},
	{"fullwidth number sign", "/admin%EF%BC%83/public/"},
	{"small full stop", "/public/%EF%B9%92%EF%B9%92/admin/"},
	// Overlong UTF-8 and invalid bytes.
	{"overlong dot", "/public/%C0%AE%C0%AE/admin/"},
	{"overlong slash", "/public%C0%AF..%C0%AFadmin/"},
	{"3-byte overlong dot", "/public/%E0%80%AE%E0%80%AE/admin/"},
	{"overlong backslash", "/public/..%C1%9Cadmin/"},
	{"lone continuation byte", "/admin%80/"},
	{"invalid byte", "/admin%FF/"},
	// Absolute-form request-target (RFC 9112 §3.2.2).
	{"absolute form dot-dot", "http://gw.example.com/public/../admin/"},
	{"absolute form encoded slash", "http://gw.example.com/public%2F..%2Fadmin/"},
	// Not starting with a slash.
	{"asterisk form", "*"},
}

// distinctPaths are accepted as paths of their own: no backend the gateway
// supports reads them as /admin/ or /public/, and the gateway neither folds
// them into those nor lets them match the public route. Signed out they
// need a sign-in; they reach the upstream byte for byte as judged.
var distinctPaths = []struct{ name, target, upstream string }{
	{"upper case (governed by /admin/ too)", "/ADMIN/", "/ADMIN/"},
	{"public as a prefix of a longer segment", "/publicity/x", "/publicity/x"},
	{"public without its slash (a different route)", "/publicx", "/publicx"},
	{"query names public", "/admin/?x=/public/", "/admin/"},
	{"query is public", "/admin/?/public/", "/admin/"},
	{"fullwidth letter", "/%EF%BD%81dmin/", "/%EF%BD%81dmin/"},
	{"Cyrillic letter", "/%D0%B0dmin/", "/%D0%B0dmin/"},
	{"encoded space", "/admin%20x/", "/admin%20x/"},
}

func TestHostilePathCount(t *testing.T) {
	if n := len(hostilePaths); n < 30 {
		t.Errorf("%d hostile paths, want at least 30", n)
	}
}

// TestHostilePaths sends each target through the reverse proxy, forward-auth
// and Envoy mode.
func TestHostilePaths(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	bob := e.bob()
	for _, tt := range hostilePaths {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			for _, who := range []struct{ name, cookie string }{{"signed out", ""}, {"bob", bob}} {
				hdr := []string{"Accept", "text/html"}
				if who.cookie != "" {
					hdr = append(hdr, "Cookie", who.cookie)
				}
				resp := rawDo(t, srv, "GET "+tt.target+" HTTP/1.1", hdr...)
				b := body(resp)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("reverse proxy, %s: %d, want 400", who.name, resp.StatusCode)
				}
				if strings.Contains(b, "upstream saw") {
					t.Errorf("reverse proxy, %s: the upstream answered", who.name)
				}
				// Envoy ext_authz: the original path under /oauth2/auth.
				if strings.HasPrefix(tt.target, "/") {
					resp = rawDo(t, srv, "GET /oauth2/auth"+tt.target+" HTTP/1.1", hdr...)
					if resp.StatusCode != http.StatusBadRequest {
						t.Errorf("envoy, %s: %d, want 400", who.name, resp.StatusCode)
					}
				}
			}
			if e.count() != before {
				t.Fatal("the upstream received the request")
			}
			// nginx auth_request: the same request-target in X-Original-URI.
			uri := tt.target
			if u, err := url.Parse(tt.target); err == nil && u.IsAbs() {
				uri = strings.TrimPrefix(tt.target, u.Scheme+"://"+u.Host)
			}
			// Refused with 403: nginx accepts no 400 from auth_request.
			resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", uri, "Cookie", bob))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("forward-auth X-Original-URI %q: %d, want 403", uri, resp.StatusCode)
			}
			// Traefik / Caddy: X-Forwarded-Uri, signed out (a browser would
			// be redirected if the path were accepted).
			resp = e.do(authReq(trustedPeer, "/oauth2/forward_auth", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", uri))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("forward-auth X-Forwarded-Uri %q: %d, want 400", uri, resp.StatusCode)
			}
		})
	}
}

// TestDistinctPaths: look-alikes the gateway accepts are judged as what
// they are (never as the public route) and reach the upstream unchanged.
func TestDistinctPaths(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	bob := e.bob()
	for _, tt := range distinctPaths {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			resp := rawDo(t, srv, "GET "+tt.target+" HTTP/1.1", "Accept", "application/json")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("signed out: %d, want 401 (not the public route)", resp.StatusCode)
			}
			if e.count() != before {
				t.Fatal("a signed-out request reached the upstream")
			}
			resp = rawDo(t, srv, "GET "+tt.target+" HTTP/1.1", "Cookie", bob)
			path, _, _ := strings.Cut(tt.target, "?")
			// Routes also match case-insensitively (hostile_case_test.go).
			admin := pathHasPrefix(lowerASCII(path), "/admin/")
			switch {
			case admin && resp.StatusCode != http.StatusForbidden:
				t.Errorf("bob on an admin path: %d, want 403", resp.StatusCode)
			case !admin && resp.StatusCode != http.StatusOK:
				t.Errorf("bob: %d, want 200", resp.StatusCode)
			case !admin:
				got := e.last()
				raw := (&url.URL{Path: got.Path, RawPath: got.RawPath}).EscapedPath()
				if raw != tt.upstream {
					t.Errorf("upstream saw %q, want %q", raw, tt.upstream)
				}
			}
			// Forward-auth judges the same way.
			want := http.StatusAccepted
			if admin {
				want = http.StatusForbidden
			}
			if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", tt.target, "Cookie", bob)); resp.StatusCode != want {
				t.Errorf("forward-auth as bob: %d, want %d", resp.StatusCode, want)
			}
			if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", tt.target)); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("forward-auth signed out: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// TestTrailingDotAndSpaceSegments: Windows/IIS backends drop trailing dots
// and spaces from path segments, so "/admin./secret" and "/admin%20/secret"
// are /admin/secret there. The gateway's contract (path.go) is to refuse
// every path that can be read two ways; these are read two ways.
func TestTrailingDotAndSpaceSegments(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	bob := e.bob()
	for _, target := range []string{"/admin./secret", "/admin../secret", "/admin%20/secret", "/admin.%20./secret"} {
		t.Run(target, func(t *testing.T) {
			before := e.count()
			resp := rawDo(t, srv, "GET "+target+" HTTP/1.1", "Cookie", bob)
			if resp.StatusCode != http.StatusBadRequest && e.count() != before {
				t.Errorf("%s reaches the upstream for a non-admin (status %d): a backend that strips trailing dots/spaces from segments (IIS, Windows file servers) serves /admin/secret; canonicalPath should refuse segments ending in '.' or ' '", target, resp.StatusCode)
			}
		})
	}
}

// TestMethodCase: methods are case-sensitive tokens (RFC 9110 §9.1), but
// several backends upper-case them (PHP's frameworks, Rack and WSGI
// middlewares that compare upper-cased), so "delete" is DELETE there. A
// policy route for DELETE must not be dodged by spelling the method in
// lower case; forward-auth already upper-cases X-Forwarded-Method.
func TestMethodCase(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{
			{Path: "/api/", Methods: []string{"DELETE"}, Groups: []string{"admins"}},
			{Path: "/api/", EmailDomains: []string{"example.com"}},
		}
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
	})
	srv := e.rawServer()
	bob := e.sessionCookie("bob", "bob@example.com", "devs")
	if resp := rawDo(t, srv, "DELETE /api/records/1 HTTP/1.1", "Cookie", bob); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob's DELETE: %d, want 403", resp.StatusCode)
	}
	// Forward-auth judges the upper-cased method.
	if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Method", "delete", "X-Forwarded-Uri", "/api/records/1", "Cookie", bob)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forward-auth, X-Forwarded-Method: delete: %d, want 403", resp.StatusCode)
	}
	var leaked []string
	for _, m := range []string{"delete", "Delete", "dELETE"} {
		before := e.count()
		resp := rawDo(t, srv, m+" /api/records/1 HTTP/1.1", "Cookie", bob)
		if e.count() != before {
			leaked = append(leaked, fmt.Sprintf("%s → %d, upstream saw %s", m, resp.StatusCode, e.last().Method))
		}
	}
	if len(leaked) > 0 {
		t.Errorf("bob (not an admin) reaches the upstream with a lower-case DELETE: %v. proxy/reverse.go proxy() builds the target with Method: r.Method as sent, "+
			"so Routes.Match finds no DELETE route and falls to the method-less one, while forwardedTarget and ParseTarget upper-case the method. "+
			"Fix: judge strings.ToUpper(r.Method) and send the upstream that same method, or refuse methods that are not upper case with 400/405", leaked)
	}
}
