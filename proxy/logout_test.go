package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// fakeLogoutToken builds an unsigned JWT-shaped string whose payload names
// the issuer; the fake provider decides validity.
func fakeLogoutToken(iss, name string) string {
	return "e30." + b64url(`{"iss":"`+iss+`","n":"`+name+`"}`) + ".sig"
}

func b64url(s string) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(s)), "=")
}

func postLogout(e *env, token string) *http.Response {
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/backchannel_logout", strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(r)
}

func TestBackchannelLogout(t *testing.T) {
	e := newEnv(t, nil)
	valid := map[string]*providers.LogoutToken{
		"by-sub": {Issuer: e.idp.issuer, Subject: "alice", ID: "jti-1", Expiry: time.Now().Add(time.Minute)},
		"by-sid": {Issuer: e.idp.issuer, Subject: "bob", SessionID: "sid-bob", ID: "jti-2", Expiry: time.Now().Add(time.Minute)},
	}
	e.idp.logout = func(raw string) (*providers.LogoutToken, error) {
		for name, lt := range valid {
			if raw == fakeLogoutToken(e.idp.issuer, name) {
				c := *lt
				return &c, nil
			}
		}
		return nil, providers.ErrInvalidLogoutToken
	}
	alice := e.sessionCookie("alice", "alice@example.com")
	bob := e.cookieFor(e.baseSession(func(s *session.Session) { s.Subject, s.SID = "bob", "sid-bob" }))
	bobOther := e.cookieFor(e.baseSession(func(s *session.Session) { s.Subject, s.SID = "bob", "sid-other" }))
	e.advance(2 * time.Second) // the sessions were created before the logout

	// Refused tokens revoke nothing.
	for _, bad := range []string{"", "garbage", fakeLogoutToken("https://other.idp", "by-sub"), fakeLogoutToken(e.idp.issuer, "forged")} {
		resp := postLogout(e, bad)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token %q: %d, want 400", bad, resp.StatusCode)
		}
		if m := decodeJSON(t, resp); m["error"] != "invalid_request" {
			t.Errorf("400 body = %v", m)
		}
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", alice)); resp.StatusCode != 200 {
		t.Fatalf("alice was affected by refused tokens: %d", resp.StatusCode)
	}

	resp := postLogout(e, fakeLogoutToken(e.idp.issuer, "by-sub"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("valid logout token: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", alice, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice after back-channel logout by sub: %d, want 401", resp.StatusCode)
	}
	// A session of the logout's very instant is not provably later: it
	// ends too (fail closed). A new sign-in a second later works.
	if resp := e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("alice", "alice@example.com"), "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice's session of the logout's instant: %d, want 401", resp.StatusCode)
	}
	e.advance(time.Second)
	if resp := e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("alice", "alice@example.com"))); resp.StatusCode != 200 {
		t.Errorf("alice's new session after the logout: %d", resp.StatusCode)
	}
	// Replayed jti: 400, nothing more happens.
	if resp := postLogout(e, fakeLogoutToken(e.idp.issuer, "by-sub")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed logout token: %d, want 400", resp.StatusCode)
	}

	// By sid: only that provider session ends.
	if resp := postLogout(e, fakeLogoutToken(e.idp.issuer, "by-sid")); resp.StatusCode != 200 {
		t.Fatalf("logout by sid: %d", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", bob, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bob's session with the logged-out sid: %d, want 401", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", bobOther)); resp.StatusCode != 200 {
		t.Errorf("bob's other provider session: %d, want 200", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/oauth2/backchannel_logout")); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on the back-channel endpoint: %d", resp.StatusCode)
	}
}

func TestSignOutAtProvider(t *testing.T) {
	e := newEnv(t, nil)
	e.idp.endSession = "https://idp.test/end_session"
	_, jar := e.signIn("/", "c", "alice", "alice@example.com")
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader("rd=%2Fbye"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", jar)
	resp := e.do(r)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), "https://idp.test/end_session") {
		t.Fatalf("sign-out = %d to %s, want the provider's end-session endpoint", resp.StatusCode, loc)
	}
	if !expired(resp, e.store.Name()) {
		t.Error("the local session was not cleared before leaving for the provider")
	}
	if got := loc.Query().Get("post_logout_redirect_uri"); got != "https://gw.example.com/oauth2/signed_out" {
		t.Errorf("post_logout_redirect_uri = %q", got)
	}
	// The provider sends the browser back with our state: on to rd.
	back := e.do(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(loc.Query().Get("state"))))
	if back.StatusCode != http.StatusFound || back.Header.Get("Location") != "/bye" {
		t.Errorf("return from the provider = %d to %q, want /bye", back.StatusCode, back.Header.Get("Location"))
	}
	// A forged state goes nowhere but the signed-out page.
	for _, state := range []string{"", "x.y.z", b64url("https://evil.com") + ".99999999999.AAAA"} {
		resp := e.do(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(state)))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Errorf("state %q: %d to %q, want the signed-out page", state, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, nil)
	token := strings.Repeat("t", 40)
	a, err := NewAdmin(token, e.h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewAdmin("short", e.h); err == nil {
		t.Error("a short admin token was accepted")
	}
	call := func(method, target, bearer string) *http.Response {
		r := httptest.NewRequest(method, target, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, r)
		return rec.Result()
	}
	alice := e.sessionCookie("alice", "alice@example.com")
	e.advance(2 * time.Second)
	for _, tt := range []struct {
		name, method, target, bearer string
		want                         int
	}{
		{"no token", "DELETE", "/admin/sessions?user=alice", "", 401},
		{"wrong token", "DELETE", "/admin/sessions?user=alice", strings.Repeat("x", 40), 401},
		{"no user", "DELETE", "/admin/sessions", token, 400},
		{"unknown provider", "DELETE", "/admin/sessions?user=alice&provider=nope", token, 400},
		{"list in cookie mode", "GET", "/admin/sessions?user=alice", token, 501},
		{"one session in cookie mode", "DELETE", "/admin/sessions/abc?user=alice", token, 501},
		{"unknown endpoint", "GET", "/admin/other", token, 404},
		{"bad method", "POST", "/admin/sessions?user=alice", token, 405},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if resp := call(tt.method, tt.target, tt.bearer); resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", alice)); resp.StatusCode != 200 {
		t.Fatal("refused admin calls affected alice")
	}
	if resp := call("DELETE", "/admin/sessions?user=alice", token); resp.StatusCode != 200 {
		t.Fatalf("revoke = %d", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", alice, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice after admin revoke: %d, want 401", resp.StatusCode)
	}
}
