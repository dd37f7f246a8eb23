package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/providers"
)

// twoProviders is an env with "corp" (https://idp.test) and "partner"
// (https://partner.test); /partner/ is pinned to partner.
func twoProviders(t *testing.T) (*env, *fakeProvider) {
	partner := &fakeProvider{id: "partner", issuer: "https://partner.test", codes: map[string]*sessionT{}, attempts: map[string]providers.Attempt{}}
	e := newEnvOpts(t, func(c *Config) {
		c.UI = UIConfig{Title: "Acme tools", LogoURL: "https://cdn.example.com/logo.svg"}
		c.Policy.Routes = []RouteConfig{{Path: "/partner/", Provider: "partner"}}
		c.Policy.EmailDomains = []string{"example.com", "partner.example"}
	}, nil, partner)
	return e, partner
}

func TestSignInPageWithTwoProviders(t *testing.T) {
	e, _ := twoProviders(t)
	resp := e.do(get("https://gw.example.com/reports?x=1", "Accept", "text/html"))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc != "https://gw.example.com/oauth2/start?rd=%2Freports%3Fx%3D1" {
		t.Fatalf("unauthenticated with two providers: %d to %q, want the sign-in page", resp.StatusCode, loc)
	}
	page := e.do(get(loc))
	html := body(page)
	if page.StatusCode != 200 || !strings.Contains(html, "<h1>Acme tools</h1>") ||
		!strings.Contains(html, "Sign in with Provider corp") || !strings.Contains(html, "Sign in with Provider partner") ||
		!strings.Contains(html, `href="https://gw.example.com/oauth2/start?provider=partner&amp;rd=%2Freports%3Fx%3D1"`) {
		t.Errorf("sign-in page:\n%s", html)
	}
	if strings.Contains(html, "<script") {
		t.Error("the sign-in page uses JavaScript")
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src https://cdn.example.com") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	resp = e.do(get("https://gw.example.com/oauth2/start?provider=partner&rd=%2Freports"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://partner.test/authorize") {
		t.Errorf("start with provider=partner: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := e.do(get("https://gw.example.com/oauth2/start?provider=nope")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown provider: %d, want 400", resp.StatusCode)
	}
	// API clients get a login_url to the page.
	m := decodeJSON(t, e.do(get("https://gw.example.com/reports", "Accept", "application/json")))
	if m["login_url"] != "https://gw.example.com/oauth2/start?rd=%2Freports" {
		t.Errorf("login_url = %v", m["login_url"])
	}
}

func TestPinnedRoute(t *testing.T) {
	e, partner := twoProviders(t)
	// Not signed in: straight to the pinned provider.
	resp := e.do(get("https://gw.example.com/partner/deal", "Accept", "text/html"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://partner.test/authorize") {
		t.Errorf("pinned route, no session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Signed in with corp: the pinned route asks for partner.
	corp := e.sessionCookie("alice", "alice@example.com")
	resp = e.do(get("https://gw.example.com/partner/deal", "Cookie", corp, "Accept", "text/html"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://partner.test/authorize") {
		t.Errorf("pinned route with a corp session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := e.do(get("https://gw.example.com/other", "Cookie", corp)); resp.StatusCode != 200 {
		t.Errorf("corp session elsewhere: %d", resp.StatusCode)
	}
	// Signed in with partner: the pinned route passes.
	start := e.do(get("https://gw.example.com/oauth2/start?provider=partner&rd=%2Fpartner%2Fdeal"))
	state, _ := url.Parse(start.Header.Get("Location"))
	login := start.Cookies()[0]
	partner.issue("p-code", "bob", "bob@partner.example")
	cb := e.do(get("https://gw.example.com/oauth2/callback?code=p-code&state="+url.QueryEscape(state.Query().Get("state")), "Cookie", login.Name+"="+login.Value))
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/partner/deal" {
		t.Fatalf("partner callback: %d to %q (%s)", cb.StatusCode, cb.Header.Get("Location"), body(cb))
	}
	var jar string
	for _, c := range cb.Cookies() {
		if c.Name == e.store.Name() {
			jar = c.Name + "=" + c.Value
		}
	}
	if resp := e.do(get("https://gw.example.com/partner/deal", "Cookie", jar)); resp.StatusCode != 200 {
		t.Errorf("pinned route with a partner session: %d", resp.StatusCode)
	}
	if up := e.last(); up.Header.Get("X-Forwarded-User") != "bob" {
		t.Errorf("upstream user = %q", up.Header.Get("X-Forwarded-User"))
	}
	// A login started for corp cannot be finished with partner's code:
	// the attempt is bound to its provider.
	start = e.do(get("https://gw.example.com/oauth2/start?provider=corp"))
	state, _ = url.Parse(start.Header.Get("Location"))
	login = start.Cookies()[0]
	partner.issue("p-code-2", "mallory", "mallory@partner.example")
	cb = e.do(get("https://gw.example.com/oauth2/callback?code=p-code-2&state="+url.QueryEscape(state.Query().Get("state")), "Cookie", login.Name+"="+login.Value))
	if cb.StatusCode == http.StatusFound {
		t.Errorf("a partner code finished a corp sign-in")
	}
}

func TestPinnedRouteNeedsKnownProvider(t *testing.T) {
	err := tryNew(t, func(c *Config) { c.Policy.Routes = []RouteConfig{{Path: "/x/", Provider: "nope"}} })
	if err == nil || !strings.Contains(err.Error(), `pins provider "nope"`) {
		t.Errorf("err = %v", err)
	}
	if err := tryNew(t, func(c *Config) { c.UI.LogoURL = "javascript:alert(1)" }); err == nil {
		t.Error("a javascript: logo was accepted")
	}
}
