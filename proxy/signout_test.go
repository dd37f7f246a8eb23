package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// logoutProvider is a fakeProvider that also takes part in front-channel
// logout and revokes tokens at sign-out.
type logoutProvider struct {
	*fakeProvider
	frontchannel bool

	mu        sync.Mutex
	revoked   []string // tokens revoked
	revokeErr error
	block     chan struct{} // when set, RevokeTokens waits until it is closed
}

func (p *logoutProvider) FrontchannelLogout() bool { return p.frontchannel }

func (p *logoutProvider) RevokeTokens(ctx context.Context, s *session.Session) error {
	p.mu.Lock()
	block, err := p.block, p.revokeErr
	p.mu.Unlock()
	if block != nil {
		select { // sign-out must not wait for this
		case <-block:
		case <-ctx.Done():
		}
		return providers.ErrUnavailable
	}
	if err == nil && s.RefreshToken == "" {
		return providers.ErrNoRevocation
	}
	p.mu.Lock()
	p.revoked = append(p.revoked, s.RefreshToken)
	p.mu.Unlock()
	return err
}

func (p *logoutProvider) revokedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.revoked...)
}

// newLogoutEnv is an env whose provider is a logoutProvider, with metrics.
func newLogoutEnv(t *testing.T) (*env, *logoutProvider, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	var lp *logoutProvider
	e := newEnvOpts(t, nil, func(o *Options) {
		o.Metrics = NewMetrics(reg)
	})
	lp = &logoutProvider{fakeProvider: e.idp, frontchannel: true}
	e.h.providers = mustSet(t, lp)
	return e, lp, reg
}

