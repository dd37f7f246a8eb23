package proxy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// Route is one compiled entry of policy.routes.
type Route struct {
	name        string // for logs and metrics: "policy.routes[2] /admin/"
	host        string
	path        string
	methods     []string // sorted; empty: any
	public      bool
	bearer      bool
	provider    string // pinned provider id, "" for any
	denyMessage string
	rule        *rule // nil: the default rule
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
}

// row is one (host, path) of the table: the upstream that serves it and,
// per method, the policy routes that govern it.
type row struct {
	prefix   string
	exact    bool     // matches prefix itself only: the "/admin" of a route for "/admin/"
	upstream int      // index into Routes.ups; -1 when no upstream serves it
	routes   []*Route // for this (host, path), method-specific first; empty: the default rule
}

// Known is what the route table needs to know of sections other packages
// own: which provider ids a route may pin, and whether bearer tokens can
// be verified at all.
type Known struct {
	Providers []string // configured provider ids
	Bearer    bool     // the bearer section names an issuer or an audience
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
		key := normHost(uc.Host) + uc.Path
		if seen[key] {
			errs = append(errs, fmt.Errorf("upstreams: %s is listed twice", key))
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
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt.build()
	return rt, nil
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
	def, err := compileRule("policy", cfg.Emails, cfg.EmailDomains, cfg.Groups, cfg.Claims)
	if err != nil {
		return nil, nil, err
	}
	var routes []*Route
	seen := map[string]bool{}
	for i, rc := range cfg.Routes {
		pr, err := compileRoute("policy.routes["+strconv.Itoa(i)+"]", rc)
		if err != nil {
			return nil, nil, err
		}
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
func compileRoute(name string, rc RouteConfig) (*Route, error) {
	pr := &Route{host: normHost(rc.Host), path: rc.Path, public: rc.Public, denyMessage: rc.DenyMessage, bearer: rc.Bearer, provider: rc.Provider}
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
		var err error
		if pr.rule, err = compileRule(name, rc.Emails, rc.EmailDomains, rc.Groups, rc.Claims); err != nil {
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
	rt.any = rt.rowsFor("")
	if len(hosts) > 0 {
		rt.hosts = make(map[string][]*row, len(hosts))
		for h := range hosts {
			rt.hosts[h] = rt.rowsFor(h)
		}
	}
}

// rowsFor builds the rows for requests naming host ("" for a host nothing
// names).
func (rt *Routes) rowsFor(host string) []*row {
	type key struct {
		prefix string
		exact  bool
	}
	keys := map[key]bool{{"/", false}: true} // every path has a row
	for _, uc := range rt.ups {
		if h := normHost(uc.Host); h == "" || h == host {
			keys[key{uc.Path, false}] = true
		}
	}
	for _, pr := range rt.policy {
		if pr.host == "" || pr.host == host {
			keys[key{pr.path, false}] = true
			if dir, ok := strings.CutSuffix(pr.path, "/"); ok && dir != "" {
				keys[key{dir, true}] = true
			}
		}
	}
	rows := make([]*row, 0, len(keys))
	for k := range keys {
		rows = append(rows, &row{prefix: k.prefix, exact: k.exact, upstream: rt.upstreamAt(host, k.prefix), routes: rt.routesAt(host, k.prefix)})
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
func (rt *Routes) upstreamAt(host, path string) int {
	best := -1
	for i, uc := range rt.ups {
		h := normHost(uc.Host)
		if (h != "" && h != host) || !pathHasPrefix(path, uc.Path) {
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
func (rt *Routes) routesAt(host, path string) []*Route {
	var group []*Route
	for _, pr := range rt.policy {
		if (pr.host != "" && pr.host != host) || !policyPathMatch(path, pr.path) {
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
	rows := rt.any
	if rt.hosts != nil {
		if hr, ok := rt.hosts[host]; ok {
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

// groupNames lists every group any rule names (for trimming oversized
// group lists to what matters).
func (rt *Routes) groupNames() map[string]bool {
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
