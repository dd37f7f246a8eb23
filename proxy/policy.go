package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/session"
)

// policy.go compiles and applies who-may-pass rules: the `policy`
// section's default rule, each route's rule, and forward-auth's allowed_*
// narrowing. Rules are pure: no I/O, no clock, no request. Which rule
// governs a request is the route table's business (routes.go), what
// follows from it the decision's (decide.go).

// PolicyConfig is the `policy` section. Its top-level rule (emails,
// email_domains, groups, claims) is the default for routes that set none.
type PolicyConfig struct {
	// EmailDomains admits verified emails in these domains: an exact domain
	// after the single "@" ("example.com" admits a@example.com, not
	// a@sub.example.com or a@evil-example.com); a leading dot admits
	// subdomains at a dot boundary (".example.com" admits a@x.example.com).
	// "*" admits every signed-in identity.
	EmailDomains []string `yaml:"email_domains"`
	// Emails admits these exact verified addresses (case-insensitive).
	Emails []string `yaml:"emails"`
	// Groups admits members of any of these groups (exact, case-sensitive).
	Groups []string `yaml:"groups"`
	// Claims admits identities whose claim has any of the listed values
	// (claim names may be dotted for nested claims).
	Claims map[string][]string `yaml:"claims"`
	// Expr, SourceIPs and Hours are conditions the default rule adds
	// (docs/policy.md, "Conditions"): a CEL expression that must be true,
	// the client addresses and the times it admits.
	Expr      string   `yaml:"expr"`
	SourceIPs []string `yaml:"source_ips"`
	Hours     []string `yaml:"hours"`
	// ExprAt is where Expr starts in the file, for errors (set by the
	// loader).
	ExprAt Pos `yaml:"-"`
	// DenyMessage and Remediation are shown to users the default rule
	// turns away: what happened, and what to do about it.
	DenyMessage string `yaml:"deny_message"`
	Remediation string `yaml:"remediation"`
	// TimeZone is the IANA zone hours: and the time functions of
	// expressions read (default UTC).
	TimeZone string `yaml:"time_zone"`
	// Routes refine the rule per host, path prefix and method.
	Routes []RouteConfig `yaml:"routes"`

	// The oauth2-proxy options (docs/policy.md, "oauth2-proxy's routing
	// options"), each matched against the canonical path, never the raw one.

	// SkipAuthRoutes pass without sign-in and without identity:
	// oauth2-proxy's skip_auth_routes, "METHOD=^regex" or "^regex" (RE2,
	// anchored with "^" in every alternative).
	SkipAuthRoutes []string `yaml:"skip_auth_routes"`
	// TrustedIPs are the CIDRs (or addresses) whose requests pass without
	// sign-in and without identity: oauth2-proxy's trusted_ips. The client
	// is the TCP peer, or behind server.trusted_proxies the right-most
	// address of X-Forwarded-For that is not one of them.
	TrustedIPs []string `yaml:"trusted_ips"`
	// APIRoutes ("^regex") answer a request without a session with a 401
	// in JSON, never a redirect to sign-in: oauth2-proxy's api_routes.
	APIRoutes []string `yaml:"api_routes"`
	// AuthenticatedEmailsFile admits the verified addresses it lists, one
	// a line (blank lines and lines starting with # ignored; oauth2-proxy's
	// format), like Emails: part of the default rule. Re-read when it
	// changes; a file that becomes unreadable or malformed keeps the last
	// good list.
	AuthenticatedEmailsFile string `yaml:"authenticated_emails_file"`
	// AuthenticatedEmails is the file's contents, read by main at start.
	AuthenticatedEmails []byte `yaml:"-"`
}

