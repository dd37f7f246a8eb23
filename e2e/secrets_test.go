package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// TestNoSecretsInLogs lives one whole session through the real binary at
// log.level debug — sign-in, a request, a token refresh, sign-out through
// the provider — and then looks for every secret that went by in the
// gateway's log (SECURITY.md §4.1 "Logging": never cookie values, codes,
// tokens or secrets).
//
// The provider sits behind a recording proxy that is its issuer URL, so
// the test sees what only the gateway and the provider exchange: the
// authorization code, the PKCE verifier, the client's credentials, and the
// access, ID and refresh tokens of both the code and the refresh grants.
// The browser's side is captured with a client that records every
// redirect and Set-Cookie.
func TestNoSecretsInLogs(t *testing.T) {
	sec := &secrets{}
	idpAddr := freeAddr(t)
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + proxyLn.Addr().String()
	gwAddr := freeAddr(t)
	public := "http://" + gwAddr
	clientSecret := randomSecret()
	cookieSecret := randomSecret()
	sec.add("client secret", clientSecret)
	sec.add("cookie secret", cookieSecret)

	user := demo.User{ID: "u-alice", Username: "alice", Password: "alice-password-1", Email: "alice@example.com",
		EmailVerified: true, Name: "Alice", Groups: []string{"admins"}}
	sec.add("password", user.Password)
	idp, err := demo.Start(idpAddr, demo.Config{
		Issuer: issuer,
		Users:  []demo.User{user},
		Clients: []demo.Client{{ID: "portcullis", Secret: clientSecret,
			RedirectURIs: []string{public + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{public + "/oauth2/signed_out"}}},
		AccessTokenLifetime: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: idpAddr})
	rp.ModifyResponse = sec.recordTokenResponse
	proxy := &httptest.Server{Listener: proxyLn, Config: &http.Server{Handler: sec.recordRequests(rp), ReadHeaderTimeout: 10 * time.Second}}
	proxy.Start()
	t.Cleanup(proxy.Close)

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600)
	cfgFile := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
server:
  listen: %s
  public_url: %s
providers:
  - id: corp
    type: oidc
    issuer_url: %s
    client_id: portcullis
    client_secret_file: %s
    scopes: [openid, email, profile, offline_access]
session:
  refresh_before: 2s
  cookie:
    name: _portcullis
    secrets: [${E2E_COOKIE_SECRET}]
    secure: false
upstreams:
  - path: /
    url: %s
policy:
  email_domains: [example.com]
log:
  level: debug
`, gwAddr, public, issuer, secretFile, newRecorder(t).URL)), 0o600)
	gw := &replica{url: public, config: cfgFile, env: append(os.Environ(), "E2E_COOKIE_SECRET="+cookieSecret)}
	gw.start(t)
	t.Cleanup(func() { gw.stop(t) })

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &recordingTransport{sec: sec, base: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	follow := func(resp *http.Response, until ...string) *http.Response {
		t.Helper()
		stop := func(loc string) bool {
			for _, u := range until {
				if strings.HasPrefix(loc, u) {
					return true
				}
			}
			return false
		}
		for i := 0; i < 10 && resp.StatusCode/100 == 3 && !stop(resp.Header.Get("Location")); i++ {
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			resp = get(next.String())
		}
		return resp
	}

	// Sign in: gateway → provider's /authorize → login page → callback.
	resp := get(public + "/reports?q=1")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), issuer+"/authorize") {
		t.Fatalf("first visit: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = follow(resp, issuer+"/login")
	login, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	cb, err := demo.SignIn(context.Background(), c, login.String(), user.Username, user.Password)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, cb.Body)
	cb.Body.Close()
	if !strings.HasPrefix(cb.Header.Get("Location"), public+"/oauth2/callback?") {
		t.Fatalf("provider sent the browser to %q", cb.Header.Get("Location"))
	}
	resp = get(cb.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/reports?q=1" {
		t.Fatalf("callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(public + "/reports?q=1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in request: %d", resp.StatusCode)
	}

	// A refresh: within refresh_before of the 3-second access token.
	time.Sleep(1500 * time.Millisecond)
	if resp := get(public + "/after-refresh"); resp.StatusCode != http.StatusOK {
		t.Fatalf("request after refresh: %d", resp.StatusCode)
	}
	if n := idp.Stats().TokenRequests["refresh_token"]; n < 1 {
		t.Fatalf("refresh_token grants = %d, want at least 1", n)
	}

	// Sign out through the confirmation page and the provider.
	page, err := c.Get(public + "/oauth2/sign_out")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no sign-out form: %s", b)
	}
	sec.add("sign-out CSRF token", string(m[1]))
	out, err := c.PostForm(public+"/oauth2/sign_out", url.Values{"csrf": {string(m[1])}, "rd": {"/bye"}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if !strings.HasPrefix(out.Header.Get("Location"), issuer) {
		t.Fatalf("sign-out: %d to %q, want the provider's end-session endpoint", out.StatusCode, out.Header.Get("Location"))
	}
	final := follow(out, public+"/bye", "/bye")
	if got := final.Header.Get("Location"); got != public+"/bye" && got != "/bye" {
		t.Errorf("sign-out ended at %d %q, want a redirect to /bye", final.StatusCode, got)
	}
	if n := idp.Stats().EndSessionRequests; n != 1 {
		t.Errorf("end-session requests = %d, want 1", n)
	}
	gw.stop(t) // flush and close the log

	// Everything secret that went by, and nothing of it in the log.
	logs := gw.logs.String()
	names := sec.names()
	for _, want := range []string{"authorization code", "state", "nonce", "PKCE verifier", "PKCE challenge", "access token", "ID token", "refresh token",
		"refreshed access token", "refreshed refresh token", "session cookie", "login cookie", "client secret", "cookie secret", "logout state"} {
		if !names[want] {
			t.Errorf("the test never saw a %s; it cannot check the log for it", want)
		}
	}
	for _, s := range sec.all() {
		for _, needle := range s.needles() {
			if strings.Contains(logs, needle) {
				t.Errorf("the log contains the %s (%q…)", s.name, needle[:min(12, len(needle))])
			}
		}
	}
	if jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`).FindString(logs); jwt != "" {
		t.Errorf("the log contains a JWT: %.24s…", jwt)
	}
	t.Logf("checked %d secrets against %d bytes of debug log", len(sec.all()), len(logs))
}

