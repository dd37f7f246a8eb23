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
	"slices"
	"strings"
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
)

var (
	_ Refresher      = (*OIDC)(nil)
	_ Refresher      = (*Entra)(nil)
	_ EndSessioner   = (*OIDC)(nil)
	_ EndSessioner   = (*Entra)(nil)
	_ LogoutVerifier = (*OIDC)(nil)
	_ LogoutVerifier = (*Entra)(nil)
)

// Attempt is what one sign-in attempt sends and must see echoed.
type Attempt struct {
	State    string
	Nonce    string
	Verifier string // PKCE code_verifier (RFC 7636 §4.1)
}

// Config is one entry of the `providers` list.
type Config struct {
	// ID names the provider in routes, sessions and logs. Required, unique.
	ID string `yaml:"id"`
	// Type is the provider kind: oidc (generic: Okta, Auth0, Dex,
	// Authentik, Zitadel, …), keycloak, google, gitlab, entra or github.
	// See docs/providers.md for what each adds.
	Type string `yaml:"type"`
	// Name is shown to users on sign-in pages; defaults to ID.
	Name string `yaml:"name"`
	// IssuerURL is the OpenID issuer; discovery reads
	// IssuerURL/.well-known/openid-configuration and the issuer it names
	// must equal IssuerURL exactly (OpenID Connect Discovery §4.3).
	IssuerURL string `yaml:"issuer_url"`
	// ClientID and ClientSecret are the credentials registered at the provider.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// Scopes requested; default [openid, email, profile]. openid is added
	// when missing. Add offline_access for refresh tokens where the provider
	// wants it.
	Scopes []string `yaml:"scopes"`
	// SigningAlgs are the ID-token algorithms accepted (RFC 8725 §3.1);
	// default: the asymmetric algorithms the provider advertises. HS* and
	// none are never accepted.
	SigningAlgs []string `yaml:"signing_algs"`
	// GroupsClaim names the claim holding groups, dotted for nested claims
	// (realm_access.roles). Default "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// Userinfo says when to ask the userinfo endpoint for groups and the
	// claims the policy names: "auto" (default) when the ID token lacks
	// them, "never" to rely on the ID token alone.
	Userinfo string `yaml:"userinfo"`
	// EndSession says whether sign-out continues to the provider's
	// end_session_endpoint (RP-Initiated Logout): "auto" (default: when
	// discovery names one) or "never".
	EndSession string `yaml:"end_session"`
	// Timeout bounds every call to the provider. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// HostedDomains (google) admits only Google Workspace accounts whose ID
	// token's hd claim is one of these domains; checked on the token, not
	// only requested.
	HostedDomains []string `yaml:"hosted_domains"`
	// Tenant (entra) is the Entra ID tenant (directory) ID, or
	// "organizations" / "common" for multi-tenant apps; Tenants then lists
	// the tenant IDs admitted (empty: any).
	Tenant  string   `yaml:"tenant"`
	Tenants []string `yaml:"tenants"`
	// GraphURL (entra) is Microsoft Graph's base URL, for groups overage.
	GraphURL string `yaml:"graph_url"`
	// BaseURL (github) is GitHub Enterprise Server's URL; empty for github.com.
	BaseURL string `yaml:"base_url"`
	// Orgs and Teams (github) admit only members of these organisations or
	// teams ("org/team-slug"). Both empty: any GitHub user.
	Orgs  []string `yaml:"orgs"`
	Teams []string `yaml:"teams"`
	// InsecureAllowUnverifiedEmail accepts identities whose email_verified
	// claim is not true. It MUST stay off unless the provider never lets
	// users set an address they do not own: otherwise anyone can claim any
	// email, and email rules let them in.
	InsecureAllowUnverifiedEmail bool `yaml:"insecure_allow_unverified_email"`
}

// Options are the collaborators main passes in.
type Options struct {
	// RedirectURL is the gateway's callback: public_url + /oauth2/callback.
	RedirectURL string
	// Transport carries calls to the provider; http.DefaultTransport's
	// settings when nil. Timeouts and size limits wrap it either way.
	Transport http.RoundTripper
	// TransportFor, when set, gives each provider its own transport (main
	// instruments them per provider for metrics); it wins over Transport.
	TransportFor func(id string) http.RoundTripper
	// Now is time.Now unless a test sets it.
	Now func() time.Time
	// Claims names the extra claims to keep in the session for policy
	// (dotted names reach into nested objects).
	Claims []string
}

