package demo

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config describes the provider. New fills the defaults and validates it.
type Config struct {
	// Issuer is the provider's URL, e.g. "http://127.0.0.1:9000". It may end
	// in a path ("http://127.0.0.1:9000/realms/demo"); every endpoint then
	// lives under that path. Start fills it from the bound address when empty.
	Issuer string

	Users   []User
	Clients []Client

	AccessTokenLifetime  time.Duration // default 5m
	IDTokenLifetime      time.Duration // default 5m
	RefreshTokenLifetime time.Duration // default 24h; each rotation starts a new lifetime

	// SigningKey signs ID tokens and JWT access tokens (RS256). An RSA-2048
	// key is generated when nil.
	SigningKey *rsa.PrivateKey
	// KeyID is the JWKS "kid"; it defaults to the key's RFC 7638 thumbprint.
	KeyID string

	// ShowUserHints lists the users' usernames (never their passwords) on the
	// login page. Meant for `portcullis demo`, where the passwords are printed
	// on the terminal anyway.
	ShowUserHints bool

	// Logger receives one line per request (debug) and per login attempt;
	// nil discards. zitadel's own messages go to slog.Default regardless.
	Logger *slog.Logger

	// IssuerTrailingSlash makes the issuer end in "/", as authentik's
	// (".../application/o/<slug>/") and often Ory Hydra's do: discovery's
	// issuer, the iss of every token and Issuer() keep the slash, while the
	// endpoints stay where they are without it. Issuer itself is given
	// without the slash (or with it: it is stripped first).
	IssuerTrailingSlash bool
	// NoEndSession makes the provider one without RP-initiated logout, as
	// Dex is: discovery carries no end_session_endpoint and /end_session
	// answers 404.
	NoEndSession bool
	// RefreshReuseError, when set, is the OAuth error code (RFC 6749 §5.2)
	// that answers a refresh token a refresh already rotated away, or one
	// Provider.RedeemRefreshTokens redeemed, instead of invalid_grant. Dex
	// answers "invalid_request" there. The answer comes before client
	// authentication; revoked, expired and unknown tokens still get
	// invalid_grant.
	RefreshReuseError string
	// RequireIDTokenHint makes end_session refuse a request without
	// id_token_hint with a 400, as Ory Hydra and Okta do.
	RequireIDTokenHint bool

	// Now drives the expiry of authorization requests, codes, access and
	// refresh tokens. zitadel always reads the wall clock: the iat and exp
	// claims of ID tokens come from it, and the token response's expires_in
	// is the access token's expiry by Now minus the wall clock. Defaults to
	// time.Now.
	Now func() time.Time
}

// User is a person who can sign in with a username and password.
type User struct {
	ID       string // the "sub" claim; defaults to Username
	Username string
	Password string

	Email         string
	EmailVerified bool

	Name              string
	GivenName         string
	FamilyName        string
	PreferredUsername string // defaults to Username

	// Groups is emitted as the "groups" claim (ID token and userinfo)
	// whenever it is non-empty, whatever the scopes.
	Groups []string
	// ExtraClaims are emitted as-is in the ID token and userinfo, whatever the
	// scopes. Names the provider sets itself (see reservedClaims) are refused.
	ExtraClaims map[string]any
}

// Client is a confidential OAuth2 client, such as the gateway, or a machine
// client using the client_credentials grant. The zero value of every option
// keeps the default: opaque access tokens, the authorization-code flow only,
// aud naming the client alone, userinfo claims in the ID token.
type Client struct {
	ID     string
	Secret string

	// RedirectURIs are matched exactly. A client needs at least one, unless
	// it is a machine client (ClientCredentials) that never signs users in.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string // matched exactly

	// JWTAccessTokens makes the access tokens issued to this client RS256
	// JWTs signed with the provider's key (the JWKS at /keys verifies them)
	// instead of opaque strings. A user's carries the claims userinfo would
	// answer; a machine client's its ServiceEmail and ServiceGroups. doc.go
	// lists the claims.
	JWTAccessTokens bool

	// ClientCredentials lets the client use the client_credentials grant
	// (RFC 6749, section 4.4) with its ID and secret; the token's subject is
	// the client ID. Other clients asking for that grant get
	// unauthorized_client.
	ClientCredentials bool
	// ServiceGroups is the "groups" claim of the client's client_credentials
	// access tokens, when non-empty. Needs ClientCredentials.
	ServiceGroups []string
	// ServiceEmail is the "email" claim, with "email_verified": true, of the
	// client's client_credentials access tokens, when set. Needs
	// ClientCredentials.
	ServiceEmail string

	// Audience is added to the "aud" of the access tokens issued to this
	// client, after the client's own ID, so a resource server can require
	// its own name there. ID tokens keep naming the client alone.
	Audience []string

	// Public makes the client a public one (RFC 6749 §2.1): no secret, the
	// token endpoint takes client_id alone (token_endpoint_auth_method
	// none) and PKCE protects the code.
	Public bool
	// PublicKey makes the client authenticate with private_key_jwt (RFC
	// 7523; OpenID Connect Core §9): assertions signed with its private
	// key, kid KeyID when set. No secret then.
	PublicKey crypto.PublicKey
	KeyID     string

	// MinimalIDToken leaves the userinfo claims (email, profile, groups,
	// ExtraClaims) out of the ID token: it carries the protocol claims only,
	// and the relying party must call userinfo, which still answers them all.
	MinimalIDToken bool
}

