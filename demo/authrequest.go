package demo

import (
	"context"
	"crypto/rand"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request, from /authorize through the
// login form to the code exchange. Stored values are only changed under
// storage.mu; callers outside the lock get copies.
type authRequest struct {
	jwtAudience
	id      string
	created time.Time

	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	loginHint    string
	acr          string // the first acr_values asked for: the demo meets any

	userID   string // set by the login form; Done from then on
	authTime time.Time
	// sid names the provider session this sign-in starts: the ID tokens'
	// sid claim (Front-Channel Logout 1.0 §3, Back-Channel Logout §2.4),
	// kept by the refresh tokens that follow.
	sid string

	code        string // the one code issued for this request, if any
	codeExpires time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acr }
func (a *authRequest) GetAMR() []string                      { return amrPassword(a.userID) }
func (a *authRequest) GetAudience() []string                 { return audience(a.clientID, a.extra) }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.userID != "" }
func (a *authRequest) sessionID() string                     { return a.sid }

func (a *authRequest) expired(now time.Time) bool { return now.After(a.created.Add(authRequestTTL)) }

func (a *authRequest) promptNone() bool { return slices.Contains(a.prompt, oidc.PromptNone) }

// amrPassword is the amr claim of a password login (RFC 8176).
func amrPassword(userID string) []string {
	if userID == "" {
		return nil
	}
	return []string{"pwd"}
}

// CreateAuthRequest implements op.Storage. zitadel has already checked the
// client, redirect URI, response type and scopes. We refuse the PKCE plain
// method: a challenge, when sent, must be S256. The subject of an
// id_token_hint is ignored, since every request goes through the login form.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	ar := &authRequest{
		id:           rand.Text(),
		sid:          rand.Text(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone([]string(req.Scopes)),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		prompt:       slices.Clone([]string(req.Prompt)),
		loginHint:    req.LoginHint,
	}
	if len(req.ACRValues) > 0 {
		ar.acr = req.ACRValues[0]
	}
	if req.CodeChallenge != "" {
		if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
			return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
		}
		ar.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	ar.created = now
	s.authRequests[ar.id] = ar
	c := *ar
	return &c, nil
}

// AuthRequestByID implements op.Storage; expired requests are not found.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.authRequest(id)
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// authRequest returns a copy of the live auth request id.
func (s *storage) authRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.expired(s.now()) {
		return nil, errNotFound
	}
	c := *ar
	return &c, nil
}

// completeAuthRequest records that userID signed in for auth request id.
// A request can be completed once.
func (s *storage) completeAuthRequest(id, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ar, ok := s.authRequests[id]
	if !ok || ar.expired(now) || ar.Done() {
		return errNotFound
	}
	ar.userID = userID
	ar.authTime = now
	s.lastSIDs[userID] = ar.sid
	return nil
}

// SaveAuthCode implements op.Storage. zitadel calls it each time the
// callback URL is visited; only the first visit gets a code, so one
// authorization yields at most one code.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ar, ok := s.authRequests[id]
	if !ok || ar.expired(now) || !ar.Done() {
		return errNotFound
	}
	if ar.code != "" {
		return oidc.ErrInvalidRequest().WithDescription("a code was already issued for this request")
	}
	ar.code = code
	ar.codeExpires = now.Add(codeTTL)
	s.codes[code] = id
	return nil
}

// AuthRequestByCode implements op.Storage. The code is consumed by the
// lookup itself, so a code works once even when two redemptions race, and
// a redemption that then fails (wrong verifier, wrong client) burns it.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errNotFound
	}
	delete(s.codes, code)
	now := s.now()
	ar, ok := s.authRequests[id]
	if !ok || ar.expired(now) || now.After(ar.codeExpires) {
		return nil, errNotFound
	}
	c := *ar
	return &c, nil
}

// DeleteAuthRequest implements op.Storage; zitadel calls it once tokens
// have been issued for the request.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.authRequests[id]; ok {
		delete(s.codes, ar.code)
		delete(s.authRequests, id)
	}
	return nil
}
