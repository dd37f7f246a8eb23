package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// clockSkew is how far in the future a session's creation time may lie
// (another replica's clock) before the session is refused.
const clockSkew = time.Minute

// CookieStore keeps the whole session in an encrypted, authenticated cookie
// (gorilla/securecookie: AES-256-CTR then HMAC-SHA256 over name, time and
// ciphertext), chunked when it outgrows one cookie.
type CookieStore struct {
	revoked  revocations // back-channel and admin revocations, this replica only
	used     usedKeys    // back-channel logout jti replay cache
	flight   flight      // refreshes in progress
	recent   recentRefreshes
	carry    carried               // newest state of sessions whose cookie may lag (carry.go)
	opened   decodeCache[*Session] // recently opened cookie values
	jar      cookieJar
	codecs   []*securecookie.SecureCookie
	lifetime time.Duration
	now      func() time.Time
}

// CookieStoreOptions are the collaborators of a CookieStore.
type CookieStoreOptions struct {
	Lifetime time.Duration    // absolute session lifetime; DefaultLifetime when zero
	Now      func() time.Time // time.Now unless a test sets it
}

// NewCookieStore returns a store sealing sessions with keys.
func NewCookieStore(cfg CookieConfig, keys *KeyRing, opts CookieStoreOptions) (*CookieStore, error) {
	if keys == nil {
		return nil, errors.New("session: cookie store needs a key ring")
	}
	jar, err := newCookieJar(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkLifetime(&opts.Lifetime); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	maxLen := maxChunks * (cookieBudget - len(jar.name) - 2)
	return &CookieStore{
		jar:      jar,
		codecs:   keys.codecs(PurposeSession, int(opts.Lifetime/time.Second)+int(clockSkew/time.Second), maxLen, binarySerializer{}),
		lifetime: opts.Lifetime,
		now:      opts.Now,
	}, nil
}

// Name returns the session cookie's name as the browser sees it.
func (c *CookieStore) Name() string { return c.jar.name }

// Lifetime returns the absolute session lifetime.
func (c *CookieStore) Lifetime() time.Duration { return c.lifetime }

// Load implements Store.
func (c *CookieStore) Load(r *http.Request) (*Session, error) {
	value, ok, err := c.jar.read(r)
	if !ok {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	now := c.now()
	s, oldKey, hit := c.opened.get(value, now)
	if hit {
		s = s.clone()
	} else {
		s = new(Session)
		used, err := c.open(value, s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
		}
		oldKey = used > 0
		c.opened.put(value, s.clone(), oldKey, now)
	}
	if err := c.check(s, now); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	if err := c.revoked.check(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	if n := c.carry.newer(s, now); n != nil {
		// The same sign-in, refreshed or seen since this cookie was
		// sealed, and the browser never got the newer cookie (carry.go).
		// It passes the same checks as the cookie did.
		if err := c.check(n, now); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
		}
		if err := c.revoked.check(n); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
		}
		s = n
	}
	s.oldKey = oldKey
	return s, nil
}

// open tries every codec; the first one is the current key. It returns
// the index of the one that opened value.
func (c *CookieStore) open(value string, s *Session) (int, error) {
	var err error
	for i, codec := range c.codecs {
		if err = codec.Decode(c.jar.name, value, s); err == nil {
			return i, nil
		}
	}
	return -1, err
}

// check enforces what securecookie's timestamp cannot: the absolute lifetime
// from the first sign-in (re-sealing on refresh must not extend it) and no
// sessions from the future (SECURITY.md §4.2 items 2–3).
func (c *CookieStore) check(s *Session, now time.Time) error {
	switch {
	case s.Subject == "" || s.Issuer == "":
		return errors.New("no identity")
	case s.CreatedAt.IsZero() || s.ExpiresAt.IsZero():
		return errors.New("no lifetime")
	case s.CreatedAt.After(now.Add(clockSkew)):
		return errors.New("created in the future")
	case s.Expired(now):
		return errors.New("expired")
	case s.ExpiresAt.Sub(s.CreatedAt) > c.lifetime+clockSkew:
		return errors.New("lifetime longer than configured")
	}
	return nil
}

// Save implements Store. A session without CreatedAt/ExpiresAt gets them now.
func (c *CookieStore) Save(w http.ResponseWriter, r *http.Request, s *Session) error {
	now := c.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.ID == "" {
		s.ID = newSessionID()
	}
	if s.ExpiresAt.IsZero() || s.ExpiresAt.Sub(s.CreatedAt) > c.lifetime {
		s.ExpiresAt = s.CreatedAt.Add(c.lifetime)
	}
	s.oldKey = false
	value, err := c.codecs[0].Encode(c.jar.name, s)
	if err != nil {
		// securecookie refuses values over its MaxLength, which is the
		// room the chunks have.
		return fmt.Errorf("%w: sealing session cookie: %v", ErrTooLarge, err)
	}
	// The browser keeps the cookie until the session's absolute end.
	maxAge := s.ExpiresAt.Sub(now)
	if maxAge <= 0 {
		return errors.New("session: saving an expired session")
	}
	c.carry.remember(s, now)
	if isForwardAuth(r) && !c.jar.single(r, value) {
		// A proxy passing one Set-Cookie of several would leave the
		// browser with chunks that open as nothing: carry the new state
		// here instead (carry.go). The browser's chunks stay valid.
		return nil
	}
	return c.jar.write(w, r, value, maxAge)
}

// Clear implements Store: it expires every cookie chunk, and remembers the
// session as signed out so that a copy of the cookie taken earlier is
// refused by this replica until the session would have ended (other
// replicas cannot know; the Redis store deletes the session everywhere).
func (c *CookieStore) Clear(w http.ResponseWriter, r *http.Request) error {
	if s, err := c.Load(r); err == nil {
		c.revoked.end(s, c.now())
		c.carry.forget(s.ID)
	}
	c.jar.expire(w, r)
	return nil
}

// Seal returns the cookie value for s without setting it; tests and the
// benchmark harness use it to measure and replay cookies.
func (c *CookieStore) Seal(s *Session) (string, error) {
	return c.codecs[0].Encode(c.jar.name, s)
}

// newSessionID returns 96 random bits, base64url.
func newSessionID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
