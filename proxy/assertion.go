package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

// assertion.go signs the identity for upstreams: a short JWT (RFC 7519,
// a JWS compact serialization per RFC 7515, ES256) in a header, with iss =
// the gateway, aud = the upstream, sub, email, groups, iat and exp. It is
// on by default for every upstream (X-Portcullis-Assertion) and in
// forward-auth answers; an upstream opts out with assertion.disabled. Unlike plain identity headers it cannot
// be forged by anyone who reaches the application without passing the
// gateway. The keys are derived from the cookie secrets (HKDF, one key per
// rotation period), so every replica signs with the same key and publishes
// the same set at /oauth2/jwks.json: the previous, current and next
// period's keys of every configured secret.

// DefaultAssertionHeader carries the assertion unless assertion.header
// names another.
const DefaultAssertionHeader = "X-Portcullis-Assertion"

// AssertionConfig is the `assertion` section.
type AssertionConfig struct {
	// Header carries the JWT to every upstream and in forward-auth answers;
	// default X-Portcullis-Assertion. An upstream may name its own.
	Header string `yaml:"header"`
	// Lifetime of an assertion; default 2m, at most 5m.
	Lifetime time.Duration `yaml:"lifetime"`
	// Rotation is how often the signing key changes; default 24h.
	Rotation time.Duration `yaml:"rotation"`
}

// UpstreamAssertion is an upstream's `assertion` setting.
type UpstreamAssertion struct {
	// Header carries the JWT to this upstream; default assertion.header.
	Header string `yaml:"header"`
	// Audience is the aud claim; default the upstream's URL
	// (scheme://host[:port]).
	Audience string `yaml:"audience"`
	// Disabled sends this upstream no assertion. Its client-sent copies are
	// still removed.
	Disabled bool `yaml:"disabled"`
}

type asserter struct {
	issuer   string
	keys     *session.KeyRing
	lifetime time.Duration
	rotation time.Duration
	now      func() time.Time
	seed     maphash.Seed

	mu    sync.RWMutex
	state *assertionKeys                // the current period's; replaced, never changed
	cache map[uint64][]*cachedAssertion // by assertionHash; reset with each period
	size  int
}

// assertionKeys are one rotation period's signer and published set.
type assertionKeys struct {
	period int64
	signer jose.Signer
	jwks   []byte
}

// cachedAssertion is a signed assertion and everything its claims were
// made of, compared in full on a hit so a hash collision cannot hand one
// identity's assertion to another.
type cachedAssertion struct {
	value    []string // the header value, shared: header maps get the slice, never write through it
	fresh    time.Time
	issuer   string
	subject  string
	email    string
	username string
	groups   []string
	audience string
}

// maxCachedAssertions bounds the cache; past it, it starts over.
const maxCachedAssertions = 100_000

