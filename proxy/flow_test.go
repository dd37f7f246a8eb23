package proxy

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// signIn runs start → (provider) → callback and returns the callback
// response and the cookies the browser would then hold.
func (e *env) signIn(rd, code, sub, email string, groups ...string) (*http.Response, string) {
	e.t.Helper()
	start := e.do(get("https://gw.example.com/oauth2/start?rd=" + url.QueryEscape(rd)))
	if start.StatusCode != http.StatusFound {
		e.t.Fatalf("start = %d, want 302", start.StatusCode)
	}
	loc, _ := url.Parse(start.Header.Get("Location"))
	state := loc.Query().Get("state")
	var login *http.Cookie
	for _, c := range start.Cookies() {
		login = c
	}
	e.idp.issue(code, sub, email, groups...)
	cb := e.do(get("https://gw.example.com/oauth2/callback?code="+code+"&state="+url.QueryEscape(state), "Cookie", login.Name+"="+login.Value))
	var jar []string
	for _, c := range cb.Cookies() {
		if c.MaxAge >= 0 && c.Value != "" {
			jar = append(jar, c.Name+"="+c.Value)
		}
	}
	return cb, strings.Join(jar, "; ")
}

func TestSignInFlow(t *testing.T) {
	e := newEnv(t, nil)
	cb, jar := e.signIn("/dashboard?tab=1", "code-1", "alice", "alice@example.com", "admins")
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/dashboard?tab=1" {
		t.Fatalf("callback = %d to %q, want 302 to /dashboard?tab=1", cb.StatusCode, cb.Header.Get("Location"))
	}
	if !strings.Contains(jar, "__Host-_portcullis=") {
		t.Fatalf("no session cookie after callback: %q", jar)
	}
	for _, c := range cb.Cookies() {
		if strings.Contains(c.Name, "_login_") && c.MaxAge >= 0 {
			t.Errorf("login cookie %s not expired after callback", c.Name)
		}
	}
	// The attempt redeemed with the verifier and nonce it started with.
	if len(e.idp.redeemed) != 1 || e.idp.redeemed[0].Verifier == "" || e.idp.redeemed[0].Nonce == "" {
		t.Errorf("redeemed attempts = %+v", e.idp.redeemed)
	}
	resp := e.do(get("https://gw.example.com/dashboard", "Cookie", jar))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authenticated GET = %d, want 200", resp.StatusCode)
	}
	up := e.last()
	if up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Email") != "alice@example.com" || up.Header.Get("X-Forwarded-Groups") != "admins" {
		t.Errorf("identity headers = %v", up.Header)
	}
	if c := up.Header.Get("Cookie"); strings.Contains(c, "portcullis") {
		t.Errorf("upstream received the gateway's cookie: %q", c)
	}
	// Tokens nobody needs are not kept in the cookie.
	r := get("/")
	r.Header.Set("Cookie", jar)
	s, err := e.store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessToken != "" || s.IDToken != "" {
		t.Errorf("session keeps unneeded tokens: access=%q id=%q", s.AccessToken, s.IDToken)
	}
	logs := e.logs.String()
	for _, secret := range []string{"access-token-secret", "refresh-token-secret", "id-token-secret", "code-1", jar} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret %q", secret)
		}
	}
}

func TestCallbackRejects(t *testing.T) {
	for _, tt := range []struct {
		name  string
		query func(state string) string
		jar   func(login string) string
		want  int
	}{
		{"missing state", func(string) string { return "code=c" }, func(l string) string { return l }, 400},
		{"wrong state", func(string) string { return "code=c&state=forged" }, func(l string) string { return l }, 400},
		{"no login cookie (login CSRF)", func(s string) string { return "code=c&state=" + s }, func(string) string { return "" }, 400},
		{"tampered login cookie", func(s string) string { return "code=c&state=" + s }, func(l string) string { return l[:len(l)-4] + "AAAA" }, 400},
		{"missing code", func(s string) string { return "state=" + s }, func(l string) string { return l }, 400},
		{"provider error", func(s string) string { return "error=access_denied&state=" + s }, func(l string) string { return l }, 403},
		{"unknown code", func(s string) string { return "code=never-issued&state=" + s }, func(l string) string { return l }, 400},
		{"duplicate state params", func(s string) string { return "code=c&state=x&state=" + s }, func(l string) string { return l }, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			start := e.do(get("https://gw.example.com/oauth2/start?rd=/x"))
			loc, _ := url.Parse(start.Header.Get("Location"))
			state := url.QueryEscape(loc.Query().Get("state"))
			login := start.Cookies()[0]
			e.idp.issue("c", "alice", "alice@example.com")
			r := get("https://gw.example.com/oauth2/callback?"+tt.query(state), "Accept", "text/html")
			if j := tt.jar(login.Name + "=" + login.Value); j != "" {
				r.Header.Set("Cookie", j)
			}
			resp := e.do(r)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			for _, c := range resp.Cookies() {
				if c.Name == e.store.Name() && c.MaxAge >= 0 {
					t.Error("a session cookie was set")
				}
			}
			if len(e.idp.redeemed) != 0 {
				t.Errorf("the code was redeemed despite the rejection")
			}
		})
	}
}

