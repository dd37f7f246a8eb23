package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Open-redirect payloads (SECURITY.md BCP-1, §2.1 CVE-2020-5233,
// CVE-2020-11053, CVE-2020-4037, CVE-2021-21291, §2.7 CVE-2019-20479,
// CVE-2021-32786, CVE-2021-39191, §2.8-1/2) driven over HTTP through every
// place a redirect target enters the gateway:
//
//   - /oauth2/start?rd= → provider → /oauth2/callback: the final Location;
//   - GET /oauth2/sign_out?rd=: the rd the confirmation form carries;
//   - POST /oauth2/sign_out rd, without and with the provider's
//     end-session endpoint (the signed state through /oauth2/signed_out);
//   - forward-auth (Traefik mode) from a trusted ingress: the 302 goes to
//     our own /oauth2/start, and after sign-in the reconstructed URL is
//     refused unless its host is allowed;
//   - X-Auth-Request-Redirect into /oauth2/start from a trusted ingress,
//     and from anyone else (ignored).
//
// Every one of these payloads must end on "/", the gateway's own fallback,
// and no response may carry a header with CR, LF or NUL.

var hostileRedirects = []struct{ name, rd string }{
	// Scheme-relative and slash runs.
	{"scheme-relative", "//evil.com"},
	{"scheme-relative with path", "//evil.com/login"},
	{"triple slash", "///evil.com"},
	{"four slashes", "////evil.com/"},
	{"scheme-relative dot segment", "//evil.com/%2e%2e"},
	// Backslashes, which browsers read as slashes.
	{"slash backslash", `/\evil.com`},
	{"backslash slash", `\/evil.com`},
	{"double backslash", `\\evil.com`},
	{"slash backslash slash", `/\/evil.com`},
	{"https slash backslash", `https:/\evil.com`},
	{"https double backslash", `https:\\evil.com`},
	{"backslash before userinfo", `https://evil.com\@gw.example.com/`},
	{"backslash in host", `https://app.example.com\.evil.com/`},
	// Encoded slashes, backslashes, dots.
	{"encoded double slash", "/%2F%2Fevil.com"},
	{"encoded double slash, no leading slash", "%2F%2Fevil.com"},
	{"encoded backslash", "/%5Cevil.com"},
	{"double-encoded slashes", "/%252F%252Fevil.com"},
	{"encoded dot segments", "/%2e%2e/%2e%2e//evil.com"},
	{"dot segment then double slash", "/..//evil.com"},
	{"dot then backslash", `/./\evil.com`},
	{"dot-dot then backslash", `/../\evil.com`},
	// Encoded and literal whitespace and controls.
	{"encoded tab between slashes", "/%09/evil.com"},
	{"encoded CRLF between slashes", "/%0d%0a/evil.com"},
	{"literal tab between slashes", "/\t/evil.com"},
	{"literal space between slashes", "/ /evil.com"},
	{"literal newline between slashes", "/\n/evil.com"},
	{"many tabs", "/\t\t/\t/evil.com"},
	{"leading tab", "\t//evil.com"},
	{"leading space", " //evil.com"},
	{"NBSP between slashes", "/\u00a0/evil.com"},
	{"encoded zero-width space", "/%E2%80%8B/evil.com"},
	{"NUL between slashes", "/\x00/evil.com"},
	// CRLF header injection.
	{"encoded CRLF Set-Cookie", "/x%0d%0aSet-Cookie:%20pwned=1"},
	{"literal CRLF Set-Cookie", "/x\r\nSet-Cookie: pwned=1"},
	{"literal CRLF Location", "/\r\nLocation: https://evil.com"},
	{"encoded LF in query", "/x?a=%0aLocation:https://evil.com"},
	// Userinfo.
	{"own host as userinfo", "https://gw.example.com@evil.com/"},
	{"own host and port as userinfo", "https://gw.example.com:443@evil.com"},
	{"allowed host as userinfo", "https://app.example.com@evil.com"},
	{"credentials on own host", "https://user:pass@gw.example.com/"},
	{"fragment before at", "https://evil.com#@gw.example.com"},
	{"query before at", "https://evil.com?@gw.example.com"},
	{"encoded at in host", "https://gw.example.com%40evil.com/"},
	// Look-alike and IDN hosts.
	{"own host as a prefix", "https://gw.example.com.evil.com/"},
	{"allowed host as a prefix", "https://app.example.com.evil.com/"},
	{"no dot boundary", "https://evilapp.example.com/"},
	{"sibling of allowed host", "https://app2.example.com/"},
	{"Cyrillic a in allowed host", "https://\u0430pp.example.com/"},
	{"Cyrillic o in own domain", "https://gw.example.c\u043em/"},
	{"fullwidth own host", "https://\uff47\uff57.example.com/"},
	{"punycode look-alike", "https://xn--pp-8kc.example.com/"},
	{"trailing dot on own host", "https://gw.example.com./"},
	{"encoded dot in host", "https://gw.example.com%2eevil.com/"},
	{"hex IP", "https://0x7f000001/"},
	{"decimal IP", "https://2130706433/"},
	{"IPv6 loopback", "https://[::1]/"},
	{"plain evil", "https://evil.com"},
	{"upper-case evil", "HTTPS://EVIL.COM/"},
	{"bare host", "evil.com"},
	// Ports.
	{"own host other port", "https://gw.example.com:8443/"},
	{"own host port with leading zero", "https://gw.example.com:0443/"},
	{"allowed host other port", "https://app.example.com:444/"},
	{"port overflow", "https://gw.example.com:65536/"},
	{"empty port then at", "https://gw.example.com:@evil.com/"},
	// Scheme tricks.
	{"downgrade own origin to http", "http://gw.example.com/"},
	{"http to allowed host", "http://app.example.com/"},
	{"https single slash", "https:/evil.com"},
	{"https no slash", "https:evil.com"},
	{"http no slash", "http:evil.com"},
	{"https triple slash", "https:///evil.com"},
	{"javascript", "javascript:alert(1)"},
	{"javascript mixed case", "JaVaScRiPt:alert(document.cookie)"},
	{"javascript with encoded newline", "java%0ascript:alert(1)"},
	{"javascript with tab", "java\tscript:alert(1)"},
	{"data URL", "data:text/html,<script>alert(1)</script>"},
	{"vbscript", "vbscript:msgbox(1)"},
	{"ftp", "ftp://evil.com/"},
	{"file", "file:///etc/passwd"},
	// Chained redirects through an allowed origin.
	{"query names a URL", "/login?next=https://evil.com"},
	{"query names a scheme-relative URL", "/login?next=//evil.com"},
	{"allowed host forwards on", "https://app.example.com/?next=https://evil.com"},
	// Unicode slash look-alikes after a slash.
	{"U+3031 after slash", "/\u3031evil.com"},
	{"encoded fullwidth solidus", "/%EF%BC%8Fevil.com"},
	{"fullwidth solidus", "/\uff0fevil.com"},
	// Size.
	{"3 KB target", "/" + strings.Repeat("a", 3000)},
}

// TestHostileRedirectCount keeps the table from shrinking unnoticed.
func TestHostileRedirectCount(t *testing.T) {
	if n := len(hostileRedirects); n < 50 {
		t.Errorf("%d hostile redirect payloads, want at least 50", n)
	}
	seen := map[string]bool{}
	for _, p := range hostileRedirects {
		if seen[p.name] {
			t.Errorf("duplicate case name %q", p.name)
		}
		seen[p.name] = true
	}
}

// checkRedirect asserts what every gateway response must satisfy: a
// Location on the gateway or an allowed origin, and no CR/LF/NUL in any
// header the handler wrote.
func checkRedirect(t *testing.T, step string, resp *http.Response, hdr http.Header, origins ...string) {
	t.Helper()
	if bad := headerInjection(hdr); bad != "" {
		t.Errorf("%s: header carries CR/LF/NUL: %q", step, bad)
	}
	if loc := resp.Header.Get("Location"); !locationSafe(loc, origins...) {
		t.Errorf("%s: Location %q leaves the gateway", step, loc)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s: status %d", step, resp.StatusCode)
	}
}

// TestHostileRedirectStart: /oauth2/start?rd=<payload>, then the whole
// sign-in; the callback's Location is "/".
func TestHostileRedirectStart(t *testing.T) {
	e := hostileEnv(t)
	for _, p := range hostileRedirects {
		t.Run(p.name, func(t *testing.T) {
			start, hdr := e.serve(get("https://gw.example.com/oauth2/start?rd=" + url.QueryEscape(p.rd)))
			checkRedirect(t, "start", start, hdr, "https://idp.test")
			cb := e.finish(start, "alice", "alice@example.com")
			if got := cb.Header.Get("Location"); cb.StatusCode != http.StatusFound || got != "/" {
				t.Errorf("after sign-in: %d to %q, want 302 to /", cb.StatusCode, got)
			}
		})
	}
}

// TestHostileRedirectSignOut: rd on the confirmation page, on the POST,
// and through the provider's end-session round trip.
func TestHostileRedirectSignOut(t *testing.T) {
	e := hostileEnv(t)
	withIdP := hostileEnv(t)
	withIdP.idp.endSession = "https://idp.test/end_session"
	post := func(e *env, rd string) (*http.Response, http.Header) {
		r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader(url.Values{"rd": {rd}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Cookie", e.alice())
		return e.serve(r)
	}
	for _, p := range hostileRedirects {
		t.Run(p.name, func(t *testing.T) {
			// The confirmation page carries only a validated rd; a refused
			// one is dropped (the sign-out ends on the signed-out page).
			page, hdr := e.serve(get("https://gw.example.com/oauth2/sign_out?rd="+url.QueryEscape(p.rd), "Cookie", e.alice()))
			checkRedirect(t, "GET sign_out", page, hdr)
			html := body(page)
			if got := between(html, `name="rd" value="`, `"`); got != "" {
				t.Errorf("sign-out form rd = %q, want none", got)
			}
			if strings.Contains(html, "evil.com") || strings.Contains(html, "<script>alert") {
				t.Errorf("sign-out page reflects the payload")
			}

			// Without end-session: the signed-out page, not rd.
			resp, hdr := post(e, p.rd)
			checkRedirect(t, "POST sign_out", resp, hdr)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body(resp), "You are signed out") {
				t.Errorf("sign-out: %d to %q, want the signed-out page", resp.StatusCode, resp.Header.Get("Location"))
			}

			// With end-session: to the provider, back with our state, to rd.
			resp, hdr = post(withIdP, p.rd)
			checkRedirect(t, "POST sign_out (end-session)", resp, hdr, "https://idp.test")
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc == nil || loc.Host != "idp.test" {
				t.Fatalf("sign-out with end-session went to %q, want the provider", resp.Header.Get("Location"))
			}
			back, hdr := withIdP.serve(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(loc.Query().Get("state"))))
			checkRedirect(t, "signed_out", back, hdr)
			if back.StatusCode != http.StatusOK || !strings.Contains(body(back), "You are signed out") {
				t.Errorf("return from the provider: %d to %q, want the signed-out page", back.StatusCode, back.Header.Get("Location"))
			}

			// Defence in depth: even a state the gateway signed around the
			// raw payload is validated again on the way out.
			signed, hdr := e.serve(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(e.h.logoutState(p.rd))))
			checkRedirect(t, "signed_out with a signed payload", signed, hdr)
			if got := signed.Header.Get("Location"); got != "/" {
				t.Errorf("signed state around the payload led to %q, want /", got)
			}

			// A forged state naming the payload goes nowhere.
			forged := b64url(p.rd) + ".99999999999.AAAA"
			f, hdr := e.serve(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(forged)))
			checkRedirect(t, "signed_out with a forged state", f, hdr)
			if f.StatusCode != http.StatusOK || f.Header.Get("Location") != "" {
				t.Errorf("forged state: %d to %q, want the signed-out page", f.StatusCode, f.Header.Get("Location"))
			}
		})
	}
}