// validate fills the section's defaults and checks its bounds.
func (c *AssertionConfig) validate() error {
	if c.Header == "" {
		c.Header = DefaultAssertionHeader
	}
	if err := assertionHeaderOK(c.Header); err != nil {
		return fmt.Errorf("assertion.header: %w", err)
	}
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

// reservedHeaders may not carry the assertion: every request's copy of an
// assertion header is removed, and these mean something else.
var reservedHeaders = newHeaderSet("Authorization", "Cookie", "Host", "Connection", "Content-Length", "Content-Type",
	"Transfer-Encoding", "Upgrade", "Te", "Trailer", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Set-Cookie")

// assertionHeaderOK checks a header name the assertion may be sent in.
func assertionHeaderOK(name string) error {
	switch {
	case !validHeaderName(name):
		return fmt.Errorf("%q is not a header name", name)
	case reservedHeaders.has(name):
		return fmt.Errorf("%q is a header HTTP itself uses", name)
	}
	return nil
}

// newAsserter signs for issuer with keys derived from the ring.
func newAsserter(cfg AssertionConfig, issuer string, keys *session.KeyRing, now func() time.Time) (*asserter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &asserter{issuer: issuer, keys: keys, lifetime: cfg.Lifetime, rotation: cfg.Rotation, now: now, seed: maphash.MakeSeed()}, nil
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

func (a *asserter) periodOf(now time.Time) int64 { return now.Unix() / int64(a.rotation/time.Second) }

// current returns the keys of now's period, building them (and starting
// the cache over) when the period changed.
func (a *asserter) current(now time.Time) (*assertionKeys, error) {
	period := a.periodOf(now)
	a.mu.RLock()
	st := a.state
	a.mu.RUnlock()
	if st != nil && st.period == period {
		return st, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != nil && a.state.period == period {
		return a.state, nil
	}
	st, err := a.build(period)
	if err != nil {
		return nil, err
	}
	a.state, a.cache, a.size = st, map[uint64][]*cachedAssertion{}, 0
	return st, nil
}

// build derives a period's signer and the set it publishes: the previous,
// current and next period's key of every configured secret, so replicas
// whose clocks straddle a rotation verify each other (RFC 7517 key set).
func (a *asserter) build(period int64) (*assertionKeys, error) {
	var set jose.JSONWebKeySet
	for i := 0; i < a.keys.Secrets(); i++ {
		for _, p := range []int64{period - 1, period, period + 1} {
			k, kid := a.periodKey(i, p)
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
	}
	key, kid := a.periodKey(0, period)
	// RFC 7515 §4.1.4 kid, §4.1.9 typ "JWT" (RFC 7519 §5.1).
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return &assertionKeys{period: period, signer: signer, jwks: jwks}, nil
}

// assertionHash hashes what an assertion's claims are made of. No
// allocation: this runs on every proxied request.
func (a *asserter) assertionHash(s *session.Session, audience string) uint64 {
	var h maphash.Hash
	h.SetSeed(a.seed)
	for _, v := range [...]string{s.Issuer, s.Subject, a.verifiedEmail(s), s.PreferredUsername, audience} {
		h.WriteString(v)
		h.WriteByte(0)
	}
	for _, g := range s.Groups {
		h.WriteString(g)
		h.WriteByte(1)
	}
	return h.Sum64()
}

func (*asserter) verifiedEmail(s *session.Session) string {
	if s.EmailVerified {
		return s.Email
	}
	return ""
}

func (c *cachedAssertion) matches(a *asserter, s *session.Session, audience string) bool {
	return c.issuer == s.Issuer && c.subject == s.Subject && c.email == a.verifiedEmail(s) &&
		c.username == s.PreferredUsername && c.audience == audience && slices.Equal(c.groups, s.Groups)
}

// sign returns the assertion for s to audience.
func (a *asserter) sign(s *session.Session, audience string) (string, error) {
	v, err := a.header(s, audience)
	if err != nil {
		return "", err
	}
	return v[0], nil
}

// header returns the header value of the assertion for s to audience. An
// assertion is reused until half its lifetime has passed: signing costs
// more than the rest of a request, and the claims depend only on the
// identity and the audience, so a hit is a map lookup under a read lock.
func (a *asserter) header(s *session.Session, audience string) ([]string, error) {
	now := a.now()
	st, err := a.current(now)
	if err != nil {
		return nil, err
	}
	k := a.assertionHash(s, audience)
	a.mu.RLock()
	if a.state == st {
		for _, c := range a.cache[k] {
			if now.Before(c.fresh) && c.matches(a, s, audience) {
				a.mu.RUnlock()
				return c.value, nil
			}
		}
	}
	a.mu.RUnlock()
	c, err := a.signNew(st, s, audience, now)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.state == st {
		if a.size >= maxCachedAssertions {
			a.cache, a.size = map[uint64][]*cachedAssertion{}, 0
		}
		// Replace stale entries of the same identity rather than pile up.
		kept := a.cache[k][:0:0]
		for _, old := range a.cache[k] {
			if !old.matches(a, s, audience) {
				kept = append(kept, old)
			}
		}
		a.cache[k] = append(kept, c)
		a.size++
	}
	a.mu.Unlock()
	return c.value, nil
}

// signNew signs a fresh assertion (RFC 7519 §4.1 registered claims).
func (a *asserter) signNew(st *assertionKeys, s *session.Session, audience string, now time.Time) (*cachedAssertion, error) {
	claims := map[string]any{
		"iss": a.issuer, "aud": audience, "sub": s.Subject, "iat": now.Unix(), "exp": now.Add(a.lifetime).Unix(),
		"idp": s.Issuer,
	}
	email := a.verifiedEmail(s)
	if email != "" {
		claims["email"] = email
	}
	if len(s.Groups) > 0 {
		claims["groups"] = s.Groups
	}
	if s.PreferredUsername != "" {
		claims["preferred_username"] = s.PreferredUsername
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	jws, err := st.signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return &cachedAssertion{value: []string{tok}, fresh: now.Add(a.lifetime / 2), issuer: s.Issuer, subject: s.Subject,
		email: email, username: s.PreferredUsername, groups: slices.Clone(s.Groups), audience: audience}, nil
}

// jwksDocument returns the published key set.
func (a *asserter) jwksDocument() ([]byte, error) {
	st, err := a.current(a.now())
	if err != nil {
		return nil, err
	}
	return st.jwks, nil
}

// jwks serves /oauth2/jwks.json (RFC 7517 §5), always: upstreams and
// ingresses verify assertions against it.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request, rq *request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "Use GET to fetch the keys.", fmt.Errorf("method %s", r.Method))
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
