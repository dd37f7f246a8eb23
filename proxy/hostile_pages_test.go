package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Attack class "pages": the gateway's own responses. Every page, redirect,
// JSON answer and endpoint carries Strict-Transport-Security when
// public_url is https (RFC 6797 §6.1) and none when it is http (§7.2); an
// upstream cannot weaken or clear it; every CSP restricts form-action (CSP
// Level 3 §6.4.1), and the sign-out form's own submission, redirects
// included, stays inside what its page allows.

// pagesEnv is hostileEnv on public_url scheme, in front of an upstream that
// sets a Strict-Transport-Security of its own that would clear the
// gateway's, and with a provider offering RP-initiated logout.
func pagesEnv(t *testing.T, scheme string, hsts HSTSConfig) *env {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Write([]byte("app"))
	}))
	t.Cleanup(up.Close)
	e := newEnv(t, func(c *Config) {
		c.Server.PublicURL = scheme + "://gw.example.com"
		c.Server.HSTS = hsts
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Server.AllowedRedirectHosts = []string{"app.example.com"}
		c.Upstreams[0].URL = up.URL
		c.Policy.Routes = []RouteConfig{{Path: "/public/", Public: true}}
	})
	e.idp.endSession = "https://idp.test/logout"
	return e
}

// pagesRequests are one request for every kind of response the gateway
// writes itself, and one proxied to the upstream.
func pagesRequests(e *env, scheme string) map[string]*http.Request {
	base := scheme + "://gw.example.com"
	cookie := e.bob()
	post := func(path string, hdr ...string) *http.Request {
		r := httptest.NewRequest("POST", base+path, strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	fwd := get(base+"/oauth2/auth", "X-Forwarded-Uri", "/x", "X-Forwarded-Host", "gw.example.com")
	fwd.RemoteAddr = "192.0.2.5:1"
	fwdRedirect := get(base+"/oauth2/forward_auth", "X-Forwarded-Uri", "/x", "X-Forwarded-Host", "gw.example.com")
	fwdRedirect.RemoteAddr = "192.0.2.5:1"
	return map[string]*http.Request{
		"ping":                   get(base + "/ping"),
		"ready":                  get(base + "/ready"),
		"start redirect":         get(base + "/oauth2/start?rd=/x"),
		"callback error page":    get(base + "/oauth2/callback?state=x&code=y"),
		"sign-out page":          get(base+"/oauth2/sign_out", "Cookie", cookie),
		"sign-out redirect":      post("/oauth2/sign_out", "Cookie", cookie, "Sec-Fetch-Site", "same-origin"),
		"sign-out refused":       post("/oauth2/sign_out", "Sec-Fetch-Site", "cross-site"),
		"signed-out page":        get(base + "/oauth2/signed_out"),
		"userinfo":               get(base+"/oauth2/userinfo", "Cookie", cookie),
		"userinfo JSON 401":      get(base+"/oauth2/userinfo", "Accept", "application/json"),
		"jwks":                   get(base + "/oauth2/jwks.json"),
		"forward-auth 202":       withCookie(fwd.Clone(fwd.Context()), cookie),
		"forward-auth 401":       fwd,
		"forward-auth 302":       fwdRedirect,
		"sign_in redirect":       get(base + "/oauth2/sign_in?rd=/x"),
		"backchannel 400":        post("/oauth2/backchannel_logout"),
		"unknown endpoint":       get(base + "/oauth2/nothing"),
		"bad path":               get(base + "/a/%2e%2e/b"),
		"sign-in redirect":       get(base + "/app"),
		"API 401":                get(base+"/app", "Accept", "application/json"),
		"proxied":                get(base+"/app", "Cookie", cookie),
		"proxied public":         get(base + "/public/x"),
		"method not allowed 405": post("/oauth2/start"),
	}
}

func withCookie(r *http.Request, cookie string) *http.Request {
	r.Header.Set("Cookie", cookie)
	return r
}

func TestHostilePagesHSTS(t *testing.T) {
	year := "max-age=31536000"
	for _, tt := range []struct {
		scheme string
		hsts   HSTSConfig
		want   string // "" for none
	}{
		{"https", HSTSConfig{}, year},
		{"https", HSTSConfig{MaxAge: ptr(int64(63072000)), IncludeSubDomains: true, Preload: true}, "max-age=63072000; includeSubDomains; preload"},
		{"https", HSTSConfig{MaxAge: ptr(int64(0))}, ""},
		{"http", HSTSConfig{}, ""},
		{"http", HSTSConfig{IncludeSubDomains: true}, ""},
	} {
		e := pagesEnv(t, tt.scheme, tt.hsts)
		for name, r := range pagesRequests(e, tt.scheme) {
			t.Run(tt.scheme+" "+tt.want+"/"+name, func(t *testing.T) {
				resp, _ := e.serve(r)
				got := resp.Header.Values("Strict-Transport-Security")
				proxied := strings.HasPrefix(name, "proxied")
				switch {
				case proxied && resp.StatusCode != http.StatusOK:
					t.Fatalf("status %d, want the upstream's 200", resp.StatusCode)
				case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
					t.Errorf("%d: Strict-Transport-Security = %q, want exactly %q", resp.StatusCode, got, tt.want)
				case tt.want == "" && !proxied && len(got) != 0:
					t.Errorf("%d: Strict-Transport-Security = %q, want none", resp.StatusCode, got)
				case tt.want == "" && proxied && (len(got) != 1 || got[0] != "max-age=0"):
					// Without a gateway policy the upstream's own passes untouched.
					t.Errorf("upstream's Strict-Transport-Security = %q, want its own max-age=0", got)
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestHostilePagesHSTSConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		hsts HSTSConfig
		want string // error substring, "" for valid
	}{
		{"default", HSTSConfig{}, ""},
		{"off", HSTSConfig{MaxAge: ptr(int64(0))}, ""},
		{"short", HSTSConfig{MaxAge: ptr(int64(300))}, ""},
		{"negative", HSTSConfig{MaxAge: ptr(int64(-1))}, "max_age"},
		{"subdomains while off", HSTSConfig{MaxAge: ptr(int64(0)), IncludeSubDomains: true}, "above 0"},
		{"preload while off", HSTSConfig{MaxAge: ptr(int64(0)), Preload: true}, "above 0"},
		{"preload without subdomains", HSTSConfig{Preload: true}, "include_subdomains"},
		{"preload under a year", HSTSConfig{MaxAge: ptr(int64(31535999)), IncludeSubDomains: true, Preload: true}, "one year"},
		{"preload", HSTSConfig{IncludeSubDomains: true, Preload: true}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryNew(t, func(c *Config) { c.Server.HSTS = tt.hsts })
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// cspDirective returns the source list of directive in csp, and whether
// it is present.
func cspDirective(csp, directive string) ([]string, bool) {
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && strings.EqualFold(f[0], directive) {
			return f[1:], true
		}
	}
	return nil, false
}

// formActionAllows says whether a form-action source list admits target
// for a page at origin, as CSP Level 3 §6.7.2.8 matches a URL to a source
// list, for the expressions the gateway writes ('none', 'self' and
// scheme://host[:port], whose path part matches anything).
func formActionAllows(sources []string, origin, target string) bool {
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	if !u.IsAbs() {
		return slices.Contains(sources, "'self'")
	}
	for _, s := range sources {
		switch s {
		case "'none'":
			return false
		case "'self'":
			if u.Scheme+"://"+u.Host == origin {
				return true
			}
		default:
			if s == u.Scheme+"://"+u.Host {
				return true
			}
		}
	}
	return false
}

// TestHostilePagesFormAction: every response with a CSP restricts
// form-action; only the sign-out page admits a submission at all.
func TestHostilePagesFormAction(t *testing.T) {
	e := pagesEnv(t, "https", HSTSConfig{})
	for name, r := range pagesRequests(e, "https") {
		t.Run(name, func(t *testing.T) {
			resp, _ := e.serve(r)
			csp := resp.Header.Get("Content-Security-Policy")
			if strings.HasPrefix(name, "proxied") || name == "ping" || strings.HasPrefix(name, "forward-auth 202") ||
				name == "jwks" {
				return // the upstream's, or no document a browser renders
			}
			src, ok := cspDirective(csp, "form-action")
			switch {
			case !ok:
				t.Fatalf("%d: CSP %q has no form-action", resp.StatusCode, csp)
			case name == "sign-out page":
				if !slices.Contains(src, "'self'") {
					t.Errorf("sign-out page form-action %q does not admit its own form", src)
				}
			case len(src) != 1 || src[0] != "'none'":
				t.Errorf("%d: form-action %q on a page without a form, want 'none'", resp.StatusCode, src)
			}
		})
	}
}

// TestHostilePagesSignOutChain follows the sign-out form the way Chrome
// does: the submission and every redirect after it must match the page's
// form-action (Chrome applies it to redirects, w3c/webappsec-csp#8), or
// the browser stops mid-way and the provider's session survives.
func TestHostilePagesSignOutChain(t *testing.T) {
	for _, tt := range []struct {
		name, rd   string
		endSession string
		wantExtra  []string // form-action sources besides 'self'
		// blocked: an end-session URL that cannot be named in a CSP is
		// left out, so the browser stops at it (fail closed).
		blocked bool
	}{
		{"provider logout, relative rd", "/after", "https://idp.test/logout", []string{"https://idp.test"}, false},
		{"provider logout, absolute rd", "https://app.example.com/bye", "https://idp.test/logout", []string{"https://app.example.com", "https://idp.test"}, false},
		{"no provider logout", "https://app.example.com/bye", "", []string{"https://app.example.com"}, false},
		{"hostile rd", "https://evil.example.net/x", "", nil, false},
		{"hostile end-session", "/after", "https://idp.test;script-src *", nil, true},
		{"wildcard end-session", "/after", "https://*.test/logout", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := pagesEnv(t, "https", HSTSConfig{})
			e.idp.endSession = tt.endSession
			cookie := e.bob()
			page, _ := e.serve(get("https://gw.example.com/oauth2/sign_out?rd="+url.QueryEscape(tt.rd), "Cookie", cookie))
			src, _ := cspDirective(page.Header.Get("Content-Security-Policy"), "form-action")
			if want := append([]string{"'self'"}, tt.wantExtra...); strings.Join(src, " ") != strings.Join(want, " ") {
				t.Fatalf("form-action = %q, want %q", src, want)
			}
			html := body(page)
			action := between(html, `action="`, `"`)
			csrf := between(html, `name="csrf" value="`, `"`)
			rd := between(html, `name="rd" value="`, `"`)
			if !formActionAllows(src, "https://gw.example.com", action) {
				t.Fatalf("the form's own action %q is outside form-action %q", action, src)
			}
			form := url.Values{"csrf": {csrf}, "rd": {strings.ReplaceAll(rd, "&amp;", "&")}}
			r := httptest.NewRequest("POST", "https://gw.example.com"+action, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Cookie", cookie)
			resp, _ := e.serve(r)
			last := ""
			for hop := 0; resp.StatusCode == http.StatusFound; hop++ {
				loc := resp.Header.Get("Location")
				last = loc
				if tt.blocked {
					if formActionAllows(src, "https://gw.example.com", loc) {
						t.Fatalf("redirect to %q admitted by form-action %q", loc, src)
					}
					return
				}
				if !formActionAllows(src, "https://gw.example.com", loc) {
					t.Fatalf("redirect %d to %q is outside form-action %q: Chrome blocks it", hop, loc, src)
				}
				u, _ := url.Parse(loc)
				if u.Host != "gw.example.com" && u.Host != "idp.test" {
					break // arrived at the rd target
				}
				if u.Host == "idp.test" {
					// The provider ends its session and sends the browser back
					// to the post_logout_redirect_uri, one more hop.
					loc = u.Query().Get("post_logout_redirect_uri") + "?state=" + url.QueryEscape(u.Query().Get("state"))
					if !formActionAllows(src, "https://gw.example.com", loc) {
						t.Fatalf("the provider's redirect back to %q is outside form-action %q", loc, src)
					}
				}
				resp, _ = e.serve(get(loc))
			}
			if want := e.h.signOutTarget(tt.rd); last != want {
				t.Errorf("sign-out ended at %q, want rd %q", last, want)
			}
			if last == "" && (resp.StatusCode != http.StatusOK || !strings.Contains(body(resp), "You are signed out")) {
				t.Errorf("a refused rd ended at %d, want the signed-out page", resp.StatusCode)
			}
		})
	}
}

func TestHostilePagesCSPOrigin(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://IdP.Example.com/logout?x=1", "https://idp.example.com"},
		{"https://idp.example.com:8443/logout", "https://idp.example.com:8443"},
		{"http://[::1]:9000/x", "http://[::1]:9000"},
		{"https://idp.example.com;script-src *", ""},
		{"https://idp.example.com 'unsafe-inline'", ""},
		{"https://*.example.com/", ""},
		{"https://user@idp.example.com/", ""},
		{"javascript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"//idp.example.com/x", ""},
		{"/relative", ""},
		{"", ""},
		{"https://idp.example.com,https://evil", ""},
		{"https://idp.example.com'/", ""},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := cspOrigin(tt.in)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("cspOrigin(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}
