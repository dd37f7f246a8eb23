// Package providers talks to OAuth2/OpenID Connect identity providers:
// discovery, the authorization-code flow with PKCE, state and nonce, code
// exchange, and ID-token verification. It turns a provider's answer into a
// session.Session and leaves every decision about requests to package proxy.
package providers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// Provider is one configured identity provider.
type Provider interface {
	// ID is the operator's name for the provider (providers[].id).
	ID() string
	// Name is what sign-in pages show (providers[].name, default the id).
	Name() string
	// Issuer is the provider's issuer identifier, or "" for plain OAuth2.
	Issuer() string
	// AuthCodeURL returns where to send the browser to sign in. state, nonce
	// and verifier are fresh for every attempt.
	AuthCodeURL(ctx context.Context, a Attempt) (string, error)
	// CheckResponse validates the authorization response's parameters that
	// must be looked at before the code is redeemed (RFC 9207 iss).
	CheckResponse(ctx context.Context, q url.Values) error
	// Redeem exchanges the code and verifies what comes back, returning a
	// session that is not yet saved.
	Redeem(ctx context.Context, code string, a Attempt) (*session.Session, error)
	// Ready reports whether the provider can serve sign-ins now.
	Ready(ctx context.Context) error
}

// What some providers can do beyond signing in. GitHub's OAuth apps have
// no refresh, no end-session endpoint and no back-channel logout, so these
// are apart from Provider; the compiler checks who has them.
type (
	// Refresher renews a session's tokens and re-reads its identity.
	Refresher interface {
		Refresh(ctx context.Context, s *session.Session) (*session.Session, error)
	}
	// EndSessioner continues a sign-out at the provider (RP-Initiated
	// Logout 1.0 §2).
	EndSessioner interface {
		EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect, state string) (string, error)
	}
	// LogoutVerifier validates back-channel logout tokens (Back-Channel
	// Logout 1.0 §2.6).
	LogoutVerifier interface {
		VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error)
	}
	// Revoker revokes a session's token at the provider when it signs
	// out (RFC 7009 §2.1). ErrNoRevocation: nothing was attempted.
	Revoker interface {
		RevokeTokens(ctx context.Context, s *session.Session) error
	}
	// Prober says whether the provider's sign-in page answers now, so
	// a sign-in is not sent to a provider that is down (reach.go).
	Prober interface {
		Reachable(ctx context.Context) error
	}
	// FrontchannelLogouter says whether the provider's front-channel
	// logout requests are accepted (Front-Channel Logout 1.0 §2).
	FrontchannelLogouter interface {
		FrontchannelLogout() bool
	}
)

var (
	_ Prober         = (*OIDC)(nil)
	_ Refresher      = (*OIDC)(nil)
	_ Refresher      = (*Entra)(nil)
	_ EndSessioner   = (*OIDC)(nil)
	_ EndSessioner   = (*Entra)(nil)
	_ LogoutVerifier = (*OIDC)(nil)
	_ LogoutVerifier = (*Entra)(nil)
	_ Revoker        = (*OIDC)(nil)
	_ Revoker        = (*Entra)(nil)

	_ FrontchannelLogouter = (*OIDC)(nil)
	_ FrontchannelLogouter = (*Entra)(nil)
)

// Attempt is what one sign-in attempt sends and must see echoed.
type Attempt struct {
	State    string
	Nonce    string
	Verifier string // PKCE code_verifier (RFC 7636 §4.1)
	// LoginHint is passed on as login_hint (OpenID Connect Core
	// §3.1.2.1) when LoginHint(it) holds; "" sends none.
	LoginHint string
}

// Options are the collaborators main passes in.
type Options struct {
	// RedirectURL is the gateway's callback: public_url + /oauth2/callback.
	RedirectURL string
	// Transport carries calls to the provider; http.DefaultTransport's
	// settings when nil. Timeouts and size limits wrap it either way.
	Transport http.RoundTripper
	// TransportFor, when set, gives each provider its own transport (main
	// instruments them per provider for metrics), wrapping own: the
	// provider's ca_file transport, or nil for the default. It wins over
	// Transport.
	TransportFor func(id string, own http.RoundTripper) http.RoundTripper
	// Now is time.Now unless a test sets it.
	Now func() time.Time
	// Claims names the extra claims to keep in the session for policy
	// (dotted names reach into nested objects).
	Claims []string
}

// New builds the provider cfg describes. It does no I/O: discovery happens
// in the background and on first use, so the gateway starts while the
// provider is down and reports not ready until it is reachable.
func New(cfg Config, opts Options) (Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.caPool != nil {
		// ca_file: this provider's TLS trusts exactly its CAs.
		opts.Transport = caTransport(cfg.caPool, cfg.Timeout)
	}
	if opts.TransportFor != nil {
		opts.Transport = opts.TransportFor(cfg.ID, opts.Transport)
	}
	if opts.RedirectURL == "" {
		return nil, fmt.Errorf("providers: %s: no redirect URL", cfg.ID)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch cfg.Type {
	case "oidc":
		return newOIDC(cfg, opts, plainOIDC{}), nil
	case "keycloak":
		return newOIDC(cfg, opts, keycloak{clientID: cfg.ClientID}), nil
	case "google":
		return newOIDC(cfg, opts, google{domains: cfg.HostedDomains}), nil
	case "gitlab":
		return newOIDC(cfg, opts, plainOIDC{}), nil
	case "entra":
		return newEntra(cfg, opts)
	case "github":
		return newGitHub(cfg, opts)
	}
	return nil, fmt.Errorf("providers: %s: unknown type %q (want oidc, keycloak, google, gitlab, entra or github)", cfg.ID, cfg.Type)
}

// Sign-in failures the gateway tells apart. They wrap the cause.
var (
	// ErrUnavailable: the provider could not be reached (connection
	// refused, timeout, TLS failure) or answered 5xx or 429. Only this
	// counts as the provider being unavailable in the metrics and logs.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrBadResponse: the provider answered, but with something unusable
	// (a 2xx token response that is not a token response: bad JSON, an
	// unexpected content type, an oversize body, no access_token; a
	// redirect). The gateway says 502, but it is the provider misbehaving,
	// or someone answering in its place, not an outage.
	ErrBadResponse = errors.New("identity provider sent an unusable answer")
	// ErrRejected: the provider refused the code (invalid_grant and friends).
	ErrRejected = errors.New("identity provider rejected the sign-in")
	// ErrInvalidToken: what the provider returned failed verification.
	ErrInvalidToken = errors.New("invalid ID token")
	// ErrUnverifiedEmail: the identity's email is not verified.
	ErrUnverifiedEmail = errors.New("email address not verified by the identity provider")
	// ErrMixUp: the authorization response names another issuer (RFC 9207).
	ErrMixUp = errors.New("authorization response from an unexpected issuer")
	// ErrNotAdmitted: the provider vouched for the user, but the provider
	// type's own restriction (Google hosted domain, Entra tenant, GitHub
	// organisation) does not admit them.
	ErrNotAdmitted = errors.New("identity not admitted by the provider's restrictions")
)

// NewAttempt returns fresh values for one sign-in: 256-bit state and nonce
// (OpenID Connect Core §15.5.2 asks for enough entropy), and a PKCE
// verifier of 32 random bytes (RFC 7636 §7.1).
func NewAttempt() Attempt {
	return Attempt{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier()}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