// DefaultScopes are requested when a provider lists none.
var DefaultScopes = []string{"openid", "email", "profile"}

// New builds the provider cfg describes. It does no I/O: discovery happens
// in the background and on first use, so the gateway starts while the
// provider is down and reports not ready until it is reachable.
func New(cfg Config, opts Options) (Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if opts.TransportFor != nil {
		opts.Transport = opts.TransportFor(cfg.ID)
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

// asymmetricAlgs are the JWS algorithms we accept at all (RFC 8725 §3.1:
// the caller fixes the set; MAC algorithms would make the client secret a
// signing key, and none is no signature).
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("providers: %s: "+format, append([]any{c.ID}, args...)...))
	}
	if c.ID == "" {
		c.ID = "?"
		bad("id is required")
	} else if strings.Trim(c.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		bad("id %q: use letters, digits, - and _", c.ID)
	}
	if c.Type == "" {
		c.Type = "oidc"
	}
	// A key of another type would be ignored without a word: orgs on an
	// oidc provider would read like a restriction and admit everyone.
	if c.Type != "github" && (c.BaseURL != "" || len(c.Orgs) > 0 || len(c.Teams) > 0) {
		bad("base_url, orgs and teams apply only to type github")
	}
	if c.Type != "entra" && (c.Tenant != "" || len(c.Tenants) > 0 || c.GraphURL != "") {
		bad("tenant, tenants and graph_url apply only to type entra")
	}
	if c.Type == "github" && c.IssuerURL != "" {
		bad("issuer_url is not used by type github (GitHub has no OpenID discovery); set base_url for GitHub Enterprise Server")
	}
	c.typeDefaults()
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.Type != "github" { // github's issuer is base_url, checked in validateGitHub
		if problem := plainURLProblem(c.IssuerURL); problem != "" {
			bad("issuer_url %s", problem)
		}
	}
	if c.ClientID == "" {
		bad("client_id is required")
	}
	if c.ClientSecret == "" {
		bad("client_secret is required (or client_secret_file)")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") && c.Type != "github" { // GitHub is plain OAuth2
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	for _, a := range c.SigningAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			bad("signing_algs: %q is not accepted (want one of %s)", a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	switch c.EndSession {
	case "":
		c.EndSession = "auto"
	case "auto", "never":
	default:
		bad("end_session %q: want auto or never", c.EndSession)
	}
	switch c.Userinfo {
	case "":
		c.Userinfo = "auto"
	case "auto", "never":
	default:
		bad("userinfo %q: want auto or never", c.Userinfo)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		bad("timeout %v must be between 0 and 1m", c.Timeout)
	}
	switch c.Type {
	case "entra":
		c.validateEntra(bad)
	case "github":
		c.validateGitHub(bad)
	}
	return errors.Join(errs...)
}

// plainURLProblem says what is wrong with raw as the base of a provider's
// URLs, or "" when it is a plain https URL (http only for loopback).
func plainURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "is required"
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#"):
		return fmt.Sprintf("%q is not a plain http(s) URL", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Sprintf("%q must use https (http only for loopback)", raw)
	}
	return ""
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Sign-in failures the gateway tells apart. They wrap the cause.
var (
	// ErrUnavailable: the provider could not be reached or answered 5xx.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrRejected: the provider refused the code (invalid_grant and friends).
	ErrRejected = errors.New("identity provider rejected the sign-in")
	// ErrInvalidToken: what the provider returned failed verification.
	ErrInvalidToken = errors.New("invalid ID token")
	// ErrUnverifiedEmail: the identity's email is not verified.
	ErrUnverifiedEmail = errors.New("email address not verified by the identity provider")
	// ErrMixUp: the authorization response names another issuer (RFC 9207).
	ErrMixUp = errors.New("authorization response from an unexpected issuer")
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
