package demo

import (
	"context"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// userinfoLocked fills info with the claims of userID that scopes allow,
// from the user's current record, so that groups and claims changed by
// SetGroups or SetClaim show up in the next ID token, refresh or userinfo
// call. Callers hold s.mu.
func (s *storage) userinfoLocked(info *oidc.UserInfo, userID string, scopes []string) error {
	u, ok := s.users[userID]
	if !ok {
		return errNotFound
	}
	info.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.GivenName = u.GivenName
		info.FamilyName = u.FamilyName
		info.PreferredUsername = u.PreferredUsername
	}
	if len(u.Groups) > 0 {
		info.AppendClaims("groups", slices.Clone(u.Groups))
	}
	for name, v := range u.ExtraClaims {
		info.AppendClaims(name, v)
	}
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the claims
// of ID tokens, both at the code exchange and at every refresh.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userinfoLocked(info, req.GetSubject(), scopes)
}

// SetUserinfoFromScopes implements op.Storage. zitadel deprecated it in favour
// of SetUserinfoFromRequest, which it calls right after, so it does nothing.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromToken implements op.Storage for the userinfo endpoint:
// the claims the access token's scopes allow.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || s.now().After(at.expires) || at.userID != subject {
		return errNotFound
	}
	return s.userinfoLocked(info, at.userID, at.scopes)
}

// SetIntrospectionFromToken implements op.Storage (RFC 7662). A token is
// active only for the client it was issued to.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || s.now().After(at.expires) || at.userID != subject || at.clientID != clientID {
		return errNotFound
	}
	info := new(oidc.UserInfo)
	if err := s.userinfoLocked(info, at.userID, at.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expires)
	resp.Audience = oidc.Audience{at.clientID}
	resp.Issuer = s.issuer
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage. Access tokens are
// opaque, so there is nowhere to put private claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
