package providers

import (
	"crypto/subtle"
	"fmt"
	"strconv"
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

// idClaims are the claims we read beyond what go-oidc parses. They are
// read by exact name from the decoded claim map: encoding/json would match
// struct tags case-insensitively, letting a later "Email_Verified": true
// override "email_verified": false.
type idClaims struct {
	AZP               string
	SID               string
	Email             string
	EmailVerified     bool // the JSON boolean true, nothing else
	Name              string
	PreferredUsername string
}

func readIDClaims(all map[string]any) idClaims {
	str := func(k string) string { s, _ := all[k].(string); return s }
	return idClaims{
		AZP:               str("azp"),
		SID:               str("sid"),
		Email:             str("email"),
		EmailVerified:     all["email_verified"] == true,
		Name:              str("name"),
		PreferredUsername: str("preferred_username"),
	}
}

// checkIDToken does what go-oidc's Verify leaves to the caller (it has
// checked signature, alg allowlist, iss, aud contains client_id, exp) and
// extracts the identity.
func (p *OIDC) checkIDToken(idt *oidc.IDToken, tok *oauth2.Token, nonce string) (session.Identity, idClaims, map[string]any, error) {
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return session.Identity{}, c, nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	c = readIDClaims(all)
	fail := func(format string, args ...any) (session.Identity, idClaims, map[string]any, error) {
		return session.Identity{}, c, nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
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
	// Core §3.1.3.7 steps 4–5 (errata 2): azp, when present, is our
	// client_id; with several audiences it must be present.
	if c.AZP != "" && c.AZP != p.cfg.ClientID {
		return fail("azp %q is not this client", c.AZP)
	}
	if len(idt.Audience) > 1 && c.AZP != p.cfg.ClientID {
		return fail("token has several audiences and no azp naming this client")
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
	// Core §3.1.3.8: at_hash is optional in the code flow, but when present
	// it must match the access token we were given.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return fail("at_hash does not match the access token")
		}
	}
	if idt.Subject == "" {
		return fail("no sub")
	}
	id := session.Identity{
		Issuer:            idt.Issuer,
		Subject:           idt.Subject,
		Email:             c.Email,
		Name:              c.Name,
		PreferredUsername: c.PreferredUsername,
		Groups:            stringList(lookupClaim(all, p.cfg.GroupsClaim)),
	}
	for _, name := range p.opts.Claims {
		if vs := claimValues(lookupClaim(all, name)); len(vs) > 0 {
			if id.Claims == nil {
				id.Claims = make(map[string][]string, len(p.opts.Claims))
			}
			id.Claims[name] = vs
		}
	}
	// Core §5.1: email_verified true means the provider checked the
	// address. Only the JSON boolean true counts.
	verified := c.EmailVerified
	if id.Email != "" && !verified && !p.cfg.InsecureAllowUnverifiedEmail {
		return session.Identity{}, c, nil, fmt.Errorf("%w: %s", ErrUnverifiedEmail, id.Email)
	}
	id.EmailVerified = id.Email != "" && (verified || p.cfg.InsecureAllowUnverifiedEmail)
	// Values we will put in headers must be header-safe; a provider that
	// emits control characters gets no session rather than a broken one.
	checked := append([]string{id.Subject, id.Email, id.Name, id.PreferredUsername, c.SID}, id.Groups...)
	for _, vs := range id.Claims {
		checked = append(checked, vs...)
	}
	for _, v := range checked {
		if hasControl(v) {
			return fail("claims contain control characters")
		}
	}
	return id, c, all, nil
}

// lookupClaim follows a dotted path (realm_access.roles) through nested
// objects. A claim whose own name contains dots is found too.
func lookupClaim(claims map[string]any, path string) any {
	if v, ok := claims[path]; ok {
		return v
	}
	head, rest, ok := strings.Cut(path, ".")
	if !ok {
		return nil
	}
	inner, _ := claims[head].(map[string]any)
	if inner == nil {
		return nil
	}
	return lookupClaim(inner, rest)
}

// stringList turns a claim value into strings: a list of strings, or one
// string. Anything else yields nothing.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimValues flattens a claim for policy: strings, numbers and booleans
// as text, and lists of them. Objects yield nothing.
func claimValues(v any) []string {
	one := func(e any) (string, bool) {
		switch e := e.(type) {
		case string:
			return e, e != ""
		case float64:
			return strconv.FormatFloat(e, 'f', -1, 64), true
		case bool:
			return strconv.FormatBool(e), true
		}
		return "", false
	}
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, e := range list {
			if s, ok := one(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := one(v); ok {
		return []string{s}
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
