package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The machine clients of the client_credentials tests.
const (
	robotID     = "robot"
	robotSecret = "robot-secret"
	apiAudience = "https://api.example"
)

func robotClients() []Client {
	return []Client{
		{
			ID: robotID, Secret: robotSecret,
			ClientCredentials: true, JWTAccessTokens: true,
			Audience:      []string{apiAudience},
			ServiceGroups: []string{"robots", "deployers"},
			ServiceEmail:  "robot@svc.example",
		},
		{
			ID: "robot-opaque", Secret: "opaque-secret",
			ClientCredentials: true,
			ServiceGroups:     []string{"robots"},
		},
	}
}

// machine is a clientcredentials config for the provider behind p.
func (p *rp) machine(id, secret string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: id, ClientSecret: secret,
		TokenURL:  p.oauth.Endpoint.TokenURL,
		AuthStyle: style,
		Scopes:    scopes,
	}
}

// verifyJWT checks raw's signature against the provider's JWKS, its issuer
// and its expiry with go-oidc, and returns its claims. The audience is left
// to the caller.
func (p *rp) verifyJWT(t *testing.T, raw string) map[string]any {
	t.Helper()
	ctx := context.Background()
	v := p.provider.VerifierContext(ctx, &oidc.Config{SkipClientIDCheck: true})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verifying the JWT with the provider's keys: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatalf("decoding claims: %v", err)
	}
	return claims
}

func TestClientCredentials(t *testing.T) {
	p := startRP(t, func(c *Config) { c.Clients = append(c.Clients, robotClients()...) })
	ctx := context.Background()

	for _, tt := range []struct {
		name   string
		style  oauth2.AuthStyle
		scopes []string
		want   map[string]any
	}{
		{"client_secret_basic, no scope", oauth2.AuthStyleInHeader, nil, nil},
		{"client_secret_post, unknown scope dropped", oauth2.AuthStyleInParams,
			[]string{"groups", "admin"}, map[string]any{"scope": "groups"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := p.machine(robotID, robotSecret, tt.style, tt.scopes...).Token(ctx)
			if err != nil {
				t.Fatalf("client_credentials: %v", err)
			}
			if tok.RefreshToken != "" {
				t.Errorf("client_credentials issued a refresh token")
			}
			if tok.Extra("id_token") != nil {
				t.Errorf("client_credentials issued an ID token")
			}
			if got, want := tok.TokenType, "Bearer"; got != want {
				t.Errorf("token_type = %q, want %q", got, want)
			}
			claims := p.verifyJWT(t, tok.AccessToken)
			want := map[string]any{
				"iss":            p.issuer,
				"sub":            robotID,
				"client_id":      robotID,
				"aud":            []any{robotID, apiAudience},
				"groups":         []any{"robots", "deployers"},
				"email":          "robot@svc.example",
				"email_verified": true,
			}
			for k, v := range tt.want {
				want[k] = v
			}
			for k, v := range want {
				if !reflect.DeepEqual(claims[k], v) {
					t.Errorf("claim %q = %#v, want %#v", k, claims[k], v)
				}
			}
			for _, k := range []string{"nonce", "azp", "auth_time", "amr", "at_hash"} {
				if v, ok := claims[k]; ok {
					t.Errorf("claim %q = %#v, want it absent", k, v)
				}
			}
			if _, ok := claims["scope"]; tt.scopes == nil && ok {
				t.Errorf("scope = %v without a scope request", claims["scope"])
			}
			if jti, _ := claims["jti"].(string); jti == "" {
				t.Errorf("jti missing")
			}
			exp, _ := claims["exp"].(float64)
			if left := time.Until(time.Unix(int64(exp), 0)); left <= 4*time.Minute || left > 5*time.Minute+time.Second {
				t.Errorf("exp is %v from now, want the 5m access token lifetime", left)
			}
		})
	}

	t.Run("opaque for a client without JWTAccessTokens", func(t *testing.T) {
		tok, err := p.machine("robot-opaque", "opaque-secret", oauth2.AuthStyleInHeader).Token(ctx)
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		if strings.Count(tok.AccessToken, ".") == 2 {
			t.Errorf("access token %q looks like a JWT", tok.AccessToken)
		}
		var got struct {
			Active   bool     `json:"active"`
			Sub      string   `json:"sub"`
			ClientID string   `json:"client_id"`
			Groups   []string `json:"groups"`
		}
		introspect(t, p.issuer, "robot-opaque", "opaque-secret", tok.AccessToken, &got)
		if !got.Active || got.Sub != "robot-opaque" || got.ClientID != "robot-opaque" || !reflect.DeepEqual(got.Groups, []string{"robots"}) {
			t.Errorf("introspection = %+v, want active, sub and client_id robot-opaque, groups [robots]", got)
		}
	})

	t.Run("introspection of a JWT", func(t *testing.T) {
		tok, err := p.machine(robotID, robotSecret, oauth2.AuthStyleInHeader).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Active        bool     `json:"active"`
			Sub           string   `json:"sub"`
			Aud           []string `json:"aud"`
			Email         string   `json:"email"`
			EmailVerified bool     `json:"email_verified"`
		}
		introspect(t, p.issuer, robotID, robotSecret, tok.AccessToken, &got)
		if !got.Active || got.Sub != robotID || got.Email != "robot@svc.example" || !got.EmailVerified ||
			!reflect.DeepEqual(got.Aud, []string{robotID, apiAudience}) {
			t.Errorf("introspection = %+v, want active robot with its email and the API audience", got)
		}
	})

	t.Run("userinfo refuses a machine token", func(t *testing.T) {
		tok, err := p.machine(robotID, robotSecret, oauth2.AuthStyleInHeader).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Errorf("userinfo answered %+v for a client_credentials token", info)
		}
	})

	var bodies []string
	for _, tt := range []struct {
		name, id, secret string
		style            oauth2.AuthStyle
		want             string
	}{
		{"wrong secret", robotID, "nope", oauth2.AuthStyleInHeader, "invalid_client"},
		{"wrong secret in body", robotID, "nope", oauth2.AuthStyleInParams, "invalid_client"},
		{"unknown client", "nobody", "nope", oauth2.AuthStyleInHeader, "invalid_client"},
		{"client without ClientCredentials", clientID, clientSecret, oauth2.AuthStyleInHeader, "unauthorized_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := p.machine(tt.id, tt.secret, tt.style).Token(ctx)
			if tok != nil {
				t.Errorf("got a token: %+v", tok)
			}
			if got := oauthErrorCode(err); got != tt.want {
				t.Errorf("error %v (code %q), want %q", err, got, tt.want)
			}
			if tt.want == "invalid_client" {
				var re *oauth2.RetrieveError
				if errors.As(err, &re) {
					bodies = append(bodies, re.Response.Status+" "+string(re.Body))
				}
			}
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("invalid_client answers differ: %q and %q", bodies[0], b)
		}
	}

	if got, want := p.idp.Stats().TokenRequests["client_credentials"], 9; got != want {
		t.Errorf("TokenRequests[client_credentials] = %d, want %d", got, want)
	}
}

// introspect asks the introspection endpoint about token as client id.
func introspect(t *testing.T, issuer, id, secret, token string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+"/oauth/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding introspection: %v", err)
	}
}
