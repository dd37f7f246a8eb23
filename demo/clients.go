package demo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client adapts a Client to op.Client: a confidential web application using
// the authorization-code flow, refresh tokens and opaque access tokens.
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

// AuthMethod is client_secret_basic; zitadel then also accepts
// client_secret_post, since Config.AuthMethodPost is on.
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTTL }
func (c *client) DevMode() bool                       { return false }
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
// itself, so the gateway needs no userinfo call.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

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
	return &client{cfg: c, loginURL: s.issuer + loginPath, idTTL: s.idTTL}, nil
}

// AuthorizeClientIDSecret implements op.Storage, comparing secrets in
// constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || !equalSecrets(c.Secret, secret) {
		return errUnknownClient
	}
	return nil
}

// equalSecrets compares a and b in constant time, lengths included.
func equalSecrets(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
