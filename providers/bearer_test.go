package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

// bearerClaims are those of an access token every check accepts, from ti
// for audience "api".
func (ti *testIssuer) bearerClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":                ti.URL,
		"sub":                "ci-bot",
		"aud":                "api",
		"exp":                now.Add(5 * time.Minute).Unix(),
		"iat":                now.Unix(),
		"email":              "bot@example.com",
		"email_verified":     true,
		"name":               "CI Bot",
		"preferred_username": "ci",
		"groups":             []string{"deployers"},
		"team":               "platform",
	}
}

// bearerVerifier trusts ti for audience "api"; edit changes the issuer's
// entry. It keeps the policy claim "team".
func bearerVerifier(t *testing.T, ti *testIssuer, clk *clock, edit func(*BearerIssuer)) *BearerVerifier {
	t.Helper()
	bi := BearerIssuer{IssuerURL: ti.URL, Audiences: []string{"api"}}
	if edit != nil {
		edit(&bi)
	}
	v, err := NewBearerVerifier(BearerConfig{Issuers: []BearerIssuer{bi}}, nil, Options{Now: clk.Now, Claims: []string{"team"}})
	if err != nil || v == nil {
		t.Fatalf("NewBearerVerifier = %v, %v", v, err)
	}
	return v
}

// TestBearerVerify: a machine client's token yields the identity it
// carries, or ErrInvalidBearer; an issuer that cannot be asked is
// ErrUnavailable (RFC 6750, RFC 8725 §3.11, RFC 9700 §4.10.2).
func TestBearerVerify(t *testing.T) {
	bot := session.Identity{Subject: "ci-bot", Email: "bot@example.com", EmailVerified: true, Name: "CI Bot",
		PreferredUsername: "ci", Groups: []string{"deployers"}, Claims: map[string][]string{"team": {"platform"}}}
	with := func(edit func(*session.Identity)) session.Identity {
		id := bot
		id.Claims = map[string][]string{"team": {"platform"}}
		edit(&id)
		return id
	}
	for _, tt := range []struct {
		name    string
		setup   func(ti *testIssuer)
		issuer  func(*BearerIssuer)
		claims  func(c map[string]any)
		sign    func(t testing.TB, c map[string]any) string
		want    session.Identity // Issuer is filled in with the test issuer's URL
		wantErr error
	}{
		{name: "valid", want: bot},
		{name: "email_verified false: kept, not verified", claims: set("email_verified", false),
			want: with(func(id *session.Identity) { id.EmailVerified = false })},
		{name: `email_verified "true" is not true`, claims: set("email_verified", "true"),
			want: with(func(id *session.Identity) { id.EmailVerified = false })},
		{name: "no email", claims: del("email"), want: with(func(id *session.Identity) { id.Email, id.EmailVerified = "", false })},
		{name: "no groups, no policy claim", claims: func(c map[string]any) { delete(c, "groups"); delete(c, "team") },
			want: with(func(id *session.Identity) { id.Groups, id.Claims = nil, nil })},
		{name: "groups claim configured", issuer: func(bi *BearerIssuer) { bi.GroupsClaim = "realm_access.roles" },
			claims: set("realm_access", map[string]any{"roles": []string{"admin"}}),
			want:   with(func(id *session.Identity) { id.Groups = []string{"admin"} })},
		{name: "one of several audiences", claims: set("aud", []string{"other", "api"}), want: bot},
		{name: "Email in another case is not email", claims: func(c map[string]any) { delete(c, "email"); c["EMAIL"] = "ceo@example.com" },
			want: with(func(id *session.Identity) { id.Email, id.EmailVerified = "", false })},

		{name: "another audience", claims: set("aud", "another-api"), wantErr: ErrInvalidBearer},
		{name: "untrusted issuer", claims: set("iss", "https://evil.example"), wantErr: ErrInvalidBearer},
		{name: "no iss", claims: del("iss"), wantErr: ErrInvalidBearer},
		{name: "an ID token (nonce)", claims: set("nonce", "n"), wantErr: ErrInvalidBearer},
		{name: "a logout token (events)", claims: set("events", map[string]any{backchannelEvent: map[string]any{}}), wantErr: ErrInvalidBearer},
		{name: "no sub", claims: del("sub"), wantErr: ErrInvalidBearer},
		{name: "expired", claims: set("exp", testNow.Add(-time.Minute).Unix()), wantErr: ErrInvalidBearer},
		{name: "newline in name", claims: set("name", "CI\r\nX-Forwarded-Groups: admins"), wantErr: ErrInvalidBearer},
		{name: "DEL in a group", claims: set("groups", []string{"deploy\x7fers"}), wantErr: ErrInvalidBearer},
		{name: "NUL in a policy claim", claims: set("team", "plat\x00form"), wantErr: ErrInvalidBearer},
		{name: "unknown key", sign: rsaOther.sign, wantErr: ErrInvalidBearer},
		{name: "alg none", sign: func(t testing.TB, c map[string]any) string {
			return craftJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, c, nil)
		}, wantErr: ErrInvalidBearer},
		{name: "HS256 with a published key's kid", sign: hs256([]byte(testClientSecret)), wantErr: ErrInvalidBearer},
		{name: "not a JWT", sign: func(testing.TB, map[string]any) string { return "opaque-token" }, wantErr: ErrInvalidBearer},
		{name: "over 16 KiB", claims: set("padding", strings.Repeat("a", 16<<10)), wantErr: ErrInvalidBearer},

		// Claim types (RFC 7519 §2, §4.1): a NumericDate is a JSON number,
		// claim names are case-sensitive; fractions are fine.
		{name: "exp as a numeric string", claims: set("exp", strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)), wantErr: ErrInvalidBearer},
		{name: "EXP in another case, as a string, no exp", claims: func(c map[string]any) {
			c["EXP"] = strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)
			delete(c, "exp")
		}, wantErr: ErrInvalidBearer},
		{name: "iat as a numeric string", claims: set("iat", strconv.FormatInt(testNow.Unix(), 10)), wantErr: ErrInvalidBearer},
		{name: "nbf negative", claims: set("nbf", -1), wantErr: ErrInvalidBearer},
		{name: "exp null", claims: set("exp", nil), wantErr: ErrInvalidBearer},
		{name: "exp 1e400", claims: set("exp", json.RawMessage("1e400")), wantErr: ErrInvalidBearer},
		{name: "exp beyond int64 seconds", claims: set("exp", 1e19), wantErr: ErrInvalidBearer},
		{name: "sub a number", claims: set("sub", 12), wantErr: ErrInvalidBearer},
		{name: "aud an array holding a boolean", claims: set("aud", []any{"api", true}), wantErr: ErrInvalidBearer},
		{name: "exp with a fraction", claims: set("exp", float64(testNow.Add(time.Hour).Unix())+0.5), want: bot},
		{name: "iat and nbf numbers", claims: func(c map[string]any) { c["iat"] = testNow.Unix(); c["nbf"] = testNow.Add(-time.Minute).Unix() }, want: bot},

		// Algorithms: the advertised ID-token algorithms narrow the
		// default; signing_algs is taken as configured.
		{name: "ES256 not advertised", sign: ecKey.sign, wantErr: ErrInvalidBearer},
		{name: "ES256 advertised", setup: advertise("RS256", "ES256"), sign: ecKey.sign, want: bot},
		{name: "ES256 in signing_algs, not advertised", issuer: func(bi *BearerIssuer) { bi.SigningAlgs = []string{"ES256"} },
			sign: ecKey.sign, want: bot},
		{name: "RS256 when signing_algs is ES256", issuer: func(bi *BearerIssuer) { bi.SigningAlgs = []string{"ES256"} },
			wantErr: ErrInvalidBearer},
		{name: "nothing advertised: any asymmetric algorithm", setup: func(ti *testIssuer) {
			ti.setMeta("id_token_signing_alg_values_supported", nil)
		}, sign: ecKey.sign, want: bot},
		{name: "only HS256 advertised: any asymmetric algorithm", setup: advertise("HS256"), sign: ecKey.sign, want: bot},

		{name: "issuer unreachable", setup: func(ti *testIssuer) { ti.setDiscoveryStatus(http.StatusServiceUnavailable) },
			wantErr: ErrUnavailable},
		{name: "discovery without jwks_uri", setup: func(ti *testIssuer) { ti.setMeta("jwks_uri", nil) }, wantErr: ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			if tt.setup != nil {
				tt.setup(ti)
			}
			clk := newClock()
			v := bearerVerifier(t, ti, clk, tt.issuer)
			c := ti.bearerClaims(clk.Now())
			if tt.claims != nil {
				tt.claims(c)
			}
			sign := rsaKey.sign
			if tt.sign != nil {
				sign = tt.sign
			}
			got, err := v.Verify(context.Background(), sign(t, c))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("Verify = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want
			want.Issuer = ti.URL
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("identity = %+v\nwant       %+v", *got, want)
			}
		})
	}
}

