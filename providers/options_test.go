package providers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/portcullis/portcullis/session"
)

// keyPEM is priv as a PEM block of the given type.
func keyPEM(t testing.TB, priv crypto.Signer, typ string) string {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(priv)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(priv.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(priv.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// TestProviderOptionsValidation: every new key refuses what it cannot
// use, naming the provider and the key.
func TestProviderOptionsValidation(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	skip := func(c *Config) {
		c.SkipDiscovery = true
		c.AuthorizationEndpoint = "https://idp.example.com/auth"
		c.TokenEndpoint = "https://idp.example.com/token"
		c.JWKSURI = "https://idp.example.com/keys"
	}
	jwtAuth := func(c *Config) {
		c.ClientSecret = ""
		c.ClientAuth = "private_key_jwt"
		c.ClientPrivateKey = keyPEM(t, rsaKey.priv, "PRIVATE KEY")
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want []string // nil: valid
	}{
		{"skip_discovery", skip, nil},
		{"skip_discovery with every endpoint", func(c *Config) {
			skip(c)
			c.UserinfoEndpoint, c.EndSessionEndpoint, c.RevocationEndpoint = "https://idp.example.com/ui", "https://idp.example.com/logout", "http://127.0.0.1:9/revoke"
		}, nil},
		{"skip_discovery without endpoints", func(c *Config) { c.SkipDiscovery = true }, []string{"corp", "authorization_endpoint is required", "token_endpoint is required", "jwks_uri is required"}},
		{"endpoint without skip_discovery", func(c *Config) { c.TokenEndpoint = "https://idp.example.com/token" }, []string{"corp", "token_endpoint", "skip_discovery"}},
		{"revocation_endpoint without skip_discovery", func(c *Config) { c.RevocationEndpoint = "https://idp.example.com/r" }, []string{"corp", "revocation_endpoint", "skip_discovery"}},
		{"http endpoint", func(c *Config) { skip(c); c.TokenEndpoint = "http://idp.example.com/token" }, []string{"corp", "token_endpoint", "https"}},
		{"endpoint with fragment", func(c *Config) { skip(c); c.JWKSURI = "https://idp.example.com/keys#x" }, []string{"corp", "jwks_uri"}},
		{"skip_discovery on entra", func(c *Config) { skip(c); c.Type = "entra"; c.Tenant = "organizations"; c.IssuerURL = "" }, []string{"corp", "skip_discovery", "entra"}},
		{"skip_discovery keeps issuer_url required", func(c *Config) { skip(c); c.IssuerURL = "" }, []string{"corp", "issuer_url"}},

		{"ca_file without certificate", func(c *Config) { c.CAFile = "/etc/ca.pem"; c.CAPEM = []byte("not pem") }, []string{"corp", "ca_file", "/etc/ca.pem", "no PEM certificate"}},
		{"ca_file of a key", func(c *Config) { c.CAFile = "/etc/ca.pem"; c.CAPEM = []byte(keyPEM(t, ecKey.priv, "EC PRIVATE KEY")) }, []string{"corp", "ca_file", "no PEM certificate"}},
		{"ca_file with a broken certificate", func(c *Config) {
			c.CAFile = "/etc/ca.pem"
			c.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
		}, []string{"corp", "ca_file", "/etc/ca.pem"}},

		{"audiences", func(c *Config) { c.Audiences = []string{"api://corp", "other"} }, nil},
		{"empty audience", func(c *Config) { c.Audiences = []string{""} }, []string{"corp", "audiences"}},
		{"audience with a space", func(c *Config) { c.Audiences = []string{"a b"} }, []string{"corp", "audiences"}},

		{"prompt", func(c *Config) { c.Prompt = "login consent" }, nil},
		{"prompt select_account", func(c *Config) { c.Prompt = "select_account" }, nil},
		{"prompt unknown", func(c *Config) { c.Prompt = "login create" }, []string{"corp", "prompt", `"create"`}},
		{"prompt none with another", func(c *Config) { c.Prompt = "none login" }, []string{"corp", "prompt", "none"}},
		{"acr_values", func(c *Config) { c.ACRValues = "urn:mace:incommon:iap:silver phr" }, nil},
		{"acr_values with a newline", func(c *Config) { c.ACRValues = "a\nb" }, []string{"corp", "acr_values"}},
		{"prompt on github", func(c *Config) { c.Type = "github"; c.IssuerURL = ""; c.Prompt = "login" }, []string{"corp", "prompt", "github"}},

		{"client_secret_post", func(c *Config) { c.ClientAuth = "client_secret_post" }, nil},
		{"client_auth unknown", func(c *Config) { c.ClientAuth = "tls_client_auth" }, []string{"corp", "client_auth", "tls_client_auth"}},
		{"none", func(c *Config) { c.ClientAuth = "none"; c.ClientSecret = "" }, nil},
		{"none with a secret", func(c *Config) { c.ClientAuth = "none" }, []string{"corp", "client_secret", "client_auth none"}},
		{"private_key_jwt", jwtAuth, nil},
		{"private_key_jwt PKCS#1 with kid and PS256", func(c *Config) {
			jwtAuth(c)
			c.ClientPrivateKey, c.ClientKeyID, c.ClientAssertionAlg = keyPEM(t, rsaKey.priv, "RSA PRIVATE KEY"), "k1", "PS256"
		}, nil},
		{"private_key_jwt EC", func(c *Config) { jwtAuth(c); c.ClientPrivateKey = keyPEM(t, ecKey.priv, "EC PRIVATE KEY") }, nil},
		{"private_key_jwt without key", func(c *Config) { jwtAuth(c); c.ClientPrivateKey = "" }, []string{"corp", "client_private_key_file is required"}},
		{"private_key_jwt with a secret", func(c *Config) { jwtAuth(c); c.ClientSecret = "s" }, []string{"corp", "client_secret", "private_key_jwt"}},
		{"private_key_jwt garbage key", func(c *Config) { jwtAuth(c); c.ClientPrivateKey = "secret-ish" }, []string{"corp", "client_private_key_file", "no PEM"}},
		{"private_key_jwt small RSA key", func(c *Config) { jwtAuth(c); c.ClientPrivateKey = keyPEM(t, small, "PRIVATE KEY") }, []string{"corp", "2048"}},
		{"private_key_jwt P-224", func(c *Config) { jwtAuth(c); c.ClientPrivateKey = keyPEM(t, p224, "PRIVATE KEY") }, []string{"corp", "curve"}},
		{"private_key_jwt alg for another key", func(c *Config) { jwtAuth(c); c.ClientAssertionAlg = "ES256" }, []string{"corp", "client_assertion_alg", "ES256"}},
		{"private_key_jwt EC with RS256", func(c *Config) {
			jwtAuth(c)
			c.ClientPrivateKey, c.ClientAssertionAlg = keyPEM(t, ecKey.priv, "PRIVATE KEY"), "RS256"
		}, []string{"corp", "client_assertion_alg"}},
		{"key without private_key_jwt", func(c *Config) { c.ClientPrivateKey = keyPEM(t, rsaKey.priv, "PRIVATE KEY") }, []string{"corp", "client_private_key_file", "private_key_jwt"}},
		{"client_key_id without private_key_jwt", func(c *Config) { c.ClientKeyID = "k" }, []string{"corp", "client_key_id"}},
		{"client_auth on github", func(c *Config) { c.Type = "github"; c.IssuerURL = ""; c.ClientAuth = "client_secret_post" }, []string{"corp", "client_auth", "github"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			checkNew(t, cfg, tt.want)
		})
	}
}

// TestPrivateKeyErrorHidesKey: a key that does not parse is not repeated
// in the error (it is a secret, and errors end up in logs).
func TestPrivateKeyErrorHidesKey(t *testing.T) {
	cfg := validConfig()
	cfg.ClientSecret, cfg.ClientAuth = "", "private_key_jwt"
	good := keyPEM(t, rsaKey.priv, "PRIVATE KEY")
	block, _ := pem.Decode([]byte(good))
	block.Bytes = block.Bytes[:len(block.Bytes)-10] // truncated: fails to parse
	cfg.ClientPrivateKey = string(pem.EncodeToMemory(block))
	_, err := New(cfg, Options{RedirectURL: testRedirectURL})
	if err == nil {
		t.Fatal("a truncated key was accepted")
	}
	body := strings.Split(cfg.ClientPrivateKey, "\n")[1]
	if strings.Contains(err.Error(), body[:20]) {
		t.Errorf("error %q repeats the key", err)
	}
}

// TestClientAuthentication: each client_auth reaches the token endpoint as
// its specification says, at the code exchange and at refresh alike.
func TestClientAuthentication(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(*Config)
		check func(t *testing.T, ti *testIssuer, req tokenRequest)
	}{
		{"client_secret_post overrides discovery", func(c *Config) { c.ClientAuth = "client_secret_post" }, func(t *testing.T, ti *testIssuer, req tokenRequest) {
			if req.Auth != "" || req.Form.Get("client_id") != testClientID || req.Form.Get("client_secret") != testClientSecret {
				t.Errorf("auth %q form %v: want client_secret_post", req.Auth, req.Form)
			}
		}},
		{"client_secret_basic", func(c *Config) { c.ClientAuth = "client_secret_basic" }, func(t *testing.T, ti *testIssuer, req tokenRequest) {
			r := http.Request{Header: http.Header{"Authorization": {req.Auth}}}
			if u, p, ok := r.BasicAuth(); !ok || u != testClientID || p != url.QueryEscape(testClientSecret) {
				t.Errorf("Authorization %q: want client_secret_basic", req.Auth)
			}
			if req.Form.Has("client_id") || req.Form.Has("client_secret") {
				t.Errorf("form %v carries client credentials besides Basic", req.Form)
			}
		}},
		{"none", func(c *Config) { c.ClientAuth, c.ClientSecret = "none", "" }, func(t *testing.T, ti *testIssuer, req tokenRequest) {
			if req.Auth != "" || req.Form.Get("client_id") != testClientID || req.Form.Has("client_secret") || req.Form.Has("client_assertion") {
				t.Errorf("auth %q form %v: want client_id alone", req.Auth, req.Form)
			}
		}},
		{"private_key_jwt", func(c *Config) {
			c.ClientAuth, c.ClientSecret, c.ClientKeyID = "private_key_jwt", "", "gw-1"
			c.ClientPrivateKey = keyPEM(t, rsaKey.priv, "PRIVATE KEY")
		}, func(t *testing.T, ti *testIssuer, req tokenRequest) {
			if req.Auth != "" || req.Form.Has("client_secret") {
				t.Errorf("auth %q form %v: a secret was sent", req.Auth, req.Form)
			}
			checkAssertion(t, req.Form, ti.URL+"/token", ti.URL, rsaKey.priv.Public(), "gw-1", jose.RS256)
		}},
		{"private_key_jwt EC", func(c *Config) {
			c.ClientAuth, c.ClientSecret = "private_key_jwt", ""
			c.ClientPrivateKey = keyPEM(t, ecKey.priv, "EC PRIVATE KEY")
		}, func(t *testing.T, ti *testIssuer, req tokenRequest) {
			checkAssertion(t, req.Form, ti.URL+"/token", ti.URL, ecKey.priv.Public(), "", jose.ES256)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			clk := newClock()
			p := ti.provider(t, clk, func(c *Config) { c.Userinfo = "never"; tt.edit(c) }).(*OIDC)
			s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
				r := tokenResponse(rsaKey.sign(t, ti.claims(a, testNow)))
				r["refresh_token"] = "rt-1"
				return r
			})
			if err != nil {
				t.Fatalf("sign-in: %v", err)
			}
			first := ti.lastTokenRequest(t)
			tt.check(t, ti, first)
			ti.replyJSON(http.StatusOK, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300})
			if _, err := p.Refresh(context.Background(), s); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			second := ti.lastTokenRequest(t)
			if second.Form.Get("grant_type") != "refresh_token" {
				t.Fatalf("second token request is %v", second.Form)
			}
			tt.check(t, ti, second)
			if a := first.Form.Get("client_assertion"); a != "" && a == second.Form.Get("client_assertion") {
				t.Error("the refresh reused the sign-in's assertion")
			}
		})
	}
}