// secret is one value the log must not contain.
type secret struct{ name, value string }

// needles are the value and, for long values, its first and last 16
// bytes: a truncated secret in a log is still a leak.
func (s secret) needles() []string {
	out := []string{s.value}
	if len(s.value) >= 32 {
		out = append(out, s.value[:16], s.value[len(s.value)-16:])
	}
	return out
}

type secrets struct {
	mu   sync.Mutex
	list []secret
}

func (s *secrets) add(name, value string) {
	if len(value) < 8 { // too short to look for meaningfully
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.list {
		if x.value == value {
			return
		}
	}
	s.list = append(s.list, secret{name, value})
}

func (s *secrets) all() []secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]secret(nil), s.list...)
}

func (s *secrets) names() map[string]bool {
	out := map[string]bool{}
	for _, x := range s.all() {
		out[x.name] = true
	}
	return out
}

// fromURL records the secret query parameters of a redirect target.
func (s *secrets) fromURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	q := u.Query()
	names := map[string]string{"code": "authorization code", "state": "state", "nonce": "nonce",
		"code_challenge": "PKCE challenge", "id_token_hint": "ID token", "authRequestID": "provider auth request id"}
	if strings.HasSuffix(u.Path, "/end_session") || strings.HasSuffix(u.Path, "/signed_out") {
		names["state"] = "logout state"
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if name, ok := names[k]; ok {
			s.add(name, q.Get(k))
		}
	}
}

// recordingTransport is the browser: it notes every redirect target and
// every cookie it is given.
type recordingTransport struct {
	sec  *secrets
	base http.RoundTripper
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.sec.fromURL(r.URL.String())
	resp, err := rt.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		rt.sec.fromURL(loc)
	}
	for _, c := range resp.Cookies() {
		switch {
		case strings.Contains(c.Name, "_login_"):
			rt.sec.add("login cookie", c.Value)
		case strings.HasPrefix(c.Name, "_portcullis"):
			rt.sec.add("session cookie", c.Value)
		default:
			rt.sec.add("provider cookie", c.Value)
		}
	}
	return resp, nil
}

// grantKey carries the token request's grant_type to the response hook.
type grantKey struct{}

// recordRequests notes what the gateway sends the provider's token
// endpoint: the code, the PKCE verifier, the refresh token and the client's
// credentials.
func (s *secrets) recordRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			form, _ := url.ParseQuery(string(b))
			s.add("authorization code", form.Get("code"))
			s.add("PKCE verifier", form.Get("code_verifier"))
			s.add("refresh token", form.Get("refresh_token"))
			s.add("client secret", form.Get("client_secret"))
			if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Basic ") {
				s.add("client credentials header", strings.TrimPrefix(auth, "Basic "))
			}
			r = r.WithContext(context.WithValue(r.Context(), grantKey{}, form.Get("grant_type")))
		}
		if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
			s.add("access token", strings.TrimPrefix(auth, "Bearer "))
		}
		next.ServeHTTP(w, r)
	})
}

// recordTokenResponse notes the tokens the provider hands the gateway.
func (s *secrets) recordTokenResponse(resp *http.Response) error {
	grant, _ := resp.Request.Context().Value(grantKey{}).(string)
	if grant == "" {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(b, &tok)
	prefix := ""
	if grant == "refresh_token" {
		prefix = "refreshed "
	}
	s.add(prefix+"access token", tok.AccessToken)
	s.add(prefix+"refresh token", tok.RefreshToken)
	s.add("ID token", tok.IDToken)
	return nil
}
