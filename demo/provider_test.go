package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestDiscovery(t *testing.T) {
	for _, tt := range []struct {
		name string
		path string // issuer path
	}{
		{"bare host", ""},
		{"issuer with path", "/realms/demo"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(nil)
			issuer := "http://" + srv.Listener.Addr().String() + tt.path
			p, err := New(Config{Issuer: issuer + "/", SigningKey: sharedKey(t), Users: testUsers()})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			srv.Config.Handler = p
			srv.Start()
			defer srv.Close()

			if got := p.Issuer(); got != issuer {
				t.Errorf("Issuer() = %q, want %q (trailing slash dropped)", got, issuer)
			}
			if _, err := oidc.NewProvider(context.Background(), issuer); err != nil {
				t.Fatalf("go-oidc discovery: %v", err)
			}
			var doc struct {
				Issuer          string   `json:"issuer"`
				Authorization   string   `json:"authorization_endpoint"`
				Token           string   `json:"token_endpoint"`
				Userinfo        string   `json:"userinfo_endpoint"`
				JWKS            string   `json:"jwks_uri"`
				EndSession      string   `json:"end_session_endpoint"`
				Revocation      string   `json:"revocation_endpoint"`
				PKCEMethods     []string `json:"code_challenge_methods_supported"`
				AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
				GrantTypes      []string `json:"grant_types_supported"`
				Claims          []string `json:"claims_supported"`
				Scopes          []string `json:"scopes_supported"`
				SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
				IssParamSupport bool     `json:"authorization_response_iss_parameter_supported"`
			}
			getJSON(t, issuer+"/.well-known/openid-configuration", &doc)
			for _, c := range []struct{ field, got, want string }{
				{"issuer", doc.Issuer, issuer},
				{"authorization_endpoint", doc.Authorization, issuer + "/authorize"},
				{"token_endpoint", doc.Token, issuer + "/oauth/token"},
				{"userinfo_endpoint", doc.Userinfo, issuer + "/userinfo"},
				{"jwks_uri", doc.JWKS, issuer + "/keys"},
				{"end_session_endpoint", doc.EndSession, issuer + "/end_session"},
				{"revocation_endpoint", doc.Revocation, issuer + "/revoke"},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
				}
			}
			for _, c := range []struct {
				field string
				got   []string
				want  string
			}{
				{"code_challenge_methods_supported", doc.PKCEMethods, "S256"},
				{"token_endpoint_auth_methods_supported", doc.AuthMethods, "client_secret_basic"},
				{"token_endpoint_auth_methods_supported", doc.AuthMethods, "client_secret_post"},
				{"grant_types_supported", doc.GrantTypes, "refresh_token"},
				{"grant_types_supported", doc.GrantTypes, "client_credentials"},
				{"claims_supported", doc.Claims, "groups"},
				{"scopes_supported", doc.Scopes, "offline_access"},
				{"id_token_signing_alg_values_supported", doc.SigningAlgs, "RS256"},
			} {
				if !slices.Contains(c.got, c.want) {
					t.Errorf("%s = %q, want it to contain %q", c.field, c.got, c.want)
				}
			}
			if doc.IssParamSupport {
				t.Errorf("authorization_response_iss_parameter_supported = true; the report says zitadel does not send iss")
			}

			var jwks struct {
				Keys []struct{ Kid, Alg, Use, Kty string } `json:"keys"`
			}
			getJSON(t, doc.JWKS, &jwks)
			_, kid := p.SigningKey()
			if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != kid || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Kty != "RSA" {
				t.Errorf("jwks = %+v, want one RSA RS256 key with kid %q", jwks.Keys, kid)
			}
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", u, err)
	}
}