// checkAssertion verifies form's client assertion with pub and checks its
// claims against RFC 7523 §3 and OpenID Connect Core §9.
func checkAssertion(t *testing.T, form url.Values, tokenURL, issuer string, pub crypto.PublicKey, kid string, alg jose.SignatureAlgorithm) {
	t.Helper()
	if got := form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("client_assertion_type = %q", got)
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("client_assertion: %v", err)
	}
	if got := tok.Headers[0].KeyID; got != kid {
		t.Errorf("kid = %q, want %q", got, kid)
	}
	var c jwt.Claims
	if err := tok.Claims(pub, &c); err != nil {
		t.Fatalf("client_assertion does not verify with the public key: %v", err)
	}
	if c.Issuer != testClientID || c.Subject != testClientID {
		t.Errorf("iss, sub = %q, %q; want the client_id", c.Issuer, c.Subject)
	}
	if !c.Audience.Contains(tokenURL) || !c.Audience.Contains(issuer) || len(c.Audience) != 2 {
		t.Errorf("aud = %q, want the token endpoint and the issuer", c.Audience)
	}
	if len(c.ID) < 32 {
		t.Errorf("jti = %q: want a random one", c.ID)
	}
	if c.IssuedAt == nil || c.Expiry == nil || !c.IssuedAt.Time().Equal(testNow) || c.Expiry.Time().Sub(c.IssuedAt.Time()) > time.Minute {
		t.Errorf("iat %v exp %v: want now and at most 60s later", c.IssuedAt, c.Expiry)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: testClientID, Time: testNow}, 0); err != nil {
		t.Error(err)
	}
}

