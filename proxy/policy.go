package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/session"
)

// policy.go decides who may use which route. It is pure: no I/O, no
// clock, no request; the same code serves reverse-proxy mode and every
// forward-auth adapter, on the same canonical path.

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
	// Routes refine the rule per host, path prefix and method.
	Routes []RouteConfig `yaml:"routes"`
}

// RouteConfig is one entry of `policy.routes`. The route whose path is the
// longest prefix of the request's canonical path applies (host-specific
// before host-less at equal length); among routes with that path, the one
// listing the request's method, else the one listing no methods. When
// routes exist for the longest path but none admits the method, the request
// is denied: a method an operator did not mention does not silently fall
// back to a looser rule.
type RouteConfig struct {
	Host    string   `yaml:"host"`    // exact host, case-insensitive, port ignored; empty: any host
	Path    string   `yaml:"path"`    // canonical path prefix, at segment boundaries
	Methods []string `yaml:"methods"` // empty: any method
	// Public routes need no sign-in. Identity headers a client sends are
	// still removed; a signed-in user's identity is still passed on.
	Public       bool                `yaml:"public"`
	Emails       []string            `yaml:"emails"`
	EmailDomains []string            `yaml:"email_domains"`
	Groups       []string            `yaml:"groups"`
	Claims       map[string][]string `yaml:"claims"`
	// DenyMessage is shown to users this route turns away.
	DenyMessage string `yaml:"deny_message"`
	// Provider pins the route to one configured provider: users signed in
	// with another provider are asked to sign in with this one.
	Provider string `yaml:"provider"`
	// Bearer accepts Authorization: Bearer <JWT> from the issuers in the
	// `bearer` section instead of a session, for machine clients. The
	// token's identity goes through the same rule.
	Bearer bool `yaml:"bearer"`
}

