package providers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// ID-token time window at the callback (OpenID Connect Core §3.1.3.7 step
// 10 leaves the range to the client; SECURITY.md IDT-9).
const (
	iatFutureSkew = 60 * time.Second
	iatMaxAge     = 10 * time.Minute
)

// checkIDToken does what go-oidc's Verify leaves to the caller at sign-in
// (it has checked signature, alg allowlist, iss, aud contains client_id,
// exp) and returns the token's claims. The order is the argument: the
// issuer a templated flavor checks, then the nonce binding the token to
// this attempt, then who the token is for, then when it was issued.
func (p *OIDC) checkIDToken(idt *oidc.IDToken, tok *oauth2.Token, nonce string) (map[string]any, error) {
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	fail := func(format string, args ...any) (map[string]any, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
	}
	if err := checkClaimTypes(all); err != nil {
		return fail("%v", err)
	}
	if ifl, ok := p.flavor.(issuerFlavor); ok {
		if err := ifl.checkIssuer(idt.Issuer, all); err != nil {
			return fail("%v", err)
		}
	}
	// Core §3.1.3.7 step 11: the nonce we sent must come back (RFC 9700
	// §4.5.3.2 makes this our code-injection defence alongside PKCE).
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return fail("nonce does not match the sign-in attempt")
	}
	if err := p.checkAudience(idt.Audience, stringClaim(all, "azp")); err != nil {
		return fail("%v", err)
	}
	// Core §3.1.3.7 step 10: reject tokens issued too far from now.
	now := p.opts.Now()
	switch {
	case idt.IssuedAt.IsZero():
		return fail("no iat")
	case idt.IssuedAt.After(now.Add(iatFutureSkew)):
		return fail("iat is in the future")
	case idt.IssuedAt.Before(now.Add(-iatMaxAge)):
		return fail("iat is more than %v ago", iatMaxAge)
	}
	if err := checkAccessTokenHash(idt, tok); err != nil {
		return nil, err
	}
	// Core §3.1.3.7 step 12 (SECURITY.md IDT-11): acr_values asked for an
	// authentication context; a provider may ignore the request (§5.5.1.1
	// makes it voluntary), so the answer is checked, not assumed.
	if p.cfg.ACRValues != "" && !slices.Contains(strings.Fields(p.cfg.ACRValues), stringClaim(all, "acr")) {
		return fail("acr %q is not one of acr_values %q", truncateString(stringClaim(all, "acr"), 64), p.cfg.ACRValues)
	}
	if idt.Subject == "" {
		return fail("no sub")
	}
	return all, nil
}

// checkAudience applies OpenID Connect Core §3.1.3.7 steps 3–5 (errata
// 2): aud contains our client_id, or, with audiences, one of those; azp,
// when present, is our client_id; with several audiences it must be
// present. Without audiences go-oidc has already checked step 3.
func (p *OIDC) checkAudience(aud []string, azp string) error {
	if !slices.Contains(aud, p.cfg.ClientID) && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(p.cfg.Audiences, a) }) {
		return fmt.Errorf("aud %q names neither this client nor an accepted audience", aud)
	}
	if azp != "" && azp != p.cfg.ClientID {
		return fmt.Errorf("azp %q is not this client", azp)
	}
	if len(aud) > 1 && azp != p.cfg.ClientID {
		return errors.New("token has several audiences and no azp naming this client")
	}
	return nil
}

// checkAccessTokenHash applies Core §3.1.3.8 (and §12.2 at refresh):
// at_hash is optional in the code flow, but when present it must match
// the access token we were given.
func checkAccessTokenHash(idt *oidc.IDToken, tok *oauth2.Token) error {
	if idt.AccessTokenHash == "" {
		return nil
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return fmt.Errorf("%w: at_hash does not match the access token", ErrInvalidToken)
	}
	return nil
}

// idTokenIdentity builds the identity a verified ID token describes, at
// sign-in and at refresh: the token's claims applied to base as use says
// and checked for headers (with the sid) before anything else is asked,
// then what userinfo adds (fillFromUserinfo), then the flavor's
// refinements; the result is checked in turn: for headers, for an email
// nobody vouched for, for a user claim no source carried.
func (p *OIDC) idTokenIdentity(ctx context.Context, d *discovery, tok *oauth2.Token, all map[string]any, base session.Identity, use claimUse) (session.Identity, error) {
	id := base
	p.claims().apply(&id, all, use)
	if err := checkHeaderSafe(ErrInvalidToken, &id, stringClaim(all, "sid")); err != nil {
		return session.Identity{}, err
	}
	if err := p.fillFromUserinfo(ctx, d, tok, &id); err != nil {
		return session.Identity{}, err
	}
	if err := p.flavor.identity(ctx, p, all, tok, &id); err != nil {
		return session.Identity{}, err
	}
	if err := p.checkIdentity(&id); err != nil {
		return session.Identity{}, err
	}
	return id, nil
}

// checkIdentity is what every identity built from this provider's
// claims must hold, whichever sources it came from.
func (p *OIDC) checkIdentity(id *session.Identity) error {
	if err := checkHeaderSafe(ErrInvalidToken, id); err != nil {
		return err
	}
	if err := checkEmailVouched(id, p.emailRule()); err != nil {
		return err
	}
	if p.cfg.UserClaim != "" && id.User == "" {
		// Falling back to the subject would hand the upstream a name from
		// another namespace (Dex's opaque sub where it expects an email).
		return fmt.Errorf("%w: user_claim %q is not a string claim of the ID token or userinfo", ErrInvalidToken, p.cfg.UserClaim)
	}
	return nil
}

// claims is where this provider's attributes are.
func (p *OIDC) claims() claimMapping {
	return claimMapping{groups: p.cfg.GroupsClaim, email: p.cfg.EmailClaim, username: p.cfg.UsernameClaim,
		user: p.cfg.UserClaim, policy: p.opts.Claims}
}

// emailRule is how this provider's ID tokens vouch for an email.
func (p *OIDC) emailRule() emailRule {
	if p.cfg.InsecureAllowUnverifiedEmail {
		return trustEmail
	}
	return requireVerifiedEmail
}
