package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// logout.go covers both ways a provider session ends: RP-Initiated Logout
// 1.0 (we send the browser to the provider's end_session_endpoint) and
// Back-Channel Logout 1.0 (the provider POSTs us a signed logout token).

// backchannelEvent is the member a logout token's events claim must hold
// (Back-Channel Logout §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// ErrInvalidLogoutToken means a back-channel logout token failed
// validation; the endpoint answers 400 (Back-Channel Logout §2.6).
var ErrInvalidLogoutToken = errors.New("invalid logout token")

// LogoutToken is a validated back-channel logout request.
type LogoutToken struct {
	Issuer    string
	Subject   string // may be empty when SessionID is set
	SessionID string // may be empty when Subject is set
	ID        string // jti, for the replay cache
	Expiry    time.Time
}

// EndSessionURL returns where to send the browser to end the provider
// session (RP-Initiated Logout 1.0 §2), or "" when the provider has no
// end_session_endpoint. idTokenHint may be empty; client_id is then sent
// so the provider knows whose post_logout_redirect_uri to check.
func (p *OIDC) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect, state string) (string, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return "", err
	}
	if d.endSession == "" || p.cfg.EndSession == "never" {
		return "", nil
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "", fmt.Errorf("provider %s: end_session_endpoint: %w", p.cfg.ID, err)
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", p.cfg.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// VerifyLogoutToken validates a back-channel logout token exactly as
// Back-Channel Logout 1.0 §2.6 says: signed by the provider's keys with an
// allowed algorithm (never none), iss, aud, iat and exp as for ID tokens,
// jti present, an events claim holding the back-channel-logout member as a
// JSON object, no nonce (so an ID token can never pass for a logout token,
// RFC 8725 §3.11), and sub, sid or both. The replay check on jti is the
// caller's: it owns the shared cache.
func (p *OIDC) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.keys.current(ctx, false); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*LogoutToken, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidLogoutToken}, args...)...)
	}
	jwt, err := peekJWT(raw)
	if err != nil {
		return fail("%v", err)
	}
	if err := checkLogoutType(jwt.typ); err != nil {
		return fail("%v", err)
	}
	lt, err := d.verifier.VerifyLogout(ctx, raw)
	if err != nil {
		return fail("%v", err)
	}
	// go-oidc checked signature, iss, aud, exp, jti, sub/sid, the events
	// member's presence and the absence of nonce. Now what it leaves: the
	// exact claim names, the events member's type, and iat.
	var all map[string]any
	if err := lt.Claims(&all); err != nil {
		return fail("claims: %v", err)
	}
	if err := checkClaimTypes(all); err != nil {
		return fail("%v", err)
	}
	events, ok := all["events"].(map[string]any)
	if !ok {
		return fail("no events claim")
	}
	if _, ok := events[backchannelEvent].(map[string]any); !ok {
		return fail("events has no %s object", backchannelEvent)
	}
	if _, ok := all["nonce"]; ok {
		return fail("a logout token must not have a nonce")
	}
	if jti, _ := all["jti"].(string); jti == "" {
		return fail("no jti")
	}
	if _, ok := all["iat"].(float64); !ok || lt.IssuedAt.IsZero() {
		return fail("no iat")
	}
	now := p.opts.Now()
	if lt.IssuedAt.After(now.Add(iatFutureSkew)) {
		return fail("iat is in the future")
	}
	if len(lt.Audience) > 1 {
		if azp, _ := all["azp"].(string); azp != p.cfg.ClientID {
			return fail("several audiences and no azp naming this client")
		}
	}
	sub, _ := all["sub"].(string)
	sid, _ := all["sid"].(string)
	if sub == "" && sid == "" {
		return fail("neither sub nor sid")
	}
	for _, v := range []string{sub, sid, lt.TokenID} {
		if hasControl(v) || len(v) > 1024 {
			return fail("malformed sub, sid or jti")
		}
	}
	return &LogoutToken{Issuer: lt.Issuer, Subject: sub, SessionID: sid, ID: lt.TokenID, Expiry: lt.Expiry}, nil
}

// checkLogoutType refuses tokens whose typ names another kind of JWT.
// logout+jwt is recommended (Back-Channel Logout §2.4); plain JWT and no
// typ are what many providers send.
func checkLogoutType(typ string) error {
	switch strings.ToLower(typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
		return nil
	}
	return fmt.Errorf("typ %q is not a logout token", typ)
}
