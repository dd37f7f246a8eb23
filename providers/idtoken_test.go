package providers

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

// idTokenCase is one ID token sent back by the token endpoint. Every field
// is optional: by default the provider is configured as in
// testIssuer.provider, the issuer as in newTestIssuer, and the token carries
// testIssuer.claims signed RS256 with the published rsaKey.
type idTokenCase struct {
	name   string
	cfg    func(*Config)
	setup  func(ti *testIssuer)
	claims func(c map[string]any)
	sign   func(t testing.TB, c map[string]any) string // "" sends no id_token
}

func (tt idTokenCase) run(t *testing.T) (*session.Session, string, *testIssuer, error) {
	t.Helper()
	ti := newTestIssuer(t)
	if tt.setup != nil {
		tt.setup(ti)
	}
	p := ti.provider(t, newClock(), tt.cfg)
	var raw string
	s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
		c := ti.claims(a, testNow)
		if tt.claims != nil {
			tt.claims(c)
		}
		sign := rsaKey.sign
		if tt.sign != nil {
			sign = tt.sign
		}
		raw = sign(t, c)
		return tokenResponse(raw)
	})
	return s, raw, ti, err
}

// rsaPublicPEM and rsaPublicDER are what an attacker can download from the
// JWKS and try as an HMAC secret (RFC 8725 §2.1).
var (
	rsaPublicDER, _ = x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
	rsaPublicPEM    = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPublicDER})
)

func hs256(secret []byte) func(t testing.TB, c map[string]any) string {
	return func(t testing.TB, c map[string]any) string {
		return craftJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": rsaKey.kid}, c, secret)
	}
}

func set(k string, v any) func(map[string]any) {
	return func(c map[string]any) { c[k] = v }
}

func del(k string) func(map[string]any) {
	return func(c map[string]any) { delete(c, k) }
}

func publish(keys ...jose.JSONWebKey) func(*testIssuer) {
	return func(ti *testIssuer) { ti.setKeys(keys...) }
}

func advertise(algs ...string) func(*testIssuer) {
	return func(ti *testIssuer) { ti.setMeta("id_token_signing_alg_values_supported", algs) }
}

