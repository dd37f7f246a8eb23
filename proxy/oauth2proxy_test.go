package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The oauth2-proxy contract of /oauth2/auth, its /oauth2/sign_in, and
// X-Auth-Request-Redirect (issue 16 item 1).

// TestAuthNeverRedirects: whatever mix of forwarded headers arrives, from
// whichever peer, with or without a session, /oauth2/auth answers 202, 401
// or 403 (the only answers nginx's auth_request accepts) and never a
// redirect; headers it refuses get 403. A redirect=... parameter is not a
// switch: only the path is.
func TestAuthNeverRedirects(t *testing.T) {
	e := authEnv(t)
	sessions := map[string]string{"none": "", "alice (admin)": e.alice(), "bob (not admin)": e.bob()}
	headerSets := map[string][]string{
		"none":                       nil,
		"oauth2-proxy nginx block":   {"X-Forwarded-Uri", "/admin/x"},
		"our nginx block":            {"X-Original-URI", "/admin/x", "X-Original-Method", "GET", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Proto", "https"},
		"ingress-nginx":              {"X-Original-URL", "https://app.example.com/admin/x", "X-Original-Method", "GET"},
		"traefik / caddy":            {"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", "/admin/x"},
		"forwarded and original uri": {"X-Forwarded-Uri", "/admin/x", "X-Original-URI", "/admin/x"},
		"all three agreeing":         {"X-Forwarded-Uri", "/admin/x", "X-Original-URI", "/admin/x", "X-Original-URL", "https://gw.example.com/admin/x"},
		"public route":               {"X-Forwarded-Uri", "/public/x", "X-Forwarded-Host", "app.example.com"},
		// Refused (403, never the 400 nginx would make a 500 of):
		"refused: client added X-Original-URI": {"X-Forwarded-Uri", "/admin/x", "X-Original-URI", "/public/x"},
		"refused: dot segments":                {"X-Forwarded-Uri", "/public/../admin/x"},
		"refused: two X-Forwarded-Uri":         {"X-Forwarded-Uri", "/public/x", "X-Forwarded-Uri", "/admin/x"},
		"refused: bad proto":                   {"X-Forwarded-Proto", "gopher", "X-Forwarded-Uri", "/admin/x"},
	}
	accepts := []string{"", "text/html", "application/json"}
	queries := []string{"", "?redirect=true", "?allowed_groups=admins", "?allowed_groups=admins&redirect=1&rd=https://evil.com"}
	for _, peer := range []string{trustedPeer, untrustedPeer} {
		for hname, hdr := range headerSets {
			for sname, cookie := range sessions {
				for _, accept := range accepts {
					for _, q := range queries {
						h := append([]string{}, hdr...)
						if cookie != "" {
							h = append(h, "Cookie", cookie)
						}
						if accept != "" {
							h = append(h, "Accept", accept)
						}
						what := peer + " " + hname + " " + sname + " " + accept + " " + q
						resp, written := e.serve(authReq(peer, "/oauth2/auth"+q, h...))
						switch resp.StatusCode {
						case http.StatusAccepted, http.StatusUnauthorized, http.StatusForbidden:
						default:
							t.Errorf("%s: %d, want 202, 401 or 403", what, resp.StatusCode)
						}
						if loc := written.Get("Location"); loc != "" {
							t.Errorf("%s: Location %q on /oauth2/auth", what, loc)
						}
						refused := strings.HasPrefix(hname, "refused") && peer == trustedPeer
						switch {
						case refused && resp.StatusCode != http.StatusForbidden:
							t.Errorf("%s: %d, want 403", what, resp.StatusCode)
						case !refused && cookie == "" && hname != "public route" && resp.StatusCode != http.StatusUnauthorized:
							t.Errorf("%s: %d without a session, want 401", what, resp.StatusCode)
						}
					}
				}
			}
		}
	}
}

// TestAuthUnauthorizedBody: the 401 of /oauth2/auth still leads on, for
// proxies that show it: a page with a sign-in link, or JSON with login_url,
// to our own /oauth2/start returning to the original request.
func TestAuthUnauthorizedBody(t *testing.T) {
	e := authEnv(t)
	fwd := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", "/admin/x"}
	want := "https://gw.example.com/oauth2/start?rd=" + url.QueryEscape("https://app.example.com/admin/x")
	resp := e.do(authReq(trustedPeer, "/oauth2/auth", append(fwd, "Accept", "text/html")...))
	if page := body(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `href="`+strings.ReplaceAll(want, "&", "&amp;")+`"`) {
		t.Errorf("browser: %d, page without the sign-in link %s:\n%s", resp.StatusCode, want, page)
	}
	resp = e.do(authReq(trustedPeer, "/oauth2/auth", append(fwd, "Accept", "application/json")...))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API client: %d, want 401", resp.StatusCode)
	}
	if m := decodeJSON(t, resp); m["login_url"] != want {
		t.Errorf("login_url = %v, want %s", m["login_url"], want)
	}
}

