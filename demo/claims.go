package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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
// of ID tokens, both at the code exchange and at every refresh. A client
// with MinimalIDToken gets none of them: only zitadel's protocol claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every ID token names its sign-in's provider session (sid), as
	// Keycloak's and Zitadel's do, for front- and back-channel logout.
	if r, ok := req.(interface{ sessionID() string }); ok && r.sessionID() != "" {
		info.AppendClaims("sid", r.sessionID())
	}
	if s.clients[req.GetClientID()].MinimalIDToken {
		if _, ok := s.users[req.GetSubject()]; !ok {
			return errNotFound
		}
		info.Subject = req.GetSubject()
		return nil
	}
	return s.userinfoLocked(info, req.GetSubject(), scopes)
}

// SetUserinfoFromScopes implements op.Storage. zitadel deprecated it in favour
// of SetUserinfoFromRequest, which it calls right after, so it does nothing.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromToken implements op.Storage for the userinfo endpoint:
// the claims the access token's scopes allow. tokenID is the opaque token's
// ID or the JWT's jti. A client_credentials token has no user and is
// refused.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || s.now().After(at.expires) || at.userID == "" || at.userID != subject {
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
	if !ok || s.now().After(at.expires) || at.subject() != subject || at.clientID != clientID {
		return errNotFound
	}
	if at.userID == "" {
		resp.Subject = at.clientID
		resp.Claims = s.serviceClaimsLocked(at.clientID, at.scopes)
	} else {
		info := new(oidc.UserInfo)
		if err := s.userinfoLocked(info, at.userID, at.scopes); err != nil {
			return err
		}
		resp.SetUserInfo(info)
	}
	resp.Active = true
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expires)
	resp.Audience = slices.Clone(at.audience)
	resp.Issuer = s.issuer
	return nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the claims of an access token JWT besides zitadel's own (iss, sub, aud,
// exp, iat, nbf, jti, client_id), which win over ours on a clash. A user's
// token carries what userinfo answers for the grant's scopes, a machine
// client's its service claims; both add scope. zitadel calls this after it
// has read the JWT's audience, which ends the widened audience of
// jwtAudience. restricted is zitadel's scope list without email and
// profile, so the request's own scopes decide instead.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	if w, ok := req.(audienceWidener); ok {
		w.narrowAudience()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sr, ok := req.(*serviceRequest); ok {
		return s.serviceClaimsLocked(sr.clientID, sr.scopes), nil
	}
	return s.userAccessClaimsLocked(req.GetSubject(), req.GetScopes())
}

// userAccessClaimsLocked are the private claims of a user's access token
// JWT: exactly what userinfo answers for scopes, minus sub, plus scope.
// Going through userinfoLocked and its JSON keeps the two from drifting
// apart. Callers hold s.mu.
func (s *storage) userAccessClaimsLocked(userID string, scopes []string) (map[string]any, error) {
	info := new(oidc.UserInfo)
	if err := s.userinfoLocked(info, userID, scopes); err != nil {
		return nil, err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encoding the claims of %q: %w", userID, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, fmt.Errorf("decoding the claims of %q: %w", userID, err)
	}
	delete(claims, "sub")
	addScopeClaim(claims, scopes)
	return claims, nil
}

// addScopeClaim sets the space-separated "scope" claim of RFC 9068, section
// 2.2.3, which zitadel leaves out of access token JWTs.
func addScopeClaim(claims map[string]any, scopes []string) {
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
}

// GetPrivateClaimsFromScopes implements op.Storage. zitadel calls
// GetPrivateClaimsFromRequest instead, since the storage has it.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