func TestCodeFlowClaims(t *testing.T) {
	p := startRP(t, nil)
	aliceClaims := map[string]any{
		"sub":                "u-alice",
		"email":              "alice@example.com",
		"email_verified":     true,
		"name":               "Alice Liddell",
		"given_name":         "Alice",
		"family_name":        "Liddell",
		"preferred_username": "alice",
		"groups":             []any{"admins", "developers"},
		"hd":                 "example.com",
		"realm_access":       map[string]any{"roles": []any{"admin"}},
		"department":         "R&D <script>",
	}
	for _, tt := range []struct {
		name   string
		user   string
		pass   string
		scopes []string
		want   map[string]any
		absent []string
	}{
		{
			name: "alice with email and profile", user: "alice", pass: alicePass,
			scopes: []string{"openid", "email", "profile"},
			want:   aliceClaims,
		},
		{
			name: "alice with openid only", user: "alice", pass: alicePass,
			scopes: []string{"openid"},
			want: map[string]any{
				"sub": "u-alice", "groups": []any{"admins", "developers"}, "hd": "example.com",
			},
			absent: []string{"email", "email_verified", "name", "preferred_username"},
		},
		{
			name: "bob without groups or verified email", user: "bob", pass: bobPass,
			scopes: []string{"openid", "email", "profile"},
			want:   map[string]any{"sub": "u-bob", "email": "bob@example.com", "preferred_username": "bob"},
			absent: []string{"groups", "email_verified", "hd"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := *p
			p.oauth.Scopes = tt.scopes
			tok, idt, _ := p.signIn(t, tt.user, tt.pass)

			info, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var fromUserinfo map[string]any
			if err := info.Claims(&fromUserinfo); err != nil {
				t.Fatal(err)
			}
			for source, got := range map[string]map[string]any{"ID token": claimsOf(t, idt), "userinfo": fromUserinfo} {
				for k, want := range tt.want {
					if !reflect.DeepEqual(got[k], want) {
						t.Errorf("%s claim %q = %#v, want %#v", source, k, got[k], want)
					}
				}
				for _, k := range tt.absent {
					if v, ok := got[k]; ok {
						t.Errorf("%s claim %q = %#v, want it absent", source, k, v)
					}
				}
			}
			if tok.RefreshToken != "" {
				t.Errorf("got a refresh token without offline_access")
			}
		})
	}

	t.Run("token formats", func(t *testing.T) {
		tok, idt, _ := p.signIn(t, "alice", alicePass)
		raw, _ := tok.Extra("id_token").(string)
		t.Logf("sizes: access_token %d, refresh_token %d, id_token %d bytes; expires_in %v",
			len(tok.AccessToken), len(tok.RefreshToken), len(raw), time.Until(tok.Expiry).Round(time.Second))
		if got := strings.Count(raw, "."); got != 2 {
			t.Errorf("id_token has %d dots, want a compact JWS", got)
		}
		if tok.RefreshToken == "" {
			t.Errorf("no refresh token despite offline_access")
		}
		if got, want := tok.TokenType, "Bearer"; got != want {
			t.Errorf("token_type = %q, want %q", got, want)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
	})
}

func TestWrongPasswordRejected(t *testing.T) {
	p := startRP(t, nil)
	for _, tt := range []struct{ name, user, pass string }{
		{"wrong password", "alice", "not-" + alicePass},
		{"unknown user", "zelda", alicePass},
		{"empty password", "alice", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := browser(t)
			a := p.authorize(t, c)
			_, err := p.code(t, c, a, tt.user, tt.pass)
			if err != ErrSignInRejected {
				t.Errorf("sign-in error = %v, want ErrSignInRejected", err)
			}
		})
	}
	if got, want := p.idp.Stats().LoginFailures, 3; got != want {
		t.Errorf("LoginFailures = %d, want %d", got, want)
	}
	if got := p.idp.Stats().LoginSuccesses; got != 0 {
		t.Errorf("LoginSuccesses = %d, want 0", got)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	p := startRP(t, nil)
	c := browser(t)
	a := p.authorize(t, c)
	code, err := p.code(t, c, a, "alice", alicePass)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "invalid_grant"} {
		_, err := p.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
		if got := oauthErrorCode(err); got != want || (want == "" && err != nil) {
			t.Errorf("redemption %d: error %v (code %q), want %q", i+1, err, got, want)
		}
	}
	if got, want := p.idp.Stats().TokenRequests["authorization_code"], 2; got != want {
		t.Errorf("TokenRequests[authorization_code] = %d, want %d", got, want)
	}
}

func TestPKCE(t *testing.T) {
	p := startRP(t, nil)
	for _, tt := range []struct {
		name     string
		verifier func(a attempt) []oauth2.AuthCodeOption
		want     string // OAuth2 error code; "" for success
	}{
		{"right verifier", func(a attempt) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(a.verifier)}
		}, ""},
		{"missing verifier", func(attempt) []oauth2.AuthCodeOption { return nil }, "invalid_request"},
		{"wrong verifier", func(attempt) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := browser(t)
			a := p.authorize(t, c)
			code, err := p.code(t, c, a, "alice", alicePass)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.oauth.Exchange(context.Background(), code, tt.verifier(a)...)
			if got := oauthErrorCode(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Errorf("exchange error %v (code %q), want %q", err, got, tt.want)
			}
		})
	}

	t.Run("plain method refused at authorize", func(t *testing.T) {
		c := browser(t)
		a := p.authorize(t, c, oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		loc := mustParse(t, a.loginURL)
		if got, want := loc.Query().Get("error"), "invalid_request"; got != want {
			t.Errorf("authorize redirected to %s; want error=%s at the client", a.loginURL, want)
		}
	})
}