func TestCallbackReplay(t *testing.T) {
	e := newEnv(t, nil)
	start := e.do(get("https://gw.example.com/oauth2/start"))
	loc, _ := url.Parse(start.Header.Get("Location"))
	state := url.QueryEscape(loc.Query().Get("state"))
	login := start.Cookies()[0].Name + "=" + start.Cookies()[0].Value
	e.idp.issue("c1", "alice", "alice@example.com")
	first := e.do(get("https://gw.example.com/oauth2/callback?code=c1&state="+state, "Cookie", login))
	if first.StatusCode != http.StatusFound {
		t.Fatalf("first callback = %d", first.StatusCode)
	}
	// The attacker replays the same URL with the same (captured) login cookie.
	e.idp.issue("c1", "alice", "alice@example.com")
	again := e.do(get("https://gw.example.com/oauth2/callback?code=c1&state="+state, "Cookie", login))
	if again.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback = %d, want 400", again.StatusCode)
	}
	if len(e.idp.redeemed) != 1 {
		t.Errorf("codes redeemed = %d, want 1", len(e.idp.redeemed))
	}
}

func TestCallbackErrorIsNotReflected(t *testing.T) {
	e := newEnv(t, nil)
	start := e.do(get("https://gw.example.com/oauth2/start"))
	loc, _ := url.Parse(start.Header.Get("Location"))
	payload := `<script>alert(1)</script>`
	r := get("https://gw.example.com/oauth2/callback?state="+url.QueryEscape(loc.Query().Get("state"))+
		"&error="+url.QueryEscape(payload)+"&error_description="+url.QueryEscape(payload),
		"Cookie", start.Cookies()[0].Name+"="+start.Cookies()[0].Value)
	resp := e.do(r)
	b := body(resp)
	if strings.Contains(b, "<script>") || strings.Contains(b, "alert(1)") {
		t.Errorf("error page reflects the provider's error: %s", b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestStartRedirectTargets(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ rd, want string }{
		{"/ok?x=1", "/ok?x=1"},
		{"//evil.com", "/"},
		{"https://evil.com/", "/"},
		{`/\evil.com`, "/"},
		{"javascript:alert(1)", "/"},
		{"https://gw.example.com/fine", "https://gw.example.com/fine"},
	} {
		t.Run(tt.rd, func(t *testing.T) {
			e.idp.issue("code-"+tt.rd, "alice", "alice@example.com")
			cb, _ := e.signIn(tt.rd, "code-"+tt.rd, "alice", "alice@example.com")
			if got := cb.Header.Get("Location"); got != tt.want {
				t.Errorf("after sign-in with rd=%q went to %q, want %q", tt.rd, got, tt.want)
			}
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name   string
		header []string
		want   int
	}{
		{"browser", []string{"Accept", "text/html"}, http.StatusFound},
		{"json", []string{"Accept", "application/json"}, http.StatusUnauthorized},
		{"xhr", []string{"X-Requested-With", "XMLHttpRequest"}, http.StatusUnauthorized},
		{"fetch cors", []string{"Sec-Fetch-Mode", "cors"}, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(get("https://gw.example.com/app/page?q=1", tt.header...))
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusFound {
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://idp.test/authorize") {
					t.Errorf("Location = %q, want the provider", loc)
				}
				return
			}
			m := decodeJSON(t, resp)
			if m["login_url"] != "https://gw.example.com/oauth2/start?rd=%2Fapp%2Fpage%3Fq%3D1" {
				t.Errorf("login_url = %v", m["login_url"])
			}
		})
	}
	if e.count() != 0 {
		t.Errorf("upstream received %d unauthenticated requests", e.count())
	}
}

func TestProviderDown(t *testing.T) {
	e := newEnv(t, nil)
	_, jar := e.signIn("/", "c", "alice", "alice@example.com")
	e.idp.down = true
	resp := e.do(get("https://gw.example.com/", "Accept", "text/html"))
	if b := body(resp); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" ||
		!strings.Contains(b, "<h1>The sign-in service cannot be reached</h1>") {
		t.Errorf("sign-in while provider is down = %d (Retry-After %q), want the 503 page:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// A signed-in user does not need the provider.
	if resp := e.do(get("https://gw.example.com/app", "Cookie", jar)); resp.StatusCode != http.StatusOK {
		t.Errorf("signed-in request while the provider is down = %d, want 200", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/ready")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready while provider is down = %d, want 503", resp.StatusCode)
	}
	e.idp.down = false
	if resp := e.do(get("https://gw.example.com/ready")); resp.StatusCode != http.StatusOK {
		t.Errorf("/ready = %d, want 200", resp.StatusCode)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, nil)
	_, jar := e.signIn("/", "c", "alice", "alice@example.com")
	page := e.do(get("https://gw.example.com/oauth2/sign_out?rd=/bye", "Cookie", jar))
	html := body(page)
	if page.StatusCode != http.StatusOK || !strings.Contains(html, `method="post"`) {
		t.Fatalf("GET sign_out = %d %s, want a confirmation form", page.StatusCode, html)
	}
	if n := len(page.Cookies()); n != 0 {
		t.Errorf("GET sign_out changed %d cookies; it must only ask", n)
	}
	csrf := between(html, `name="csrf" value="`, `"`)

	post := func(form url.Values, header ...string) *http.Response {
		r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Cookie", jar)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return e.do(r)
	}
	for _, tt := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"cross-site without token", url.Values{"rd": {"/"}}, []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"same-site sibling without token", url.Values{}, []string{"Sec-Fetch-Site", "same-site"}},
		{"old browser, foreign origin", url.Values{}, []string{"Origin", "https://evil.example"}},
		{"cross-site with a forged token", url.Values{"csrf": {"AAAA"}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(tt.form, tt.header...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status = %d, want 403", resp.StatusCode)
			}
			if len(resp.Cookies()) != 0 {
				t.Error("cookies changed by a rejected sign-out")
			}
		})
	}
	resp := post(url.Values{"csrf": {csrf}, "rd": {"https://evil.com/"}}, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("sign-out with token = %d to %q, want the signed-out page (rd is not allowed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := cookiesOf(resp)[e.store.Name()]; c == nil || c.MaxAge >= 0 {
		t.Errorf("session cookie not expired: %+v", c)
	}
	// Same-origin form posts (the app's own sign-out button) need no token.
	if resp := post(url.Values{}, "Sec-Fetch-Site", "same-origin", "Origin", "https://gw.example.com"); resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin sign-out = %d, want 200 signed-out page", resp.StatusCode)
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t, nil)
	_, jar := e.signIn("/", "c", "alice", "alice@example.com", "admins")
	resp := e.do(get("https://gw.example.com/oauth2/userinfo", "Cookie", jar))
	m := decodeJSON(t, resp)
	if m["email"] != "alice@example.com" || m["subject"] != "alice" {
		t.Errorf("userinfo = %v", m)
	}
	for k := range m {
		if strings.Contains(k, "token") {
			t.Errorf("userinfo exposes %q", k)
		}
	}
	if resp := e.do(get("https://gw.example.com/oauth2/userinfo")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo without session = %d, want 401", resp.StatusCode)
	}
}

func TestOversizedGroupsAreTrimmed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy = PolicyConfig{Groups: []string{"team-0042", "admins"}} })
	var groups []string
	for i := 0; i < 2000; i++ {
		groups = append(groups, fmt.Sprintf("team-%04d", i))
	}
	cb, jar := e.signIn("/", "big", "alice", "alice@example.com", groups...)
	if cb.StatusCode != http.StatusFound {
		t.Fatalf("callback = %d (%s)", cb.StatusCode, body(cb))
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", jar)); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with the trimmed session = %d", resp.StatusCode)
	}
	if got := e.last().Header.Get("X-Forwarded-Groups"); got != "team-0042" {
		t.Errorf("groups after trimming = %q, want only the one the policy names", got)
	}
	if !strings.Contains(e.logs.String(), "keeping only the groups the policy names") {
		t.Error("trimming was not logged")
	}
}