// TestHostileRedirectAuthRequestRedirect: nginx's X-Auth-Request-Redirect
// into /oauth2/start, from the trusted ingress (validated) and from anyone
// else (ignored).
func TestHostileRedirectAuthRequestRedirect(t *testing.T) {
	e := hostileEnv(t)
	for _, p := range hostileRedirects {
		t.Run(p.name, func(t *testing.T) {
			for _, peer := range []string{trustedPeer, untrustedPeer} {
				r := authReq(peer, "/oauth2/start")
				r.Header["X-Auth-Request-Redirect"] = []string{p.rd} // raw: literal controls too
				start, hdr := e.serve(r)
				checkRedirect(t, "start from "+peer, start, hdr, "https://idp.test")
				cb := e.finish(start, "alice", "alice@example.com")
				if got := cb.Header.Get("Location"); got != "/" {
					t.Errorf("from %s, after sign-in went to %q, want /", peer, got)
				}
			}
		})
	}
	// A good target counts from the trusted ingress only.
	for peer, want := range map[string]string{trustedPeer: "/dashboard?x=1", untrustedPeer: "/"} {
		start, _ := e.serve(authReq(peer, "/oauth2/start", "X-Auth-Request-Redirect", "/dashboard?x=1"))
		if got := e.finish(start, "alice", "alice@example.com").Header.Get("Location"); got != want {
			t.Errorf("X-Auth-Request-Redirect from %s led to %q, want %q", peer, got, want)
		}
	}
}