func TestClientAuthentication(t *testing.T) {
	p := startRP(t, nil)
	for _, tt := range []struct {
		name   string
		style  oauth2.AuthStyle
		secret string
		want   string
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader, clientSecret, ""},
		{"client_secret_post", oauth2.AuthStyleInParams, clientSecret, ""},
		{"wrong secret", oauth2.AuthStyleInHeader, "nope", "invalid_client"},
		{"wrong secret in body", oauth2.AuthStyleInParams, "nope", "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := browser(t)
			a := p.authorize(t, c)
			code, err := p.code(t, c, a, "alice", alicePass)
			if err != nil {
				t.Fatal(err)
			}
			conf := p.oauth
			conf.ClientSecret = tt.secret
			conf.Endpoint.AuthStyle = tt.style
			_, err = conf.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
			if got := oauthErrorCode(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Errorf("exchange error %v (code %q), want %q", err, got, tt.want)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	p := startRP(t, nil)
	tok, _, _ := p.signIn(t, "alice", alicePass)
	rt1 := tok.RefreshToken
	if rt1 == "" {
		t.Fatal("no refresh token with offline_access")
	}

	if err := p.idp.SetGroups("u-alice", []string{"auditors"}); err != nil {
		t.Fatalf("SetGroups: %v", err)
	}
	if err := p.idp.SetClaim("u-alice", "department", "Security"); err != nil {
		t.Fatalf("SetClaim: %v", err)
	}
	tok2, err := p.refresh(rt1)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	rt2 := tok2.RefreshToken
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh returned refresh token %q, want a new one", rt2)
	}
	claims := claimsOf(t, p.verify(t, tok2))
	for _, c := range []struct {
		claim string
		got   any
		want  any
	}{
		{"groups", claims["groups"], []any{"auditors"}},
		{"department", claims["department"], "Security"},
		{"email", claims["email"], "alice@example.com"},
		{"nonce", claims["nonce"], nil},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("refreshed ID token %s = %#v, want %#v", c.claim, c.got, c.want)
		}
	}

	for _, tt := range []struct {
		name  string
		setup func()
		token string
		want  string
	}{
		{"old token after rotation", nil, rt1, "invalid_grant"},
		{"garbage token", nil, "not-a-token", "invalid_grant"},
		{"after RevokeRefreshTokens", func() {
			if got, want := p.idp.RevokeRefreshTokens("u-alice"), 1; got != want {
				t.Errorf("RevokeRefreshTokens = %d, want %d", got, want)
			}
		}, rt2, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			_, err := p.refresh(tt.token)
			if got := oauthErrorCode(err); got != tt.want {
				t.Errorf("refresh error %v (code %q), want %q", err, got, tt.want)
			}
		})
	}
	if got, want := p.idp.Stats().TokenRequests["refresh_token"], 4; got != want {
		t.Errorf("TokenRequests[refresh_token] = %d, want %d", got, want)
	}
}

func TestConcurrentRefreshOnlyOneWins(t *testing.T) {
	p := startRP(t, nil)
	tok, _, _ := p.signIn(t, "alice", alicePass)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = p.refresh(tok.RefreshToken) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if got := oauthErrorCode(err); got != "invalid_grant" {
			t.Errorf("losing refresh error %v, want invalid_grant", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d racing refreshes succeeded, want 1", ok, n)
	}
}

func TestEndSession(t *testing.T) {
	p := startRP(t, nil)
	tok, _, _ := p.signIn(t, "alice", alicePass)
	hint, _ := tok.Extra("id_token").(string)
	registered := p.callback.URL + "/signed-out"
	tampered := hint[:len(hint)-4] + "AAAA"
	if tampered == hint {
		tampered = hint[:len(hint)-4] + "BBBB"
	}

	for _, tt := range []struct {
		name         string
		params       url.Values
		wantStatus   int
		wantLocation string // "" means no redirect
	}{
		{"registered redirect with state",
			url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {registered}, "state": {"s1"}},
			http.StatusFound, registered + "?state=s1"},
		{"client_id instead of hint",
			url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {registered}},
			http.StatusFound, registered},
		{"unregistered redirect refused",
			url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"s2"}},
			http.StatusBadRequest, ""},
		{"tampered hint refused",
			url.Values{"id_token_hint": {tampered}, "post_logout_redirect_uri": {registered}},
			http.StatusBadRequest, ""},
		{"no client: signed-out page",
			url.Values{"post_logout_redirect_uri": {registered}},
			http.StatusFound, p.issuer + "/signed-out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := browser(t).Get(p.issuer + "/end_session?" + tt.params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}

	t.Run("signed-out page", func(t *testing.T) {
		resp, err := http.Get(p.issuer + "/signed-out")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "You have been signed out") {
			t.Errorf("signed-out page: %s %q", resp.Status, body)
		}
	})
	t.Run("logout revoked the refresh token", func(t *testing.T) {
		_, err := p.refresh(tok.RefreshToken)
		if got, want := oauthErrorCode(err), "invalid_grant"; got != want {
			t.Errorf("refresh after logout: %v, want %s", err, want)
		}
	})
	if got, want := p.idp.Stats().EndSessionRequests, 5; got != want {
		t.Errorf("EndSessionRequests = %d, want %d", got, want)
	}
}