// TestStartLoginHint: /oauth2/start passes a printable login_hint of
// bounded length on to the provider (OpenID Connect Core §3.1.2.1) and
// drops any other; a request to an application never supplies one.
func TestStartLoginHint(t *testing.T) {
	for _, tt := range []struct {
		name, hint, want string
	}{
		{"email", "alice@example.com", "alice@example.com"},
		{"too long", strings.Repeat("a", 257), ""},
		{"control character", "alice\r\nx", ""},
		{"none", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			start := e.do(get("https://gw.example.com/oauth2/start?login_hint=" + url.QueryEscape(tt.hint)))
			if start.StatusCode != http.StatusFound {
				t.Fatalf("start = %d, want 302 (a bad hint is dropped, not refused)", start.StatusCode)
			}
			loc, _ := url.Parse(start.Header.Get("Location"))
			e.idp.mu.Lock()
			a := e.idp.attempts[loc.Query().Get("state")]
			e.idp.mu.Unlock()
			if a.LoginHint != tt.want {
				t.Errorf("LoginHint = %q, want %q", a.LoginHint, tt.want)
			}
		})
	}
}

// TestSignInPageKeepsLoginHint: with several providers, the sign-in
// page's links carry the login_hint on to the chosen one's /start.
func TestSignInPageKeepsLoginHint(t *testing.T) {
	e, partner := twoProviders(t)
	html := body(e.do(get("https://gw.example.com/oauth2/start?rd=%2Fr&login_hint=" + url.QueryEscape("bob@partner.example"))))
	want := `href="https://gw.example.com/oauth2/start?provider=partner&amp;rd=%2Fr&amp;login_hint=bob%40partner.example"`
	if !strings.Contains(html, want) {
		t.Fatalf("sign-in page lacks %s:\n%s", want, html)
	}
	start := e.do(get("https://gw.example.com/oauth2/start?provider=partner&rd=%2Fr&login_hint=bob%40partner.example"))
	loc, _ := url.Parse(start.Header.Get("Location"))
	partner.mu.Lock()
	a := partner.attempts[loc.Query().Get("state")]
	partner.mu.Unlock()
	if a.LoginHint != "bob@partner.example" {
		t.Errorf("partner's attempt LoginHint = %q", a.LoginHint)
	}
}