// TestHostileRedirectForwardAuth: the URL a Traefik-mode forward-auth call
// reconstructs from X-Forwarded-Proto/-Host/-Uri. The 302 always goes to
// our own /oauth2/start; after sign-in, only an allowed host survives.
func TestHostileRedirectForwardAuth(t *testing.T) {
	e := hostileEnv(t)
	type fwd struct{ proto, host, uri string }
	cases := []struct {
		name string
		f    fwd
		want string // final Location after sign-in; "" when the call must be refused (400)
	}{
		{"allowed host", fwd{"https", "app.example.com", "/x?y=1"}, "https://app.example.com/x?y=1"},
		{"allowed host upper case", fwd{"https", "APP.EXAMPLE.COM", "/x"}, "https://app.example.com/x"},
		{"own host", fwd{"https", "gw.example.com", "/x"}, "https://gw.example.com/x"},
		{"evil host", fwd{"https", "evil.com", "/x"}, "/"},
		{"allowed host as prefix", fwd{"https", "app.example.com.evil.com", "/"}, "/"},
		{"allowed host trailing dot", fwd{"https", "app.example.com.", "/x"}, "/"},
		{"allowed host other port", fwd{"https", "app.example.com:8443", "/x"}, "/"},
		{"allowed host over http", fwd{"http", "app.example.com", "/x"}, "/"},
		{"numeric host", fwd{"https", "2130706433", "/x"}, "/"},
		{"IPv6 host", fwd{"https", "[::1]", "/x"}, "/"},
		{"chained redirect in query", fwd{"https", "app.example.com", "/login?next=https://evil.com"}, "/"},
		{"scheme-relative query value", fwd{"https", "app.example.com", "/login?next=//evil.com"}, "/"},
		{"userinfo in host", fwd{"https", "app.example.com@evil.com", "/"}, ""},
		{"path in host", fwd{"https", "evil.com/x", "/"}, ""},
		{"backslash in host", fwd{"https", `app.example.com\.evil.com`, "/"}, ""},
		{"space in host", fwd{"https", "app.example.com evil.com", "/"}, ""},
		{"Cyrillic host", fwd{"https", "\u0430pp.example.com", "/"}, ""},
		{"CRLF in host", fwd{"https", "app.example.com\r\nLocation: https://evil.com", "/"}, ""},
		{"javascript proto", fwd{"javascript", "app.example.com", "/"}, ""},
		{"proto with slashes", fwd{"https://evil.com", "app.example.com", "/"}, ""},
		{"scheme-relative uri", fwd{"https", "app.example.com", "//evil.com"}, ""},
		{"backslash uri", fwd{"https", "app.example.com", `/\evil.com`}, ""},
		{"absolute uri", fwd{"https", "app.example.com", "https://evil.com/"}, ""},
		{"encoded slashes uri", fwd{"https", "app.example.com", "/%2F%2Fevil.com"}, ""},
		{"dot segments uri", fwd{"https", "app.example.com", "/../evil.com"}, ""},
		{"CRLF uri", fwd{"https", "app.example.com", "/x\r\nSet-Cookie: a=b"}, ""},
		{"encoded CRLF uri", fwd{"https", "app.example.com", "/x%0d%0aSet-Cookie:a=b"}, ""},
		{"tab uri", fwd{"https", "app.example.com", "/\t/evil.com"}, ""},
		{"CRLF in forwarded query", fwd{"https", "app.example.com", "/x?a=\r\nSet-Cookie: a=b"}, "/"},
		{"fragment in forwarded query", fwd{"https", "evil.com", "/x?a=1#@app.example.com"}, "/"},
	}
	// Every generic payload as the forwarded request-target, too.
	for _, p := range hostileRedirects {
		cases = append(cases, struct {
			name string
			f    fwd
			want string
		}{"uri " + p.name, fwd{"https", "app.example.com", p.rd}, "?"})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := authReq(trustedPeer, "/oauth2/forward_auth", "Accept", "text/html")
			r.Header["X-Forwarded-Method"] = []string{"GET"}
			r.Header["X-Forwarded-Proto"] = []string{tt.f.proto}
			r.Header["X-Forwarded-Host"] = []string{tt.f.host}
			r.Header["X-Forwarded-Uri"] = []string{tt.f.uri}
			resp, hdr := e.serve(r)
			checkRedirect(t, "forward-auth", resp, hdr, "https://gw.example.com")
			if e.count() != 0 {
				t.Fatal("a forward-auth call reached the upstream")
			}
			switch {
			case resp.StatusCode == http.StatusBadRequest:
				if tt.want != "" && tt.want != "?" {
					t.Fatalf("forward-auth refused a request it should redirect: %s", body(resp))
				}
				return
			case resp.StatusCode != http.StatusFound:
				t.Fatalf("forward-auth = %d, want 302 or 400", resp.StatusCode)
			case tt.want == "":
				t.Fatalf("forward-auth = 302 to %q, want 400", resp.Header.Get("Location"))
			}
			loc := resp.Header.Get("Location")
			if loc != "https://gw.example.com/oauth2/start" && !strings.HasPrefix(loc, "https://gw.example.com/oauth2/start?rd=") {
				t.Fatalf("forward-auth 302 to %q, want our own /oauth2/start", loc)
			}
			// The sign-in link itself carries only what the redirect
			// policy admits: rd is absent exactly when it would fall back.
			if u, err := url.Parse(loc); err != nil {
				t.Fatal(err)
			} else if rd := u.Query().Get("rd"); rd != "" && !locationSafe(rd, gatewayOrigins...) || tt.want == "/" && rd != "" {
				t.Errorf("sign-in link carries rd=%q, want %q", rd, tt.want)
			}
			start, hdr := e.serve(get(loc))
			checkRedirect(t, "start", start, hdr, "https://idp.test")
			cb := e.finish(start, "alice", "alice@example.com")
			got := cb.Header.Get("Location")
			if !locationSafe(got, gatewayOrigins...) {
				t.Fatalf("after sign-in went to %q", got)
			}
			if tt.want != "?" && got != tt.want {
				t.Errorf("after sign-in went to %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRedirectLocationIsWhatWasValidated: the Location the browser gets
// must be the very target the validator approved. http.Redirect runs
// path.Clean over a relative target up to its "?" (SECURITY.md §2.8-1), and
// that reads a "#fragment" as part of the path: "/x#/../..//%2F%2Fevil.com"
// passes the validator (the fragment is not a path) and comes out as
// "/%2F%2Fevil.com", a target the validator refuses.
func TestRedirectLocationIsWhatWasValidated(t *testing.T) {
	e := hostileEnv(t)
	withIdP := hostileEnv(t)
	withIdP.idp.endSession = "https://idp.test/end_session"
	var bad []string
	for _, rd := range []string{
		"/x#/../..//%2F%2Fevil.com",
		"/x#/../..//%E3%80%B1evil.com",
		"/x#/../../%EF%BC%8Fevil.com",
		"/x/#/../../../evil.com/",
		"/x#//evil.com",
		"/x?a=1#/../b", // after a "?" nothing is cleaned
		"/reports/q3?format=pdf#page=2",
	} {
		approved := e.h.redirects.safe(rd)
		check := func(step, loc string) {
			if loc != approved || e.h.redirects.safe(loc) != loc {
				bad = append(bad, fmt.Sprintf("%s: rd %q approved as %q, sent as %q (validator says %q)", step, rd, approved, loc, e.h.redirects.safe(loc)))
			}
		}
		start, _ := e.serve(get("https://gw.example.com/oauth2/start?rd=" + url.QueryEscape(rd)))
		check("callback", e.finish(start, "alice", "alice@example.com").Header.Get("Location"))

		r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader(url.Values{"rd": {rd}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Cookie", e.alice())
		check("sign_out", e.do(r).Header.Get("Location"))

		back := e.do(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(e.h.logoutState(approved))))
		check("signed_out", back.Header.Get("Location"))
	}
	if len(bad) > 0 {
		t.Errorf("http.Redirect rewrites validated targets (proxy/flow.go callback, proxy/logout.go finishSignOut): %s. "+
			"Fix: set the Location header to the approved target and WriteHeader(302) instead of http.Redirect, or have the validator refuse dot segments and slashes in fragments",
			strings.Join(bad, "; "))
	}
}

// TestForwardAuthLoginURLJSON: the login_url a forward-auth 401 gives API
// clients passes the redirect policy, like the browsers' redirect.
func TestForwardAuthLoginURLJSON(t *testing.T) {
	e := hostileEnv(t)
	for _, tt := range []struct{ host, uri, want string }{
		{"evil.com", "/x", "https://gw.example.com/oauth2/start"},
		{"app.example.com.evil.com", "/x", "https://gw.example.com/oauth2/start"},
		{"app.example.com", "/login?next=https://evil.com", "https://gw.example.com/oauth2/start"},
		// Near misses: an allowed host and the gateway's own keep their target.
		{"app.example.com", "/x", "https://gw.example.com/oauth2/start?rd=https%3A%2F%2Fapp.example.com%2Fx"},
		{"gw.example.com", "/x", "https://gw.example.com/oauth2/start?rd=https%3A%2F%2Fgw.example.com%2Fx"},
	} {
		r := authReq(trustedPeer, "/oauth2/auth", "Accept", "application/json", "X-Forwarded-Method", "GET",
			"X-Forwarded-Proto", "https", "X-Forwarded-Host", tt.host, "X-Forwarded-Uri", tt.uri)
		resp := e.do(r)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s%s: %d, want 401", tt.host, tt.uri, resp.StatusCode)
			continue
		}
		if m := decodeJSON(t, resp); m["login_url"] != tt.want {
			t.Errorf("%s%s: login_url = %v, want %s", tt.host, tt.uri, m["login_url"], tt.want)
		}
	}
}