// TestRedeemRejectsHostileIDTokens sends, through the real exchange, ID
// tokens that must not yield a session (SECURITY.md IDT-*, JWT-*).
func TestRedeemRejectsHostileIDTokens(t *testing.T) {
	rs384 := rsaKey.jwk()
	rs384.Algorithm = "RS384"
	enc := rsaKey.jwk()
	enc.Use = "enc"

	for _, tt := range []struct {
		idTokenCase
		want error
	}{
		// Algorithm confusion (RFC 8725 §2.1, §3.1; JWT-1, JWT-2).
		{idTokenCase{name: "alg none", sign: func(t testing.TB, c map[string]any) string {
			return craftJWT(t, map[string]any{"alg": "none", "typ": "JWT", "kid": rsaKey.kid}, c, nil)
		}}, ErrInvalidToken},
		{idTokenCase{name: "alg none without kid", sign: func(t testing.TB, c map[string]any) string {
			return craftJWT(t, map[string]any{"alg": "none"}, c, nil)
		}}, ErrInvalidToken},
		{idTokenCase{name: "HS256 keyed with the RSA public key PEM", sign: hs256(rsaPublicPEM)}, ErrInvalidToken},
		{idTokenCase{name: "HS256 keyed with the RSA public key DER", sign: hs256(rsaPublicDER)}, ErrInvalidToken},
		{idTokenCase{name: "HS256 keyed with the client secret", sign: hs256([]byte(testClientSecret))}, ErrInvalidToken},
		{idTokenCase{name: "HS256 keyed with the client secret, advertised by the provider",
			setup: advertise("RS256", "HS256"), sign: hs256([]byte(testClientSecret))}, ErrInvalidToken},
		{idTokenCase{name: "ES256 when signing_algs is RS256", setup: advertise("RS256", "ES256"),
			cfg: func(c *Config) { c.SigningAlgs = []string{"RS256"} }, sign: ecKey.sign}, ErrInvalidToken},
		{idTokenCase{name: "ES256 not advertised", sign: ecKey.sign}, ErrInvalidToken},

		// Keys (RFC 8725 §3.1, §3.10; JWT-1, JWT-7, JWT-8).
		{idTokenCase{name: "unknown key with unknown kid", sign: rsaOther.sign}, ErrInvalidToken},
		{idTokenCase{name: "unknown key reusing a known kid", sign: testKey{jose.RS256, rsaKey.kid, rsaOther.priv}.sign}, ErrInvalidToken},
		{idTokenCase{name: "unknown key without kid", sign: func(t testing.TB, c map[string]any) string {
			return signJWS(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaOther.priv}, nil, c)
		}}, ErrInvalidToken},
		{idTokenCase{name: "unknown key embedded as jwk header", sign: func(t testing.TB, c map[string]any) string {
			return signJWS(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaOther.priv}, &jose.SignerOptions{EmbedJWK: true}, c)
		}}, ErrInvalidToken},
		{idTokenCase{name: "published key bound to RS384 used for RS256", setup: publish(rs384)}, ErrInvalidToken},
		{idTokenCase{name: "published key marked use enc", setup: publish(enc)}, ErrInvalidToken},
		{idTokenCase{name: "payload swapped under a valid signature", sign: func(t testing.TB, c map[string]any) string {
			good := strings.Split(rsaKey.sign(t, c), ".")
			c["sub"] = "admin"
			forged := strings.Split(rsaKey.sign(t, c), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}}, ErrInvalidToken},
		{idTokenCase{name: "not a JWT", sign: func(testing.TB, map[string]any) string { return "not-a-jwt" }}, ErrInvalidToken},
		{idTokenCase{name: "no id_token in the token response", sign: func(testing.TB, map[string]any) string { return "" }}, ErrInvalidToken},

		// Audience and issuer (Core §3.1.3.7 steps 2–5; IDT-3..5, JWT-7).
		{idTokenCase{name: "wrong aud", claims: set("aud", "other-client")}, ErrInvalidToken},
		{idTokenCase{name: "missing aud", claims: del("aud")}, ErrInvalidToken},
		{idTokenCase{name: "extra audience without azp", claims: set("aud", []string{testClientID, "other-client"})}, ErrInvalidToken},
		{idTokenCase{name: "extra audience with azp naming another client", claims: func(c map[string]any) {
			c["aud"] = []string{testClientID, "other-client"}
			c["azp"] = "other-client"
		}}, ErrInvalidToken},
		{idTokenCase{name: "azp naming another client", claims: set("azp", "other-client")}, ErrInvalidToken},
		{idTokenCase{name: "wrong iss", claims: set("iss", "https://evil.example.com")}, ErrInvalidToken},
		{idTokenCase{name: "iss with a trailing slash", claims: func(c map[string]any) { c["iss"] = c["iss"].(string) + "/" }}, ErrInvalidToken},
		{idTokenCase{name: "missing iss", claims: del("iss")}, ErrInvalidToken},

		// Time (IDT-8, IDT-9).
		{idTokenCase{name: "exp one second ago", claims: set("exp", testNow.Add(-time.Second).Unix())}, ErrInvalidToken},
		{idTokenCase{name: "missing exp", claims: del("exp")}, ErrInvalidToken},
		{idTokenCase{name: "nbf ten minutes ahead", claims: set("nbf", testNow.Add(10*time.Minute).Unix())}, ErrInvalidToken},
		{idTokenCase{name: "iat 2 minutes in the future", claims: set("iat", testNow.Add(2*time.Minute).Unix())}, ErrInvalidToken},
		{idTokenCase{name: "iat 20 minutes old", claims: set("iat", testNow.Add(-20*time.Minute).Unix())}, ErrInvalidToken},
		{idTokenCase{name: "iat zero", claims: set("iat", 0)}, ErrInvalidToken},
		{idTokenCase{name: "missing iat", claims: del("iat")}, ErrInvalidToken},

		// Claim types (RFC 7519 §2, §4.1; Core §2): go-oidc alone would
		// read a NumericDate from a JSON string and claim names in any case.
		{idTokenCase{name: "exp as a numeric string", claims: set("exp", strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10))}, ErrInvalidToken},
		{idTokenCase{name: "iat as a numeric string", claims: set("iat", strconv.FormatInt(testNow.Unix(), 10))}, ErrInvalidToken},
		{idTokenCase{name: "nbf as a numeric string", claims: set("nbf", strconv.FormatInt(testNow.Unix(), 10))}, ErrInvalidToken},
		{idTokenCase{name: "auth_time as a numeric string", claims: set("auth_time", strconv.FormatInt(testNow.Unix(), 10))}, ErrInvalidToken},
		{idTokenCase{name: "exp true", claims: set("exp", true)}, ErrInvalidToken},
		{idTokenCase{name: "exp null", claims: set("exp", nil)}, ErrInvalidToken},
		{idTokenCase{name: "exp an array", claims: set("exp", []int64{testNow.Add(time.Hour).Unix()})}, ErrInvalidToken},
		{idTokenCase{name: "exp an object", claims: set("exp", map[string]any{"$date": testNow.Add(time.Hour).Unix()})}, ErrInvalidToken},
		{idTokenCase{name: "exp 1e400", claims: set("exp", json.RawMessage("1e400"))}, ErrInvalidToken},
		{idTokenCase{name: "exp beyond int64 seconds", claims: set("exp", 1e19)}, ErrInvalidToken},
		{idTokenCase{name: "auth_time negative", claims: set("auth_time", -1)}, ErrInvalidToken},
		{idTokenCase{name: "nbf negative", claims: set("nbf", -1)}, ErrInvalidToken},
		{idTokenCase{name: "EXP in another case, as a string, no exp", claims: func(c map[string]any) {
			c["EXP"] = strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)
			delete(c, "exp")
		}}, ErrInvalidToken},
		{idTokenCase{name: "Iat in another case beside iat", claims: set("Iat", testNow.Unix())}, ErrInvalidToken},
		{idTokenCase{name: "sub a number", claims: set("sub", 1)}, ErrInvalidToken},
		{idTokenCase{name: "sid a number", claims: set("sid", 42)}, ErrInvalidToken},
		{idTokenCase{name: "sid null", claims: set("sid", nil)}, ErrInvalidToken},
		{idTokenCase{name: "azp an array", claims: set("azp", []string{testClientID})}, ErrInvalidToken},
		{idTokenCase{name: "aud an array holding a number", claims: set("aud", []any{testClientID, 7})}, ErrInvalidToken},
		{idTokenCase{name: "aud an object", claims: set("aud", map[string]any{testClientID: true})}, ErrInvalidToken},

		// Nonce and at_hash (IDT-10, IDT-12; RFC 9700 §4.5.3.2).
		{idTokenCase{name: "missing nonce", claims: del("nonce")}, ErrInvalidToken},
		{idTokenCase{name: "empty nonce", claims: set("nonce", "")}, ErrInvalidToken},
		{idTokenCase{name: "wrong nonce", claims: set("nonce", "another-attempts-nonce")}, ErrInvalidToken},
		{idTokenCase{name: "bad at_hash", claims: set("at_hash", atHash("another-access-token"))}, ErrInvalidToken},

		// Identity (IDT-13) and header safety.
		{idTokenCase{name: "email_verified false", claims: set("email_verified", false)}, ErrUnverifiedEmail},
		{idTokenCase{name: `email_verified "true" as a string`, claims: set("email_verified", "true")}, ErrUnverifiedEmail},
		{idTokenCase{name: "email_verified 1", claims: set("email_verified", 1)}, ErrUnverifiedEmail},
		{idTokenCase{name: "email without email_verified", claims: del("email_verified")}, ErrUnverifiedEmail},
		{idTokenCase{name: "newline in email", claims: set("email", "alice@example.com\nX-Injected: 1")}, ErrInvalidToken},
		{idTokenCase{name: "carriage return in name", claims: set("name", "Alice\r")}, ErrInvalidToken},
		{idTokenCase{name: "NUL in a group", claims: set("groups", []string{"dev", "ad\x00min"})}, ErrInvalidToken},
		{idTokenCase{name: "DEL in preferred_username", claims: set("preferred_username", "alice\x7f")}, ErrInvalidToken},
		{idTokenCase{name: "tab in sub", claims: set("sub", "user\t1")}, ErrInvalidToken},
		{idTokenCase{name: "empty sub", claims: set("sub", "")}, ErrInvalidToken},
		{idTokenCase{name: "missing sub", claims: del("sub")}, ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, err := tt.run(t)
			t.Logf("Redeem: %v", err)
			if !errors.Is(err, tt.want) {
				t.Errorf("Redeem error = %v, want %v", err, tt.want)
			}
			if s != nil {
				t.Errorf("Redeem returned a session for %q", s.Subject)
			}
		})
	}
}