// TestLoginURLReturnsToReferringPage: a single-page app's fetch that gets
// a 401 is sent to sign in and back to the page it was on (Referer of the
// same origin), not to the API URL; any other Referer is ignored.
func TestLoginURLReturnsToReferringPage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.TrustedProxies = []string{"192.0.2.0/24"} })
	for _, tt := range []struct{ referer, want string }{
		{"https://gw.example.com/dashboard?tab=2#top", "https://gw.example.com/oauth2/start?rd=https%3A%2F%2Fgw.example.com%2Fdashboard%3Ftab%3D2"},
		{"https://GW.example.com/dashboard", "https://gw.example.com/oauth2/start?rd=https%3A%2F%2Fgw.example.com%2Fdashboard"},
		{"", "https://gw.example.com/oauth2/start?rd=%2Fapi%2Fitems"},
		{"https://evil.example.net/page", "https://gw.example.com/oauth2/start?rd=%2Fapi%2Fitems"},
		{"http://gw.example.com/dashboard", "https://gw.example.com/oauth2/start?rd=%2Fapi%2Fitems"}, // another scheme is another origin
		{"https://user@gw.example.com/dashboard", "https://gw.example.com/oauth2/start?rd=%2Fapi%2Fitems"},
		{"/dashboard", "https://gw.example.com/oauth2/start?rd=%2Fapi%2Fitems"},
	} {
		resp := e.do(get("https://gw.example.com/api/items", "Sec-Fetch-Mode", "cors", "Referer", tt.referer))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Referer %q: status %d, want 401", tt.referer, resp.StatusCode)
		}
		if got := decodeJSON(t, resp)["login_url"]; got != tt.want {
			t.Errorf("Referer %q: login_url = %v, want %s", tt.referer, got, tt.want)
		}
	}
	// Forward-auth: the referring page of the request judged.
	resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", "/api/items", "Accept", "application/json", "Referer", "https://gw.example.com/dashboard"))
	if got := decodeJSON(t, resp)["login_url"]; resp.StatusCode != http.StatusUnauthorized || got != "https://gw.example.com/oauth2/start?rd=https%3A%2F%2Fgw.example.com%2Fdashboard" {
		t.Errorf("forward-auth: %d, login_url = %v", resp.StatusCode, got)
	}
}

