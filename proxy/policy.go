package proxy

import (
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/session"
)

// PolicyConfig is the `policy` section: who may pass.
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
}

// rule is one compiled who-may-pass rule. It passes when the identity
// matches any entry; the zero rule denies everyone.
type rule struct {
	name    string // for logs: which rule decided
	anyone  bool
	emails  map[string]bool
	domains []string // exact, lower case
	suffix  []string // ".example.com", lower case
	groups  map[string]bool
}

func compileRule(name string, emails, domains, groups []string) (*rule, error) {
	r := &rule{name: name, emails: map[string]bool{}, groups: map[string]bool{}}
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
		case d == "" || strings.ContainsAny(d, "@*/ ") || strings.HasSuffix(d, "."):
			return nil, fmt.Errorf("%s: email domain %q is not a domain (use example.com, .example.com for subdomains, or *)", name, d)
		case strings.HasPrefix(d, "."):
			r.suffix = append(r.suffix, d)
		default:
			r.domains = append(r.domains, d)
		}
	}
	for _, g := range groups {
		if g == "" {
			// An empty group would match identities without groups
			// (oauth2-proxy #3365).
			return nil, fmt.Errorf("%s: empty group name", name)
		}
		r.groups[g] = true
	}
	return r, nil
}

// denies reports whether the rule can admit nobody.
func (r *rule) denies() bool {
	return !r.anyone && len(r.emails) == 0 && len(r.domains) == 0 && len(r.suffix) == 0 && len(r.groups) == 0
}

// allows reports whether id passes, and which part of the rule matched.
func (r *rule) allows(id *session.Identity) (bool, string) {
	if id.Subject == "" {
		return false, ""
	}
	if r.anyone {
		return true, "email_domains:*"
	}
	// Email rules need a verified address with exactly one "@"
	// (oauth2-proxy CVE-2026-40574: a@evil.com@example.com).
	if id.EmailVerified && strings.Count(id.Email, "@") == 1 {
		email := strings.ToLower(id.Email)
		if r.emails[email] {
			return true, "emails"
		}
		domain := email[strings.IndexByte(email, '@')+1:]
		for _, d := range r.domains {
			if domain == d {
				return true, "email_domains:" + d
			}
		}
		for _, s := range r.suffix {
			if strings.HasSuffix(domain, s) && len(domain) > len(s) {
				return true, "email_domains:" + s
			}
		}
	}
	for _, g := range id.Groups {
		if r.groups[g] {
			return true, "groups:" + g
		}
	}
	return false, ""
}
