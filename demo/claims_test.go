package demo

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// jwtGateway makes the fixture client a gateway with JWT access tokens for
// an API audience.
func jwtGateway(c *Config) {
	c.Clients[0].JWTAccessTokens = true
	c.Clients[0].Audience = []string{apiAudience}
}

func TestJWTAccessTokenClaims(t *testing.T) {
	p := startRP(t, jwtGateway)
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
			scopes: []string{"openid", "email", "profile", "offline_access"},
			want: map[string]any{
				"iss":                p.issuer,
				"sub":                "u-alice",
				"aud":                []any{clientID, apiAudience},
				"client_id":          clientID,
				"scope":              "openid email profile offline_access",
				"email":              "alice@example.com",
				"email_verified":     true,
				"groups":             []any{"admins", "developers"},
				"preferred_username": "alice",
				"name":               "Alice Liddell",
				"hd":                 "example.com",
				"realm_access":       map[string]any{"roles": []any{"admin"}},
			},
			absent: []string{"nonce", "azp", "at_hash", "c_hash", "amr", "auth_time", "acr"},
		},
		{
			name: "alice with openid only: groups, no email", user: "alice", pass: alicePass,
			scopes: []string{"openid"},
			want: map[string]any{
				"sub": "u-alice", "scope": "openid", "groups": []any{"admins", "developers"},
			},
			absent: []string{"nonce", "email", "email_verified", "name"},
		},
		{
			name: "bob without groups or verified email", user: "bob", pass: bobPass,
			scopes: []string{"openid", "email"},
			want:   map[string]any{"sub": "u-bob", "email": "bob@example.com"},
			absent: []string{"nonce", "groups", "email_verified"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := *p
			p.oauth.Scopes = tt.scopes
			tok, idt, _ := p.signIn(t, tt.user, tt.pass)
			claims := p.verifyJWT(t, tok.AccessToken)
			for k, want := range tt.want {
				if !reflect.DeepEqual(claims[k], want) {
					t.Errorf("access token claim %q = %#v, want %#v", k, claims[k], want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := claims[k]; ok {
					t.Errorf("access token claim %q = %#v, want it absent", k, v)
				}
			}
			if jti, _ := claims["jti"].(string); jti == "" {
				t.Errorf("access token has no jti")
			}
			if exp, _ := claims["exp"].(float64); !time.Unix(int64(exp), 0).After(time.Now()) {
				t.Errorf("access token exp %v is not in the future", exp)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("ID token at_hash does not match the JWT: %v", err)
			}
			if got, want := idt.Audience, []string{clientID}; !slices.Equal(got, want) {
				t.Errorf("ID token aud = %q, want %q: the extra audience is for access tokens only", got, want)
			}

			// zitadel's userinfo verifies the JWT and finds the record by jti.
			info, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo with a JWT access token: %v", err)
			}
			if info.Subject != claims["sub"] {
				t.Errorf("userinfo sub = %q, want %q", info.Subject, claims["sub"])
			}
		})
	}

	t.Run("header", func(t *testing.T) {
		tok, _, _ := p.signIn(t, "alice", alicePass)
		jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		h := jws.Signatures[0].Header
		_, kid := p.idp.SigningKey()
		// zitadel types every JWT it signs "JWT", not RFC 9068's "at+jwt".
		if h.KeyID != kid || h.Algorithm != "RS256" || h.ExtraHeaders["typ"] != "JWT" {
			t.Errorf("header kid %q alg %q typ %v, want %q RS256 JWT", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], kid)
		}
	})

	t.Run("revocation stops userinfo", func(t *testing.T) {
		tok, _, _ := p.signIn(t, "alice", alicePass)
		req, err := http.NewRequest(http.MethodPost, p.issuer+"/revoke",
			strings.NewReader(url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %s", resp.Status)
		}
		if _, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Errorf("userinfo accepted a revoked JWT access token")
		}
	})

	t.Run("refresh re-reads groups and keeps the audiences apart", func(t *testing.T) {
		tok, _, _ := p.signIn(t, "alice", alicePass)
		if err := p.idp.SetGroups("u-alice", []string{"auditors"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.idp.SetGroups("u-alice", []string{"admins", "developers"}) })
		tok2, err := p.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		claims := p.verifyJWT(t, tok2.AccessToken)
		if got, want := claims["groups"], []any{"auditors"}; !reflect.DeepEqual(got, want) {
			t.Errorf("refreshed access token groups = %#v, want %#v", got, want)
		}
		if got, want := claims["aud"], []any{clientID, apiAudience}; !reflect.DeepEqual(got, want) {
			t.Errorf("refreshed access token aud = %#v, want %#v", got, want)
		}
		if got, want := p.verify(t, tok2).Audience, []string{clientID}; !slices.Equal(got, want) {
			t.Errorf("refreshed ID token aud = %q, want %q", got, want)
		}
	})
}

func TestOpaqueAccessTokensByDefault(t *testing.T) {
	p := startRP(t, func(c *Config) { c.Clients[0].Audience = []string{apiAudience} })
	tok, idt, _ := p.signIn(t, "alice", alicePass)
	if _, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Errorf("access token parses as a JWS; want an opaque token")
	}
	if got, want := idt.Audience, []string{clientID}; !slices.Equal(got, want) {
		t.Errorf("ID token aud = %q, want %q", got, want)
	}
	var got struct {
		Active bool     `json:"active"`
		Aud    []string `json:"aud"`
	}
	introspect(t, p.issuer, clientID, clientSecret, tok.AccessToken, &got)
	if want := []string{clientID, apiAudience}; !got.Active || !slices.Equal(got.Aud, want) {
		t.Errorf("introspection active %v aud %q, want active with aud %q", got.Active, got.Aud, want)
	}
}

func TestMinimalIDToken(t *testing.T) {
	p := startRP(t, func(c *Config) { c.Clients[0].MinimalIDToken = true })
	userClaims := []string{
		"email", "email_verified", "name", "given_name", "family_name", "preferred_username",
		"groups", "hd", "realm_access", "department",
	}
	tok, idt, a := p.signIn(t, "alice", alicePass)
	tok2, err := p.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	for name, claims := range map[string]map[string]any{
		"ID token":           claimsOf(t, idt),
		"refreshed ID token": claimsOf(t, p.verify(t, tok2)),
	} {
		for _, k := range userClaims {
			if v, ok := claims[k]; ok {
				t.Errorf("%s claim %q = %#v, want it absent", name, k, v)
			}
		}
		if got, want := claims["sub"], "u-alice"; got != want {
			t.Errorf("%s sub = %#v, want %q", name, got, want)
		}
	}
	if got := claimsOf(t, idt)["nonce"]; got != a.nonce {
		t.Errorf("ID token nonce = %#v, want %q", got, a.nonce)
	}

	info, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var fromUserinfo map[string]any
	if err := info.Claims(&fromUserinfo); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"sub": "u-alice", "email": "alice@example.com", "email_verified": true,
		"preferred_username": "alice", "groups": []any{"admins", "developers"}, "hd": "example.com",
	} {
		if !reflect.DeepEqual(fromUserinfo[k], want) {
			t.Errorf("userinfo claim %q = %#v, want %#v", k, fromUserinfo[k], want)
		}
	}
}
