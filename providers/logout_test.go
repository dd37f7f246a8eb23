package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// logoutClaims are those of a logout token every check accepts.
func (ti *testIssuer) logoutClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":    ti.URL,
		"aud":    testClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    "jti-1",
		"sub":    "user-1",
		"sid":    "sid-1",
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
}

func signLogout(t *testing.T, k testKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", k.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	return signJWS(t, jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts, claims)
}

func TestVerifyLogoutToken(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	p := ti.provider(t, clk, nil).(*OIDC)
	now := clk.Now()
	edit := func(f func(map[string]any)) map[string]any {
		c := ti.logoutClaims(now)
		f(c)
		return c
	}
	for _, tt := range []struct {
		name  string
		token func(t *testing.T) string
		ok    bool
	}{
		{"valid with sub and sid", func(t *testing.T) string { return signLogout(t, rsaKey, "logout+jwt", ti.logoutClaims(now)) }, true},
		{"valid with sid only", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "sub") }))
		}, true},
		{"valid with sub only, typ JWT", func(t *testing.T) string {
			return signLogout(t, rsaKey, "JWT", edit(func(c map[string]any) { delete(c, "sid") }))
		}, true},
		{"valid without typ", func(t *testing.T) string { return signLogout(t, rsaKey, "", ti.logoutClaims(now)) }, true},
		{"nonce present", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["nonce"] = "n" }))
		}, false},
		{"no events", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "events") }))
		}, false},
		{"events without the member", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["events"] = map[string]any{"other": map[string]any{}} }))
		}, false},
		{"event member not an object", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["events"] = map[string]any{backchannelEvent: "yes"} }))
		}, false},
		{"events in another case", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["EVENTS"] = c["events"]; delete(c, "events") }))
		}, false},
		{"neither sub nor sid", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }))
		}, false},
		{"no jti", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "jti") }))
		}, false},
		{"no iat", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "iat") }))
		}, false},
		{"iat in the future", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }))
		}, false},
		{"no exp", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { delete(c, "exp") }))
		}, false},
		{"expired", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))
		}, false},
		{"wrong aud", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["aud"] = "another-client" }))
		}, false},
		{"wrong iss", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iss"] = "https://evil.example" }))
		}, false},
		{"unknown key", func(t *testing.T) string { return signLogout(t, rsaOther, "logout+jwt", ti.logoutClaims(now)) }, false},
		{"alg none", func(t *testing.T) string {
			return craftJWT(t, map[string]any{"alg": "none", "typ": "logout+jwt"}, ti.logoutClaims(now), nil)
		}, false},
		{"HS256 with the client secret", func(t *testing.T) string {
			return craftJWT(t, map[string]any{"alg": "HS256", "typ": "logout+jwt"}, ti.logoutClaims(now), []byte(testClientSecret))
		}, false},
		{"an ID token (typ JWT, nonce, no events)", func(t *testing.T) string {
			return signLogout(t, rsaKey, "JWT", ti.claims(Attempt{Nonce: "n"}, now))
		}, false},
		{"an access token typ", func(t *testing.T) string { return signLogout(t, rsaKey, "at+jwt", ti.logoutClaims(now)) }, false},
		{"control character in sid", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["sid"] = "a\nb" }))
		}, false},
		{"not a JWT", func(*testing.T) string { return "garbage" }, false},
		// Claim types (RFC 7519 §2, §4.1; Back-Channel Logout §2.4).
		{"iat as a numeric string", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iat"] = strconv.FormatInt(now.Unix(), 10) }))
		}, false},
		{"exp as a numeric string", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(2*time.Minute).Unix(), 10) }))
		}, false},
		{"EXP in another case, as a string, no exp", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) {
				c["EXP"] = strconv.FormatInt(now.Add(2*time.Minute).Unix(), 10)
				delete(c, "exp")
			}))
		}, false},
		{"iat null", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iat"] = nil }))
		}, false},
		{"iat true", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iat"] = true }))
		}, false},
		{"iat negative", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["iat"] = -1 }))
		}, false},
		{"exp 1e400", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["exp"] = json.RawMessage("1e400") }))
		}, false},
		{"exp beyond int64 seconds", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["exp"] = 1e19 }))
		}, false},
		{"exp an array", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["exp"] = []int64{now.Add(2 * time.Minute).Unix()} }))
		}, false},
		{"sid a number", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["sid"] = 7 }))
		}, false},
		{"sid an object", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["sid"] = map[string]any{"id": "sid-1"} }))
		}, false},
		{"sub a number, sid valid", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["sub"] = 1 }))
		}, false},
		{"aud an array holding null", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["aud"] = []any{testClientID, nil} }))
		}, false},
		{"iat and exp with a fraction", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) {
				c["iat"] = float64(now.Unix()) + 0.5
				c["exp"] = float64(now.Add(2*time.Minute).Unix()) + 0.5
			}))
		}, true},
		{"aud an array of one string", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", edit(func(c map[string]any) { c["aud"] = []string{testClientID} }))
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lt, err := p.VerifyLogoutToken(context.Background(), tt.token(t))
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if lt.Issuer != ti.URL || lt.ID != "jti-1" {
					t.Errorf("token = %+v", lt)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", lt)
			}
			if !errors.Is(err, ErrInvalidLogoutToken) {
				t.Errorf("err = %v, want ErrInvalidLogoutToken", err)
			}
		})
	}
}