func TestPromptNoneAnswersLoginRequired(t *testing.T) {
	p := startRP(t, nil)
	c := browser(t)
	a := p.authorize(t, c, oauth2.SetAuthURLParam("prompt", "none"))
	resp, err := c.Get(a.loginURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("login page answered %s, want a redirect to the client", resp.Status)
	}
	if got, want := loc.Query().Get("error"), "login_required"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if got := loc.Query().Get("state"); got != a.state {
		t.Errorf("state = %q, want %q", got, a.state)
	}
}

// clock is a settable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestExpiry(t *testing.T) {
	for _, tt := range []struct {
		name      string
		afterAuth time.Duration // before the login form is loaded
		afterCode time.Duration // before the code is redeemed
		wantLogin bool          // the login form still works
		wantCode  string        // exchange error code, "" for success
	}{
		{"fresh", 0, 0, true, ""},
		{"code redeemed within a minute", 9 * time.Minute, 59 * time.Second, true, ""},
		{"code older than a minute", 0, 61 * time.Second, true, "invalid_grant"},
		{"auth request older than ten minutes", 10*time.Minute + time.Second, 0, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: time.Now()}
			p := startRP(t, func(c *Config) { c.Now = clk.Now })
			c := browser(t)
			a := p.authorize(t, c)
			clk.advance(tt.afterAuth)
			code, err := p.code(t, c, a, "alice", alicePass)
			if gotLogin := err == nil; gotLogin != tt.wantLogin {
				t.Fatalf("sign-in error %v, want success %v", err, tt.wantLogin)
			}
			if !tt.wantLogin {
				return
			}
			clk.advance(tt.afterCode)
			_, err = p.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
			if got := oauthErrorCode(err); got != tt.wantCode || (tt.wantCode == "" && err != nil) {
				t.Errorf("exchange error %v (code %q), want %q", err, got, tt.wantCode)
			}
		})
	}
}

func TestConcurrentSignIns(t *testing.T) {
	p := startRP(t, nil)
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run("user"+string(rune('a'+i)), func(t *testing.T) {
				t.Parallel()
				tok, _, _ := p.signIn(t, "alice", alicePass)
				if i%2 == 0 {
					_ = p.idp.SetGroups("u-alice", []string{"g" + string(rune('a'+i))})
				}
				if _, err := p.refresh(tok.RefreshToken); err != nil {
					t.Errorf("refresh: %v", err)
				}
				_ = p.idp.Stats()
			})
		}
	})
	if got, want := p.idp.Stats().LoginSuccesses, 8; got != want {
		t.Errorf("LoginSuccesses = %d, want %d", got, want)
	}
}

// TestIssuerWithPath runs the flow against an issuer like Keycloak's
// ".../realms/demo": every endpoint and page lives under the path.
func TestIssuerWithPath(t *testing.T) {
	p := newRP(t, "/realms/demo", nil)
	if !strings.HasSuffix(p.issuer, "/realms/demo") {
		t.Fatalf("issuer = %q", p.issuer)
	}
	tok, idt, a := p.signIn(t, "alice", alicePass)
	if got, want := idt.Issuer, p.issuer; got != want {
		t.Errorf("iss = %q, want %q", got, want)
	}
	if got, want := mustParse(t, a.loginURL).Path, "/realms/demo/login"; got != want {
		t.Errorf("login page path = %q, want %q", got, want)
	}
	if _, err := p.refresh(tok.RefreshToken); err != nil {
		t.Errorf("refresh: %v", err)
	}
	resp, err := browser(t).Get(p.issuer + "/end_session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Location"), p.issuer+"/signed-out"; got != want {
		t.Errorf("end_session Location = %q, want %q", got, want)
	}
}

func TestTokenResponsesAreNotCached(t *testing.T) {
	p := startRP(t, nil)
	req, err := http.NewRequest(http.MethodPost, p.oauth.Endpoint.TokenURL,
		strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range []struct{ what, got, want string }{
		{"status", resp.Status, "400 Bad Request"},
		{"body", strings.TrimSpace(string(body)), `{"error":"invalid_grant"}`},
		{"Cache-Control", resp.Header.Get("Cache-Control"), "no-store"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
}
