package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Provider is the OpenID Provider: zitadel's op handler on our storage, plus
// the login and signed-out pages. It serves everything under the issuer's
// path. All methods are safe for concurrent use.
type Provider struct {
	issuer    string
	showHints bool
	log       *slog.Logger
	wild      wildOptions

	store   *storage
	op      *op.Provider
	stats   *counters
	handler http.Handler
}

// Paths of our own pages, relative to the issuer. zitadel's endpoints are
// /.well-known/openid-configuration, /authorize, /authorize/callback,
// /oauth/token, /oauth/introspect, /userinfo, /revoke, /end_session, /keys.
const (
	loginPath     = "/login"
	signedOutPath = "/signed-out"
)

// supportedScopes are the scopes the provider knows; zitadel drops others
// from authorization requests, and the client_credentials grant too.
var supportedScopes = []string{
	oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, "groups",
}

// New builds a provider from cfg; cfg.Issuer is required (Start fills it).
func New(cfg Config) (*Provider, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key, err := newSigningKey(cfg.SigningKey, cfg.KeyID)
	if err != nil {
		return nil, err
	}
	store := newStorage(cfg, key)
	for _, u := range cfg.Users {
		if err := store.addUser(u); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.Clients {
		if err := store.addClient(c); err != nil {
			return nil, err
		}
	}

	// The crypto key encrypts authorization codes and opaque access tokens
	// (AES-256-GCM). It is new for every provider: nothing survives a restart.
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	opConfig := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "demo",
		DefaultLogoutRedirectURI: cfg.Issuer + signedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		AuthMethodPrivateKeyJWT:  true,
		GrantTypeRefreshToken:    true,
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), "groups"),
		SupportedScopes:          slices.Clone(supportedScopes),
	}
	// WithAllowInsecure lets the issuer be plain http, as it is on loopback.
	opProvider, err := op.NewProvider(opConfig, store, op.StaticIssuer(store.issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("demo: creating the OpenID provider: %w", err)
	}

	p := &Provider{
		issuer:    store.issuer,
		showHints: cfg.ShowUserHints,
		log:       cfg.Logger,
		wild:      wildOptions{noEndSession: cfg.NoEndSession, refreshReuseError: cfg.RefreshReuseError, requireIDTokenHint: cfg.RequireIDTokenHint},
		store:     store,
		op:        opProvider,
		stats:     newCounters(),
	}
	p.handler = p.routes()
	return p, nil
}

// routes mounts our pages and zitadel's handler under the issuer's path.
func (p *Provider) routes() http.Handler {
	prefix := p.issuerPath()
	mux := http.NewServeMux()
	mux.Handle("GET "+prefix+loginPath, p.handle(p.loginPage))
	mux.Handle("POST "+prefix+loginPath, p.handle(p.loginSubmit))
	mux.Handle("GET "+prefix+signedOutPath, p.handle(p.signedOut))
	mux.Handle(prefix+"/", http.StripPrefix(prefix, p.countRequests(p.noStoreTokens(p.wildBehaviour(p.op)))))
	return p.logRequests(mux)
}

// issuerPath is the path of the issuer URL, "" for a bare host.
func (p *Provider) issuerPath() string {
	u, _ := url.Parse(p.issuer) // validated by normaliseIssuer
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// ServeHTTP serves discovery, authorize, token, userinfo, keys, revoke,
// introspect, end_session and the login UI.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Issuer returns the issuer URL, without a trailing slash unless
// Config.IssuerTrailingSlash.
func (p *Provider) Issuer() string { return p.issuer }

// AddUser registers another user; it fails on a duplicate ID or username.
func (p *Provider) AddUser(u User) error { return p.store.addUser(u) }

// AddClient registers another client; it fails on a duplicate ID.
func (p *Provider) AddClient(c Client) error { return p.store.addClient(c) }

// RevokeRefreshTokens makes every refresh token of userID fail with
// invalid_grant from now on, and reports how many there were. Access tokens
// already issued keep working until they expire.
func (p *Provider) RevokeRefreshTokens(userID string) int {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.revokeRefreshTokensLocked(func(rt *refreshToken) bool { return rt.userID == userID })
}

// SessionID is the sid of userID's latest sign-in, as its ID tokens carry
// it, or "" (for front-channel logout requests in tests).
func (p *Provider) SessionID(userID string) string {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.lastSIDs[userID]
}

// SetGroups replaces the user's groups. Tokens issued later, refreshes
// included, and userinfo calls see the new groups; an empty list drops the
// claim. It fails only for an unknown user.
func (p *Provider) SetGroups(userID string, groups []string) error {
	return p.store.updateUser(userID, func(u *User) error {
		u.Groups = slices.Clone(groups)
		return nil
	})
}

// SetClaim sets one of the user's ExtraClaims for tokens issued later; a nil
// value removes it. The provider keeps value, so do not modify it
// afterwards. It fails for an unknown user or a claim the provider sets
// itself (iss, sub, email, groups, ...).
func (p *Provider) SetClaim(userID, claim string, value any) error {
	if reservedClaims[claim] {
		return fmt.Errorf("demo: claim %q is set by the provider", claim)
	}
	return p.store.updateUser(userID, func(u *User) error {
		if value == nil {
			delete(u.ExtraClaims, claim)
			return nil
		}
		if u.ExtraClaims == nil {
			u.ExtraClaims = make(map[string]any)
		}
		u.ExtraClaims[claim] = value
		return nil
	})
}

// SigningKey returns the key that signs ID tokens and JWT access tokens,
// and its kid, so tests can forge logout tokens or tampered ID tokens that
// only signatures tell apart.
func (p *Provider) SigningKey() (key *rsa.PrivateKey, keyID string) {
	return p.store.key.key, p.store.key.id
}

// noStoreTokens adds the Cache-Control: no-store that RFC 6749, section 5.1,
// requires on token responses and zitadel leaves out.
func (p *Provider) noStoreTokens(next http.Handler) http.Handler {
	token := p.op.TokenEndpoint().Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == token {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one debug line per request. The query is left out:
// it carries codes, state and authorization request IDs.
func (p *Provider) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "demo idp request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("dur", time.Since(start)))
	})
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
