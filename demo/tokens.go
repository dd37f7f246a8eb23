package demo

import (
	"context"
	"crypto/rand"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// accessToken is the record behind an opaque access token. zitadel hands the
// client an encrypted "id:subject" string; userinfo and revocation come back
// here with the id.
type accessToken struct {
	id       string
	userID   string
	clientID string
	scopes   []string
	expires  time.Time
}

// refreshToken is a refresh token and the grant it carries forward. The
// token value is random and is the map key; id names it in revocation.
type refreshToken struct {
	id       string
	userID   string
	clientID string
	scopes   []string // as granted at login; a refresh may narrow the current ones
	current  []string // the scopes of this refresh request (SetCurrentScopes)
	amr      []string
	authTime time.Time
	expires  time.Time
}

var _ op.RefreshTokenRequest = (*refreshToken)(nil)

func (r *refreshToken) GetAMR() []string       { return r.amr }
func (r *refreshToken) GetAudience() []string  { return []string{r.clientID} }
func (r *refreshToken) GetAuthTime() time.Time { return r.authTime }
func (r *refreshToken) GetClientID() string    { return r.clientID }
func (r *refreshToken) GetSubject() string     { return r.userID }
func (r *refreshToken) GetScopes() []string {
	if r.current != nil {
		return r.current
	}
	return r.scopes
}
func (r *refreshToken) SetCurrentScopes(scopes []string) { r.current = scopes }

// grant is what both an auth request and a refresh token can tell us about
// the tokens to issue.
type grant interface {
	GetSubject() string
	GetClientID() string
	GetScopes() []string
}

// CreateAccessToken implements op.Storage for the code flow without
// offline_access.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessTokenLocked(g)
	return at.id, at.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. With a current refresh
// token this is a refresh: the current token is consumed in the same critical
// section, so of two racing refreshes with one token only one succeeds, and
// the other gets invalid_grant.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)

	next := &refreshToken{
		id:       rand.Text(),
		userID:   g.GetSubject(),
		clientID: g.GetClientID(),
		scopes:   slices.Clone(g.GetScopes()),
		expires:  now.Add(s.refreshTTL),
	}
	if a, ok := req.(*authRequest); ok {
		next.amr, next.authTime = a.GetAMR(), a.authTime
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok || now.After(old.expires) || old.userID != next.userID || old.clientID != next.clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid or was already used")
		}
		delete(s.refreshTokens, current)
		next.scopes, next.amr, next.authTime = old.scopes, old.amr, old.authTime
	}
	token := rand.Text()
	s.refreshTokens[token] = next
	at := s.newAccessTokenLocked(g)
	return at.id, token, at.expires, nil
}

func (s *storage) newAccessTokenLocked(g grant) *accessToken {
	now := s.now()
	at := &accessToken{
		id:       rand.Text(),
		userID:   g.GetSubject(),
		clientID: g.GetClientID(),
		scopes:   slices.Clone(g.GetScopes()),
		expires:  now.Add(s.accessTTL),
	}
	s.accessTokens[at.id] = at
	return at
}

// TokenRequestByRefreshToken implements op.Storage. It returns a copy, since
// zitadel narrows its scopes with SetCurrentScopes.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expires) {
		return nil, errNotFound
	}
	if _, ok := s.users[rt.userID]; !ok {
		return nil, errNotFound
	}
	c := *rt
	return &c, nil
}

// GetRefreshTokenInfo implements op.Storage for the revocation endpoint.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.userID, rt.id, nil
}

// RevokeToken implements op.Storage (RFC 7009). tokenOrID is a refresh or
// access token id. Unknown tokens are not an error (section 2.2); a token
// issued to another client is refused.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, rt := range s.refreshTokens {
		if rt.id == tokenOrID {
			if rt.clientID != clientID {
				return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
			}
			delete(s.refreshTokens, tok)
			return nil
		}
	}
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
	}
	return nil
}

// TerminateSession implements op.Storage for end_session: the user's
// refresh tokens for that client stop working, as with Keycloak's logout.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	if userID == "" || clientID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeRefreshTokensLocked(func(rt *refreshToken) bool {
		return rt.userID == userID && rt.clientID == clientID
	})
	return nil
}

// revokeRefreshTokensLocked deletes the refresh tokens match selects and
// reports how many there were.
func (s *storage) revokeRefreshTokensLocked(match func(*refreshToken) bool) int {
	n := 0
	for tok, rt := range s.refreshTokens {
		if match(rt) {
			delete(s.refreshTokens, tok)
			n++
		}
	}
	return n
}
