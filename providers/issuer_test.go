package providers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

// This file holds a hand-built OpenID provider for tokens a real provider
// would never issue (DESIGN.md): forged, mis-signed, mis-addressed. It
// serves discovery, a JWKS and a token endpoint on loopback, counts what it
// is asked, and answers the token request with whatever the test scripted.

const (
	testClientID = "portcullis"
	// testClientSecret is long enough to be an HS256 key (RFC 7518 §3.2), so
	// the "HS256 signed with the client secret" attack is a real signature.
	testClientSecret = "client-secret-long-enough-for-hs256!"
	testRedirectURL  = "https://gw.example.com/oauth2/callback"
	testAccessToken  = "access-token-1"
)

// testKey is one signing key of the test issuer or of an attacker.
type testKey struct {
	alg  jose.SignatureAlgorithm
	kid  string
	priv crypto.Signer
}

var (
	rsaKey   = newTestKey(jose.RS256, "rsa-1")
	rsaOther = newTestKey(jose.RS256, "rsa-2") // a key the issuer does not publish at first
	ecKey    = newTestKey(jose.ES256, "ec-1")
)

func newTestKey(alg jose.SignatureAlgorithm, kid string) testKey {
	var priv crypto.Signer
	var err error
	if alg == jose.ES256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	return testKey{alg: alg, kid: kid, priv: priv}
}

// jwk is the key as the issuer publishes it: public, bound to its alg.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign returns a compact JWS of claims signed with k under k's kid.
func (k testKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return signJWS(t, jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid), claims)
}

func signJWS(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, key, opts, payload)
}

// signPayload signs payload as given, for claim sets json.Marshal would
// reorder.
func signPayload(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// craftJWT assembles a compact JWT by hand, for headers no signing library
// will produce. mac signs the signing input; nil leaves the signature empty.
func craftJWT(t testing.TB, header, claims map[string]any, mac []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	if mac == nil {
		return input + "."
	}
	m := hmac.New(sha256.New, mac)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// atHash is at_hash for an RS256/ES256 token (OpenID Connect Core §3.2.2.9).
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64(sum[:len(sum)/2])
}

// clock is an injectable Now that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// testNow is where every clock starts, so table rows can name times.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenRequest is what the token endpoint received.
type tokenRequest struct {
	Form url.Values
	Auth string // Authorization header
}

type testIssuer struct {
	*httptest.Server

	discoveryHits, jwksHits, tokenHits, userinfoHits atomic.Int64

	mu              sync.Mutex
	meta            map[string]any
	discoveryStatus int // 0 means 200
	keys            []jose.JSONWebKey
	token           http.HandlerFunc
	tokenReqs       []tokenRequest
	userinfo        map[string]any // nil: no userinfo endpoint
}

// newTestIssuer starts an issuer publishing rsaKey and ecKey and advertising
// RS256 only. Its token endpoint answers 400 until the test scripts it.
func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	ti := &testIssuer{keys: []jose.JSONWebKey{rsaKey.jwk(), ecKey.jwk()}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", ti.serveDiscovery)
	mux.HandleFunc("GET /jwks", ti.serveJWKS)
	mux.HandleFunc("POST /token", ti.serveToken)
	mux.HandleFunc("GET /userinfo", ti.serveUserinfo)
	ti.Server = httptest.NewServer(mux)
	t.Cleanup(ti.Close)
	ti.meta = map[string]any{
		"issuer":                                ti.URL,
		"authorization_endpoint":                ti.URL + "/authorize",
		"token_endpoint":                        ti.URL + "/token",
		"jwks_uri":                              ti.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	ti.token = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
	}
	return ti
}

// setMeta changes one discovery field; nil removes it.
func (ti *testIssuer) setMeta(key string, v any) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if v == nil {
		delete(ti.meta, key)
		return
	}
	ti.meta[key] = v
}

