package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// deviceEnv is an env with device.enabled, and its audit log.
func deviceEnv(t *testing.T, mutate func(*Config)) (*env, *strings.Builder) {
	audit := &strings.Builder{}
	e := newEnvOpts(t, func(c *Config) {
		c.Device.Enabled = true
		if mutate != nil {
			mutate(c)
		}
	}, func(o *Options) {
		o.RefreshBefore = time.Minute
		o.Audit = slog.New(slog.NewJSONHandler(audit, nil))
	})
	return e, audit
}

func postForm(target string, form url.Values, header ...string) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// startDevice asks for a code as a device would.
func (e *env) startDevice() (deviceCode, userCode string, answer map[string]any) {
	e.t.Helper()
	resp := e.do(postForm("https://gw.example.com/oauth2/device/authorize", url.Values{"client_id": {"portcullis-cli"}}, "User-Agent", "portcullis-cli/1"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("authorize: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	m := decodeJSON(e.t, resp)
	dc, _ := m["device_code"].(string)
	uc, _ := m["user_code"].(string)
	return dc, uc, m
}

func (e *env) poll(deviceCode string) (int, map[string]any) {
	e.t.Helper()
	resp := e.do(postForm("https://gw.example.com/oauth2/device/token", url.Values{"grant_type": {grantType}, "device_code": {deviceCode}}))
	return resp.StatusCode, decodeJSON(e.t, resp)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// confirmPage opens the verification page for userCode with cookie and
// returns the form's token.
func (e *env) confirmPage(cookie, userCode string) string {
	e.t.Helper()
	resp := e.do(get("https://gw.example.com/oauth2/device?user_code="+url.QueryEscape(userCode), "Cookie", cookie))
	page := body(resp)
	m := csrfField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(page, userCode) || !strings.Contains(page, "portcullis-cli") {
		e.t.Fatalf("verification page: %d, want the request with its code, client and a token:\n%s", resp.StatusCode, page)
	}
	return m[1]
}

func (e *env) decide(cookie, userCode, csrf, decision string, header ...string) *http.Response {
	e.t.Helper()
	// As a browser sends it from a page with Referrer-Policy: no-referrer.
	h := append([]string{"Cookie", cookie, "Origin", "null", "Sec-Fetch-Site", "same-origin"}, header...)
	return e.do(postForm("https://gw.example.com/oauth2/device", url.Values{"user_code": {userCode}, "csrf": {csrf}, "decision": {decision}}, h...))
}

// TestDeviceGrant: the whole grant, RFC 8628 §3: a code, pending polls,
// slow_down, the user's approval on the verification page, a token that
// is redeemed once, admitted by the policy as that user, and revoked.
func TestDeviceGrant(t *testing.T) {
	e, audit := deviceEnv(t, nil)
	dc, uc, m := e.startDevice()
	if ok, _ := regexp.MatchString(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`, uc); !ok || len(dc) < 32 {
		t.Fatalf("codes %q %q", dc, uc)
	}
	if m["verification_uri"] != "https://gw.example.com/oauth2/device" || m["verification_uri_complete"] != "https://gw.example.com/oauth2/device?user_code="+uc ||
		m["expires_in"] != float64(600) || m["interval"] != float64(5) {
		t.Errorf("authorize answer %v", m)
	}
	if code, m := e.poll(dc); code != http.StatusBadRequest || m["error"] != "authorization_pending" {
		t.Errorf("first poll: %d %v, want authorization_pending", code, m)
	}
	if code, m := e.poll(dc); code != http.StatusBadRequest || m["error"] != "slow_down" {
		t.Errorf("an immediate second poll: %d %v, want slow_down", code, m)
	}

	// Not signed in: the page sends the browser to sign in, and back.
	resp := e.do(get("https://gw.example.com/oauth2/device?user_code=" + url.QueryEscape(uc)))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/oauth2/start") ||
		!strings.Contains(loc, url.QueryEscape("/oauth2/device?user_code=")) {
		t.Errorf("verification page without a session: %d to %q, want sign-in and back", resp.StatusCode, loc)
	}
	alice := e.cookieFor(e.baseSession(nil))
	csrf := e.confirmPage(alice, uc)
	resp = e.decide(alice, uc, csrf, "approve")
	if page := body(resp); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Device signed in") {
		t.Fatalf("approval: %d\n%s", resp.StatusCode, page)
	}

	e.advance(11 * time.Second) // past the interval slow_down raised to 10s
	code, m := e.poll(dc)
	token, _ := m["access_token"].(string)
	if code != http.StatusOK || m["token_type"] != "Bearer" || !strings.HasPrefix(token, deviceTokenPrefix) || m["expires_in"] != float64(3600) {
		t.Fatalf("poll after approval: %d %v, want a Bearer token living the session lifetime (1h, below device.lifetime's 8h)", code, m)
	}
	e.advance(11 * time.Second)
	if code, m := e.poll(dc); code != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("second redemption: %d %v, want invalid_grant", code, m)
	}

	resp = e.do(get("https://gw.example.com/api/x", "Authorization", "bearer  "+token, "Accept", "application/json"))
	if resp.StatusCode != http.StatusOK || e.last().Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Fatalf("the device token on a protected route: %d, upstream saw %q", resp.StatusCode, e.last().Header.Get("X-Forwarded-Email"))
	}
	if got := e.last().Header.Get("Authorization"); got != "" {
		t.Error("the device token reached the upstream")
	}

	resp = e.do(postForm("https://gw.example.com/oauth2/revoke", url.Values{"token": {token}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	resp = e.do(get("https://gw.example.com/api/x", "Authorization", "Bearer "+token, "Accept", "application/json"))
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("a revoked device token: %d %q, want 401 with WWW-Authenticate: Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, ev := range []string{`"event":"device_requested"`, `"event":"device_approved"`, `"event":"device_token_issued"`, `"event":"device_token_revoked"`} {
		if !strings.Contains(audit.String(), ev) {
			t.Errorf("audit log lacks %s", ev)
		}
	}
}

// TestDeviceHostile: approving without the page's token, from another
// site, for another code or as another session; denial; a forged token;
// routes that opt out; the endpoints off by default; guessing codes.
func TestDeviceHostile(t *testing.T) {
	e, audit := deviceEnv(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{{Path: "/browser-only/", Device: new(bool)}}
	})
	dc, uc, _ := e.startDevice()
	alice := e.cookieFor(e.baseSession(nil))
	bob := e.cookieFor(e.baseSession(func(s *session.Session) { s.Subject, s.Email = "bob", "bob@example.com" }))
	csrf := e.confirmPage(alice, uc)
	_, otherCode, _ := e.startDevice()
	for _, tt := range []struct {
		name   string
		resp   *http.Response
		status int
	}{
		{"no token", e.decide(alice, uc, "", "approve"), http.StatusForbidden},
		{"cross-site", e.decide(alice, uc, csrf, "approve", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"same-site, other origin", e.decide(alice, uc, csrf, "approve", "Origin", "https://app.example.com", "Sec-Fetch-Site", "same-site"), http.StatusForbidden},
		{"no Sec-Fetch-Site, foreign Origin", e.decide(alice, uc, csrf, "approve", "Origin", "https://evil.example", "Sec-Fetch-Site", ""), http.StatusForbidden},
		{"token of another code", e.decide(alice, otherCode, csrf, "approve"), http.StatusForbidden},
		{"token of another session", e.decide(bob, uc, csrf, "approve"), http.StatusForbidden},
		{"no session", e.do(postForm("https://gw.example.com/oauth2/device", url.Values{"user_code": {uc}, "csrf": {csrf}, "decision": {"approve"}},
			"Origin", "https://gw.example.com")), http.StatusUnauthorized},
	} {
		if tt.resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, tt.resp.StatusCode, tt.status)
		}
	}
	if code, m := e.poll(dc); m["error"] != "authorization_pending" {
		t.Fatalf("after the refused approvals: %d %v, want still pending", code, m)
	}

	// Denied: access_denied, once.
	if resp := e.decide(alice, uc, csrf, "deny"); resp.StatusCode != http.StatusOK {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	if resp := e.decide(alice, uc, csrf, "approve"); resp.StatusCode != http.StatusConflict {
		t.Errorf("approving a denied code: %d, want 409", resp.StatusCode)
	}
	e.advance(6 * time.Second)
	if code, m := e.poll(dc); code != http.StatusBadRequest || m["error"] != "access_denied" {
		t.Errorf("poll after denial: %d %v, want access_denied", code, m)
	}

	// A forged token, and a real one on a route that opts out.
	for _, tok := range []string{deviceTokenPrefix + "forged", deviceTokenPrefix, deviceTokenPrefix + strings.Repeat("A", 20000)} {
		if resp := e.do(get("https://gw.example.com/x", "Authorization", "Bearer "+tok, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged device token %.12q…: %d, want 401", tok, resp.StatusCode)
		}
	}
	token, err := e.store.IssueToken(t.Context(), e.baseSession(nil), "test")
	if err != nil {
		t.Fatal(err)
	}
	if resp := e.do(get("https://gw.example.com/browser-only/x", "Authorization", "Bearer "+deviceTokenPrefix+token, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("device token on a device: false route: %d, want 401 (sign in)", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/x", "Authorization", "Bearer "+deviceTokenPrefix+token, "Accept", "application/json")); resp.StatusCode != http.StatusOK {
		t.Errorf("the same token elsewhere: %d, want 200", resp.StatusCode)
	}

	// Guessing codes: refused after attempts_per_source, audited.
	refused := 0
	for i := range 15 {
		resp := e.do(get("https://gw.example.com/oauth2/device?user_code=BCDF-GHJ"+string(rune('B'+i%3)), "Cookie", bob))
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 5 {
		t.Errorf("%d of 15 guesses refused, want the ones beyond attempts_per_source (10) and the earlier lookup", refused)
	}
	if !strings.Contains(audit.String(), `"reason":"rate_limited"`) {
		t.Error("refused guesses were not audited")
	}
}

func TestDeviceOffByDefault(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/oauth2/device/authorize", "/oauth2/device/token", "/oauth2/revoke"} {
		if resp := e.do(postForm("https://gw.example.com"+p, url.Values{})); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s without device.enabled: %d, want 404", p, resp.StatusCode)
		}
	}
	token, _ := e.store.IssueToken(t.Context(), e.baseSession(nil), "test")
	if resp := e.do(get("https://gw.example.com/x", "Authorization", "Bearer "+deviceTokenPrefix+token, "Accept", "application/json")); resp.StatusCode == http.StatusOK {
		t.Error("a device token was accepted with device.enabled false")
	}
}

func TestDeviceConfig(t *testing.T) {
	for _, tt := range []struct {
		c    DeviceConfig
		want string
	}{
		{DeviceConfig{Enabled: true, Lifetime: 48 * time.Hour}, "longer than session.lifetime"},
		{DeviceConfig{Enabled: true, Interval: time.Hour}, "device.interval"},
		{DeviceConfig{Enabled: true, CodeLifetime: time.Second}, "device.code_lifetime"},
		{DeviceConfig{Enabled: true, AttemptsPerSource: 50, AttemptsPerMinute: 10}, "attempts_per_minute"},
	} {
		if err := tt.c.validate(12 * time.Hour); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	l := newRateLimit(3, 5)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var got []bool
	for _, k := range []string{"a", "a", "a", "a", "b", "b", "c"} {
		got = append(got, l.allow(k, now))
	}
	want := []bool{true, true, true, false, true, true, false} // a's 4th over 3; c over the 5 in all
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("attempt %d: %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	// Two minutes on, everything is forgotten.
	if !l.allow("a", now.Add(2*time.Minute)) {
		t.Error("still refused two minutes later")
	}
}

// TestDeviceTokenEnds: the token is refused after the browser session
// that approved it signs out (they share the provider session id), and by
// another gateway (other keys), and after its own lifetime.
func TestDeviceTokenEnds(t *testing.T) {
	e, _ := deviceEnv(t, nil)
	approver := e.baseSession(func(s *session.Session) { s.SID = "idp-session-1" })
	issue := func() string {
		dc, uc, _ := e.startDevice()
		cookie := e.cookieFor(approver)
		if resp := e.decide(cookie, uc, e.confirmPage(cookie, uc), "approve"); resp.StatusCode != http.StatusOK {
			t.Fatalf("approve: %d", resp.StatusCode)
		}
		_, m := e.poll(dc)
		tok, _ := m["access_token"].(string)
		if tok == "" {
			t.Fatalf("no token: %v", m)
		}
		return tok
	}
	status := func(env *env, tok string) int {
		return env.do(get("https://gw.example.com/x", "Authorization", "Bearer "+tok, "Accept", "application/json")).StatusCode
	}
	tok := issue()
	other, _ := deviceEnv(t, nil)
	if got := status(other, tok); got != http.StatusUnauthorized {
		t.Errorf("the token at another gateway: %d, want 401", got)
	}
	e.advance(time.Hour + time.Minute)
	if got := status(e, tok); got != http.StatusUnauthorized {
		t.Errorf("after its lifetime: %d, want 401", got)
	}
	e.advance(-time.Hour - time.Minute)

	tok = issue()
	if got := status(e, tok); got != http.StatusOK {
		t.Fatalf("fresh token: %d", got)
	}
	cookie := e.cookieFor(approver)
	resp := e.do(postForm("https://gw.example.com/oauth2/sign_out", url.Values{}, "Cookie", cookie, "Origin", "https://gw.example.com", "Sec-Fetch-Site", "same-origin"))
	if resp.StatusCode >= 400 {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if got := status(e, tok); got != http.StatusUnauthorized {
		t.Errorf("after the approving session signed out: %d, want 401", got)
	}
}

func TestDeviceLifetimeTooShort(t *testing.T) {
	c := DeviceConfig{Enabled: true, Lifetime: time.Second}
	if err := c.validate(time.Hour); err == nil || !strings.Contains(err.Error(), "want at least 1m0s") {
		t.Errorf("lifetime 1s: %v, want it refused with the least allowed", err)
	}
}
