package proxy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/session"
)

// routes.go is the one route table. `upstreams` (where a request goes) and
// `policy.routes` (who may pass) keep their shape in the file but compile
// into one sorted table with one validator and one matcher, so routing and
// policy cannot disagree: a request's upstream and its rule come from the
// same row.

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
	// Expr, SourceIPs and Hours are the route rule's conditions
	// (conditions.go): a CEL expression that must be true, the client
	// addresses and the times it admits.
	Expr      string   `yaml:"expr"`
	SourceIPs []string `yaml:"source_ips"`
	Hours     []string `yaml:"hours"`
	// ExprAt is where Expr starts in the file, for errors (set by the
	// loader).
	ExprAt Pos `yaml:"-"`
	// DenyMessage is shown to users this route turns away; Remediation
	// tells them what to do about it (the 403 page and its JSON).
	DenyMessage string `yaml:"deny_message"`
	Remediation string `yaml:"remediation"`
	// Provider pins the route to one configured provider: users signed in
	// with another provider are asked to sign in with this one.
	Provider string `yaml:"provider"`
	// Bearer accepts Authorization: Bearer <JWT> from the issuers in the
	// `bearer` section instead of a session, for machine clients. The
	// token's identity goes through the same rule.
	Bearer bool `yaml:"bearer"`
	// Device, when false, refuses the gateway's own device-grant tokens
	// (device.go) on this route: only browser sessions (and bearer
	// tokens, if Bearer) pass. Default true where device.enabled.
	Device *bool `yaml:"device"`
	// PassEncodedSlashes admits "%2F" in paths under this route and sends
	// it upstream as is (RabbitMQ's management UI names the vhost "/" as
	// "%2F"); refused everywhere else. Routes with the same host and path
	// must agree. See slashes.go.
	PassEncodedSlashes bool `yaml:"pass_encoded_slashes"`
}

// Route is one compiled entry of policy.routes.
type Route struct {
	name        string // for logs and metrics: "policy.routes[2] /admin/"
	host        string
	path        string
	methods     []string // sorted; empty: any
	public      bool
	bearer      bool
	noDevice    bool   // device: false
	provider    string // pinned provider id, "" for any
	denyMessage string
	remediation string
	rule        *rule // nil: the default rule
	slashes     bool  // pass_encoded_slashes
}

// Name is how logs, metrics and `policy test` name the route.
func (r *Route) Name() string { return r.name }

// Routes is the compiled route table. Immutable; safe for concurrent use.
type Routes struct {
	def    *rule
	policy []*Route          // policy.routes, longest path first, then host-specific, then method-specific
	ups    []UpstreamConfig  // validated, defaults filled; rows index it
	hosts  map[string][]*row // per host named anywhere: its own rows and the host-less ones
	any    []*row            // for every other host: the host-less rows

	// The same table with every path ASCII-lowercased, for backends that
	// fold case (IIS, Windows shares, many Java and PHP setups): a request
	// must also pass the route its path matches case-insensitively. Paths
	// are case-sensitive by RFC 3986 (§6.2.2.1 folds only scheme, host and
	// percent-encodings), which is why such backends are a hazard. Built
	// only when some path has a letter (foldable); upperPrefix says some
	// path has an upper-case letter, so that even a lower-case request
	// needs the folded lookup.
	foldHosts   map[string][]*row
	foldAny     []*row
	foldable    bool
	upperPrefix bool

	// oauth2-proxy's options, on the canonical path (skipauth.go).
	skip    []*pathRegex // policy.skip_auth_routes
	api     []*pathRegex // policy.api_routes
	trusted trustedIPs   // policy.trusted_ips
	emails  *EmailsFile  // policy.authenticated_emails_file, nil for none
	slashes bool         // some route has pass_encoded_slashes

	// What the rules' conditions read: the request's attributes, and
	// whether an expression reads identity.groups (so no group may be
	// dropped from a session: "not in contractors" would then pass).
	reqAttrs, exprGroups bool
}