// TestExpiredLoginKeepsDeepLink: when the login cookie is gone by the time
// the provider sends the browser back, the "link expired" page's Sign in
// still returns to the page first asked for (carried, signed, in the
// state); a mark the gateway did not sign counts for nothing.
func TestExpiredLoginKeepsDeepLink(t *testing.T) {
	e := newEnv(t, nil)
	start := e.do(get("https://gw.example.com/reports/q3?x=1"))
	loc, err := url.Parse(start.Header.Get("Location"))
	if err != nil || start.StatusCode != http.StatusFound {
		t.Fatalf("start: %d to %q", start.StatusCode, start.Header.Get("Location"))
	}
	state := loc.Query().Get("state")
	expired := func(state string) string {
		t.Helper()
		resp := e.do(get("https://gw.example.com/oauth2/callback?code=c&state=" + url.QueryEscape(state))) // no login cookie
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("callback without the login cookie: %d, want 400", resp.StatusCode)
		}
		return strings.ReplaceAll(between(body(resp), `class="button" href="`, `"`), "&amp;", "&")
	}
	if got, want := expired(state), "https://gw.example.com/oauth2/start?rd=%2Freports%2Fq3%3Fx%3D1"; got != want {
		t.Errorf("Sign in on the expired page = %q, want %q", got, want)
	}
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		t.Fatalf("state %q carries no mark", state)
	}
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("https://evil.example.net/")) + "." + parts[2]
	if got := expired(forged); got != "https://gw.example.com/oauth2/start" && got != "https://gw.example.com/oauth2/start?rd=%2F" {
		t.Errorf("a forged mark: Sign in = %q, want the gateway's sign-in without it", got)
	}
}

// TestErrorPageHeadings: pages say what happened, not the reason phrase: a
// sign-in the user cancelled at the provider is "Sign-in not completed"
// with a way to try again, and a 404 offers a way out.
func TestErrorPageHeadings(t *testing.T) {
	e := newEnv(t, nil)
	start := e.do(get("https://gw.example.com/oauth2/start?rd=/x"))
	loc, _ := url.Parse(start.Header.Get("Location"))
	login := start.Cookies()[0]
	r := get("https://gw.example.com/oauth2/callback?error=access_denied&state="+url.QueryEscape(loc.Query().Get("state")), "Accept", "text/html")
	r.Header.Set("Cookie", login.Name+"="+login.Value)
	resp := e.do(r)
	page := body(resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "<h1>Sign-in not completed</h1>") || strings.Contains(page, "Forbidden") ||
		!strings.Contains(page, `href="https://gw.example.com/oauth2/start?provider=corp&amp;rd=%2Fx"`) {
		t.Errorf("cancelled at the provider: %d\n%s", resp.StatusCode, page)
	}
	resp = e.do(get("https://gw.example.com/oauth2/nothing-here", "Accept", "text/html"))
	if page := body(resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "<h1>Page not found</h1>") || !strings.Contains(page, `<a class="button" href="/">`) {
		t.Errorf("404: %d\n%s", resp.StatusCode, page)
	}
}

// TestLongDeepLink: a deep link too long for a login cookie still starts
// a sign-in (never a 500) and comes back without its query; one that fits
// comes back whole, and every login cookie stays within a browser's
// 4096 bytes.
func TestLongDeepLink(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ rd, want string }{
		{"/reports?q=" + strings.Repeat("a", 1000), "/reports?q=" + strings.Repeat("a", 1000)},
		{"/reports?q=" + strings.Repeat("b", 2000), "/reports"},
	} {
		resp := e.do(get("https://gw.example.com" + tt.rd))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%d-byte deep link: %d, want 302 to the provider: %s", len(tt.rd), resp.StatusCode, body(resp))
		}
		for _, c := range resp.Cookies() {
			if n := len(c.Name) + len(c.Value); n > 4096 {
				t.Errorf("%d-byte deep link: login cookie of %d bytes", len(tt.rd), n)
			}
		}
		cb, _ := e.signIn(tt.rd, "c", "alice", "alice@example.com")
		if got := cb.Header.Get("Location"); got != tt.want {
			t.Errorf("%d-byte deep link came back to %.40q…, want %.40q…", len(tt.rd), got, tt.want)
		}
	}
}