// TestForwardAuthEntryPoint: /oauth2/forward_auth is the same decision as
// /oauth2/auth, with a redirect for browsers only.
func TestForwardAuthEntryPoint(t *testing.T) {
	e := authEnv(t)
	fwd := func(uri string, more ...string) []string {
		return append([]string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", uri}, more...)
	}
	for _, tt := range []struct {
		name   string
		header []string
		auth   int // /oauth2/auth
		fwd    int // /oauth2/forward_auth
	}{
		{"browser, no session", fwd("/admin/x"), 401, 302},
		{"API client, no session", fwd("/admin/x", "Accept", "application/json"), 401, 401},
		{"script, no session", fwd("/admin/x", "X-Requested-With", "XMLHttpRequest"), 401, 401},
		{"allowed", fwd("/admin/x", "Cookie", e.alice()), 202, 202},
		{"denied", fwd("/admin/x", "Cookie", e.bob()), 403, 403},
		{"public", fwd("/public/x"), 202, 202},
	} {
		a := e.do(authReq(trustedPeer, "/oauth2/auth", tt.header...))
		f := e.do(authReq(trustedPeer, "/oauth2/forward_auth", tt.header...))
		if a.StatusCode != tt.auth || f.StatusCode != tt.fwd {
			t.Errorf("%s: /oauth2/auth %d (want %d), /oauth2/forward_auth %d (want %d)", tt.name, a.StatusCode, tt.auth, f.StatusCode, tt.fwd)
		}
		if f.StatusCode == http.StatusFound {
			if loc := f.Header.Get("Location"); loc != "https://gw.example.com/oauth2/start?rd="+url.QueryEscape("https://app.example.com/admin/x") {
				t.Errorf("%s: forward_auth redirects to %q", tt.name, loc)
			}
		}
		if f.StatusCode == http.StatusAccepted && f.Header.Get(hdrAuthUser) != a.Header.Get(hdrAuthUser) {
			t.Errorf("%s: the entry points name different users", tt.name)
		}
	}
	for _, tt := range []struct {
		name, target string
		header       []string
		want         int
	}{
		{"narrowed", "/oauth2/forward_auth?allowed_groups=ops", fwd("/admin/x", "Cookie", e.alice()), 403},
		{"nginx headers, no session", "/oauth2/forward_auth", []string{"X-Original-URI", "/admin/x"}, 302},
		{"bad proto", "/oauth2/forward_auth", []string{"X-Forwarded-Proto", "gopher", "X-Forwarded-Uri", "/public/"}, 400},
		{"uri headers disagree", "/oauth2/forward_auth", []string{"X-Original-URI", "/admin/x", "X-Forwarded-Uri", "/public/"}, 400},
		{"bad narrowing", "/oauth2/forward_auth?allowed_groups=%zz", fwd("/public/"), 400},
	} {
		if resp := e.do(authReq(trustedPeer, tt.target, tt.header...)); resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	// An untrusted peer cannot steer it: decided as GET /, signed out.
	resp := e.do(authReq(untrustedPeer, "/oauth2/forward_auth", fwd("/public/x")...))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://gw.example.com/oauth2/start?rd="+url.QueryEscape("https://gw.example.com/") {
		t.Errorf("untrusted peer: %d to %q, want 302 to sign-in returning to /", resp.StatusCode, loc)
	}
	// The Envoy prefix is untouched: /oauth2/forward_auth/x is no endpoint.
	if resp := e.do(authReq(trustedPeer, "/oauth2/forward_auth/admin/x")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/oauth2/forward_auth/admin/x: %d, want 404", resp.StatusCode)
	}
}

// TestSignInOneProvider: /oauth2/sign_in with one provider goes straight to
// it, keeping rd; the 302's body refreshes to it and links to it too, for
// nginx's error_page 401 =403 /oauth2/sign_in, which makes it a 403.
func TestSignInOneProvider(t *testing.T) {
	e := hostileEnv(t)
	start, _ := e.serve(authReq(untrustedPeer, "/oauth2/sign_in?rd=%2Freports%3Fq%3D3", "Accept", "text/html"))
	loc := start.Header.Get("Location")
	if start.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://idp.test/authorize?") {
		t.Fatalf("sign_in: %d to %q, want 302 to the provider", start.StatusCode, loc)
	}
	esc := strings.ReplaceAll(loc, "&", "&amp;")
	if page := body(start); !strings.Contains(page, `href="`+esc+`"`) || !strings.Contains(page, `<meta http-equiv="refresh" content="0;url=`+esc+`">`) {
		t.Errorf("the redirect's body neither refreshes nor links to the provider: %q", page)
	}
	if n := start.Header.Get("Content-Length"); n == "" {
		t.Error("no Content-Length on the replaced body")
	}
	if got := e.finish(start, "alice", "alice@example.com").Header.Get("Location"); got != "/reports?q=3" {
		t.Errorf("after sign-in via /oauth2/sign_in: %q, want /reports?q=3", got)
	}
	if resp := e.do(authReq(untrustedPeer, "/oauth2/sign_in")); resp.StatusCode != http.StatusFound {
		t.Errorf("sign_in without rd: %d", resp.StatusCode)
	}
	post := get("https://gw.example.com/oauth2/sign_in")
	post.Method = http.MethodPost
	if resp := e.do(post); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST sign_in: %d, want 405", resp.StatusCode)
	}
}

