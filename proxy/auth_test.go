package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// authEnv has a gateway trusting 192.0.2.0/24 as its ingress, a public
// /public route and an /admin/ route for admins.
func authEnv(t *testing.T) *env {
	return newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24", "2001:db8::1"}
		c.Server.AllowedRedirectHosts = []string{"app.example.com"}
		c.Policy.Routes = []RouteConfig{
			{Path: "/public/", Public: true},
			{Path: "/admin/", Groups: []string{"admins"}},
		}
	})
}

func authReq(peer, target string, header ...string) *http.Request {
	r := get("https://gw.example.com"+target, header...)
	r.RemoteAddr = peer
	return r
}

const (
	trustedPeer   = "192.0.2.10:51000"
	untrustedPeer = "203.0.113.5:51000"
)

func TestAuthModes(t *testing.T) {
	e := authEnv(t)
	alice := e.sessionCookie("alice", "alice@example.com", "admins", "devs")
	bob := e.sessionCookie("bob", "bob@example.com", "devs")
	traefik := func(uri string) []string {
		return []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", uri}
	}
	with := func(h []string, more ...string) []string { return append(append([]string{}, h...), more...) }
	for _, tt := range []struct {
		name     string
		peer     string
		target   string
		header   []string
		want     int
		location string // prefix of Location for 302s
	}{
		// nginx auth_request: the original URI in X-Original-URI.
		{"nginx no session", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/admin/x"}, 401, ""},
		{"nginx public", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/public/x"}, 202, ""},
		{"nginx allowed", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/admin/x", "Cookie", alice}, 202, ""},
		{"nginx denied", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/admin/x", "Cookie", bob}, 403, ""},
		// ingress-nginx: the full URL in X-Original-URL.
		{"ingress-nginx allowed", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "https://app.example.com/admin/", "Cookie", alice}, 202, ""},
		{"ingress-nginx denied", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "https://app.example.com/admin/", "Cookie", bob}, 403, ""},
		// oauth2-proxy's nginx block sends X-Forwarded-Uri: still 401 (nginx).
		{"oauth2-proxy nginx block no session", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Uri", "/admin/x", "Accept", "text/html"}, 401, ""},
		// Traefik / Caddy at /oauth2/forward_auth: browsers are redirected.
		{"traefik browser no session", trustedPeer, "/oauth2/forward_auth", traefik("/admin/x?y=1"), 302,
			"https://gw.example.com/oauth2/start?rd=" + url.QueryEscape("https://app.example.com/admin/x?y=1")},
		{"traefik api no session", trustedPeer, "/oauth2/forward_auth", with(traefik("/admin/x"), "Accept", "application/json"), 401, ""},
		{"traefik allowed", trustedPeer, "/oauth2/forward_auth", with(traefik("/admin/x"), "Cookie", alice), 202, ""},
		{"traefik public", trustedPeer, "/oauth2/forward_auth", traefik("/public/"), 202, ""},
		{"traefik denied", trustedPeer, "/oauth2/forward_auth", with(traefik("/admin/x"), "Cookie", bob), 403, ""},
		// Untrusted peers cannot steer the decision: the target is GET /.
		{"untrusted public uri ignored", untrustedPeer, "/oauth2/auth", traefik("/public/x"), 401, ""},
		{"untrusted original uri ignored", untrustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/public/x"}, 401, ""},
		{"untrusted admin uri ignored (decides /)", untrustedPeer, "/oauth2/auth", with(traefik("/admin/x"), "Cookie", bob), 202, ""},
		{"ipv6 trusted", "[2001:db8::1]:443", "/oauth2/auth", []string{"X-Original-URI", "/public/x"}, 202, ""},
		// Envoy ext_authz: the original method and path under /oauth2/auth/.
		{"envoy allowed", untrustedPeer, "/oauth2/auth/admin/x?q=1", []string{"Cookie", alice}, 200, ""},
		{"envoy denied", untrustedPeer, "/oauth2/auth/admin/x", []string{"Cookie", bob}, 403, ""},
		{"envoy public", untrustedPeer, "/oauth2/auth/public/", nil, 200, ""},
		{"envoy browser no session", untrustedPeer, "/oauth2/auth/admin/x", nil, 302, "https://gw.example.com/oauth2/start?rd="},
		{"envoy api no session", untrustedPeer, "/oauth2/auth/admin/x", []string{"Accept", "application/json"}, 401, ""},
		{"envoy ambiguous path", untrustedPeer, "/oauth2/auth/public/..%2Fadmin/", []string{"Cookie", bob}, 400, ""},
		// Malformed forwarded headers fail closed: 403 (nginx makes a 500 of a 400).
		{"bad proto", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Proto", "gopher", "X-Forwarded-Uri", "/public/"}, 403, ""},
		{"host with a path", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Host", "evil.com/x", "X-Forwarded-Uri", "/public/"}, 403, ""},
		{"ambiguous uri", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Uri", "/public/%2e%2e/admin/"}, 403, ""},
		{"uri with dot segments", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/public/../admin/x", "Cookie", bob}, 403, ""},
		{"method with a space", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Method", "GET /", "X-Forwarded-Uri", "/public/"}, 403, ""},
		{"original url relative", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "/public/"}, 403, ""},
		{"uri headers disagree (client added one)", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/admin/x", "X-Forwarded-Uri", "/public/"}, 403, ""},
		{"uri headers differ in case", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/ADMIN/", "X-Forwarded-Uri", "/admin/"}, 403, ""},
		{"original url disagrees with uri", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "https://app.example.com/admin/", "X-Original-URI", "/public/"}, 403, ""},
		{"hosts disagree", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "https://app.example.com/public/", "X-Forwarded-Host", "other.example.com"}, 403, ""},
		{"methods disagree", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Method", "GET", "X-Original-Method", "POST", "X-Forwarded-Uri", "/public/"}, 403, ""},
		{"headers agree", trustedPeer, "/oauth2/auth", []string{"X-Original-URI", "/public/x", "X-Forwarded-Uri", "/public/x"}, 202, ""},
		{"duplicate header lines", trustedPeer, "/oauth2/auth", []string{"X-Forwarded-Uri", "/public/", "X-Forwarded-Uri", "/admin/"}, 403, ""},
		{"original url with userinfo", trustedPeer, "/oauth2/auth", []string{"X-Original-URL", "https://a@app.example.com/public/"}, 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			resp := e.do(authReq(tt.peer, tt.target, tt.header...))
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.want, body(resp))
			}
			if tt.location != "" && !strings.HasPrefix(resp.Header.Get("Location"), tt.location) {
				t.Errorf("Location = %q, want prefix %q", resp.Header.Get("Location"), tt.location)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
			}
			if e.count() != before {
				t.Error("a forward-auth call reached the upstream")
			}
		})
	}
}

func TestAuthResponseHeaders(t *testing.T) {
	e := authEnv(t)
	r := authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", "/admin/", "Cookie", e.sessionCookie("alice", "alice@example.com", "admins", "devs"),
		"X-Auth-Request-Email", "spoofed@evil.com", "X_Auth_Request_User", "spoofed")
	resp := e.do(r)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	for name, want := range map[string]string{
		"X-Auth-Request-User":               "alice",
		"X-Auth-Request-Email":              "alice@example.com",
		"X-Auth-Request-Groups":             "admins,devs",
		"X-Auth-Request-Preferred-Username": "alice",
	} {
		if got := resp.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := resp.Header.Get("X-Auth-Request-Access-Token"); got != "" {
		t.Errorf("access token sent without auth_request_access_token: %q", got)
	}
}

func TestAuthNarrowing(t *testing.T) {
	e := authEnv(t)
	alice := e.sessionCookie("alice", "alice@example.com", "admins", "devs")
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"", 202},
		{"?allowed_groups=devs", 202},
		{"?allowed_groups=ops,devs", 202},
		{"?allowed_groups=ops", 403},
		{"?allowed_groups=ops&allowed_groups=devs", 202},
		{"?allowed_emails=alice@example.com", 202},
		{"?allowed_emails=bob@example.com", 403},
		{"?allowed_email_domains=example.com", 202},
		{"?allowed_email_domains=example.org", 403},
		{"?allowed_groups=devs&allowed_email_domains=example.org", 403},
		{"?allowed_groups=", 403},
		{"?allowed_email_domains=*", 202},
		{"?allowed_groups=%zz", 403}, // refused; a 400 would be nginx's 500
		{"?unrelated=1", 202},
	} {
		t.Run(tt.query, func(t *testing.T) {
			// /other is governed by the default rule (example.com), so
			// narrowing is what turns alice away.
			resp := e.do(authReq(trustedPeer, "/oauth2/auth"+tt.query, "X-Original-URI", "/other", "Cookie", alice))
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// Narrowing never widens: bob (not an admin) stays out of /admin/.
	bob := e.sessionCookie("bob", "bob@example.com", "devs")
	if resp := e.do(authReq(trustedPeer, "/oauth2/auth?allowed_groups=devs", "X-Original-URI", "/admin/", "Cookie", bob)); resp.StatusCode != 403 {
		t.Errorf("narrowing widened access: %d", resp.StatusCode)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tp, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		remote string
		want   bool
	}{
		{"10.1.2.3:1", true}, {"11.0.0.1:1", false}, {"192.0.2.7:1", true}, {"192.0.2.8:1", false},
		{"[::1]:1", true}, {"[::ffff:10.0.0.1]:1", true}, {"garbage", false}, {"", false},
	} {
		r := get("/")
		r.RemoteAddr = tt.remote
		if got := tp.trusts(r); got != tt.want {
			t.Errorf("trusts(%q) = %v, want %v", tt.remote, got, tt.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "10.0.0.1/8/8"} {
		if _, err := parseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
