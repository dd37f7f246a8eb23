package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

// assertion.go signs the identity for upstreams that ask for it: a short
// JWT (ES256) in a header, with iss = the gateway, aud = the upstream,
// sub, email, groups, iat and exp. Unlike plain identity headers it cannot
// be forged by anyone who reaches the application without passing the
// gateway. The keys are derived from the cookie secrets (HKDF, one key per
// rotation period), so every replica signs with the same key and publishes
// the same set at /oauth2/jwks.json: the previous, current and next
// period's keys of every configured secret.

// AssertionConfig is the `assertion` section.
type AssertionConfig struct {
	// Lifetime of an assertion; default 2m, at most 5m.
	Lifetime time.Duration `yaml:"lifetime"`
	// Rotation is how often the signing key changes; default 24h.
	Rotation time.Duration `yaml:"rotation"`
}

// UpstreamAssertion is an upstream's `assertion` setting.
type UpstreamAssertion struct {
	// Header carries the JWT; empty turns assertions off for the upstream.
	// X-Portcullis-Assertion is the usual name.
	Header string `yaml:"header"`
	// Audience is the aud claim; default the upstream's URL
	// (scheme://host[:port]).
	Audience string `yaml:"audience"`
}

type asserter struct {
	issuer   string
	keys     *session.KeyRing
	lifetime time.Duration
	rotation time.Duration
	now      func() time.Time

	mu     sync.Mutex
	period int64
	signer jose.Signer
	jwks   []byte
	cache  map[string]cachedAssertion
}

type cachedAssertion struct {
	token string
	exp   time.Time
}

// validate fills the section's defaults and checks its bounds; only
// consulted when some upstream asks for assertions.
func (c *AssertionConfig) validate() error {
	if c.Lifetime == 0 {
		c.Lifetime = 2 * time.Minute
	}
	if c.Lifetime < 10*time.Second || c.Lifetime > 5*time.Minute {
		return fmt.Errorf("assertion.lifetime %v: want between 10s and 5m", c.Lifetime)
	}
	if c.Rotation == 0 {
		c.Rotation = 24 * time.Hour
	}
	if c.Rotation < time.Hour {
		return fmt.Errorf("assertion.rotation %v: want at least 1h", c.Rotation)
	}
	return nil
}

// newAsserter signs for issuer with keys derived from the ring.
func newAsserter(cfg AssertionConfig, issuer string, keys *session.KeyRing, now func() time.Time) (*asserter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &asserter{issuer: issuer, keys: keys, lifetime: cfg.Lifetime, rotation: cfg.Rotation, now: now, period: -1}, nil
}

// periodKey derives the signing key of secret i for a rotation period.
func (a *asserter) periodKey(i int, period int64) (*ecdsa.PrivateKey, string) {
	label := "es256/" + strconv.FormatInt(period, 10)
	for try := 0; ; try++ {
		d := a.keys.Derive(i, session.PurposeAssertion, label+"/"+strconv.Itoa(try), 32)
		// A scalar outside [1, n-1] (probability ~2^-32) is refused by
		// ParseRawPrivateKey; derive the next one.
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err == nil {
			pub, _ := k.PublicKey.Bytes()
			sum := sha256.Sum256(pub)
			return k, base64.RawURLEncoding.EncodeToString(sum[:12])
		}
	}
}

// refresh rebuilds the signer and JWKS when the period changed. a.mu held.
func (a *asserter) refresh(now time.Time) error {
	period := now.Unix() / int64(a.rotation/time.Second)
	if period == a.period {
		return nil
	}
	var set jose.JSONWebKeySet
	for i := 0; i < a.keys.Secrets(); i++ {
		for _, p := range []int64{period - 1, period, period + 1} {
			k, kid := a.periodKey(i, p)
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
	}
	key, kid := a.periodKey(0, period)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return err
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return err
	}
	a.period, a.signer, a.jwks, a.cache = period, signer, jwks, map[string]cachedAssertion{}
	return nil
}

// sign returns the assertion for s to audience, reusing one until half its
// lifetime has passed (signing costs more than the rest of a request).
func (a *asserter) sign(s *session.Session, audience string) (string, error) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refresh(now); err != nil {
		return "", err
	}
	key := s.Issuer + "\x00" + s.Subject + "\x00" + strconv.FormatInt(s.CreatedAt.Unix(), 10) + "\x00" +
		strconv.FormatInt(s.RefreshedAt.Unix(), 10) + "\x00" + audience
	if c, ok := a.cache[key]; ok && now.Before(c.exp.Add(-a.lifetime/2)) {
		return c.token, nil
	}
	claims := map[string]any{
		"iss": a.issuer, "aud": audience, "sub": s.Subject, "iat": now.Unix(), "exp": now.Add(a.lifetime).Unix(),
		"idp": s.Issuer,
	}
	if s.Email != "" && s.EmailVerified {
		claims["email"] = s.Email
	}
	if len(s.Groups) > 0 {
		claims["groups"] = s.Groups
	}
	if s.PreferredUsername != "" {
		claims["preferred_username"] = s.PreferredUsername
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := a.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	if len(a.cache) > 100_000 {
		a.cache = map[string]cachedAssertion{}
	}
	a.cache[key] = cachedAssertion{token: tok, exp: now.Add(a.lifetime)}
	return tok, nil
}

// jwksDocument returns the published key set.
func (a *asserter) jwksDocument() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refresh(a.now()); err != nil {
		return nil, err
	}
	return a.jwks, nil
}

// jwks serves /oauth2/jwks.json.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request, rq *request) error {
	if h.asserter == nil {
		return errorf(http.StatusNotFound, "No upstream receives signed assertions.", fmt.Errorf("no assertion configured"))
	}
	doc, err := h.asserter.jwksDocument()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(doc)
	return nil
}

// assertionAudience is the default aud for an upstream: its origin.
func assertionAudience(u *url.URL) string {
	return u.Scheme + "://" + strings.ToLower(u.Host)
}
