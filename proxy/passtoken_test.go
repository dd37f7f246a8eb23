package proxy

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// fakeIDToken is a compact JWS whose payload carries exp; the signature is
// never checked again after sign-in, so a fake one will do here.
func fakeIDToken(exp string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"iss":"https://idp.test","sub":"alice"`+exp+`}`)) + "." + enc([]byte("sig"))
}

// tokenCookie is a session cookie carrying the given tokens.
func (e *env) tokenCookie(access, id string) string {
	e.t.Helper()
	v, err := e.store.Seal(&session.Session{
		Identity:    session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true},
		Provider:    "corp",
		AccessToken: access, IDToken: id,
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

func TestPassAuthorizationHeader(t *testing.T) {
	future := `,"exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	live := fakeIDToken(future)
	for _, tt := range []struct {
		name      string
		idToken   string
		want      string // Authorization the upstream sees
		wantDebug string
	}{
		{"live ID token", live, "Bearer " + live, ""},
		{"fractional exp", fakeIDToken(future + ".5"), "Bearer " + fakeIDToken(future+".5"), ""},
		{"no ID token (GitHub, or a provider that sent none)", "", "", "the session has no ID token"},
		{"expired ID token", fakeIDToken(`,"exp":` + strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)), "", "the ID token has expired"},
		{"no exp", fakeIDToken(""), "", "no readable exp"},
		{"not a JWS", "opaque-token", "", "no readable exp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Upstreams[0].PassAuthorizationHeader = true })
			resp := e.do(get("https://gw.example.com/x", "Cookie", e.tokenCookie("access-token-secret", tt.idToken), "Authorization", "Bearer from-the-client"))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			up := e.last()
			if got := strings.Join(up.Header.Values("Authorization"), "|"); got != tt.want {
				t.Errorf("upstream Authorization = %q, want %q", got, tt.want)
			}
			if tt.wantDebug != "" && !strings.Contains(e.logs.String(), tt.wantDebug) {
				t.Errorf("no debug line saying %q in\n%s", tt.wantDebug, e.logs.String())
			}
		})
	}
}

func TestPassAccessTokenBearer(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Upstreams[0].PassAccessTokenBearer = true })
	e.do(get("https://gw.example.com/x", "Cookie", e.tokenCookie("access-token-secret", fakeIDToken(`,"exp":9999999999`)), "Authorization", "Bearer from-the-client"))
	if got := strings.Join(e.last().Header.Values("Authorization"), "|"); got != "Bearer access-token-secret" {
		t.Errorf("upstream Authorization = %q, want the access token", got)
	}
	e.do(get("https://gw.example.com/x", "Cookie", e.tokenCookie("", ""), "Authorization", "Bearer from-the-client"))
	if got := e.last().Header.Values("Authorization"); len(got) != 0 {
		t.Errorf("without an access token the upstream got Authorization %q, want none (not the client's)", got)
	}
}

func TestBothAuthorizationKeysRefused(t *testing.T) {
	err := tryNew(t, func(c *Config) {
		c.Upstreams[0].PassAuthorizationHeader = true
		c.Upstreams[0].PassAccessTokenBearer = true
	})
	if err == nil || !strings.Contains(err.Error(), "pass_authorization_header") || !strings.Contains(err.Error(), "pass_access_token_bearer") {
		t.Fatalf("both keys: err = %v, want a refusal naming both", err)
	}
}

// The ID token is kept for pass_authorization_header even for a provider
// without an end_session_endpoint and with keep_id_token off; the access
// token is no longer kept for it.
func TestIDTokenKeptForUpstream(t *testing.T) {
	for _, tt := range []struct {
		name             string
		pass             bool
		wantID, wantAcc  bool
		keepIDTokenLogin bool
	}{
		{"pass_authorization_header", true, true, false, false},
		{"pass_authorization_header, keep_id_token on", true, true, false, true},
		{"neither", false, false, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvOpts(t, func(c *Config) { c.Upstreams[0].PassAuthorizationHeader = tt.pass }, func(o *Options) { o.KeepIDToken = tt.keepIDTokenLogin })
			_, jar := e.signIn("/", "code-1", "alice", "alice@example.com")
			r := get("/", "Cookie", jar)
			s, err := e.store.Load(r)
			if err != nil {
				t.Fatal(err)
			}
			if (s.IDToken != "") != tt.wantID || (s.AccessToken != "") != tt.wantAcc {
				t.Errorf("session keeps id=%v access=%v, want id=%v access=%v", s.IDToken != "", s.AccessToken != "", tt.wantID, tt.wantAcc)
			}
		})
	}
}