// reservedClaims are set by the provider or by zitadel; a user's ExtraClaims
// may not shadow them, because the merge order in zitadel would make the
// outcome depend on which fields happen to be empty.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"jti": true, "nonce": true, "azp": true, "auth_time": true, "acr": true,
	"amr": true, "at_hash": true, "c_hash": true, "sid": true, "client_id": true,
	"scope": true, "act": true,
	"email": true, "email_verified": true, "name": true, "given_name": true,
	"family_name": true, "preferred_username": true, "groups": true,
}

const (
	defaultAccessTokenLifetime  = 5 * time.Minute
	defaultIDTokenLifetime      = 5 * time.Minute
	defaultRefreshTokenLifetime = 24 * time.Hour
)

// withDefaults returns a copy of cfg with defaults filled in and the issuer
// normalised (no trailing slash). It does not generate the signing key.
func (cfg Config) withDefaults() (Config, error) {
	issuer, err := normaliseIssuer(cfg.Issuer)
	if err != nil {
		return cfg, err
	}
	cfg.Issuer = issuer
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = defaultAccessTokenLifetime
	}
	if cfg.IDTokenLifetime <= 0 {
		cfg.IDTokenLifetime = defaultIDTokenLifetime
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = defaultRefreshTokenLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// normaliseIssuer checks that issuer is an absolute http(s) URL without
// query or fragment and strips a trailing slash, so that discovery, the
// tokens' iss claim and go-oidc all agree on one spelling.
func normaliseIssuer(issuer string) (string, error) {
	if issuer == "" {
		return "", errors.New("demo: config needs an issuer (Start fills it from the bound address)")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("demo: parsing issuer: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("demo: issuer %q must be an absolute http or https URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("demo: issuer %q must not have userinfo, query or fragment", issuer)
	}
	return strings.TrimSuffix(issuer, "/"), nil
}

// normalise validates u and fills its defaults.
func (u User) normalise() (User, error) {
	if u.Username == "" || u.Password == "" {
		return u, errors.New("demo: a user needs a username and a password")
	}
	if u.ID == "" {
		u.ID = u.Username
	}
	if u.PreferredUsername == "" {
		u.PreferredUsername = u.Username
	}
	for name := range u.ExtraClaims {
		if reservedClaims[name] {
			return u, fmt.Errorf("demo: user %q: extra claim %q is set by the provider", u.Username, name)
		}
	}
	u.Groups = slices.Clone(u.Groups)
	u.ExtraClaims = maps.Clone(u.ExtraClaims)
	return u, nil
}

// validate checks that c can take part in the authorization-code flow, or
// in the client_credentials grant.
func (c Client) validate() error {
	switch {
	case c.ID == "":
		return errors.New("demo: a client needs an ID")
	case c.Public && c.PublicKey != nil:
		return fmt.Errorf("demo: client %q: Public or PublicKey, not both", c.ID)
	case (c.Public || c.PublicKey != nil) && (c.Secret != "" || c.ClientCredentials):
		return fmt.Errorf("demo: client %q: a public or private_key_jwt client has no secret and no client_credentials", c.ID)
	case !c.Public && c.PublicKey == nil && c.Secret == "":
		return errors.New("demo: a client needs an ID and a secret (or Public, or a PublicKey)")
	}
	if len(c.RedirectURIs) == 0 && !c.ClientCredentials {
		return fmt.Errorf("demo: client %q needs at least one redirect URI, or ClientCredentials", c.ID)
	}
	if (len(c.ServiceGroups) > 0 || c.ServiceEmail != "") && !c.ClientCredentials {
		return fmt.Errorf("demo: client %q: ServiceGroups and ServiceEmail need ClientCredentials", c.ID)
	}
	if slices.Contains(c.Audience, "") {
		return fmt.Errorf("demo: client %q: empty audience", c.ID)
	}
	for _, uri := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("demo: client %q: %q is not an absolute http(s) URL", c.ID, uri)
		}
	}
	return nil
}
