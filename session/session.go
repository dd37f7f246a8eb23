// Package session owns the signed-in state of a browser: the Session and the
// Identity it carries, the Store interface, the encrypted cookie store, the
// per-attempt login cookies, and the keys behind every cookie the gateway sets.
//
// It imports neither proxy nor providers; they depend on it.
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

// Store keeps sessions between requests.
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

// Refresher is implemented by stores that can run a session refresh at
// most once at a time: within a replica (single-flight) and, for shared
// stores, across replicas (a lock in Redis). fn receives the current
// session and returns the refreshed one, which the store saves in place
// (re-issuing cookies on w where the cookie carries the session). Callers
// that lose the race get the winner's result instead of calling fn.
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
// logout with sid), and remembers logout tokens already acted on. The Redis
// store reaches every replica; the cookie store keeps the record on the
// replica that received it. Counts are -1 where sessions cannot be counted
// (cookies).
type Revoker interface {
	RevokeUser(ctx context.Context, issuer, subject string) (int, error)
	RevokeSID(ctx context.Context, issuer, sid string) (int, error)
	// FirstUse records key for ttl and reports whether it was new (the
	// back-channel logout jti replay cache).
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Backend is everything the gateway does with a session store. Both stores
// implement all of it; New returns the one the configuration names.
type Backend interface {
	Store
	Refresher
	Revoker
	// Name is the session cookie's name as browsers see it.
	Name() string
}

// Lister lists and ends single sessions of a user, for the admin API. Only
// the Redis store can: cookie sessions live in browsers.
type Lister interface {
	ListUser(ctx context.Context, issuer, subject string) ([]SessionInfo, error)
	RevokeTicket(ctx context.Context, issuer, subject, id string) error
}

// Pinger reports whether a store's server answers, for /ready. Only the
// Redis store has a server.
type Pinger interface {
	Ready(ctx context.Context) error
}

var (
	_ Backend = (*CookieStore)(nil)
	_ Backend = (*RedisStore)(nil)
	_ Lister  = (*RedisStore)(nil)
	_ Pinger  = (*RedisStore)(nil)
)