func TestJWTExpiry(t *testing.T) {
	for _, tt := range []struct {
		exp  string
		want int64 // unix seconds, 0 for none
	}{
		{`,"exp":1700000000`, 1700000000},
		{`,"exp":1700000000.75`, 1700000000},
		{`,"exp":"1700000000"`, 0},
		{`,"exp":-5`, 0},
		{`,"exp":1e300`, 0},
		{``, 0},
	} {
		got, ok := jwtExpiry(fakeIDToken(tt.exp))
		if tt.want == 0 {
			if ok {
				t.Errorf("exp %s: read %v, want none", tt.exp, got)
			}
			continue
		}
		if !ok || got.Unix() != tt.want {
			t.Errorf("exp %s = %v (%v), want %d", tt.exp, got.Unix(), ok, tt.want)
		}
	}
}

func TestPassUserHeadersAndSetXAuthRequest(t *testing.T) {
	no := false
	forwarded := []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username"}
	xauth := []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username"}
	for _, tt := range []struct {
		name                string
		passUser            *bool
		setXAuth, passToken bool
		want, absent        []string
	}{
		{"defaults", nil, false, false, forwarded, append(xauth, "X-Auth-Request-Access-Token")},
		{"pass_user_headers false", &no, false, false, nil, append(forwarded, xauth...)},
		{"set_xauthrequest", nil, true, false, append(forwarded, xauth...), []string{"X-Auth-Request-Access-Token"}},
		{"set_xauthrequest with pass_access_token", nil, true, true, append(forwarded, append(xauth, "X-Auth-Request-Access-Token")...), nil},
		{"set_xauthrequest alone", &no, true, false, xauth, forwarded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Headers.PassUserHeaders, c.Headers.SetXAuthRequest = tt.passUser, tt.setXAuth
				c.Upstreams[0].PassAccessToken = tt.passToken
			})
			// The client's own copies never survive, whichever are set.
			v, err := e.store.Seal(&session.Session{
				Identity: session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true,
					PreferredUsername: "alice", Groups: []string{"admins"}},
				Provider: "corp", AccessToken: "access-token-secret",
				CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := get("https://gw.example.com/x", "Cookie", e.store.Name()+"="+v)
			for _, k := range append(append([]string{}, forwarded...), xauth...) {
				r.Header.Set(k, "forged")
			}
			r.Header.Set("X-Auth-Request-Access-Token", "forged")
			if resp := e.do(r); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			up := e.last().Header
			for _, k := range tt.want {
				if v := up.Values(k); len(v) != 1 || v[0] == "forged" || v[0] == "" {
					t.Errorf("upstream %s = %q, want the gateway's one value", k, v)
				}
			}
			for _, k := range tt.absent {
				if v := up.Values(k); len(v) != 0 {
					t.Errorf("upstream %s = %q, want none", k, v)
				}
			}
			if up.Get(DefaultAssertionHeader) == "" {
				t.Errorf("no signed assertion: pass_user_headers must not turn it off")
			}
			if tt.setXAuth && up.Get("X-Auth-Request-User") != up.Get("X-Forwarded-User") && tt.passUser == nil {
				t.Errorf("X-Auth-Request-User %q differs from X-Forwarded-User %q", up.Get("X-Auth-Request-User"), up.Get("X-Forwarded-User"))
			}
		})
	}
}

// With keep_id_token off, the ID token kept for pass_authorization_header
// is never sent as the sign-out hint: keep_id_token false still means
// client_id alone at the provider.
func TestKeepIDTokenFalseSendsNoHint(t *testing.T) {
	for _, tt := range []struct {
		name     string
		keep     bool
		wantHint bool
	}{
		{"keep_id_token true", true, true},
		{"keep_id_token false", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvOpts(t, func(c *Config) { c.Upstreams[0].PassAuthorizationHeader = true }, func(o *Options) { o.KeepIDToken = tt.keep })
			e.idp.endSession = "https://idp.test/logout"
			_, jar := e.signIn("/", "code-1", "alice", "alice@example.com")
			if resp := postSignOut(e, jar); resp.StatusCode != http.StatusFound {
				t.Fatalf("sign-out = %d, want a redirect to the provider", resp.StatusCode)
			}
			e.idp.mu.Lock()
			defer e.idp.mu.Unlock()
			if len(e.idp.hints) != 1 || (e.idp.hints[0] != "") != tt.wantHint {
				t.Errorf("hints = %q, want a hint: %v", e.idp.hints, tt.wantHint)
			}
		})
	}
}