// ClaimNames lists every claim the policy's rules name, so that sign-in
// keeps them in the session.
func (c PolicyConfig) ClaimNames() []string {
	set := map[string]bool{}
	for name := range c.Claims {
		set[name] = true
	}
	for _, r := range c.Routes {
		for name := range r.Claims {
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// policy is the compiled `policy` section.
type policy struct {
	def    *rule
	routes []*policyRoute // longest path first, then host-specific, then method-specific
}

type policyRoute struct {
	name        string // for logs: "routes[2] /admin/"
	host        string
	path        string
	methods     []string
	public      bool
	rule        *rule // nil: the default rule
	denyMessage string
	bearer      bool
	provider    string // pinned provider id, "" for any
}

// decision is what the policy says about one request.
type decision struct {
	route  *policyRoute // nil when no route matched (the default rule applied)
	public bool
	allow  bool
	signIn bool // not signed in, and signing in could help
	// rule and why name what decided, for logs: rule "routes[1]" and why
	// " groups:admins" or ": not signed in", or a rule that says it all.
	// Kept apart so that deciding joins no strings; text joins them.
	rule, why string
}

// text is the whole rule, as logs and tools show it.
func (d decision) text() string {
	if d.why == "" {
		return d.rule
	}
	return d.rule + d.why
}

func compilePolicy(cfg PolicyConfig) (*policy, error) {
	def, err := compileRule("policy", cfg.Emails, cfg.EmailDomains, cfg.Groups, cfg.Claims)
	if err != nil {
		return nil, err
	}
	p := &policy{def: def}
	seen := map[string]bool{}
	for i, rc := range cfg.Routes {
		name := "policy.routes[" + strconv.Itoa(i) + "]"
		pr := &policyRoute{host: normHost(rc.Host), path: rc.Path, public: rc.Public, denyMessage: rc.DenyMessage, bearer: rc.Bearer, provider: rc.Provider}
		if rc.Public && rc.Bearer {
			return nil, fmt.Errorf("%s: a public route needs no bearer token", name)
		}
		if pr.path == "" {
			pr.path = "/"
		}
		if cp, _, err := canonicalPath(pr.path); err != nil || cp != pr.path {
			return nil, fmt.Errorf("%s: path %q is not a canonical path (%v)", name, rc.Path, err)
		}
		if rc.Host != "" && (strings.ContainsAny(rc.Host, "/@ *?#") || pr.host == "") {
			return nil, fmt.Errorf("%s: host %q is not a host name", name, rc.Host)
		}
		for _, m := range rc.Methods {
			m = strings.ToUpper(strings.TrimSpace(m))
			if m == "" || strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
				return nil, fmt.Errorf("%s: method %q is not an HTTP method", name, m)
			}
			pr.methods = append(pr.methods, m)
		}
		slices.Sort(pr.methods)
		pr.name = name + " " + pr.host + pr.path
		hasRule := len(rc.Emails)+len(rc.EmailDomains)+len(rc.Groups)+len(rc.Claims) > 0
		switch {
		case rc.Public && hasRule:
			return nil, fmt.Errorf("%s: a public route cannot also name who may pass", name)
		case hasRule:
			if pr.rule, err = compileRule(name, rc.Emails, rc.EmailDomains, rc.Groups, rc.Claims); err != nil {
				return nil, err
			}
		}
		key := pr.host + " " + pr.path + " " + strings.Join(pr.methods, ",")
		if seen[key] {
			return nil, fmt.Errorf("%s: another route has the same host, path and methods", name)
		}
		for _, m := range pr.methods {
			if seen[pr.host+" "+pr.path+" m:"+m] {
				return nil, fmt.Errorf("%s: method %s is listed by another route with the same host and path", name, m)
			}
			seen[pr.host+" "+pr.path+" m:"+m] = true
		}
		seen[key] = true
		p.routes = append(p.routes, pr)
	}
	sort.SliceStable(p.routes, func(i, j int) bool {
		a, b := p.routes[i], p.routes[j]
		if len(a.path) != len(b.path) {
			return len(a.path) > len(b.path)
		}
		if (a.host != "") != (b.host != "") {
			return a.host != ""
		}
		return len(a.methods) > len(b.methods)
	})
	return p, nil
}

// normHost lowercases a host and drops a port and a trailing dot.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// route finds the route for a request. ok is false when routes exist for
// the longest matching path and host but none admits the method.
func (p *policy) route(host, method, path string) (r *policyRoute, ok bool) {
	var best *policyRoute
	for _, pr := range p.routes {
		if pr.host != "" && pr.host != host {
			continue
		}
		if !policyPathMatch(path, pr.path) {
			continue
		}
		if best != nil && (pr.path != best.path || pr.host != best.host) {
			break // past the most specific routes
		}
		best = pr
		if len(pr.methods) == 0 || slices.Contains(pr.methods, method) {
			return pr, true
		}
	}
	if best != nil {
		return best, false
	}
	return nil, true
}

// pinned is the provider the decided route requires, "" for any.
func (d decision) pinned() string {
	if d.route == nil {
		return ""
	}
	return d.route.provider
}

// policyPathMatch is pathHasPrefix, except that a route for "/admin/" also
// covers "/admin" itself: many backends serve the directory without its
// slash, and a rule must not be dodged by leaving it off.
func policyPathMatch(path, prefix string) bool {
	if pathHasPrefix(path, prefix) {
		return true
	}
	return len(prefix) > 1 && prefix[len(prefix)-1] == '/' && path == prefix[:len(prefix)-1]
}

// decide applies the policy to a request for (host, method, path) by id
// (nil when not signed in).
func (p *policy) decide(host, method, path string, id *session.Identity) decision {
	if method == http.MethodHead {
		method = http.MethodGet // HEAD is a GET without the body
	}
	pr, ok := p.route(host, method, path)
	if !ok {
		return decision{route: pr, rule: pr.name + ": method " + method + " not listed"}
	}
	if pr != nil && pr.public {
		return decision{route: pr, public: true, allow: true, rule: pr.name, why: " public"}
	}
	r, name := p.def, "default"
	if pr != nil {
		name = pr.name
		if pr.rule != nil {
			r = pr.rule
		}
	}
	if id == nil {
		return decision{route: pr, signIn: true, rule: name, why: ": not signed in"}
	}
	allow, why := r.allows(id)
	if !allow {
		return decision{route: pr, rule: name + ": no email, domain, group or claim matched"}
	}
	return decision{route: pr, allow: true, rule: name, why: why}
}

// denies reports whether the default rule admits nobody and no route can
// admit anyone either.
func (p *policy) denies() bool {
	if !p.def.denies() {
		return false
	}
	for _, r := range p.routes {
		if r.public || (r.rule != nil && !r.rule.denies()) {
			return false
		}
	}
	return true
}

// groupNames lists every group any rule names (for trimming oversized
// group lists to what matters).
func (p *policy) groupNames() map[string]bool {
	out := map[string]bool{}
	for g := range p.def.groups {
		out[g] = true
	}
	for _, r := range p.routes {
		if r.rule != nil {
			for g := range r.rule.groups {
				out[g] = true
			}
		}
	}
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
	domains []labelled // exact, lower case
	suffix  []labelled // ".example.com", lower case
	groups  map[string]string
	claims  map[string]claimValues
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
func (r *rule) denies() bool {
	return !r.anyone && len(r.emails) == 0 && len(r.domains) == 0 && len(r.suffix) == 0 && len(r.groups) == 0 && len(r.claims) == 0
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

// Policy is a compiled policy section, for tools that test policies
// (portcullis policy test).
type Policy struct{ p *policy }

// NewPolicy compiles cfg as the gateway does.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	p, err := compilePolicy(cfg)
	if err != nil {
		return nil, err
	}
	return &Policy{p: p}, nil
}

// Decide says whether id (nil: not signed in) may make the request and
// which rule decided. The path goes through the gateway's canonicaliser
// first; a path the gateway would refuse with 400 is an error.
func (p *Policy) Decide(method, host, path string, id *session.Identity) (allow bool, rule string, err error) {
	canonical, _, err := canonicalPath(path)
	if err != nil {
		return false, "", err
	}
	if method == "" {
		method = http.MethodGet
	}
	d := p.p.decide(normHost(host), strings.ToUpper(method), canonical, id)
	return d.allow, d.text(), nil
}
