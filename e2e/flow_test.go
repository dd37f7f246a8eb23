package e2e

import (
	"github.com/portcullis/portcullis/demo"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestBrowserFlow walks the whole sign-in: unauthenticated GET → provider
// login form → credentials → callback → the upstream sees the identity and
// none of the gateway's cookies → sign-out ends the session.
func TestBrowserFlow(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)

	seen := decodeSeen(t, w.signIn(c, "/reports/q3?format=pdf", "alice"))
	if seen.Path != "/reports/q3" || seen.Query != "format=pdf" {
		t.Errorf("after sign-in the upstream got %s?%s, want the page first asked for", seen.Path, seen.Query)
	}
	for name, want := range map[string]string{
		"X-Forwarded-User":               "u-alice",
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Groups":             "admins,developers",
		"X-Forwarded-Preferred-Username": "alice",
	} {
		if got := seen.Header.Get(name); got != want {
			t.Errorf("upstream %s = %q, want %q", name, got, want)
		}
	}
	if ck := seen.Header.Get("Cookie"); strings.Contains(ck, "portcullis") {
		t.Errorf("upstream received the gateway's cookies: %q", ck)
	}

	// A client-supplied identity header is replaced, in any spelling.
	req, _ := http.NewRequest("GET", w.gateway+"/api/me", nil)
	req.Header["X-Forwarded-Email"] = []string{"ceo@example.com"}
	req.Header["X_Forwarded_Email"] = []string{"ceo@example.com"}
	req.Header["x-forwarded-user"] = []string{"ceo"}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	if got := seen.Header.Values("X-Forwarded-Email"); len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("spoofed X-Forwarded-Email reached the upstream as %q", got)
	}
	for k := range seen.Header {
		if strings.EqualFold(k, "X_Forwarded_Email") {
			t.Errorf("underscore spelling %s reached the upstream", k)
		}
	}
	if got := seen.Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q", got)
	}

	// userinfo tells the browser who it is, without tokens.
	resp, err = c.Get(w.gateway + "/oauth2/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"email":"alice@example.com"`) || strings.Contains(strings.ToLower(string(b)), "token") {
		t.Errorf("userinfo = %d %s", resp.StatusCode, b)
	}

	// Sign out through the confirmation page, as a browser would.
	resp, err = c.Get(w.gateway + "/oauth2/sign_out")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("sign-out page has no form: %s", page)
	}
	resp, err = c.PostForm(w.gateway+"/oauth2/sign_out", url.Values{"csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out POST = %d", resp.StatusCode)
	}
	before := w.upstream.count()
	resp, err = noFollow(c).Get(w.gateway + "/reports/q3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !w.toSignIn(resp) {
		t.Errorf("after sign-out GET = %d to %q, want a redirect to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	if w.upstream.count() != before {
		t.Error("the upstream was reached after sign-out")
	}

	// Nothing secret in the gateway's log, at debug level.
	logs := w.logs.String()
	for _, ck := range c.Jar.Cookies(mustURL(w.idp.URL)) {
		if strings.Contains(logs, ck.Value) {
			t.Errorf("log contains the provider cookie %s", ck.Name)
		}
	}
	for _, secret := range []string{w.users["alice"].Password, "code=", "state=", "client_secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// callbackURL signs in at the provider but stops before the gateway's
// callback, returning its URL and the client (holding the login cookie).
func (w *world) callbackURL(t *testing.T, user string) (string, *http.Client) {
	t.Helper()
	c := browser(t)
	resp, err := c.Get(w.gateway + "/private")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	login := resp.Request.URL.String()
	nf := noFollow(c)
	final, err := demoSignIn(nf, login, w.users[user].Username, w.users[user].Password)
	if err != nil {
		t.Fatal(err)
	}
	final.Body.Close()
	loc := final.Header.Get("Location")
	if !strings.HasPrefix(loc, w.gateway+"/oauth2/callback?") {
		t.Fatalf("provider redirected to %q, want the gateway's callback", loc)
	}
	return loc, c
}

func TestCallbackWrongState(t *testing.T) {
	w := newWorld(t, worldOptions{})
	cb, c := w.callbackURL(t, "alice")
	u := mustURL(cb)
	q := u.Query()
	q.Set("state", "forged-state")
	u.RawQuery = q.Encode()
	resp, err := noFollow(c).Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a forged state = %d, want 400", resp.StatusCode)
	}
	// The code was never redeemed: the provider saw no code exchange.
	if n := w.idp.Stats().TokenRequests["authorization_code"]; n != 0 {
		t.Errorf("code exchanges after a forged state = %d, want 0", n)
	}
	if w.upstream.count() != 0 {
		t.Error("upstream reached")
	}
}

// TestCallbackRepeatedParams: the real provider's callback with a second
// code or state appended (RFC 6749 §3.1) is refused with 400 before the
// code is redeemed; the untouched callback then still signs in.
func TestCallbackRepeatedParams(t *testing.T) {
	w := newWorld(t, worldOptions{})
	cb, c := w.callbackURL(t, "alice")
	for _, extra := range []string{"&code=injected", "&state=forged", "&iss=" + url.QueryEscape(w.idp.URL) + "&iss=x"} {
		resp, err := noFollow(c).Get(cb + extra)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback with %s appended = %d, want 400", extra, resp.StatusCode)
		}
	}
	if n := w.idp.Stats().TokenRequests["authorization_code"]; n != 0 {
		t.Errorf("code exchanges after repeated parameters = %d, want 0", n)
	}
	resp, err := c.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)
}