// TestAuthenticateForOtherEndpoints: the helper revocation uses applies
// the same method, the assertion addressed to that endpoint.
func TestAuthenticateForOtherEndpoints(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), func(c *Config) {
		c.ClientAuth, c.ClientSecret = "private_key_jwt", ""
		c.ClientPrivateKey = keyPEM(t, rsaKey.priv, "PRIVATE KEY")
	}).(*OIDC)
	req := httptest.NewRequest(http.MethodPost, ti.URL+"/revoke", nil)
	form := url.Values{"token": {"rt-1"}}
	if err := p.authenticate(form, req, ti.URL+"/revoke"); err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, form, ti.URL+"/revoke", ti.URL, rsaKey.priv.Public(), "", jose.RS256)
	if form.Get("token") != "rt-1" {
		t.Error("authenticate dropped the form's own parameters")
	}
}

// TestSkipDiscovery: with skip_discovery nothing is fetched from
// .well-known; sign-in, userinfo and refresh use the configured endpoints.
func TestSkipDiscovery(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setDiscoveryStatus(http.StatusNotFound) // the provider has none
	ti.setUserinfo(map[string]any{"sub": "user-1", "groups": []string{"from-userinfo"}})
	p := ti.provider(t, newClock(), func(c *Config) {
		c.SkipDiscovery = true
		c.AuthorizationEndpoint = ti.URL + "/authorize"
		c.TokenEndpoint = ti.URL + "/token"
		c.JWKSURI = ti.URL + "/jwks"
		c.UserinfoEndpoint = ti.URL + "/userinfo"
		c.EndSessionEndpoint = ti.URL + "/logout"
		c.RevocationEndpoint = ti.URL + "/revoke"
	}).(*OIDC)
	if err := p.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	a := NewAttempt()
	raw, err := p.AuthCodeURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, ti.URL+"/authorize?") {
		t.Errorf("AuthCodeURL %s does not use authorization_endpoint", raw)
	}
	ti.replyIDToken(rsaKey.sign(t, ti.claims(a, testNow)))
	s, err := p.Redeem(context.Background(), "code-1", a)
	if err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if len(s.Groups) != 1 || s.Groups[0] != "from-userinfo" {
		t.Errorf("groups %v: want userinfo's (userinfo_endpoint without discovery)", s.Groups)
	}
	if n := ti.discoveryHits.Load(); n != 0 {
		t.Errorf("discovery fetched %d times with skip_discovery", n)
	}
	d, _ := p.discovered(context.Background())
	if d.revocation != ti.URL+"/revoke" || d.endSession != ti.URL+"/logout" {
		t.Errorf("revocation %q end_session %q: want the configured ones", d.revocation, d.endSession)
	}
	if end, err := p.EndSessionURL(context.Background(), "", "", ""); err != nil || !strings.HasPrefix(end, ti.URL+"/logout?") {
		t.Errorf("EndSessionURL = %q, %v", end, err)
	}
}