func TestEndSessionURL(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	ti.setMeta("end_session_endpoint", ti.URL+"/logout?keep=1")
	p := ti.provider(t, clk, nil).(*OIDC)
	u, err := p.EndSessionURL(context.Background(), "id-token", "https://gw/oauth2/signed_out", "st")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := url.Parse(u)
	q := got.Query()
	if !strings.HasPrefix(u, ti.URL+"/logout?") || q.Get("keep") != "1" || q.Get("id_token_hint") != "id-token" ||
		q.Get("client_id") != testClientID || q.Get("post_logout_redirect_uri") != "https://gw/oauth2/signed_out" || q.Get("state") != "st" {
		t.Errorf("EndSessionURL = %s", u)
	}
	never := ti.provider(t, clk, func(c *Config) { c.EndSession = "never" }).(*OIDC)
	if u, err := never.EndSessionURL(context.Background(), "", "x", "y"); err != nil || u != "" {
		t.Errorf("end_session: never gave %q, %v", u, err)
	}
	ti2 := newTestIssuer(t)
	if u, err := ti2.provider(t, clk, nil).(*OIDC).EndSessionURL(context.Background(), "", "x", "y"); err != nil || u != "" {
		t.Errorf("without an end_session_endpoint: %q, %v", u, err)
	}
}

// TestLogoutTokenWithoutExp: Ory Hydra sends logout tokens without exp.
// Refused by default (Back-Channel Logout 1.0 §2.4 requires exp); with
// logout_token_without_exp a token without exp passes only if it is
// otherwise valid and was issued within logoutTokenWindow. A token with
// an exp is checked as always.
func TestLogoutTokenWithoutExp(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	now := clk.Now()
	strict := ti.provider(t, clk, nil).(*OIDC)
	tolerant := ti.provider(t, clk, func(c *Config) { c.LogoutTokenWithoutExp = true }).(*OIDC)
	noExp := func(f func(map[string]any)) map[string]any {
		c := ti.logoutClaims(now)
		delete(c, "exp")
		if f != nil {
			f(c)
		}
		return c
	}
	for _, tt := range []struct {
		name             string
		token            func(t *testing.T) string
		strict, tolerant bool
	}{
		{"no exp, just issued", func(t *testing.T) string { return signLogout(t, rsaKey, "logout+jwt", noExp(nil)) }, false, true},
		{"no exp, issued a minute ago", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["iat"] = now.Add(-time.Minute).Unix() }))
		}, false, true},
		{"no exp, issued 5 minutes ago", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["iat"] = now.Add(-5 * time.Minute).Unix() }))
		}, false, false},
		{"no exp, iat in the future", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }))
		}, false, false},
		{"no exp, no iat", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { delete(c, "iat") }))
		}, false, false},
		{"no exp, iat a string", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["iat"] = strconv.FormatInt(now.Unix(), 10) }))
		}, false, false},
		{"no exp, EXP in capitals", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["EXP"] = now.Add(time.Hour).Unix() }))
		}, false, false},
		{"no exp, another issuer", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["iss"] = ti.URL + "/" }))
		}, false, false},
		{"no exp, another audience", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["aud"] = "another-client" }))
		}, false, false},
		{"no exp, audience in a list", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["aud"] = []string{testClientID} }))
		}, false, true},
		{"no exp, a key not published", func(t *testing.T) string {
			return signLogout(t, testKey{jose.RS256, rsaKey.kid, rsaOther.priv}, "logout+jwt", noExp(nil))
		}, false, false},
		{"no exp, a published key of an algorithm not advertised", func(t *testing.T) string {
			return signLogout(t, ecKey, "logout+jwt", noExp(nil))
		}, false, false},
		{"no exp, with a nonce", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["nonce"] = "n" }))
		}, false, false},
		{"no exp, no events", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { delete(c, "events") }))
		}, false, false},
		{"no exp, typ of an ID token", func(t *testing.T) string { return signLogout(t, rsaKey, "id_token+jwt", noExp(nil)) }, false, false},
		{"exp present and past: checked as always", func(t *testing.T) string {
			return signLogout(t, rsaKey, "logout+jwt", noExp(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))
		}, false, false},
		{"exp present and valid", func(t *testing.T) string { return signLogout(t, rsaKey, "logout+jwt", ti.logoutClaims(now)) }, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			for _, side := range []struct {
				p    *OIDC
				want bool
				name string
			}{{strict, tt.strict, "default"}, {tolerant, tt.tolerant, "logout_token_without_exp"}} {
				lt, err := side.p.VerifyLogoutToken(context.Background(), tok)
				switch {
				case side.want && err != nil:
					t.Errorf("%s: refused: %v", side.name, err)
				case !side.want && err == nil:
					t.Errorf("%s: accepted: %+v", side.name, lt)
				case err != nil && !errors.Is(err, ErrInvalidLogoutToken):
					t.Errorf("%s: err = %v, want ErrInvalidLogoutToken", side.name, err)
				case err == nil && (lt.ID != "jti-1" || !lt.Expiry.After(now)):
					t.Errorf("%s: token = %+v", side.name, lt)
				}
			}
		})
	}
}
