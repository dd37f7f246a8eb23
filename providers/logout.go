package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
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
	lt, err := p.verifyLogoutJWT(ctx, d, raw)
	if err != nil {
		return fail("%v", err)
	}
	// Signature, iss, aud and exp are checked. Now the exact claim names
	// and types, the events member's type, nonce, jti and iat.
	all := lt.claims
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
	if _, ok := all["iat"].(float64); !ok || lt.issuedAt.IsZero() {
		return fail("no iat")
	}
	now := p.opts.Now()
	if lt.issuedAt.After(now.Add(iatFutureSkew)) {
		return fail("iat is in the future")
	}
	if len(lt.audience) > 1 {
		if azp, _ := all["azp"].(string); azp != p.cfg.ClientID {
			return fail("several audiences and no azp naming this client")
		}
	}
	sub, _ := all["sub"].(string)
	sid, _ := all["sid"].(string)
	if sub == "" && sid == "" {
		return fail("neither sub nor sid")
	}
	for _, v := range []string{sub, sid, lt.tokenID} {
		if hasControl(v) || len(v) > 1024 {
			return fail("malformed sub, sid or jti")
		}
	}
	return &LogoutToken{Issuer: lt.issuer, Subject: sub, SessionID: sid, ID: lt.tokenID, Expiry: lt.expiry}, nil
}

// logoutJWT is a logout token whose signature, iss, aud and lifetime are
// verified, with its claims for the checks that follow.
type logoutJWT struct {
	issuer           string
	audience         []string
	issuedAt, expiry time.Time
	tokenID          string
	claims           map[string]any
}

// logoutTokenWindow is how old a logout token without exp may be, where
// the provider is allowed to omit it: Back-Channel Logout 1.0 §4.1 asks
// for expiry times of "preferably at most two minutes".
const logoutTokenWindow = 2 * time.Minute

// verifyLogoutJWT checks signature, iss, aud and exp with go-oidc. A token
// without exp is accepted only from a provider configured with
// logout_token_without_exp, and then only within logoutTokenWindow of its
// iat: the same checks made by hand, the window standing in for exp.
func (p *OIDC) verifyLogoutJWT(ctx context.Context, d *discovery, raw string) (*logoutJWT, error) {
	var peek map[string]json.RawMessage
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || decodeSegment(parts[1], &peek) != nil {
		return nil, errors.New("malformed claims")
	}
	if _, hasExp := peek["exp"]; hasExp || !p.cfg.LogoutTokenWithoutExp {
		lt, err := d.verifier.VerifyLogout(ctx, raw)
		if err != nil {
			return nil, err
		}
		out := &logoutJWT{issuer: lt.Issuer, audience: lt.Audience, issuedAt: lt.IssuedAt, expiry: lt.Expiry, tokenID: lt.TokenID}
		if err := lt.Claims(&out.claims); err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
		return out, nil
	}
	if _, err := jose.ParseSigned(raw, joseAlgs(d.algs)); err != nil {
		return nil, fmt.Errorf("algorithm not accepted: %w", err) // RFC 8725 §3.1, as go-oidc would
	}
	payload, err := d.keys.VerifySignature(ctx, raw)
	if err != nil {
		return nil, err
	}
	out := &logoutJWT{}
	if err := json.Unmarshal(payload, &out.claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if err := checkClaimTypes(out.claims); err != nil {
		return nil, err
	}
	out.issuer, _ = out.claims["iss"].(string)
	if out.issuer != p.cfg.IssuerURL {
		return nil, fmt.Errorf("iss %q is not %s", out.issuer, p.cfg.IssuerURL)
	}
	out.audience = audiences(out.claims["aud"])
	if !slices.Contains(out.audience, p.cfg.ClientID) {
		return nil, errors.New("aud does not name this client")
	}
	iat, ok := out.claims["iat"].(float64)
	if !ok {
		return nil, errors.New("no iat, and no exp")
	}
	out.issuedAt = time.Unix(int64(iat), 0)
	out.expiry = out.issuedAt.Add(logoutTokenWindow)
	if p.opts.Now().After(out.expiry.Add(iatFutureSkew)) {
		return nil, fmt.Errorf("no exp, and issued more than %v ago", logoutTokenWindow)
	}
	out.tokenID, _ = out.claims["jti"].(string)
	return out, nil
}

// audiences reads an aud claim: one string or a list of them (RFC 7519
// §4.1.3); anything else names no audience.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
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

// FrontchannelLogout implements FrontchannelLogouter: frontchannel_logout,
// on by default. The gateway ends only sessions whose iss and sid the
// request names (Front-Channel Logout 1.0 §2), so discovery need not
// advertise frontchannel_logout_supported for it to be safe.
func (p *OIDC) FrontchannelLogout() bool {
	return p.cfg.FrontchannelLogout != nil && *p.cfg.FrontchannelLogout
}