// setDiscoveryStatus makes discovery answer status (0 for 200).
func (ti *testIssuer) setDiscoveryStatus(status int) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.discoveryStatus = status
}

// setKeys replaces the published key set.
func (ti *testIssuer) setKeys(keys ...jose.JSONWebKey) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.keys = keys
}

// setUserinfo makes the issuer advertise a userinfo endpoint answering
// claims to the access token testAccessToken (OpenID Connect Core §5.3).
func (ti *testIssuer) setUserinfo(claims map[string]any) {
	ti.setMeta("userinfo_endpoint", ti.URL+"/userinfo")
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.userinfo = claims
}

// reply scripts the token endpoint.
func (ti *testIssuer) reply(h http.HandlerFunc) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.token = h
}

// replyJSON scripts the token endpoint to answer status and v as JSON.
func (ti *testIssuer) replyJSON(status int, v any) {
	ti.reply(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, v) })
}

// replyIDToken scripts a successful token response carrying idToken.
func (ti *testIssuer) replyIDToken(idToken string) {
	ti.replyJSON(http.StatusOK, tokenResponse(idToken))
}

func (ti *testIssuer) lastTokenRequest(t testing.TB) tokenRequest {
	t.Helper()
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if len(ti.tokenReqs) == 0 {
		t.Fatal("the token endpoint was not called")
	}
	return ti.tokenReqs[len(ti.tokenReqs)-1]
}

func (ti *testIssuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	ti.discoveryHits.Add(1)
	ti.mu.Lock()
	status, meta := ti.discoveryStatus, maps.Clone(ti.meta)
	ti.mu.Unlock()
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	writeJSON(w, http.StatusOK, meta)
}

func (ti *testIssuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	ti.jwksHits.Add(1)
	ti.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), ti.keys...)}
	ti.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

func (ti *testIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	ti.tokenHits.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ti.mu.Lock()
	ti.tokenReqs = append(ti.tokenReqs, tokenRequest{Form: r.PostForm, Auth: r.Header.Get("Authorization")})
	h := ti.token
	ti.mu.Unlock()
	h(w, r)
}

func (ti *testIssuer) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	ti.userinfoHits.Add(1)
	ti.mu.Lock()
	claims := maps.Clone(ti.userinfo)
	ti.mu.Unlock()
	if claims == nil || r.Header.Get("Authorization") != "Bearer "+testAccessToken {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, claims)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// tokenResponse is a token endpoint's success answer around idToken ("" for
// none).
func tokenResponse(idToken string) map[string]any {
	r := map[string]any{"access_token": testAccessToken, "token_type": "Bearer", "expires_in": 300}
	if idToken != "" {
		r["id_token"] = idToken
	}
	return r
}

// claims are those of an ID token every check accepts, for attempt a at now.
func (ti *testIssuer) claims(a Attempt, now time.Time) map[string]any {
	return map[string]any{
		"iss":            ti.URL,
		"sub":            "user-1",
		"aud":            testClientID,
		"exp":            now.Add(5 * time.Minute).Unix(),
		"iat":            now.Unix(),
		"nonce":          a.Nonce,
		"email":          "alice@example.com",
		"email_verified": true,
		"name":           "Alice",
		"sid":            "sid-1",
	}
}

// provider builds the provider under test for ti; edit changes the config.
func (ti *testIssuer) provider(t testing.TB, clk *clock, edit func(*Config)) Provider {
	t.Helper()
	cfg := Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg, Options{RedirectURL: testRedirectURL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signIn runs one sign-in through the real path: AuthCodeURL, then Redeem
// of code "code-1", with the token endpoint answering what token returns
// for this attempt.
func signIn(t testing.TB, ti *testIssuer, p Provider, token func(a Attempt) map[string]any) (*session.Session, error) {
	t.Helper()
	a := NewAttempt()
	if _, err := p.AuthCodeURL(context.Background(), a); err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	ti.replyJSON(http.StatusOK, token(a))
	return p.Redeem(context.Background(), "code-1", a)
}
