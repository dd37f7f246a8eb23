package providers

import (
	"cmp"
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

// claimMapping says which claims hold an identity's attributes for one
// provider or bearer issuer. Empty names are the OpenID Connect Core
// §5.1 standard claims.
type claimMapping struct {
	groups   string   // the groups claim, dotted for nested claims
	email    string   // email_claim; "" is email
	username string   // username_claim; "" is preferred_username
	user     string   // user_claim; "" sets no Identity.User
	policy   []string // Options.Claims: kept for policy rules
}

func (m claimMapping) emailClaim() string    { return cmp.Or(m.email, "email") }
func (m claimMapping) usernameClaim() string { return cmp.Or(m.username, "preferred_username") }

// claimUse is how one source's claims are applied to an identity.
type claimUse struct {
	// profile: the source sets email, email_verified, name,
	// preferred_username and the user claim. Without it the source sets
	// only groups and the policy claims.
	profile bool
	// keepAbsent: a profile attribute whose claim the source omits keeps
	// its value; otherwise it is emptied. Groups and policy claims are
	// kept this way only with overlay: a refreshed ID token that sets
	// them sets them all, so that userinfo can fill what it no longer
	// carries.
	keepAbsent bool
	// overlay: the source's claims win wherever present and everything it
	// omits, groups and policy claims included, keeps its value (userinfo
	// with `userinfo: always`, and at a refresh without an ID token).
	overlay bool
	// fillOnly: the source sets only attributes the identity lacks (a
	// second source under the ID token, whose values win). An email the
	// identity has but nobody vouched for counts as lacking its
	// email_verified.
	fillOnly bool
	// email says what an email address without email_verified true does.
	email emailRule
}

// emailRule is what an email the provider does not vouch for does.
type emailRule int

const (
	// requireVerifiedEmail refuses the identity with ErrUnverifiedEmail
	// (OpenID Connect Core §5.1: email_verified true means the provider
	// checked the address; SECURITY.md IDT-13), once every source has
	// been read (checkEmailVouched): userinfo may vouch for an address
	// the ID token carries without email_verified.
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
func (m claimMapping) apply(id *session.Identity, all map[string]any, use claimUse) {
	if use.profile {
		use.setEmail(id, all, m.emailClaim())
		use.setString(&id.Name, all, "name")
		use.setString(&id.PreferredUsername, all, m.usernameClaim())
		if m.user != "" {
			use.setString(&id.User, all, m.user)
		}
	}
	if g, present := findClaim(all, m.groups); use.takesList(present, id.Groups != nil) {
		id.Groups = stringList(g)
	}
	for _, name := range m.policy {
		v, present := findClaim(all, name)
		if _, have := id.Claims[name]; !use.takesList(present, have) {
			continue
		}
		vs := claimValues(v)
		if len(vs) == 0 {
			delete(id.Claims, name)
			continue
		}
		if id.Claims == nil {
			id.Claims = make(map[string][]string, len(m.policy))
		}
		id.Claims[name] = vs
	}
}

// lacks reports whether id misses an attribute a source used as use could
// set: groups or a policy claim, and with use.profile an email vouched
// for, a name, a preferred username or the user claim. OpenID Connect
// Core §5.4 lets a provider answer the profile at userinfo alone.
func (m claimMapping) lacks(id *session.Identity, use claimUse) bool {
	if id.Groups == nil || slices.ContainsFunc(m.policy, func(c string) bool { _, ok := id.Claims[c]; return !ok }) {
		return true
	}
	return use.profile && (id.Email == "" || !id.EmailVerified || id.Name == "" || id.PreferredUsername == "" ||
		m.user != "" && id.User == "")
}

// takes reports whether a profile attribute whose current value is cur is
// set from a claim that is present or not.
func (use claimUse) takes(present bool, cur string) bool {
	switch {
	case use.fillOnly:
		return present && cur == ""
	case use.overlay, use.keepAbsent:
		return present
	}
	return true
}

// takesList is takes for groups and policy claims, which keepAbsent does
// not keep (see claimUse).
func (use claimUse) takesList(present, have bool) bool {
	switch {
	case use.fillOnly:
		return present && !have
	case use.overlay:
		return present
	}
	return true
}

func (use claimUse) setString(dst *string, all map[string]any, name string) {
	v, present := findClaim(all, name)
	if use.takes(present, *dst) {
		*dst, _ = v.(string)
	}
}

// setEmail sets the email from the claim named name and whether the
// provider vouched for it (email_verified, the JSON boolean true and
// nothing else). A fill-only source may vouch for the address the
// identity already has.
func (use claimUse) setEmail(id *session.Identity, all map[string]any, name string) {
	v, present := findClaim(all, name)
	email, _ := v.(string)
	vouched := all["email_verified"] == true || use.email == trustEmail
	switch {
	case use.fillOnly && email != "" && email == id.Email:
		id.EmailVerified = id.EmailVerified || vouched
	case !use.takes(present, id.Email):
	case email == "":
		id.Email, id.EmailVerified = "", false
	default:
		id.Email, id.EmailVerified = email, vouched
	}
}

// checkEmailVouched applies rule to the identity every source has built:
// with requireVerifiedEmail an email nobody vouched for refuses it.
func checkEmailVouched(id *session.Identity, rule emailRule) error {
	if rule == requireVerifiedEmail && id.Email != "" && !id.EmailVerified {
		return fmt.Errorf("%w: %s", ErrUnverifiedEmail, id.Email)
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
	v, _ := findClaim(claims, path)
	return v
}

// findClaim is lookupClaim that also says whether the claim is there: a
// JSON null is present, and clears what it names.
func findClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(path, ".")
	if !ok {
		return nil, false
	}
	inner, _ := claims[head].(map[string]any)
	if inner == nil {
		return nil, false
	}
	return findClaim(inner, rest)
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