// row is one (host, path) of the table: the upstream that serves it and,
// per method, the policy routes that govern it.
type row struct {
	prefix   string
	exact    bool     // matches prefix itself only: the "/admin" of a route for "/admin/"
	upstream int      // index into Routes.ups; -1 when no upstream serves it
	routes   []*Route // for this (host, path), method-specific first; empty: the default rule
	// encodedSlashes: the routes have pass_encoded_slashes ("%2F" kept).
	encodedSlashes bool
}

// Known is what the route table needs to know of sections other packages
// own: which provider ids a route may pin, and whether bearer tokens can
// be verified at all.
type Known struct {
	Providers []string // configured provider ids
	Bearer    bool     // the bearer section names an issuer or an audience
	// SessionLifetime is session.lifetime: device tokens live no longer.
	SessionLifetime time.Duration
}

// compileRoutes validates upstreams and policy together and builds the
// table. It does no I/O.
func compileRoutes(ups []UpstreamConfig, pol PolicyConfig, prefix string, known Known) (*Routes, error) {
	rt := &Routes{}
	var errs []error
	seen := map[string]bool{}
	for _, uc := range ups {
		if err := uc.validate(); err != nil {
			errs = append(errs, fmt.Errorf("upstreams: %w", err))
			continue
		}
		key := normHost(uc.Host) + lowerASCII(uc.Path)
		if seen[key] {
			errs = append(errs, fmt.Errorf("upstreams: %s is listed twice (paths are compared case-insensitively)", normHost(uc.Host)+uc.Path))
		}
		seen[key] = true
		if pathHasPrefix(uc.Path, prefix) {
			errs = append(errs, fmt.Errorf("upstreams: path %s is inside the gateway's own prefix %s", uc.Path, prefix))
		}
		rt.ups = append(rt.ups, uc)
	}
	var err error
	if rt.def, rt.policy, err = compilePolicy(pol); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, rt.checkRoutes(known)...)
		if rt.emails, err = compileEmailsFile(pol, rt.def); err != nil {
			errs = append(errs, err)
		}
	}
	if rt.skip, err = compilePathRegexes("policy.skip_auth_routes", pol.SkipAuthRoutes, true); err != nil {
		errs = append(errs, err)
	}
	if rt.api, err = compilePathRegexes("policy.api_routes", pol.APIRoutes, false); err != nil {
		errs = append(errs, err)
	}
	if rt.trusted, err = parseTrustedIPs(pol.TrustedIPs); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt.build()
	rt.noteReads()
	return rt, nil
}

// noteReads records what the rules' conditions read of a request.
func (rt *Routes) noteReads() {
	rules := []*rule{rt.def}
	for _, pr := range rt.policy {
		if pr.rule != nil {
			rules = append(rules, pr.rule)
		}
	}
	for _, r := range rules {
		rt.reqAttrs = rt.reqAttrs || r.conditional()
		rt.exprGroups = rt.exprGroups || (r.expr != nil && r.expr.groups)
	}
}

// checkRoutes holds policy routes to what the rest of the configuration
// can do.
func (rt *Routes) checkRoutes(known Known) []error {
	var errs []error
	for _, pr := range rt.policy {
		if pr.host != "" {
			// In reverse-proxy mode a request naming another Host would
			// reach the same application under a looser rule.
			for _, uc := range rt.ups {
				if uc.Host == "" {
					errs = append(errs, fmt.Errorf("%s names host %s, but upstream %s serves any host: a request with another Host header would reach it under a looser rule; give the upstream a host, or drop the route's host", pr.name, pr.host, uc.Path))
					return errs
				}
			}
		}
	}
	for _, pr := range rt.policy {
		if pr.bearer && !known.Bearer {
			errs = append(errs, fmt.Errorf("%s accepts bearer tokens, but the bearer section names no issuer or audience", pr.name))
		}
		if pr.provider != "" && !slices.Contains(known.Providers, pr.provider) {
			errs = append(errs, fmt.Errorf("%s pins provider %q, which is not configured", pr.name, pr.provider))
		}
	}
	return errs
}