// ClaimNames lists every claim the policy's rules name, in claims: and
// in expressions, so that sign-in keeps them in the session.
func (c PolicyConfig) ClaimNames() []string {
	set := map[string]bool{}
	for name := range c.Claims {
		set[name] = true
	}
	srcs := []string{c.Expr}
	for _, r := range c.Routes {
		for name := range r.Claims {
			set[name] = true
		}
		srcs = append(srcs, r.Expr)
	}
	for _, name := range exprClaimNames(srcs) {
		set[name] = true
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// rule is one compiled who-may-pass rule. It passes when the identity
// matches any entry; the zero rule denies everyone.
// A rule's entries carry the label that names them in decisions
// ("groups:admins"), made once here rather than on every request.
type rule struct {
	name    string
	anyone  bool
	emails  map[string]bool
	file    *emailList // authenticated_emails_file, reloaded in place; nil for none
	domains []labelled // exact, lower case
	suffix  []labelled // ".example.com", lower case
	groups  map[string]string
	claims  map[string]claimValues

	// Conditions (conditions.go): all must hold as well. A rule with an
	// expression and no entries lets the expression alone say who.
	expr      *compiledExpr
	sources   []netip.Prefix // source_ips
	hours     []window
	hoursText string         // the windows as written, for the log
	zone      *time.Location // policy.time_zone, for hours
	also      string         // " and source_ips, hours, expr": appended to an allow's label

	// What the 403 page says for the default rule (routes keep their
	// own).
	denyMessage, remediation string
}

// labelled is a rule entry and its label.
type labelled struct{ value, label string }

// claimValues are the accepted values of one claim.
type claimValues struct {
	values map[string]bool
	label  string
}

func compileRule(name string, emails, domains, groups []string, claims map[string][]string) (*rule, error) {
	r := &rule{name: name, emails: map[string]bool{}, groups: map[string]string{}, claims: map[string]claimValues{}}
	for _, e := range emails {
		e = strings.ToLower(strings.TrimSpace(e))
		if strings.Count(e, "@") != 1 || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@") {
			return nil, fmt.Errorf("%s: %q is not an email address", name, e)
		}
		r.emails[e] = true
	}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "*":
			r.anyone = true
		case d == "" || d == "." || strings.ContainsAny(d, "@*/ ") || strings.HasSuffix(d, "."):
			return nil, fmt.Errorf("%s: email domain %q is not a domain (use example.com, .example.com for subdomains, or *)", name, d)
		case strings.HasPrefix(d, "."):
			r.suffix = append(r.suffix, labelled{d, " email_domains:" + d})
		default:
			r.domains = append(r.domains, labelled{d, " email_domains:" + d})
		}
	}
	for _, g := range groups {
		if g == "" {
			// An empty group would match identities without groups
			// (oauth2-proxy #3365).
			return nil, fmt.Errorf("%s: empty group name", name)
		}
		r.groups[g] = " groups:" + g
	}
	for c, values := range claims {
		if c == "" || len(values) == 0 {
			return nil, fmt.Errorf("%s: claim %q needs a name and at least one value", name, c)
		}
		set := map[string]bool{}
		for _, v := range values {
			if v == "" {
				return nil, fmt.Errorf("%s: claim %q: empty value", name, c)
			}
			set[v] = true
		}
		r.claims[c] = claimValues{values: set, label: " claims:" + c}
	}
	return r, nil
}

// denies reports whether the rule can admit nobody.
func (r *rule) denies() bool { return !r.hasEntries() && r.expr == nil }

// hasEntries reports whether the rule names who may pass: emails,
// domains, groups, claims or the emails file.
func (r *rule) hasEntries() bool {
	return r.anyone || r.file != nil || len(r.emails) > 0 || len(r.domains) > 0 || len(r.suffix) > 0 || len(r.groups) > 0 || len(r.claims) > 0
}

// allows reports whether id passes, and which part of the rule matched
// (" groups:admins": a label with its leading space).
func (r *rule) allows(id *session.Identity) (bool, string) {
	if id.Subject == "" {
		return false, ""
	}
	if r.anyone {
		return true, " email_domains:*"
	}
	// Email rules need a verified address with exactly one "@"
	// (oauth2-proxy CVE-2026-40574: a@evil.com@example.com).
	if id.EmailVerified && strings.Count(id.Email, "@") == 1 {
		email := strings.ToLower(id.Email)
		if r.emails[email] {
			return true, " emails"
		}
		if r.file.has(email) {
			return true, " authenticated_emails_file"
		}
		domain := email[strings.IndexByte(email, '@')+1:]
		for _, d := range r.domains {
			if domain == d.value {
				return true, d.label
			}
		}
		for _, s := range r.suffix {
			if strings.HasSuffix(domain, s.value) && len(domain) > len(s.value) {
				return true, s.label
			}
		}
	}
	for _, g := range id.Groups {
		if label, ok := r.groups[g]; ok {
			return true, label
		}
	}
	for c, want := range r.claims {
		for _, v := range id.Claims[c] {
			if want.values[v] {
				return true, want.label
			}
		}
	}
	return false, ""
}

// errEmailMalformed and errNoRuleAdmits refuse a sign-in at the callback,
// before a session exists.
var (
	errEmailMalformed = errors.New("email is not a plain address")
	errNoRuleAdmits   = errors.New("no rule of the policy could admit this identity")
)

// checkEmail refuses an identity whose email is not a plain RFC 5321
// §4.1.2 Mailbox (RFC 5322 §3.4.1 addr-spec) in the strict form email
// rules and the email header can rely on: one "@", a dot-atom local part
// of at most 64 bytes, and a domain of LDH labels (IDNs as A-labels), no
// trailing dot, no address literal, ASCII only. Quoted local parts and
// SMTPUTF8 addresses are refused too: stricter than the RFCs, but nothing
// downstream can misread what is left. An empty email (OIDC Core §5.1
// makes it optional) is no email, not an error.
func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || !dotAtom(local) || len(local) > 64 || !ldhDomain(domain) {
		return fmt.Errorf("%w: %q", errEmailMalformed, truncate(email, 64))
	}
	return nil
}

// dotAtom reports whether s is an RFC 5322 §3.2.3 dot-atom-text.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && !strings.ContainsRune(".!#$%&'*+-/=?^_`{|}~", rune(c)) {
			return false
		}
	}
	return true
}

// ldhDomain reports whether s is a domain of RFC 5321 §4.1.2 sub-domains:
// letters, digits and inner hyphens, 1–63 bytes each, 255 in all.
func ldhDomain(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