// TestRedeemIgnoresKeyURLHeaders: jku and x5u name where to fetch keys; a
// verifier that followed them would let the token choose its own key and
// make the gateway fetch attacker URLs (RFC 8725 §3.10, JWT-8).
func TestRedeemIgnoresKeyURLHeaders(t *testing.T) {
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaOther.jwk()}})
	}))
	defer attacker.Close()

	for _, header := range []jose.HeaderKey{"jku", "x5u"} {
		t.Run(string(header), func(t *testing.T) {
			s, _, _, err := idTokenCase{sign: func(t testing.TB, c map[string]any) string {
				opts := (&jose.SignerOptions{}).WithHeader("kid", rsaOther.kid).WithHeader(header, attacker.URL+"/jwks")
				return signJWS(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaOther.priv}, opts, c)
			}}.run(t)
			if !errors.Is(err, ErrInvalidToken) || s != nil {
				t.Errorf("Redeem = %v, %v; want no session and %v", s, err, ErrInvalidToken)
			}
			if got := attackerHits.Load(); got != 0 {
				t.Errorf("the URL in the %s header was fetched %d times, want 0", header, got)
			}
		})
	}
}

// TestRedeemAcceptsGoodIDTokens: tokens a correct provider issues yield the
// identity they describe.
func TestRedeemAcceptsGoodIDTokens(t *testing.T) {
	alice := session.Identity{Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}
	with := func(id session.Identity, edit func(*session.Identity)) session.Identity {
		edit(&id)
		return id
	}
	for _, tt := range []struct {
		idTokenCase
		want session.Identity // Issuer is filled in with the test issuer's URL
	}{
		{idTokenCase{name: "RS256"}, alice},
		// Near misses of the claim-type rows: NumericDate may carry a
		// fraction (RFC 7519 §2), and aud may be an array of strings.
		{idTokenCase{name: "exp and iat with a fraction", claims: func(c map[string]any) {
			c["exp"] = float64(testNow.Add(time.Hour).Unix()) + 0.5
			c["iat"] = float64(testNow.Unix()) - 0.25
		}}, alice},
		{idTokenCase{name: "exp in exponent notation", claims: set("exp", json.RawMessage(strconv.FormatFloat(float64(testNow.Add(time.Hour).Unix()), 'e', -1, 64)))}, alice},
		{idTokenCase{name: "auth_time and nbf numbers", claims: func(c map[string]any) {
			c["auth_time"] = testNow.Add(-time.Minute).Unix()
			c["nbf"] = 0
		}}, alice},
		{idTokenCase{name: "aud an array of one string", claims: set("aud", []string{testClientID})}, alice},
		{idTokenCase{name: "sid a string", claims: set("sid", "sid-1")}, alice},
		{idTokenCase{name: "an unregistered claim holding a numeric string", claims: set("expires", "123")}, alice},
		{idTokenCase{name: "RS256 without kid", sign: func(t testing.TB, c map[string]any) string {
			return signJWS(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey.priv}, nil, c)
		}}, alice},
		{idTokenCase{name: "ES256 when advertised", setup: advertise("RS256", "ES256"), sign: ecKey.sign}, alice},
		{idTokenCase{name: "ES256 advertised and in signing_algs", setup: advertise("ES256"),
			cfg: func(c *Config) { c.SigningAlgs = []string{"ES256"} }, sign: ecKey.sign}, alice},
		{idTokenCase{name: "no email", claims: func(c map[string]any) {
			delete(c, "email")
			delete(c, "email_verified")
		}}, with(alice, func(id *session.Identity) { id.Email, id.EmailVerified = "", false })},
		{idTokenCase{name: "no email but email_verified true", claims: del("email")},
			with(alice, func(id *session.Identity) { id.Email, id.EmailVerified = "", false })},
		{idTokenCase{name: "email_verified false with InsecureAllowUnverifiedEmail",
			cfg: func(c *Config) { c.InsecureAllowUnverifiedEmail = true }, claims: set("email_verified", false)}, alice},
		{idTokenCase{name: "no email_verified with InsecureAllowUnverifiedEmail",
			cfg: func(c *Config) { c.InsecureAllowUnverifiedEmail = true }, claims: del("email_verified")}, alice},
		{idTokenCase{name: "groups list", claims: set("groups", []any{"dev", "ops", 7, ""})},
			with(alice, func(id *session.Identity) { id.Groups = []string{"dev", "ops"} })},
		{idTokenCase{name: "groups as a single string", claims: set("groups", "admins")},
			with(alice, func(id *session.Identity) { id.Groups = []string{"admins"} })},
		{idTokenCase{name: "nested groups claim", cfg: func(c *Config) { c.GroupsClaim = "realm_access.roles" },
			claims: set("realm_access", map[string]any{"roles": []string{"admin", "dev"}})},
			with(alice, func(id *session.Identity) { id.Groups = []string{"admin", "dev"} })},
		{idTokenCase{name: "groups claim name with dots", cfg: func(c *Config) { c.GroupsClaim = "https://example.com/groups" },
			claims: set("https://example.com/groups", []string{"dev"})},
			with(alice, func(id *session.Identity) { id.Groups = []string{"dev"} })},
		{idTokenCase{name: "preferred_username", claims: set("preferred_username", "alice")},
			with(alice, func(id *session.Identity) { id.PreferredUsername = "alice" })},
		{idTokenCase{name: "at_hash correct", claims: set("at_hash", atHash(testAccessToken))}, alice},
		{idTokenCase{name: "two audiences with azp naming this client", claims: func(c map[string]any) {
			c["aud"] = []string{testClientID, "other-client"}
			c["azp"] = testClientID
		}}, alice},
		{idTokenCase{name: "aud as a one-element list", claims: set("aud", []string{testClientID})}, alice},
		{idTokenCase{name: "iat 59 s in the future", claims: set("iat", testNow.Add(59*time.Second).Unix())}, alice},
		{idTokenCase{name: "iat 9 minutes old", claims: set("iat", testNow.Add(-9*time.Minute).Unix())}, alice},
		{idTokenCase{name: "non-ASCII name", claims: set("name", "Zoë Ünal")},
			with(alice, func(id *session.Identity) { id.Name = "Zoë Ünal" })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, raw, ti, err := tt.run(t)
			if err != nil {
				t.Fatalf("Redeem: %v", err)
			}
			want := tt.want
			want.Issuer = ti.URL
			got := s.Identity
			if len(got.Groups) == 0 {
				got.Groups = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("identity = %+v\nwant       %+v", got, want)
			}
			if s.Provider != "corp" || s.SID != "sid-1" || s.AccessToken != testAccessToken || s.IDToken != raw {
				t.Errorf("session = provider %q sid %q access token %q id token %.20q…; want corp, sid-1, %s and the raw ID token",
					s.Provider, s.SID, s.AccessToken, s.IDToken, testAccessToken)
			}
			if s.TokenExpiry.IsZero() {
				t.Error("TokenExpiry is zero")
			}
		})
	}
}

