// Package session owns the signed-in state of a browser: the Session and the
// Identity it carries; the Store interface and the capabilities stores add
// (Refresher, Revoker, Backend, Lister, Pinger); the two stores, the
// encrypted cookie store and the Redis store, and New, which picks one; the
// per-attempt login cookies; the keys behind every cookie the gateway sets;
// and the `session` configuration section, which validates itself.
//
// It imports neither proxy nor providers; they depend on it. It reads no
// files, flags or environment (main does) and does not log.
package session

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Identity is who the provider says the user is. Issuer and Subject together
// are the only stable key (OpenID Connect Core §5.7); the rest are attributes.
// Groups and Claims may be shared by copies of a session (a store's cache
// hands out copies): replace them whole, never change them in place.
type Identity struct {
	Issuer            string
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
	Groups            []string
	// User is the value of the provider's user_claim, when one is
	// configured: X-Forwarded-User then carries it, whatever headers.user
	// says (an opaque subject such as Dex's is no name for an app).
	User string
	// Claims holds extra claims the operator selected for policy, each
	// flattened to a list of strings.
	Claims map[string][]string
}

// Session is one signed-in browser.
type Session struct {
	Identity

	// ID names this sign-in: random, minted when the session is first
	// saved, kept through refreshes. It lets one session be ended without
	// ending the user's others.
	ID string
	// Provider is the configured id of the provider the user signed in with.
	Provider string
	// SID is the provider's session id (the ID token's sid claim), kept for
	// back-channel logout.
	SID string

	CreatedAt   time.Time // sign-in time
	RefreshedAt time.Time // last token refresh, zero if never
	LastSeen    time.Time // last use, updated at most every few minutes (idle timeout)
	ExpiresAt   time.Time // absolute end of the session, whatever the tokens say
	TokenExpiry time.Time // expiry of the access token (zero when unknown)

	AccessToken  string // kept only when an upstream needs it
	RefreshToken string // kept only when the provider issued one
	IDToken      string // kept only when logout needs it as id_token_hint

	// handle is the Redis store's ticket for this session, set by its Load
	// and Save: saving a session that has one updates it in place, saving
	// one without mints a fresh ticket. It is never encoded (MarshalBinary
	// writes named fields only) and copies of the session share it.
	handle *ticket
	// oldKey says the cookie was sealed with a secret other than the first:
	// saving the session re-seals it with the current one.
	oldKey bool
}

// SealedWithOldKey reports whether the request's cookie was sealed with a
// cookie secret other than the first. Saving the session re-seals it, so a
// rolled-out new secret reaches every active user before the old one is
// retired.
func (s *Session) SealedWithOldKey() bool { return s.oldKey }

// Expired reports whether the session's absolute lifetime has ended at now.
func (s *Session) Expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// Store keeps sessions between requests. The cookie store keeps the whole
// session, sealed, in the browser's cookie; the Redis store keeps it in
// Redis, sealed under a per-session key, and only a ticket in the cookie.
type Store interface {
	// Load returns the request's session. It returns an error wrapping
	// ErrNoSession when the request carries none, and one wrapping
	// ErrInvalidSession when what it carries is tampered, truncated, expired
	// or sealed with an unknown key; callers treat both as "not signed in".
	// Any other error means the store itself failed.
	Load(r *http.Request) (*Session, error)
	// Save stores s and sets the cookies that name it on w. It must be
	// called before the response header is written.
	Save(w http.ResponseWriter, r *http.Request, s *Session) error
	// Clear ends the request's session and expires every cookie chunk.
	Clear(w http.ResponseWriter, r *http.Request) error
}

// Refresher runs a session refresh at most once at a time. fn receives the
// current session and returns the refreshed one, which the store saves in
// place; callers that lose the race get the winner's result instead of
// calling fn. The cookie store runs one refresh per session within this
// replica (single-flight), re-issues the cookie on every waiting caller's
// w, and remembers the result for a minute for requests that were already
// on their way; replicas do not coordinate. The Redis store adds a lock in
// Redis, so one refresh runs across every replica, and the cookie (the
// ticket) does not change.
type Refresher interface {
	RefreshOnce(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session,
		fn func(ctx context.Context, s *Session) (*Session, error)) (*Session, error)
}

var (
	// ErrUnavailable means the store's backend (Redis) cannot be reached;
	// callers answer 503 rather than treating the user as signed out.
	ErrUnavailable = errors.New("session: store unavailable")
	// ErrNoSession means the request carries no session cookie.
	ErrNoSession = errors.New("session: no session")
	// ErrInvalidSession means the request carries a session cookie that
	// cannot be trusted: tampered, truncated, expired or under an unknown key.
	ErrInvalidSession = errors.New("session: invalid session")
)

// IsAbsent reports whether err means "treat the request as not signed in".
func IsAbsent(err error) bool {
	return errors.Is(err, ErrNoSession) || errors.Is(err, ErrInvalidSession)
}

// Revoker ends sessions from outside the browser that holds them: every
// session of a user, every session of one provider session (back-channel
// logout with sid), and remembers logout tokens already acted on.
//
// The cookie store keeps revocations and used keys in the memory of the
// replica that received them (other replicas still accept the cookies)
// and returns -1 as the count: cookies live in browsers and cannot be
// counted. The Redis store deletes the records in Redis and tells every
// replica's cache at once through pub/sub, returns how many sessions it
// ended, and keeps used keys in Redis for every replica.
type Revoker interface {
	RevokeUser(ctx context.Context, issuer, subject string) (int, error)
	RevokeSID(ctx context.Context, issuer, sid string) (int, error)
	// FirstUse records key for ttl and reports whether it was new (the
	// back-channel logout jti replay cache).
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Backend is everything the gateway does with every session store. Both
// stores implement all of it (checked by the compiler below); New returns
// the one the configuration names. What only the Redis store can do is in
// Lister and Pinger.
type Backend interface {
	Store
	Refresher
	Revoker
	Tokens
	// Name is the session cookie's name as browsers see it.
	Name() string
}

// Lister lists and ends single sessions of a user, for the admin API. Only
// the Redis store implements it, across every replica (the ended session
// leaves every cache through pub/sub); cookie sessions live in browsers and
// cannot be listed.
type Lister interface {
	ListUser(ctx context.Context, issuer, subject string) ([]SessionInfo, error)
	RevokeTicket(ctx context.Context, issuer, subject, id string) error
}

// Pinger reports whether a store's server answers, for /ready. Only the
// Redis store implements it (a PING; the error wraps ErrUnavailable); the
// cookie store has no server and is always ready.
type Pinger interface {
	Ready(ctx context.Context) error
}

var (
	_ Backend = (*CookieStore)(nil)
	_ Backend = (*RedisStore)(nil)
	_ Lister  = (*RedisStore)(nil)
	_ Pinger  = (*RedisStore)(nil)
)