// TestBearerJWKSURL: with jwks_url set, the issuer's discovery is never
// asked.
func TestBearerJWKSURL(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	v := bearerVerifier(t, ti, clk, func(bi *BearerIssuer) { bi.JWKSURL = ti.URL + "/jwks" })
	if _, err := v.Verify(context.Background(), rsaKey.sign(t, ti.bearerClaims(clk.Now()))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := ti.discoveryHits.Load(); n != 0 {
		t.Errorf("discovery fetched %d times with jwks_url set", n)
	}
}

// TestBearerDiscoveryRetry: an unreachable issuer is asked again at most
// every 5 s; once discovered it is not asked again.
func TestBearerDiscoveryRetry(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setDiscoveryStatus(http.StatusServiceUnavailable)
	clk := newClock()
	v := bearerVerifier(t, ti, clk, nil)
	verify := func() error {
		_, err := v.Verify(context.Background(), rsaKey.sign(t, ti.bearerClaims(clk.Now())))
		return err
	}
	for _, step := range []struct {
		name     string
		advance  time.Duration
		up       bool
		wantErr  error
		wantHits int64
	}{
		{"first try fails", 0, false, ErrUnavailable, 1},
		{"4 s later: remembered", 4 * time.Second, true, ErrUnavailable, 1},
		{"5 s after the try: asked again", time.Second, true, nil, 2},
		{"a minute later: not asked again", time.Minute, false, nil, 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			clk.Advance(step.advance)
			if step.up {
				ti.setDiscoveryStatus(0)
			} else {
				ti.setDiscoveryStatus(http.StatusServiceUnavailable)
			}
			if err := verify(); !errors.Is(err, step.wantErr) {
				t.Errorf("Verify = %v, want %v", err, step.wantErr)
			}
			if got := ti.discoveryHits.Load(); got != step.wantHits {
				t.Errorf("discovery fetched %d times, want %d", got, step.wantHits)
			}
		})
	}
}