// compilePolicy compiles the default rule and policy.routes, sorted for
// matching: longest path first, then host-specific, then method-specific.
func compilePolicy(cfg PolicyConfig) (*rule, []*Route, error) {
	zone := time.UTC
	if cfg.TimeZone != "" {
		var err error
		if zone, err = time.LoadLocation(cfg.TimeZone); err != nil || cfg.TimeZone == "Local" {
			return nil, nil, fmt.Errorf("policy.time_zone: %q is not an IANA time zone (such as Europe/Berlin or UTC)", cfg.TimeZone)
		}
	}
	env, err := newExprEnv(zone)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: expressions: %w", err)
	}
	def, err := compileRule("policy", cfg.Emails, cfg.EmailDomains, cfg.Groups, cfg.Claims)
	if err != nil {
		return nil, nil, err
	}
	if err := def.addConditions("policy", conditionSpec{cfg.Expr, cfg.ExprAt, cfg.SourceIPs, cfg.Hours}, env); err != nil {
		return nil, nil, err
	}
	def.denyMessage, def.remediation = cfg.DenyMessage, cfg.Remediation
	var routes []*Route
	seen := map[string]bool{}
	folded := map[string]string{}
	slashes := map[string]bool{}
	for i, rc := range cfg.Routes {
		pr, err := compileRoute("policy.routes["+strconv.Itoa(i)+"]", rc, env)
		if err != nil {
			return nil, nil, err
		}
		if other, ok := folded[pr.host+" "+lowerASCII(pr.path)]; ok && other != pr.path {
			// One would be public or looser where the other is strict,
			// and a case-folding backend serves both as one path.
			return nil, nil, fmt.Errorf("%s: path %s differs from another route's %s only in case; case-folding backends serve them as one path, so give them one spelling", pr.name, pr.path, other)
		}
		folded[pr.host+" "+lowerASCII(pr.path)] = pr.path
		key := pr.host + " " + pr.path + " " + strings.Join(pr.methods, ",")
		if seen[key] {
			return nil, nil, fmt.Errorf("%s: another route has the same host, path and methods", pr.name)
		}
		for _, m := range pr.methods {
			if seen[pr.host+" "+pr.path+" m:"+m] {
				return nil, nil, fmt.Errorf("%s: method %s is listed by another route with the same host and path", pr.name, m)
			}
			seen[pr.host+" "+pr.path+" m:"+m] = true
		}
		seen[key] = true
		if other, ok := slashes[pr.host+" "+pr.path]; ok && other != pr.slashes {
			return nil, nil, fmt.Errorf("%s: %w", pr.name, errEncodedSlashConflict)
		}
		slashes[pr.host+" "+pr.path] = pr.slashes
		routes = append(routes, pr)
	}
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if len(a.path) != len(b.path) {
			return len(a.path) > len(b.path)
		}
		if (a.host != "") != (b.host != "") {
			return a.host != ""
		}
		return len(a.methods) > len(b.methods)
	})
	return def, routes, nil
}

