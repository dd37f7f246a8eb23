package demo

import (
	"context"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client_credentials grant (RFC 6749, section 4.4): a machine client
// trades its ID and secret for an access token about itself. zitadel parses
// the request (client_secret_basic or client_secret_post), calls
// ClientCredentials, checks the client's GrantTypes, then calls
// ClientCredentialsTokenRequest and CreateAccessToken. No ID token and no
// refresh token are issued.

var _ op.ClientCredentialsStorage = (*storage)(nil)

// serviceRequest is the token request of the client_credentials grant: the
// client acting on its own behalf, so it is also the subject.
type serviceRequest struct {
	clientID string
	audience []string
	scopes   []string
}

var _ op.TokenRequest = (*serviceRequest)(nil)

func (r *serviceRequest) GetSubject() string    { return r.clientID }
func (r *serviceRequest) GetClientID() string   { return r.clientID }
func (r *serviceRequest) GetAudience() []string { return r.audience }
func (r *serviceRequest) GetScopes() []string   { return r.scopes }

// ClientCredentials implements op.ClientCredentialsStorage: it
// authenticates the client, comparing secrets in constant time. An unknown
// client and a wrong secret get the same invalid_client. zitadel then
// answers unauthorized_client to a client without Client.ClientCredentials,
// whose GrantTypes leave the grant out.
func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c, err := s.authenticateClient(id, secret)
	if err != nil {
		return nil, err
	}
	return s.opClient(c), nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage. Of
// the requested scopes it keeps those the provider knows; RFC 6749, section
// 3.3, lets it ignore the others.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || !c.ClientCredentials {
		return nil, oidc.ErrUnauthorizedClient()
	}
	var granted []string
	for _, sc := range scopes {
		if slices.Contains(supportedScopes, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	return &serviceRequest{clientID: c.ID, audience: audience(c.ID, c.Audience), scopes: granted}, nil
}

// serviceClaimsLocked are the claims of a client_credentials token besides
// the protocol ones: email and email_verified (always true) from
// ServiceEmail, groups from ServiceGroups, and the granted scopes. They are
// read from the client's current record. Callers hold s.mu.
func (s *storage) serviceClaimsLocked(clientID string, scopes []string) map[string]any {
	c := s.clients[clientID]
	claims := make(map[string]any)
	if c.ServiceEmail != "" {
		claims["email"] = c.ServiceEmail
		claims["email_verified"] = true
	}
	if len(c.ServiceGroups) > 0 {
		claims["groups"] = slices.Clone(c.ServiceGroups)
	}
	addScopeClaim(claims, scopes)
	return claims
}