// TestSkipDiscoverySigningAlgs: without metadata, signing_algs is the list
// accepted (RFC 8725 §3.1), RS256 when it is empty; an ES256 token passes
// only when listed.
func TestSkipDiscoverySigningAlgs(t *testing.T) {
	for _, tt := range []struct {
		name string
		algs []string
		ok   bool
	}{
		{"default RS256 refuses ES256", nil, false},
		{"ES256 listed", []string{"ES256"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			p := ti.provider(t, newClock(), func(c *Config) {
				c.SkipDiscovery, c.SigningAlgs, c.Userinfo = true, tt.algs, "never"
				c.AuthorizationEndpoint, c.TokenEndpoint, c.JWKSURI = ti.URL+"/authorize", ti.URL+"/token", ti.URL+"/jwks"
			})
			_, err := signIn(t, ti, p, func(a Attempt) map[string]any { return tokenResponse(ecKey.sign(t, ti.claims(a, testNow))) })
			if tt.ok != (err == nil) {
				t.Errorf("sign-in with an ES256 token: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestAudiences: OpenID Connect Core §3.1.3.7 steps 3–5 with extra
// accepted audiences, at sign-in and at refresh.
func TestAudiences(t *testing.T) {
	for _, tt := range []struct {
		name string
		aud  any
		azp  string
		ok   bool
	}{
		{"client_id", testClientID, "", true},
		{"extra audience alone", "api://corp", "", true},
		{"extra audience, azp the client", []string{"api://corp"}, testClientID, true},
		{"client and extra, azp the client", []string{testClientID, "api://corp"}, testClientID, true},
		{"several audiences without azp", []string{testClientID, "api://corp"}, "", false},
		{"extra audience, azp another client", "api://corp", "other", false},
		{"unknown audience", "api://other", "", false},
		{"unknown audience, azp the client", "api://other", testClientID, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			clk := newClock()
			p := ti.provider(t, clk, func(c *Config) { c.Audiences = []string{"api://corp"}; c.Userinfo = "never" }).(*OIDC)
			edit := func(c map[string]any) {
				c["aud"] = tt.aud
				if tt.azp != "" {
					c["azp"] = tt.azp
				}
			}
			s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
				c := ti.claims(a, testNow)
				edit(c)
				r := tokenResponse(rsaKey.sign(t, c))
				r["refresh_token"] = "rt-1"
				return r
			})
			if tt.ok != (err == nil) {
				t.Fatalf("sign-in: %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidToken) {
					t.Errorf("error %v is not ErrInvalidToken", err)
				}
				// Refresh must refuse it too: sign in with a plain token first.
				s = &session.Session{Identity: session.Identity{Issuer: ti.URL, Subject: "user-1"}, Provider: "corp", RefreshToken: "rt-1"}
			}
			c := ti.claims(Attempt{}, testNow)
			delete(c, "nonce")
			edit(c)
			ti.replyIDToken(rsaKey.sign(t, c))
			if _, err := p.Refresh(context.Background(), s); tt.ok != (err == nil) {
				t.Errorf("refresh: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestAudiencesDoNotWidenWithoutConfig: without audiences, a token for
// another audience is refused as before.
func TestAudiencesDoNotWidenWithoutConfig(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), nil)
	_, err := signIn(t, ti, p, func(a Attempt) map[string]any {
		c := ti.claims(a, testNow)
		c["aud"], c["azp"] = "api://corp", testClientID
		return tokenResponse(rsaKey.sign(t, c))
	})
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("sign-in with aud api://corp and no audiences: %v", err)
	}
}

// TestAuthRequestOptions: prompt and acr_values from the configuration,
// login_hint from the attempt, reach the authorization request.
func TestAuthRequestOptions(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), func(c *Config) { c.Prompt = " login  consent "; c.ACRValues = "silver gold" })
	a := NewAttempt()
	a.LoginHint = "alice@example.com"
	raw, err := p.AuthCodeURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	for key, want := range map[string]string{"prompt": "login consent", "acr_values": "silver gold", "login_hint": "alice@example.com"} {
		if got := q[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", key, got, want)
		}
	}
	a.LoginHint = "bad\nhint"
	raw, _ = p.AuthCodeURL(context.Background(), a)
	if u, _ := url.Parse(raw); u.Query().Has("login_hint") {
		t.Error("an unprintable login_hint was sent")
	}
	plain := ti.provider(t, newClock(), nil)
	raw, _ = plain.AuthCodeURL(context.Background(), NewAttempt())
	if u, _ := url.Parse(raw); u.Query().Has("prompt") || u.Query().Has("acr_values") || u.Query().Has("login_hint") {
		t.Errorf("%s: parameters nobody configured", raw)
	}
}

// TestACRValuesChecked: with acr_values the ID token's acr must be one of
// them (Core §3.1.3.7 step 12; SECURITY.md IDT-11): a provider that
// ignores the request does not sign anyone in at a lesser level.
func TestACRValuesChecked(t *testing.T) {
	for _, tt := range []struct {
		name string
		acr  any // nil: no acr claim
		ok   bool
	}{
		{"asked for", "gold", true},
		{"the other one asked for", "silver", true},
		{"another level", "bronze", false},
		{"none", nil, false},
		{"not a string", 2.0, false},
		{"a prefix", "gol", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			p := ti.provider(t, newClock(), func(c *Config) { c.ACRValues = "silver gold" })
			_, err := signIn(t, ti, p, func(a Attempt) map[string]any {
				c := ti.claims(a, testNow)
				if tt.acr != nil {
					c["acr"] = tt.acr
				}
				return tokenResponse(rsaKey.sign(t, c))
			})
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("sign-in with acr %v: %v, want ok=%v", tt.acr, err, tt.ok)
			}
		})
	}
}

// TestLoginHintBounds: what /oauth2/start may pass on.
func TestLoginHintBounds(t *testing.T) {
	for _, tt := range []struct {
		hint string
		ok   bool
	}{
		{"alice@example.com", true},
		{"jörg@example.com", true},
		{"user name", true},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{"", false},
		{" alice", false},
		{"alice ", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\u200bb", false}, // zero-width space: not printable
		{"\xff", false},
	} {
		if got := LoginHint(tt.hint); got != tt.ok {
			t.Errorf("LoginHint(%q) = %v, want %v", tt.hint, got, tt.ok)
		}
	}
}

// tlsIssuer serves discovery and an empty JWKS over TLS with
// httptest's own certificate.
func tlsIssuer(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/a", "token_endpoint": srv.URL + "/t",
			"jwks_uri": srv.URL + "/k", "response_types_supported": []string{"code"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCAFile: with ca_file the provider trusts its CA, on the plain path
// and through TransportFor (main's instrumented transports); without, the
// same provider is not trusted.
func TestCAFile(t *testing.T) {
	srv := tlsIssuer(t)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := Config{ID: "corp", IssuerURL: srv.URL, ClientID: testClientID, ClientSecret: testClientSecret}

	untrusted, err := New(cfg, Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusted.Ready(context.Background()); err == nil {
		t.Fatal("a provider with an unknown CA was trusted without ca_file")
	}

	cfg.CAFile, cfg.CAPEM = "/etc/idp-ca.pem", caPEM
	p, err := New(cfg, Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with ca_file: %v", err)
	}

	var wrapped int
	instrumented, err := New(cfg, Options{RedirectURL: testRedirectURL, TransportFor: func(id string, own http.RoundTripper) http.RoundTripper {
		if own == nil {
			t.Error("TransportFor got no transport for a provider with ca_file")
			return http.DefaultTransport
		}
		return roundTrip(func(r *http.Request) (*http.Response, error) { wrapped++; return own.RoundTrip(r) })
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := instrumented.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with ca_file through TransportFor: %v", err)
	}
	if wrapped == 0 {
		t.Error("TransportFor's transport was not used")
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBearerFromSkipDiscoveryProvider: bearer.audiences lends a
// skip_discovery provider's issuer with its jwks_uri, so bearer tokens
// verify without a discovery request.
func TestBearerFromSkipDiscoveryProvider(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setDiscoveryStatus(http.StatusNotFound)
	clk := newClock()
	prov := Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret, SkipDiscovery: true,
		AuthorizationEndpoint: ti.URL + "/authorize", TokenEndpoint: ti.URL + "/token", JWKSURI: ti.URL + "/jwks"}
	v, err := NewBearerVerifier(BearerConfig{Audiences: []string{"api"}}, []Config{prov}, Options{Now: clk.Now})
	if err != nil || v == nil {
		t.Fatalf("NewBearerVerifier = %v, %v", v, err)
	}
	if _, err := v.Verify(context.Background(), rsaKey.sign(t, ti.bearerClaims(clk.Now()))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := ti.discoveryHits.Load(); n != 0 {
		t.Errorf("discovery fetched %d times for a skip_discovery provider", n)
	}
}

// TestBearerFromCAFileProvider: bearer.audiences reaches a provider's
// issuer through the provider's ca_file.
func TestBearerFromCAFileProvider(t *testing.T) {
	srv := tlsIssuer(t)
	prov := Config{ID: "corp", IssuerURL: srv.URL, ClientID: testClientID, ClientSecret: testClientSecret,
		CAFile: "/etc/ca.pem", CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	v, err := NewBearerVerifier(BearerConfig{Audiences: []string{"api"}}, []Config{prov}, Options{})
	if err != nil || v == nil {
		t.Fatalf("NewBearerVerifier = %v, %v", v, err)
	}
	// The TLS issuer publishes no keys: a token fails on its signature,
	// not on the TLS handshake (which would be ErrUnavailable).
	tok := rsaKey.sign(t, map[string]any{"iss": srv.URL, "sub": "x", "aud": "api", "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()})
	_, err = v.Verify(context.Background(), tok)
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify = %v, want a refused token from a reachable issuer", err)
	}
}
