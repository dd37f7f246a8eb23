package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// ErrNoRefreshToken means the session cannot be refreshed: the provider
// issued no refresh token.
var ErrNoRefreshToken = errors.New("session has no refresh token")

// Refresh exchanges the session's refresh token for new tokens (RFC 6749
// §6) and re-reads the identity's groups and claims, so policy sees changes
// without a new sign-in. It returns a new session; s is not modified. A
// rotated refresh token replaces the old one; when the provider sends none,
// the old one stays (RFC 6749 §6 allows either).
//
// invalid_grant (revoked, expired, already used) is ErrRejected: the
// session must end. A network error, a 5xx or a 429 is ErrUnavailable,
// and a 2xx that is not a token response ErrBadResponse: in both the
// session may live on until its own end.
func (p *OIDC) Refresh(ctx context.Context, s *session.Session) (*session.Session, error) {
	if s.RefreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	d, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	old := &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)} // expired: force the refresh
	tok, err := p.oauth2Config(d).TokenSource(p.tokenCtx(ctx, d), old).Token()
	if err != nil {
		return nil, exchangeError(err)
	}
	next := *s
	next.Claims = cloneClaims(s.Claims)
	next.Groups = append([]string(nil), s.Groups...)
	next.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		next.RefreshToken = tok.RefreshToken
	}
	next.TokenExpiry = tok.Expiry
	next.RefreshedAt = p.opts.Now()
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		if err := p.checkRefreshedIDToken(ctx, d, raw, tok, &next); err != nil {
			return nil, err
		}
		next.IDToken = raw
	} else if err := p.refreshFromUserinfo(ctx, d, tok, &next); err != nil {
		return nil, err
	}
	if next.TokenExpiry.IsZero() {
		next.TokenExpiry = next.RefreshedAt.Add(5 * time.Minute)
	}
	return &next, nil
}

// checkRefreshedIDToken applies OpenID Connect Core §12.2: the new ID
// token has the same iss and sub as the one it replaces (aud, signature
// and exp are checked by the verifier); its nonce, if any, is not ours to
// check. The identity's attributes are then taken from it.
func (p *OIDC) checkRefreshedIDToken(ctx context.Context, d *discovery, raw string, tok *oauth2.Token, s *session.Session) error {
	if _, err := d.keys.current(ctx, false); err != nil {
		return err
	}
	idt, err := d.idVerifier.Verify(ctx, raw)
	if err != nil {
		return fmt.Errorf("%w: refreshed ID token: %v", ErrInvalidToken, err)
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if err := checkClaimTypes(all); err != nil {
		return fmt.Errorf("%w: refreshed ID token: %v", ErrInvalidToken, err)
	}
	if ifl, ok := p.flavor.(issuerFlavor); ok {
		if err := ifl.checkIssuer(idt.Issuer, all); err != nil {
			return fmt.Errorf("%w: refreshed ID token: %v", ErrInvalidToken, err)
		}
	}
	if idt.Issuer != s.Issuer || idt.Subject != s.Subject {
		return fmt.Errorf("%w: refreshed ID token is for %s/%s, not %s/%s", ErrInvalidToken, idt.Issuer, idt.Subject, s.Issuer, s.Subject)
	}
	if err := checkAccessTokenHash(idt, tok); err != nil {
		return err
	}
	if err := p.checkAudience(idt.Audience, stringClaim(all, "azp")); err != nil {
		return fmt.Errorf("%w: refreshed ID token: %v", ErrInvalidToken, err)
	}
	// Refresh: a refreshed ID token need not repeat every claim, so a
	// profile attribute whose claim it omits keeps its value; an email it
	// does carry must be vouched for as at sign-in.
	id, err := p.idTokenIdentity(ctx, d, tok, all, s.Identity, claimUse{profile: true, keepAbsent: true, email: p.emailRule()})
	if err != nil {
		return err
	}
	s.Identity = id
	return nil
}

// refreshFromUserinfo re-reads the identity from userinfo when the
// provider sends no new ID token on refresh (many do not): userinfo is
// then the only fresh source, so its values win wherever present; groups
// and policy claims are read anew, a profile attribute it omits keeps its
// value. With `userinfo: never` the identity stays as it was.
func (p *OIDC) refreshFromUserinfo(ctx context.Context, d *discovery, tok *oauth2.Token, s *session.Session) error {
	if p.cfg.Userinfo == "never" || d.userinfo == "" || tok.AccessToken == "" {
		return nil
	}
	id := s.Identity
	id.Groups = nil
	id.Claims = nil
	if err := p.readUserinfo(ctx, d, tok, &id, claimUse{profile: true, overlay: true, email: p.emailRule()}); err != nil {
		return err
	}
	if err := p.checkIdentity(&id); err != nil {
		return err
	}
	s.Identity = id
	return nil
}

func cloneClaims(c map[string][]string) map[string][]string {
	if c == nil {
		return nil
	}
	out := make(map[string][]string, len(c))
	for k, v := range c {
		out[k] = append([]string(nil), v...)
	}
	return out
}