// sidCookie seals a session of the provider session sid.
func (e *env) sidCookie(sub, sid string) string {
	e.t.Helper()
	v, err := e.store.Seal(&session.Session{
		Identity: session.Identity{Issuer: e.idp.issuer, Subject: sub, Email: sub + "@example.com", EmailVerified: true},
		Provider: "corp", SID: sid, CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

func (e *env) signedIn(cookie string) bool {
	e.t.Helper()
	resp := e.do(get("https://gw.example.com/app", "Cookie", cookie))
	return resp.StatusCode == http.StatusOK
}

// TestFrontchannelLogout: only iss and sid of a configured provider end
// sessions (Front-Channel Logout 1.0 §2, §3), those of that sid alone; the
// answer may be framed by the provider's origin only and is not cached.
func TestFrontchannelLogout(t *testing.T) {
	const base = "https://gw.example.com/oauth2/frontchannel_logout"
	iss := url.QueryEscape("https://idp.test")
	for _, tt := range []struct {
		name     string
		query    string
		off      bool // frontchannel_logout: false
		want     int
		ended    bool // the sid-1 session ends
		otherEnd bool
	}{
		{"iss and sid", "?iss=" + iss + "&sid=sid-1", false, http.StatusOK, true, false},
		{"unknown sid", "?iss=" + iss + "&sid=sid-9", false, http.StatusOK, false, false},
		{"no parameters", "", false, http.StatusBadRequest, false, false},
		{"sid only", "?sid=sid-1", false, http.StatusBadRequest, false, false},
		{"iss only", "?iss=" + iss, false, http.StatusBadRequest, false, false},
		{"empty sid", "?iss=" + iss + "&sid=", false, http.StatusBadRequest, false, false},
		{"two sids", "?iss=" + iss + "&sid=sid-1&sid=sid-2", false, http.StatusBadRequest, false, false},
		{"other issuer", "?iss=" + url.QueryEscape("https://evil.test") + "&sid=sid-1", false, http.StatusBadRequest, false, false},
		{"issuer with slash", "?iss=" + url.QueryEscape("https://idp.test/") + "&sid=sid-1", false, http.StatusBadRequest, false, false},
		{"control in sid", "?iss=" + iss + "&sid=sid-1%0a", false, http.StatusBadRequest, false, false},
		{"switched off", "?iss=" + iss + "&sid=sid-1", true, http.StatusBadRequest, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, lp, reg := newLogoutEnv(t)
			lp.frontchannel = !tt.off
			mine, other := e.sidCookie("alice", "sid-1"), e.sidCookie("bob", "sid-2")
			// The browser's own session cookie goes along: it must not matter.
			resp := e.do(get(base+tt.query, "Cookie", other))
			b := body(resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			if got := e.signedIn(mine); got == tt.ended {
				t.Errorf("sid-1 session signed in = %v after the request, want ended = %v", got, tt.ended)
			}
			if !e.signedIn(other) {
				t.Error("the session of another sid (the browser's own cookie) ended")
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store (§3)", resp.Header.Get("Cache-Control"))
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if tt.want == http.StatusOK {
				if !strings.Contains(csp, "frame-ancestors https://idp.test;") || strings.Contains(csp, "frame-ancestors 'none'") {
					t.Errorf("CSP = %q, want frame-ancestors the provider's origin only", csp)
				}
				if xfo := resp.Header.Get("X-Frame-Options"); xfo != "" {
					t.Errorf("X-Frame-Options = %q: the provider could not frame the page", xfo)
				}
				if got := counterValue(t, reg, "portcullis_sessions_ended_total", "how", "frontchannel_logout"); got != 1 {
					t.Errorf("frontchannel_logout counted %v times, want 1", got)
				}
				return
			}
			if !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("refused request: CSP %q, X-Frame-Options %q, want no framing", csp, resp.Header.Get("X-Frame-Options"))
			}
			if strings.Contains(b, "evil") || strings.Contains(b, "sid-1") {
				t.Errorf("the refusal page echoes the request: %s", b)
			}
		})
	}
}

func TestFrontchannelLogoutMethod(t *testing.T) {
	e, _, _ := newLogoutEnv(t)
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/frontchannel_logout?iss=https%3A%2F%2Fidp.test&sid=s", nil)
	if resp := e.do(r); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", resp.StatusCode)
	}
}

// postSignOut confirms sign-out from the gateway's own page.
func postSignOut(e *env, cookie string) *http.Response {
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Cookie", cookie)
	return e.do(r)
}

// TestSignOutWithoutEndSession: a provider without an end-session endpoint
// gets no redirect; the pages say the sign-out is local and name it.
func TestSignOutWithoutEndSession(t *testing.T) {
	e := newEnv(t, nil)
	_, jar := e.signIn("/", "c", "alice", "alice@example.com")
	confirm := e.do(get("https://gw.example.com/oauth2/sign_out", "Cookie", jar))
	if b := body(confirm); !strings.Contains(b, "This signs you out of this gateway only. You may still be signed in at Provider corp.") {
		t.Errorf("confirmation page does not say the sign-out is local:\n%s", b)
	}
	resp := postSignOut(e, jar)
	b := body(resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("sign-out = %d to %q, want the signed-out page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(b, "You are signed out of this gateway. You may still be signed in at Provider corp.") {
		t.Errorf("signed-out page does not say the provider session may remain:\n%s", b)
	}
	if !expired(resp, e.store.Name()) {
		t.Error("the session cookie was not cleared")
	}

	// With an end-session endpoint the browser goes on, and coming back
	// the page says nothing about a remaining provider session.
	e2 := newEnv(t, nil)
	e2.idp.endSession = "https://idp.test/end_session"
	_, jar = e2.signIn("/", "c", "alice", "alice@example.com")
	if b := body(e2.do(get("https://gw.example.com/oauth2/sign_out", "Cookie", jar))); strings.Contains(b, "may still be signed in") {
		t.Errorf("confirmation page with an end-session endpoint says the sign-out is local:\n%s", b)
	}
	if resp := postSignOut(e2, jar); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.test/end_session") {
		t.Fatalf("sign-out = %d to %q, want the end-session endpoint", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b := body(e2.do(get("https://gw.example.com/oauth2/signed_out"))); strings.Contains(b, "may still be signed in") || !strings.Contains(b, "signed out of this gateway") {
		t.Errorf("page after the provider's sign-out:\n%s", b)
	}
}

// TestSignOutRevokesTokens: sign-out revokes the session's refresh token
// at the provider and counts the outcome; a failing or hanging revocation
// never fails the sign-out.
func TestSignOutRevokesTokens(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		block  bool
		result string // label counted, "" for none
	}{
		{"revoked", nil, false, "revoked"},
		{"refused", fmt.Errorf("%w: revocation endpoint: 400 Bad Request", providers.ErrRejected), false, "failed"},
		{"down", fmt.Errorf("%w: revocation endpoint: connection refused", providers.ErrUnavailable), false, "unavailable"},
		{"hangs", nil, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, lp, reg := newLogoutEnv(t)
			lp.revokeErr = tt.err
			if tt.block {
				lp.block = make(chan struct{})
				t.Cleanup(func() { close(lp.block) })
			}
			_, jar := e.signIn("/", "c", "alice", "alice@example.com")
			resp := postSignOut(e, jar)
			if resp.StatusCode != http.StatusOK || !expired(resp, e.store.Name()) {
				t.Fatalf("sign-out = %d (cookie cleared %v), want the signed-out page", resp.StatusCode, expired(resp, e.store.Name()))
			}
			if tt.block {
				return
			}
			if got := lp.revokedTokens(); len(got) != 1 || got[0] != "refresh-token-secret" {
				t.Errorf("revoked %q, want the session's refresh token", got)
			}
			for _, label := range []string{"revoked", "failed", "unavailable"} {
				want := 0.0
				if label == tt.result {
					want = 1
				}
				if got := counterValue(t, reg, "portcullis_token_revocations_total", "provider", "corp", "result", label); got != want {
					t.Errorf("revocations{result=%s} = %v, want %v", label, got, want)
				}
			}
			if tt.err != nil && !strings.Contains(e.logs.String(), "token revocation at the provider failed") {
				t.Error("the failed revocation was not logged")
			}
		})
	}
}

func TestRevocationResult(t *testing.T) {
	for err, want := range map[error]string{
		nil:                       "revoked",
		providers.ErrNoRevocation: "",
		fmt.Errorf("x: %w", providers.ErrUnavailable): "unavailable",
		fmt.Errorf("x: %w", providers.ErrRejected):    "failed",
		errors.New("anything else"):                   "failed",
	} {
		if got := revocationResult(err); got != want {
			t.Errorf("revocationResult(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestReadyNamesCause: /ready says why a provider is unavailable in plain
// words, not only that it is.
func TestReadyNamesCause(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://idp.test/.well-known/openid-configuration",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"connection refused", fmt.Errorf("%w: corp: discovery at https://idp.test: %w", providers.ErrUnavailable, refused),
			"provider corp unavailable: connection refused"},
		{"no PKCE S256", fmt.Errorf("%w: corp: discovery at https://idp.test: %w", providers.ErrUnavailable,
			errors.New("provider does not support PKCE S256 (code_challenge_methods_supported=[plain])")),
			"provider corp unavailable: provider does not support PKCE S256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.idp.readyErr = tt.err
			resp := e.do(get("https://gw.example.com/ready"))
			if b := body(resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, tt.want) {
				t.Errorf("/ready = %d %s, want 503 naming %q", resp.StatusCode, b, tt.want)
			}
			if !strings.Contains(e.logs.String(), tt.want[len("provider corp unavailable: "):]) {
				t.Errorf("the log does not name the cause:\n%s", e.logs.String())
			}
		})
	}
}

// TestSignOutLocalWithRealDiscovery: a real OpenID provider whose
// discovery document names no end_session_endpoint (Dex): sign-out stays
// on the gateway and says so, and the provider is never sent the browser.
func TestSignOutLocalWithRealDiscovery(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q,
			"id_token_signing_alg_values_supported":["RS256"],"code_challenge_methods_supported":["S256"]}`,
			srv.URL, srv.URL+"/auth", srv.URL+"/token", srv.URL+"/keys")
	}))
	t.Cleanup(srv.Close)
	set, err := providers.NewSet([]providers.Config{{ID: "dex", Name: "Dex", IssuerURL: srv.URL, ClientID: "gw", ClientSecret: "s"}},
		providers.Options{RedirectURL: "https://gw.example.com/oauth2/callback"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOpts(t, nil, nil)
	e.h.providers = set
	v, err := e.store.Seal(&session.Session{
		Identity: session.Identity{Issuer: srv.URL, Subject: "alice", Email: "alice@example.com", EmailVerified: true},
		Provider: "dex", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	cookie := e.store.Name() + "=" + v
	if b := body(e.do(get("https://gw.example.com/oauth2/sign_out", "Cookie", cookie))); !strings.Contains(b, "You may still be signed in at Dex.") {
		t.Errorf("confirmation page:\n%s", b)
	}
	resp := postSignOut(e, cookie)
	b := body(resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(b, "You are signed out of this gateway. You may still be signed in at Dex.") {
		t.Errorf("sign-out = %d to %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, srv.URL) {
		t.Errorf("signed-out page CSP names the provider: %q", csp)
	}
}

// TestSignOutEndsOnSignedOutPage: the confirmation submitted as it comes
// (no rd asked for) ends on "You are signed out", through the provider's
// end-session round trip too; it has a Cancel; and a browser without a
// session is told so instead of being offered a button.
func TestSignOutEndsOnSignedOutPage(t *testing.T) {
	e := newEnv(t, nil)
	e.idp.endSession = "https://idp.test/end_session"
	_, jar := e.signIn("/", "c", "alice", "alice@example.com")
	page := body(e.do(get("https://gw.example.com/oauth2/sign_out", "Cookie", jar)))
	if rd := between(page, `name="rd" value="`, `"`); rd != "" {
		t.Errorf("the confirmation carries rd %q when none was asked for", rd)
	}
	if !strings.Contains(page, `<a class="cancel" href="/">Cancel</a>`) {
		t.Errorf("no Cancel on the confirmation:\n%s", page)
	}
	csrf := between(page, `name="csrf" value="`, `"`)
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader(url.Values{"csrf": {csrf}, "rd": {""}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", jar)
	resp := e.do(r)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "idp.test" {
		t.Fatalf("sign-out = %d to %q, want the end-session endpoint", resp.StatusCode, resp.Header.Get("Location"))
	}
	back := e.do(get("https://gw.example.com/oauth2/signed_out?state=" + url.QueryEscape(loc.Query().Get("state"))))
	if b := body(back); back.StatusCode != http.StatusOK || !strings.Contains(b, "<h1>You are signed out</h1>") || !strings.Contains(b, "Sign in again") {
		t.Errorf("back from the provider: %d to %q, want the signed-out page:\n%s", back.StatusCode, back.Header.Get("Location"), b)
	}

	// An rd that was asked for, and is admitted, is still honoured.
	_, jar = e.signIn("/", "c", "alice", "alice@example.com")
	page = body(e.do(get("https://gw.example.com/oauth2/sign_out?rd=/bye", "Cookie", jar)))
	if rd := between(page, `name="rd" value="`, `"`); rd != "/bye" || !strings.Contains(page, `href="/bye">Cancel`) {
		t.Errorf("rd /bye: form rd %q, page:\n%s", rd, page)
	}

	// Not signed in: no button, a sign-in link.
	none := e.do(get("https://gw.example.com/oauth2/sign_out"))
	if b := body(none); none.StatusCode != http.StatusOK || !strings.Contains(b, "You are not signed in") || strings.Contains(b, "<form") || !strings.Contains(b, "/oauth2/start") {
		t.Errorf("sign-out without a session = %d:\n%s", none.StatusCode, b)
	}
}