// compileRoute checks one policy route; name is its place in the file.
func compileRoute(name string, rc RouteConfig, env *exprEnv) (*Route, error) {
	pr := &Route{host: normHost(rc.Host), path: rc.Path, public: rc.Public, denyMessage: rc.DenyMessage, remediation: rc.Remediation,
		bearer: rc.Bearer, provider: rc.Provider, slashes: rc.PassEncodedSlashes, noDevice: rc.Device != nil && !*rc.Device}
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
	hasRule := len(rc.Emails)+len(rc.EmailDomains)+len(rc.Groups)+len(rc.Claims)+len(rc.SourceIPs)+len(rc.Hours) > 0 || rc.Expr != ""
	switch {
	case rc.Public && hasRule:
		return nil, fmt.Errorf("%s: a public route cannot also name who may pass, or when or from where", name)
	case hasRule:
		var err error
		if pr.rule, err = compileRule(name, rc.Emails, rc.EmailDomains, rc.Groups, rc.Claims); err != nil {
			return nil, err
		}
		if err := pr.rule.addConditions(name, conditionSpec{rc.Expr, rc.ExprAt, rc.SourceIPs, rc.Hours}, env); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// build lays the table out per host. Every path any upstream or route
// names becomes a row in each host's list it applies to, holding the
// upstream and the routes that a request at that path gets. Rows are
// sorted longest first, so the first row a request's path matches is the
// one whose upstream and routes are the most specific for it: any prefix
// of the request that would change either answer is itself a row.
func (rt *Routes) build() {
	hosts := map[string]bool{}
	for _, uc := range rt.ups {
		if h := normHost(uc.Host); h != "" {
			hosts[h] = true
		}
	}
	for _, pr := range rt.policy {
		if pr.host != "" {
			hosts[pr.host] = true
		}
	}
	rt.any = rt.rowsFor("", false)
	if len(hosts) > 0 {
		rt.hosts = make(map[string][]*row, len(hosts))
		for h := range hosts {
			rt.hosts[h] = rt.rowsFor(h, false)
		}
	}
	for _, uc := range rt.ups {
		rt.notePath(uc.Path)
	}
	for _, pr := range rt.policy {
		rt.notePath(pr.path)
	}
	if !rt.foldable {
		return // folding changes no lookup
	}
	rt.foldAny = rt.rowsFor("", true)
	if len(hosts) > 0 {
		rt.foldHosts = make(map[string][]*row, len(hosts))
		for h := range hosts {
			rt.foldHosts[h] = rt.rowsFor(h, true)
		}
	}
}

// notePath records whether p has letters (folding can matter) and
// upper-case ones (folding matters even for lower-case requests).
func (rt *Routes) notePath(p string) {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'A' <= c && c <= 'Z':
			rt.foldable, rt.upperPrefix = true, true
		case 'a' <= c && c <= 'z':
			rt.foldable = true
		}
	}
}

// lowerASCII lowercases ASCII letters only. Non-ASCII characters that
// case-fold to ASCII are refused by canonicalPath, so no other character
// can meet an ASCII one under a backend's folding.
func lowerASCII(s string) string {
	if !hasUpperASCII(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// fold is p lowercased when folding, else p.
func fold(p string, folding bool) string {
	if folding {
		return lowerASCII(p)
	}
	return p
}

// rowsFor builds the rows for requests naming host ("" for a host nothing
// names); folding, for the case-folded table, whose paths are all lower
// case and which lowercased request paths are looked up in.
func (rt *Routes) rowsFor(host string, folding bool) []*row {
	type key struct {
		prefix string
		exact  bool
	}
	keys := map[key]bool{{"/", false}: true} // every path has a row
	for _, uc := range rt.ups {
		if h := normHost(uc.Host); h == "" || h == host {
			keys[key{fold(uc.Path, folding), false}] = true
		}
	}
	for _, pr := range rt.policy {
		if pr.host == "" || pr.host == host {
			p := fold(pr.path, folding)
			keys[key{p, false}] = true
			if dir, ok := strings.CutSuffix(p, "/"); ok && dir != "" {
				keys[key{dir, true}] = true
			}
		}
	}
	rows := make([]*row, 0, len(keys))
	for k := range keys {
		rw := &row{prefix: k.prefix, exact: k.exact, upstream: rt.upstreamAt(host, k.prefix, folding), routes: rt.routesAt(host, k.prefix, folding)}
		rw.encodedSlashes = len(rw.routes) > 0 && rw.routes[0].slashes // the group agrees (compilePolicy)
		rt.slashes = rt.slashes || rw.encodedSlashes
		rows = append(rows, rw)
	}
	// Longest first. Two rows of one length never both match a path,
	// except an exact row and a prefix row of the same string, which hold
	// the same upstream and routes; the rest of the order only makes the
	// table print the same every time.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		if a.prefix != b.prefix {
			return a.prefix < b.prefix
		}
		return a.exact && !b.exact
	})
	return rows
}

// upstreamAt is the upstream for a request to host at path: the longest
// upstream prefix, a host-specific one before a host-less one. -1: none.
func (rt *Routes) upstreamAt(host, path string, folding bool) int {
	best := -1
	for i, uc := range rt.ups {
		h := normHost(uc.Host)
		if (h != "" && h != host) || !pathHasPrefix(path, fold(uc.Path, folding)) {
			continue
		}
		if best < 0 || len(uc.Path) > len(rt.ups[best].Path) || (len(uc.Path) == len(rt.ups[best].Path) && h != "") {
			best = i
		}
	}
	return best
}