// TestSignInTwoProviders: with several providers /oauth2/sign_in is the
// chooser, each link keeping rd (checked by the redirect policy first).
func TestSignInTwoProviders(t *testing.T) {
	e, _ := twoProviders(t)
	resp := e.do(get("https://gw.example.com/oauth2/sign_in?rd=%2Freports%3Fx%3D1"))
	page := body(resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign in with Provider corp") ||
		!strings.Contains(page, `href="https://gw.example.com/oauth2/start?provider=partner&amp;rd=%2Freports%3Fx%3D1"`) {
		t.Errorf("sign_in with two providers: %d\n%s", resp.StatusCode, page)
	}
	resp = e.do(get("https://gw.example.com/oauth2/sign_in?rd=https%3A%2F%2Fevil.com%2F"))
	if page := body(resp); strings.Contains(page, "evil.com") {
		t.Errorf("the chooser offers an off-site rd:\n%s", page)
	}
	resp = e.do(get("https://gw.example.com/oauth2/sign_in?provider=partner&rd=%2Fx"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://partner.test/authorize") {
		t.Errorf("sign_in?provider=partner: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSignInAuthRequestRedirect: X-Auth-Request-Redirect names the return
// target when rd is absent, from the trusted ingress only, and through the
// same redirect policy as rd (RFC 9700 §4.11.1): never off-site.
func TestSignInAuthRequestRedirect(t *testing.T) {
	e := hostileEnv(t)
	for _, tt := range []struct {
		name, peer, target, header, want string
	}{
		{"trusted, relative", trustedPeer, "/oauth2/sign_in", "/reports/q3?x=1", "/reports/q3?x=1"},
		{"trusted, allowed host", trustedPeer, "/oauth2/sign_in", "https://app.example.com/a", "https://app.example.com/a"},
		{"untrusted peer", untrustedPeer, "/oauth2/sign_in", "/reports/q3", "/"},
		{"trusted, off-site", trustedPeer, "/oauth2/sign_in", "https://evil.com/x", "/"},
		{"trusted, scheme-relative", trustedPeer, "/oauth2/sign_in", "//evil.com/x", "/"},
		{"trusted, backslash", trustedPeer, "/oauth2/sign_in", `/\evil.com`, "/"},
		{"trusted, own endpoint (loop)", trustedPeer, "/oauth2/sign_in", "/oauth2/sign_in?rd=/x", "/"},
		{"rd wins over the header", trustedPeer, "/oauth2/sign_in?rd=%2Ffrom-rd", "/from-header", "/from-rd"},
		{"an unsafe rd is not replaced by the header", trustedPeer, "/oauth2/sign_in?rd=https%3A%2F%2Fevil.com", "/from-header", "/"},
	} {
		start, _ := e.serve(authReq(tt.peer, tt.target, "X-Auth-Request-Redirect", tt.header))
		if start.StatusCode != http.StatusFound {
			t.Errorf("%s: %d, want 302", tt.name, start.StatusCode)
			continue
		}
		if got := e.finish(start, "alice", "alice@example.com").Header.Get("Location"); got != tt.want {
			t.Errorf("%s: after sign-in %q, want %q", tt.name, got, tt.want)
		}
	}
}