// TestRedeemNeedsAttemptNonce: an attempt that lost its nonce must not
// match a token without one (Core §3.1.3.7 step 11).
func TestRedeemNeedsAttemptNonce(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), nil)
	a := NewAttempt()
	a.Nonce = ""
	c := ti.claims(a, testNow)
	delete(c, "nonce")
	ti.replyIDToken(rsaKey.sign(t, c))
	s, err := p.Redeem(context.Background(), "code-1", a)
	if !errors.Is(err, ErrInvalidToken) || s != nil {
		t.Errorf("Redeem = %v, %v; want no session and %v", s, err, ErrInvalidToken)
	}
}

// TestRedeemJWKSUnavailable: when the provider's keys cannot be fetched,
// the sign-in failed because the provider is down, not because its answer
// was forged; the gateway shows "try again" rather than "could not be
// verified" (proxy/flow.go).
func TestRedeemJWKSUnavailable(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setMeta("jwks_uri", ti.URL+"/no-such-jwks")
	p := ti.provider(t, newClock(), nil)
	s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
		return tokenResponse(rsaKey.sign(t, ti.claims(a, testNow)))
	})
	if !errors.Is(err, ErrUnavailable) || s != nil {
		t.Errorf("Redeem = %v, %v; want no session and %v", s, err, ErrUnavailable)
	}
}

// TestRedeemClaimNamesAreExact: claim names are case-sensitive (RFC 7519
// §4, names are compared as strings), so a claim that differs only in case,
// such as a custom claim a user or tenant admin can name, must not stand in
// for email or email_verified (IDT-13).
func TestRedeemClaimNamesAreExact(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string // appended to the claim set, after the real claims
		want  error
	}{
		{"Email_Verified true after email_verified false", `"email_verified":false,"Email_Verified":true`, ErrUnverifiedEmail},
		{"EMAIL after a verified email", `"email_verified":true,"EMAIL":"ceo@example.com"`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			p := ti.provider(t, newClock(), nil)
			s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
				c := ti.claims(a, testNow)
				delete(c, "email_verified")
				b, err := json.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				payload := append(b[:len(b)-1], []byte(","+tt.extra+"}")...)
				opts := (&jose.SignerOptions{}).WithHeader("kid", rsaKey.kid)
				return tokenResponse(signPayload(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey.priv}, opts, payload))
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Redeem error = %v, want %v", err, tt.want)
			}
			if s != nil && s.Email != "alice@example.com" {
				t.Errorf("Email = %q, want the email claim alice@example.com", s.Email)
			}
		})
	}
}