// routesAt is the group of policy routes that governs a request to host at
// path: those with the longest matching path, host-specific before
// host-less, method-specific first.
func (rt *Routes) routesAt(host, path string, folding bool) []*Route {
	var group []*Route
	for _, pr := range rt.policy {
		if (pr.host != "" && pr.host != host) || !policyPathMatch(path, fold(pr.path, folding)) {
			continue
		}
		if len(group) > 0 && (pr.path != group[0].path || pr.host != group[0].host) {
			break // past the most specific routes
		}
		group = append(group, pr)
	}
	return group
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

// normHost lowercases a host and drops a port and a trailing dot.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// lookup is the one matcher: the row for a request to host at path.
func (rt *Routes) lookup(host, path string) *row {
	return lookupIn(rt.hosts, rt.any, host, path)
}

// foldedRow is the row a case-folding backend would serve t's path from,
// when it governs differently from rw (the exact-case row); nil when
// folding changes nothing. Cheap unless some route's path could collide:
// a lower-case request in a table of lower-case paths does no extra work.
func (rt *Routes) foldedRow(t Target, rw *row) *row {
	if !rt.foldable || (!rt.upperPrefix && !hasUpperASCII(t.Path)) {
		return nil
	}
	frw := lookupIn(rt.foldHosts, rt.foldAny, t.Host, lowerASCII(t.Path))
	if slices.Equal(frw.routes, rw.routes) {
		return nil // the same routes govern: the same decision
	}
	return frw
}

func lookupIn(hosts map[string][]*row, any []*row, host, path string) *row {
	rows := any
	if hosts != nil {
		if hr, ok := hosts[host]; ok {
			rows = hr
		}
	}
	for _, rw := range rows {
		if rw.exact {
			if path == rw.prefix {
				return rw
			}
		} else if pathHasPrefix(path, rw.prefix) {
			return rw
		}
	}
	return nil // unreachable: every list ends with "/"
}

// pick returns the route of the row that governs method (nil: the default
// rule). ok is false when the row's routes list methods and none is this
// one; route is then the one named in the refusal.
func (rw *row) pick(method string) (r *Route, ok bool) {
	if method == "HEAD" {
		method = "GET" // HEAD is a GET without the body
	}
	for _, pr := range rw.routes {
		if len(pr.methods) == 0 || slices.Contains(pr.methods, method) {
			return pr, true
		}
	}
	if len(rw.routes) > 0 {
		return rw.routes[len(rw.routes)-1], false
	}
	return nil, true
}

// denies reports whether the default rule admits nobody and no route can
// admit anyone either.
func (rt *Routes) denies() bool {
	if !rt.def.denies() {
		return false
	}
	for _, r := range rt.policy {
		if r.public || (r.rule != nil && !r.rule.denies()) {
			return false
		}
	}
	return true
}

// admits says whether some rule could admit id at all, on any route,
// for any method: the default rule and every route's rule (routes without
// one use the default). Public routes do not count: they admit anonymous
// requests, not this identity. Entries depend on the identity alone, so
// that part is exact; conditions (expr, source_ips, hours), provider pins
// and forward-auth's allowed_* depend on the request, and count as yes
// (yes when unsure). An identity whose email is
// malformed is refused whatever the rules say.
func (rt *Routes) admits(id *session.Identity) error {
	if err := checkEmail(id.Email); err != nil {
		return err
	}
	if rt.def.mayAdmit(id) {
		return nil
	}
	for _, r := range rt.policy {
		if r.rule != nil && !r.public && r.rule.mayAdmit(id) {
			return nil
		}
	}
	return errNoRuleAdmits
}

// groupNames lists every group any rule names (for trimming oversized
// group lists to what matters); nil when an expression reads
// identity.groups, which any group (or its absence) may sway.
func (rt *Routes) groupNames() map[string]bool {
	if rt.exprGroups {
		return nil
	}
	out := map[string]bool{}
	for g := range rt.def.groups {
		out[g] = true
	}
	for _, r := range rt.policy {
		if r.rule != nil {
			for g := range r.rule.groups {
				out[g] = true
			}
		}
	}
	return out
}
