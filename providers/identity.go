package providers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/session"
)

// identity.go turns verified claims into a session.Identity. Every source
// goes through the one mapping here: the ID token at sign-in and at
// refresh, the userinfo response, and a bearer token. What differs between
// them is a claimUse, written out where each source is read.
//
// Claims are read by exact name from the decoded claim map, never through
// encoding/json struct tags: those match names case-insensitively, which
// would let a later "Email_Verified": true override "email_verified": false
// (RFC 7519 §4: claim names are case-sensitive strings).

// claimMapping says which claims hold an identity's groups and the
// policy's extra claims for one provider or bearer issuer.
type claimMapping struct {
	groups string   // the groups claim, dotted for nested claims
	policy []string // Options.Claims: kept for policy rules
}

// claimUse is how one source's claims are applied to an identity.
type claimUse struct {
	// profile: the source sets email, email_verified, name and
	// preferred_username. Without it the source sets only groups and the
	// policy claims.
	profile bool
	// keepAbsent: a profile attribute whose claim the source omits keeps
	// its value; otherwise it is emptied. Groups and policy claims are
	// never kept this way: a source that sets them sets them all, so that
	// userinfo can fill what the ID token no longer carries.
	keepAbsent bool
	// fillOnly: the source sets only attributes the identity lacks (a
	// second source under the ID token, whose values win).
	fillOnly bool
	// email says what an email address without email_verified true does.
	email emailRule
}

// emailRule is what an email the provider does not vouch for does.
type emailRule int

const (
	// requireVerifiedEmail refuses the identity with ErrUnverifiedEmail
	// (OpenID Connect Core §5.1: email_verified true means the provider
	// checked the address; SECURITY.md IDT-13).
	requireVerifiedEmail emailRule = iota
	// trustEmail counts every email as verified
	// (insecure_allow_unverified_email).
	trustEmail
	// reportEmail keeps the email with EmailVerified false: nothing is
	// refused, the policy decides (bearer tokens).
	reportEmail
)

// apply sets the attributes use allows from all onto id. Issuer and
// Subject are the caller's: they come from the verified token itself.
func (m claimMapping) apply(id *session.Identity, all map[string]any, use claimUse) error {
	if use.profile {
		if err := use.setEmail(id, all); err != nil {
			return err
		}
		use.setString(&id.Name, all, "name")
		use.setString(&id.PreferredUsername, all, "preferred_username")
	}
	if g := lookupClaim(all, m.groups); !use.fillOnly || id.Groups == nil {
		id.Groups = stringList(g)
	}
	for _, name := range m.policy {
		if _, have := id.Claims[name]; use.fillOnly && have {
			continue
		}
		vs := claimValues(lookupClaim(all, name))
		if len(vs) == 0 {
			delete(id.Claims, name)
			continue
		}
		if id.Claims == nil {
			id.Claims = make(map[string][]string, len(m.policy))
		}
		id.Claims[name] = vs
	}
	return nil
}

// lacks reports whether id misses an attribute a source used as use could
// set: groups or a policy claim, and with use.profile an email, name or
// preferred username.
func (m claimMapping) lacks(id *session.Identity, use claimUse) bool {
	if id.Groups == nil || slices.ContainsFunc(m.policy, func(c string) bool { _, ok := id.Claims[c]; return !ok }) {
		return true
	}
	return use.profile && (id.Email == "" || id.Name == "" || id.PreferredUsername == "")
}

// takes reports whether a profile attribute whose current value is cur is
// set from a claim that is present or not.
func (use claimUse) takes(present bool, cur string) bool {
	if use.fillOnly {
		return present && cur == ""
	}
	return present || !use.keepAbsent
}

func (use claimUse) setString(dst *string, all map[string]any, name string) {
	v, present := all[name]
	if use.takes(present, *dst) {
		*dst, _ = v.(string)
	}
}

func (use claimUse) setEmail(id *session.Identity, all map[string]any) error {
	v, present := all["email"]
	if !use.takes(present, id.Email) {
		return nil
	}
	email, _ := v.(string)
	vouched := all["email_verified"] == true // the JSON boolean true, nothing else
	switch {
	case email == "":
		id.Email, id.EmailVerified = "", false
	case use.email == requireVerifiedEmail && !vouched:
		return fmt.Errorf("%w: %s", ErrUnverifiedEmail, email)
	case use.email == reportEmail:
		id.Email, id.EmailVerified = email, vouched
	default:
		id.Email, id.EmailVerified = email, true
	}
	return nil
}

// checkHeaderSafe refuses an identity holding a control character (below
// 0x20, or DEL) in any value that goes into a header, and in extra (the
// sid): a provider that emits them gets no session rather than a broken
// or injected header. The error wraps sentinel, the path's own.
func checkHeaderSafe(sentinel error, id *session.Identity, extra ...string) error {
	unsafe := hasControl(id.Subject) || hasControl(id.Email) || hasControl(id.Name) || hasControl(id.PreferredUsername) ||
		slices.ContainsFunc(extra, hasControl) || slices.ContainsFunc(id.Groups, hasControl)
	for _, vs := range id.Claims {
		unsafe = unsafe || slices.ContainsFunc(vs, hasControl)
	}
	if unsafe {
		return fmt.Errorf("%w: claims contain control characters", sentinel)
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

// stringClaim is the claim name when it is a string, else "".
func stringClaim(all map[string]any, name string) string {
	s, _ := all[name].(string)
	return s
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
