package demo

import (
	"context"
	"crypto/rand"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// accessToken is the record behind an access token. zitadel hands the
// client an encrypted "id:subject" string, or a JWT whose jti is the id;
// userinfo, introspection and revocation come back here with the id.
type accessToken struct {
	id       string
	userID   string // "" for a client_credentials token
	clientID string
	audience []string
	scopes   []string
	expires  time.Time
}

// subject is the token's sub: the user, or the client acting for itself.
func (at *accessToken) subject() string {
	if at.userID == "" {
		return at.clientID
	}
	return at.userID
}

// refreshToken is a refresh token and the grant it carries forward. The
// token value is random and is the map key; id names it in revocation.
type refreshToken struct {
	jwtAudience
	id       string
	userID   string
	clientID string
	scopes   []string // as granted at login; a refresh may narrow the current ones
	current  []string // the scopes of this refresh request (SetCurrentScopes)
	amr      []string
	authTime time.Time
	expires  time.Time
	sid      string // the sign-in's provider session (authRequest.sid)
}

var _ op.RefreshTokenRequest = (*refreshToken)(nil)

func (r *refreshToken) sessionID() string { return r.sid }

func (r *refreshToken) GetAMR() []string       { return r.amr }
func (r *refreshToken) GetAudience() []string  { return audience(r.clientID, r.extra) }
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

// grant is what an auth request, a refresh token and a client_credentials
// request can tell us about the tokens to issue.
type grant interface {
	GetSubject() string
	GetClientID() string
	GetScopes() []string
}

// audience is clientID followed by the extra audiences, without repeats.
func audience(clientID string, extra []string) []string {
	aud := []string{clientID}
	for _, a := range extra {
		if !slices.Contains(aud, a) {
			aud = append(aud, a)
		}
	}
	return aud
}

// jwtAudience holds a client's extra audiences (Client.Audience) while
// zitadel builds a user's access token JWT, and nothing otherwise.
//
// zitadel reads the aud of the access token JWT (CreateJWT) and then of the
// ID token (CreateIDToken) from the GetAudience of one and the same request
// object. So that only the access token names the extra audiences, the
// storage widens the request's audience when it records the access token,
// and narrows it again when CreateJWT asks for the private claims, which
// zitadel v3.52 does after reading the audience and before it builds the ID
// token. TestJWTAccessTokenClaims fails if a new zitadel changes that order.
type jwtAudience struct{ extra []string }

func (a *jwtAudience) widenAudience(extra []string) { a.extra = extra }
func (a *jwtAudience) narrowAudience()              { a.extra = nil }

// audienceWidener is a request embedding jwtAudience.
type audienceWidener interface {
	widenAudience(extra []string)
	narrowAudience()
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
		next.amr, next.authTime, next.sid = a.GetAMR(), a.authTime, a.sid
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok || now.After(old.expires) || old.userID != next.userID || old.clientID != next.clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid or was already used")
		}
		delete(s.refreshTokens, current)
		s.rotated[current] = old.expires
		next.scopes, next.amr, next.authTime, next.sid = old.scopes, old.amr, old.authTime, old.sid
	}
	token := rand.Text()
	s.refreshTokens[token] = next
	at := s.newAccessTokenLocked(g)
	return at.id, token, at.expires, nil
}

// newAccessTokenLocked records an access token for g, and widens g's
// audience when zitadel is about to make it a JWT (see jwtAudience).
func (s *storage) newAccessTokenLocked(g grant) *accessToken {
	c := s.clients[g.GetClientID()]
	at := &accessToken{
		id:       rand.Text(),
		userID:   g.GetSubject(),
		clientID: g.GetClientID(),
		audience: audience(g.GetClientID(), c.Audience),
		scopes:   slices.Clone(g.GetScopes()),
		expires:  s.now().Add(s.accessTTL),
	}
	if _, ok := g.(*serviceRequest); ok {
		at.userID = ""
	}
	if w, ok := g.(audienceWidener); ok && c.JWTAccessTokens {
		w.widenAudience(c.Audience)
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