func TestNewBearerVerifier(t *testing.T) {
	provider := func(edit func(*Config)) Config {
		c := Config{ID: "corp", IssuerURL: "https://idp.example.com", ClientID: testClientID, ClientSecret: testClientSecret}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	for _, tt := range []struct {
		name        string
		cfg         BearerConfig
		provs       []Config
		wantIssuers map[string][]string // issuer → audiences; nil: no verifier
		wantErr     []string
	}{
		{name: "nothing configured"},
		{name: "audiences without providers", cfg: BearerConfig{Audiences: []string{"api"}}},
		{name: "providers lend their issuers", cfg: BearerConfig{Audiences: []string{"api"}},
			provs:       []Config{provider(nil), provider(func(c *Config) { c.Type = "google"; c.IssuerURL = "" })},
			wantIssuers: map[string][]string{"https://idp.example.com": {"api"}, "https://accounts.google.com": {"api"}}},
		{name: "github and multi-tenant entra lend none", cfg: BearerConfig{Audiences: []string{"api"}},
			provs: []Config{
				provider(func(c *Config) { c.Type = "github"; c.IssuerURL = "" }),
				provider(func(c *Config) { c.Type = "entra"; c.IssuerURL = ""; c.Tenant = "organizations" }),
				provider(func(c *Config) { c.Type = "entra"; c.IssuerURL = ""; c.Tenant = tenantA }),
			},
			wantIssuers: map[string][]string{"https://login.microsoftonline.com/" + tenantA + "/v2.0": {"api"}}},
		{name: "providers without bearer.audiences lend none", provs: []Config{provider(nil)}},
		{name: "an issuer twice: audiences merged",
			cfg:   BearerConfig{Audiences: []string{"api"}, Issuers: []BearerIssuer{{IssuerURL: "https://idp.example.com", Audiences: []string{"ops"}}}},
			provs: []Config{provider(nil)}, wantIssuers: map[string][]string{"https://idp.example.com": {"api", "ops"}}},
		{name: "extra issuer", cfg: BearerConfig{Issuers: []BearerIssuer{{IssuerURL: "https://ci.example.com", Audiences: []string{"api"}}}},
			wantIssuers: map[string][]string{"https://ci.example.com": {"api"}}},

		{name: "no audiences", cfg: BearerConfig{Issuers: []BearerIssuer{{IssuerURL: "https://ci.example.com"}}},
			wantErr: []string{"bearer.issuers[0]", "audiences are required"}},
		{name: "empty audience", cfg: BearerConfig{Issuers: []BearerIssuer{{IssuerURL: "https://ci.example.com", Audiences: []string{""}}}},
			wantErr: []string{"bearer.issuers[0]", "empty audience"}},
		{name: "HS256", cfg: BearerConfig{Issuers: []BearerIssuer{{IssuerURL: "https://ci.example.com", Audiences: []string{"api"}, SigningAlgs: []string{"HS256"}}}},
			wantErr: []string{"bearer.issuers[0]", "HS256"}},
		{name: "no issuer_url", cfg: BearerConfig{Issuers: []BearerIssuer{{Audiences: []string{"api"}}}},
			wantErr: []string{"bearer.issuers[0]", "issuer_url"}},
		{name: "every problem at once", cfg: BearerConfig{Issuers: []BearerIssuer{{IssuerURL: "https://a.example.com"}, {Audiences: []string{"api"}}}},
			wantErr: []string{"bearer.issuers[0]", "bearer.issuers[1]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewBearerVerifier(tt.cfg, tt.provs, Options{})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("NewBearerVerifier accepted the config")
				}
				checkMentions(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantIssuers == nil {
				if v != nil {
					t.Errorf("verifier with %d issuers, want none", len(v.issuers))
				}
				return
			}
			got := map[string][]string{}
			for iss, bi := range v.issuers {
				got[iss] = bi.cfg.Audiences
				if bi.cfg.GroupsClaim != "groups" {
					t.Errorf("%s: groups claim %q, want groups", iss, bi.cfg.GroupsClaim)
				}
			}
			if !reflect.DeepEqual(got, tt.wantIssuers) {
				t.Errorf("issuers = %v, want %v", got, tt.wantIssuers)
			}
		})
	}
}

// TestBearerKeysOfTheNamedIssuer: a token naming one trusted issuer but
// signed by another's key is refused: iss only picks the keys.
func TestBearerKeysOfTheNamedIssuer(t *testing.T) {
	a, b := newTestIssuer(t), newTestIssuer(t)
	b.setKeys(rsaOther.jwk())
	clk := newClock()
	v, err := NewBearerVerifier(BearerConfig{Issuers: []BearerIssuer{
		{IssuerURL: a.URL, Audiences: []string{"api"}},
		{IssuerURL: b.URL, Audiences: []string{"api"}},
	}}, nil, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), rsaOther.sign(t, b.bearerClaims(clk.Now()))); err != nil {
		t.Errorf("b's token: %v", err)
	}
	forged := signJWS(t, jose.SigningKey{Algorithm: jose.RS256, Key: rsaOther.priv}, (&jose.SignerOptions{}).WithHeader("kid", rsaOther.kid), a.bearerClaims(clk.Now()))
	if id, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrInvalidBearer) {
		t.Errorf("a's claims under b's key = %+v, %v; want %v", id, err, ErrInvalidBearer)
	}
}

// TestBearerDiscoveryIgnoresCallerCancellation: a client that hangs up
// while its token's issuer is being discovered must not make the issuer
// count as down for everyone else for the next 5 s.
func TestBearerDiscoveryIgnoresCallerCancellation(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	v := bearerVerifier(t, ti, clk, nil)
	token := rsaKey.sign(t, ti.bearerClaims(clk.Now()))
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	v.Verify(gone, token)
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Errorf("Verify after another client gave up = %v, want nil (discovery fetched %d times)", err, ti.discoveryHits.Load())
	}
}
