package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis/portcullis/session"
)

// revoke.go ends a session's grant at the provider when the user signs
// out: OAuth 2.0 Token Revocation (RFC 7009) of the refresh token, so a
// copy of it (a stolen cookie, a Redis dump) is worth nothing afterwards.

// ErrNoRevocation: nothing was sent, because revoke_tokens is never, the
// provider names no revocation_endpoint, or the session holds no token.
var ErrNoRevocation = errors.New("no token revocation at this provider")

// RevokeTokens implements Revoker: it revokes s's refresh token, or its
// access token when it has none (RFC 7009 §2.1 token_type_hint), with the
// client authentication the token endpoint gets, within the provider's
// timeout. Errors wrap ErrUnavailable (the provider could not be asked),
// ErrRejected (it answered with an error, §2.2.1) or ErrBadResponse.
func (p *OIDC) RevokeTokens(ctx context.Context, s *session.Session) error {
	if p.cfg.RevokeTokens == "never" || s == nil {
		return ErrNoRevocation
	}
	d, err := p.discovered(ctx)
	if err != nil {
		return err
	}
	token, hint := s.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = s.AccessToken, "access_token"
	}
	if d.revocation == "" || token == "" {
		return ErrNoRevocation
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := p.revocationRequest(ctx, d, form)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: revocation endpoint: %v", transportOrGarbage(err), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		// RFC 7009 §2.2: 200 whether the token was revoked or was not
		// valid any more; either way it no longer works.
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		// §2.2.1: 503 asks the client to retry later.
		return fmt.Errorf("%w: revocation endpoint: %s", ErrUnavailable, resp.Status)
	case resp.StatusCode >= 400:
		return fmt.Errorf("%w: revocation endpoint: %s", ErrRejected, resp.Status)
	}
	return fmt.Errorf("%w: revocation endpoint: %s", ErrBadResponse, resp.Status)
}

// revocationRequest is the POST of form to d's revocation endpoint
// (RFC 7009 §2.1), authenticated as the client.
func (p *OIDC) revocationRequest(ctx context.Context, d *discovery, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revocation, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: revocation_endpoint: %v", ErrBadResponse, err)
	}
	// RFC 7009 §2.1: the client authentication the token endpoint gets,
	// whichever method that is (clientauth.go).
	if err := p.authenticate(form, req, d.revocation); err != nil {
		return nil, err
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}
