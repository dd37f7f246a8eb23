package demo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the provider's in-memory op.Storage. One mutex guards every map;
// the methods that implement op.Storage live next to the step of the flow
// they serve (authrequest.go, tokens.go, claims.go, clients.go, keys.go,
// service.go).
type storage struct {
	issuer     string
	accessTTL  time.Duration
	idTTL      time.Duration
	refreshTTL time.Duration
	now        func() time.Time
	key        signingKey

	mu            sync.Mutex
	users         map[string]*User  // by ID
	userIDs       map[string]string // username → ID
	userOrder     []string          // IDs in the order they were added, for the login hints
	clients       map[string]Client // by ID
	authRequests  map[string]*authRequest
	codes         map[string]string // authorization code → auth request ID
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken // by token value
	rotated       map[string]time.Time     // refresh tokens rotated away → when they would have expired
	lastSIDs      map[string]string        // user ID → sid of their latest sign-in
	lastSweep     time.Time
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

// Lifetimes of the short-lived protocol state, and how often expired entries
// are swept so memory stays bounded under a load test.
const (
	authRequestTTL = 10 * time.Minute
	codeTTL        = time.Minute
	sweepEvery     = 30 * time.Second
)

// errNotFound is what lookups of unknown or expired state return. zitadel
// turns it into invalid_grant or a 400; the message never carries a token.
var errNotFound = errors.New("demo: not found or expired")

func newStorage(cfg Config, key signingKey) *storage {
	return &storage{
		issuer:        exactIssuer(cfg),
		accessTTL:     cfg.AccessTokenLifetime,
		idTTL:         cfg.IDTokenLifetime,
		refreshTTL:    cfg.RefreshTokenLifetime,
		now:           cfg.Now,
		key:           key,
		users:         make(map[string]*User),
		userIDs:       make(map[string]string),
		clients:       make(map[string]Client),
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]string),
		accessTokens:  make(map[string]*accessToken),
		refreshTokens: make(map[string]*refreshToken),
		rotated:       make(map[string]time.Time),
		lastSIDs:      make(map[string]string),
	}
}

// exactIssuer is the issuer as discovery and tokens spell it.
func exactIssuer(cfg Config) string {
	if cfg.IssuerTrailingSlash {
		return cfg.Issuer + "/"
	}
	return cfg.Issuer
}

// sweepLocked drops expired auth requests, codes and tokens, at most once per
// sweepEvery. Callers hold s.mu and pass the current time.
func (s *storage) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for id, ar := range s.authRequests {
		if ar.expired(now) {
			delete(s.authRequests, id)
		}
	}
	for code, id := range s.codes {
		if ar, ok := s.authRequests[id]; !ok || now.After(ar.codeExpires) {
			delete(s.codes, code)
		}
	}
	for id, at := range s.accessTokens {
		if now.After(at.expires) {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if now.After(rt.expires) {
			delete(s.refreshTokens, tok)
		}
	}
	for tok, expires := range s.rotated {
		if now.After(expires) {
			delete(s.rotated, tok)
		}
	}
}

// Health implements op.Storage; memory is always ready.
func (s *storage) Health(context.Context) error { return nil }

// ValidateJWTProfileScopes implements op.Storage: the JWT-profile grant
// (RFC 7523 §2.1) is not supported; client keys serve client
// authentication only (GetKeyByIDAndClientID).
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("demo: the JWT profile grant is not supported")
}