func TestCallbackReplayed(t *testing.T) {
	w := newWorld(t, worldOptions{})
	cb, c := w.callbackURL(t, "alice")
	// Capture the login cookies before the first use, as an attacker
	// replaying the whole exchange would.
	saved := c.Jar.Cookies(mustURL(w.gateway))
	resp, err := c.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp) // first use succeeds and lands on the upstream

	// Replay in a fresh browser with the captured login cookie.
	attacker := browser(t)
	attacker.Jar.SetCookies(mustURL(w.gateway), saved)
	resp, err = noFollow(attacker).Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback = %d, want 400", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "_portcullis" && ck.MaxAge >= 0 {
			t.Error("replayed callback set a session cookie")
		}
	}
}

func TestLoginCSRF(t *testing.T) {
	// The attacker signs in as themselves, stops before the callback and
	// sends the callback URL to the victim, whose browser has no login cookie.
	w := newWorld(t, worldOptions{})
	cb, _ := w.callbackURL(t, "bob")
	victim := browser(t)
	resp, err := noFollow(victim).Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback in a browser that did not start the sign-in = %d, want 400", resp.StatusCode)
	}
	if len(victim.Jar.Cookies(mustURL(w.gateway))) != 0 {
		t.Error("victim's browser got a session")
	}
}

func TestUnverifiedEmailRefused(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	resp := w.signIn(c, "/", "eve")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with an unverified email = %d, want 403", resp.StatusCode)
	}
	if w.upstream.count() != 0 {
		t.Error("upstream reached")
	}
}

func TestPolicyDeniesOtherDomain(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	resp := w.signIn(c, "/", "bob") // bob@example.org; policy admits example.com
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob = %d, want 403", resp.StatusCode)
	}
	if w.upstream.count() != 0 {
		t.Error("upstream reached")
	}
}

func TestAPIClientGets401(t *testing.T) {
	w := newWorld(t, worldOptions{})
	req, _ := http.NewRequest("GET", w.gateway+"/api/items", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"login_url":"`+w.gateway+`/oauth2/start?rd=%2Fapi%2Fitems"`) {
		t.Errorf("API request = %d %s", resp.StatusCode, b)
	}
}

// TestTwoTabs starts two sign-ins in one browser and finishes them in the
// opposite order: each tab's attempt has its own login cookie.
func TestTwoTabs(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	open := func(path string) string {
		resp, err := c.Get(w.gateway + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Request.URL.String()
	}
	tab1, tab2 := open("/one"), open("/two")
	alice := w.users["alice"]
	for _, tab := range []struct{ login, want string }{{tab2, "/two"}, {tab1, "/one"}} {
		resp, err := demoSignIn(c, tab.login, alice.Username, alice.Password)
		if err != nil {
			t.Fatal(err)
		}
		if seen := decodeSeen(t, resp); seen.Path != tab.want {
			t.Errorf("tab finished at %s, want %s", seen.Path, tab.want)
		}
	}
}

// TestHeadersOnTheWire signs in at the real provider as a user whose
// groups and username would be read as other values, and sends the
// override headers a framework might believe: the upstream receives only
// unambiguous identity values and none of the overrides, and the gateway
// says what it left out.
func TestHeadersOnTheWire(t *testing.T) {
	users := append(defaultUsers(), demo.User{ID: "u-mallory", Username: "mallory", Password: "mallory-password-1",
		Email: "mallory@example.com", EmailVerified: true, PreferredUsername: "admin ",
		Groups: []string{"eng,admins", "admins ", "developers"}})
	w := newWorld(t, worldOptions{users: users})
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/", "mallory"))
	if got := seen.Header.Values("X-Forwarded-Groups"); len(got) != 1 || got[0] != "developers" {
		t.Errorf("X-Forwarded-Groups = %q, want [developers]", got)
	}
	if got, ok := seen.Header["X-Forwarded-Preferred-Username"]; ok {
		t.Errorf("X-Forwarded-Preferred-Username sent as %q for the username \"admin \"", got)
	}
	if !w.logs.waitFor("identity values left out", `eng,admins`) {
		t.Errorf("no log line for the groups left out:\n%s", w.logs.String())
	}
	overrides := []string{"X-Original-URL", "X-Rewrite-URL", "X-Override-URL", "X-Forwarded-Prefix",
		"X-HTTP-Method-Override", "X-Forwarded-Scheme", "X-Original-Host"}
	req, _ := http.NewRequest("GET", w.gateway+"/api/me", nil)
	for _, name := range overrides {
		req.Header.Set(name, "GET")
		req.Header[strings.ToLower(strings.ReplaceAll(name, "-", "_"))] = []string{"GET"}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	for k := range seen.Header {
		for _, name := range overrides {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
				t.Errorf("the upstream received %s", k)
			}
		}
	}
}

// TestDuplicateSessionCookie: the binary, over the wire, with a real
// session cookie and a tossed second copy of its name: in either order
// the request is signed out and the log says why; an identical copy is
// not ambiguous.
func TestDuplicateSessionCookie(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(mustURL(w.gateway)) {
		if ck.Name == "_portcullis" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie after sign-in")
	}
	good := "_portcullis=" + session.Value
	for _, tt := range []struct {
		name, cookie string
		want         int
	}{
		{"tossed copy first", "_portcullis=tossed; " + good, http.StatusUnauthorized},
		{"tossed copy last", good + "; _portcullis=tossed", http.StatusUnauthorized},
		{"empty copy", good + "; _portcullis=", http.StatusUnauthorized},
		{"a chunk beside the cookie", good + "; _portcullis_0=tossed", http.StatusUnauthorized},
		{"identical copy", good + "; " + good, http.StatusOK},
	} {
		req := mustRequest(t, w.gateway+"/api/me", "Cookie", tt.cookie, "Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	if !w.logs.waitFor("sent twice with different values") {
		t.Errorf("no log line for the ambiguous cookie:\n%s", w.logs.String())
	}
}
