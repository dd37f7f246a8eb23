package demo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client adapts a Client to op.Client: a confidential web application using
// the authorization-code flow and refresh tokens, the client_credentials
// grant, or both; its access tokens are opaque or JWTs.
type client struct {
	cfg      Client
	loginURL string // the login page, absolute, without the query
	idTTL    time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.cfg.ID }
func (c *client) RedirectURIs() []string           { return slices.Clone(c.cfg.RedirectURIs) }
func (c *client) PostLogoutRedirectURIs() []string { return slices.Clone(c.cfg.PostLogoutRedirectURIs) }
func (c *client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}

// AuthMethod is none for a Public client (PKCE only), private_key_jwt for
// a client with a PublicKey, else client_secret_basic; zitadel then also
// accepts client_secret_post, since Config.AuthMethodPost is on.
func (c *client) AuthMethod() oidc.AuthMethod {
	switch {
	case c.cfg.Public:
		return oidc.AuthMethodNone
	case c.cfg.PublicKey != nil:
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes is what zitadel checks a token request's grant against: the
// code flow and refresh for a client with redirect URIs, client_credentials
// for a machine client. zitadel answers unauthorized_client otherwise.
func (c *client) GrantTypes() []oidc.GrantType {
	var grants []oidc.GrantType
	if len(c.cfg.RedirectURIs) > 0 {
		grants = append(grants, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken)
	}
	if c.cfg.ClientCredentials {
		grants = append(grants, oidc.GrantTypeClientCredentials)
	}
	return grants
}
func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

// AccessTokenType is a signed JWT with Client.JWTAccessTokens; otherwise
// zitadel encrypts the token ID into an opaque string.
func (c *client) AccessTokenType() op.AccessTokenType {
	if c.cfg.JWTAccessTokens {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration { return c.idTTL }
func (c *client) DevMode() bool                  { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed admits "groups" besides the standard OpenID scopes, for
// gateways configured the Dex way; zitadel drops any other scope.
func (c *client) IsScopeAllowed(scope string) bool { return scope == "groups" }

// IDTokenUserinfoClaimsAssertion puts the userinfo claims into the ID token
// itself, so the gateway needs no userinfo call, unless the client asked for
// a MinimalIDToken. Turning it off only makes zitadel drop the email and
// profile scopes; SetUserinfoFromRequest leaves out groups and ExtraClaims.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return !c.cfg.MinimalIDToken }
func (c *client) ClockSkew() time.Duration             { return 0 }

// GetKeyByIDAndClientID implements op.Storage for private_key_jwt client
// authentication: the client's PublicKey, when the assertion's kid is the
// client's KeyID (any kid when KeyID is empty).
func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.mu.Lock()
	c, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok || c.PublicKey == nil || (c.KeyID != "" && keyID != c.KeyID) {
		return nil, errors.New("demo: no such client key")
	}
	return &jose.JSONWebKey{Key: c.PublicKey, KeyID: c.KeyID, Use: "sig"}, nil
}

// errUnknownClient covers both an unknown client and a wrong secret, so the
// answer does not tell which client IDs exist.
var errUnknownClient = errors.New("demo: unknown client or wrong secret")

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errUnknownClient
	}
	return s.opClient(c), nil
}

func (s *storage) opClient(c Client) *client {
	return &client{cfg: c, loginURL: strings.TrimSuffix(s.issuer, "/") + loginPath, idTTL: s.idTTL}
}

// AuthorizeClientIDSecret implements op.Storage for the code and refresh
// grants.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.authenticateClient(id, secret)
	return err
}

// dummySecret is compared against when the client ID is unknown, so an
// unknown client costs the same as a wrong secret.
const dummySecret = "demo: no such client"

// authenticateClient returns the client with that ID and secret. Unknown
// client and wrong secret look alike, in answer (errUnknownClient) and in
// timing.
func (s *storage) authenticateClient(id, secret string) (Client, error) {
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	want := dummySecret
	if ok {
		want = c.Secret
	}
	// A public or private_key_jwt client has no secret: "" never matches.
	if !equalSecrets(want, secret) || !ok || c.Secret == "" {
		return Client{}, errUnknownClient
	}
	return c, nil
}

// equalSecrets compares a and b in constant time, lengths included.
func equalSecrets(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
