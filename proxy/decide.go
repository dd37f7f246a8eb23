package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/session"
)

// decide.go is the one decision. Every mode (reverse proxy, nginx
// auth_request, Traefik/Caddy forward-auth, Envoy ext_authz) and
// `portcullis policy test` turn their request into a Target, match it in
// the route table, and ask Decide. It is pure: no I/O, no clock, nothing
// written anywhere; loading the session happens before it, writing the
// response after it.

// Target is the request a decision is about, canonical.
type Target struct {
	Method string   // upper case
	Also   []string // methods the request's method-override headers name: each must pass too
	Host   string   // lower case, no port: what routes match
	Path   string   // canonical, decoded (canonicalPath); a "%2F" kept by pass_encoded_slashes stays "%2F"
	// Proxied says an upstream must serve the target (reverse-proxy mode);
	// forward-auth decides for whatever the ingress serves.
	Proxied bool
	// Client is the client's address, for policy.trusted_ips; the zero
	// Addr when unknown (nothing is trusted then).
	Client netip.Addr
	// Header and Time are what rule conditions read (request.headers,
	// now, hours:); the caller sets them (Handler.match does when some
	// rule has conditions), so deciding stays clock-free.
	Header http.Header
	Time   time.Time

	// For links back to the request (sign-in's return address).
	Scheme   string // http or https
	HostPort string // as the client named it
	RawPath  string // canonical, escaped
	Query    string // raw, without "?"
}

// uri is the request-target: escaped path and query.
func (t Target) uri() string {
	if t.Query == "" {
		return t.RawPath
	}
	return t.RawPath + "?" + t.Query
}

// url is the absolute URL the browser asked for.
func (t Target) url() string { return t.Scheme + "://" + t.HostPort + t.uri() }

// ParseTarget is the target of a request as a client sends it: the
// method, the Host and the escaped path, canonicalised as the gateway
// does. A request the gateway refuses with 400 is an error.
func ParseTarget(method, host, escapedPath string, proxied bool) (Target, error) {
	if method == "" {
		method = "GET"
	}
	if !isMethod(method) {
		return Target{}, fmt.Errorf("method %q is not an upper-case HTTP method", truncate(method, 32))
	}
	path, raw, err := canonicalPath(escapedPath)
	if err != nil {
		return Target{}, err
	}
	return Target{Method: method, Host: normHost(host), HostPort: host, Path: path, RawPath: raw, Proxied: proxied}, nil
}

// Via says where an identity came from.
type Via uint8

const (
	ViaSession Via = iota // a session cookie
	ViaBearer             // an Authorization: Bearer token (machine clients)
	ViaDevice             // a token of the gateway's device grant (device.go)
)

// Outcome is what happens to a request.
type Outcome uint8

const (
	Deny     Outcome = iota // 403: this identity (or anyone) may not
	SignIn                  // not signed in, or not with the provider the route pins: sign in first
	Allow                   // may pass
	NotFound                // no upstream serves the target (reverse-proxy mode): 404
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case SignIn:
		return "sign_in"
	case NotFound:
		return "not_found"
	}
	return "deny"
}

// Decision is what the route table says about one request: a value to
// print. The caller renders it.
type Decision struct {
	Outcome Outcome
	// Route is the policy route that decided; nil when the default rule
	// did (or nothing serves the target).
	Route *Route
	// Public is set on Allow by a public route: no identity was needed.
	Public bool
	// Provider is where a SignIn must go: the provider the route pins,
	// "" for any.
	Provider string
	// API says the target is on one of policy.api_routes: without a
	// session it gets a 401 (JSON), never a redirect to sign-in.
	API bool
	// ExprFailed says a rule's expression failed to evaluate, which
	// denied: worth a warning, since the rule cannot admit anyone so.
	ExprFailed bool
	// rule and why name what decided, for the log and the audit event:
	// rule "policy.routes[1] /admin/" and why " groups:admins" or ": not
	// signed in". Kept apart so that deciding joins no strings.
	// also names the conditions an allow met (" and source_ips, expr").
	rule, why, also string
	upstream        int   // the row's upstream, -1 for none
	def             *rule // the default rule, for its deny_message and remediation
}

// Rule names what decided, as logs, audit events and tools show it.
func (d Decision) Rule() string {
	if d.why == "" && d.also == "" {
		return d.rule
	}
	return d.rule + d.why + d.also
}

// DenyMessage is what the 403 page says: the deciding route's (or the
// default rule's) deny_message, or "" for the gateway's own sentence.
func (d Decision) DenyMessage() string {
	switch {
	case d.Route != nil:
		return d.Route.denyMessage
	case d.def != nil:
		return d.def.denyMessage
	}
	return ""
}

// Remediation is what the 403 page and its JSON tell the user to do: the
// deciding route's (or the default rule's) remediation, "" for none.
func (d Decision) Remediation() string {
	switch {
	case d.Route != nil:
		return d.Route.remediation
	case d.def != nil:
		return d.def.remediation
	}
	return ""
}

// ruleLabel is the bounded name of the route that decided, for metrics:
// the configured route's name, or "default".
func (d Decision) ruleLabel() string {
	if d.Route == nil {
		return "default"
	}
	return d.Route.name
}

// outcomeLabel sorts a decision for the decisions metric.
func (d Decision) outcomeLabel() string {
	switch {
	case d.Public:
		return "public"
	case d.Outcome == Allow:
		return "allowed"
	case d.Outcome == SignIn:
		return "unauthenticated"
	}
	return "denied"
}

// Match is a target's place in the route table: its row and the route
// that governs its method. What does not depend on who asks is settled
// here; Decide settles the rest.
type Match struct {
	method string   // the target's
	also   []string // and its method overrides'
	def    *rule
	row    *row
	route  *Route // governs method; nil: the default rule
	// alt is the match of the case-folded path when another route governs
	// it there (Routes.foldedRow): the request must pass it too.
	alt *Match
	// settled holds the decision when no identity can change it: nothing
	// serves the target, its method is refused, or the route is public.
	settled   Decision
	settledOK bool
	// anonymous is set with a settled pass that loads no session and
	// passes no identity on (skip_auth_routes, trusted_ips).
	anonymous bool
	api       bool // the target is on policy.api_routes
	// req is what rule conditions read of the request, set only when
	// some rule has conditions (Routes.reqAttrs).
	req *reqAttrs
}

// Match finds t's row and the route for its method. A path is governed by
// the strictest route it matches compared case-insensitively as well: when
// the case-folded path lands on other routes, the request must pass both;
// a public route counts only where the exact-case path matches it; the
// upstream is the exact-case one's.
func (rt *Routes) Match(t Target) Match {
	rw := rt.lookup(t.Host, t.Path)
	m := rt.matchRow(t, rw)
	frw := rt.foldedRow(t, rw)
	if frw != nil {
		alt := rt.matchRow(t, frw)
		m.join(&alt)
	}
	rt.bypass(&m, t, rw, frw)
	if len(rt.api) > 0 {
		m.api = rt.isAPI(t.Path)
	}
	return m
}

// join makes a, the case-folded match, a second condition of m.
func (m *Match) join(a *Match) {
	switch {
	case m.settledOK && m.settled.Outcome != Allow:
		// Refused or not found as spelled: nothing to add.
	case a.settledOK && a.settled.Outcome != Allow:
		d := a.settled
		d.rule = "case-insensitive " + d.rule
		m.settle(d)
	case a.settledOK:
		// Public only case-insensitively: no exemption, and no condition.
	default:
		m.alt = a
		m.settled, m.settledOK = Decision{}, false // public as spelled, not as folded
	}
}

// matchRow is Match for one row.
func (rt *Routes) matchRow(t Target, rw *row) Match {
	m := Match{method: t.Method, also: t.Also, def: rt.def, row: rw}
	if rt.reqAttrs {
		// The client as expressions parse it: IPv4-mapped addresses as
		// IPv4, no IPv6 zone.
		m.req = &reqAttrs{host: t.Host, path: t.Path, query: t.Query, header: t.Header, client: t.Client.Unmap().WithZone(""), now: t.Time}
	}
	if t.Proxied && rw.upstream < 0 {
		m.settle(Decision{Outcome: NotFound, rule: "no upstream for " + t.Host + t.Path})
		return m
	}
	r, ok := rw.pick(t.Method)
	m.route = r
	switch {
	case !ok:
		// Signing in will not help.
		m.settle(Decision{Outcome: Deny, Route: r, rule: r.name + ": method " + t.Method + " not listed"})
	case r != nil && r.public:
		// Public for every method the request acts as, or not at all: an
		// override naming a protected method is refused. Public routes
		// load no identity to judge it with.
		if d, ok := m.overrides(nil, ViaSession); !ok {
			m.settle(d)
		} else {
			m.settle(Decision{Outcome: Allow, Route: r, Public: true, rule: r.name, why: " public"})
		}
	}
	return m
}

func (m *Match) settle(d Decision) {
	d.upstream = m.row.upstream
	m.settled, m.settledOK = d, true
}

// NeedsIdentity reports whether who asks can change the decision: false
// when nothing serves the target, its method is refused, or it is public.
func (m *Match) NeedsIdentity() bool { return !m.settledOK }

// Public reports whether the target is on a public route: no identity is
// needed, though a signed-in user's is passed on.
func (m *Match) Public() bool { return m.settledOK && m.settled.Public }

// Anonymous reports whether the target passes without anyone's identity,
// not even a signed-in user's: skip_auth_routes and trusted_ips, as in
// oauth2-proxy.
func (m *Match) Anonymous() bool { return m.anonymous }

// AcceptsBearer reports whether the route takes bearer tokens: with a
// case-folded match, every route that needs an identity must take them.
func (m *Match) AcceptsBearer() bool {
	ok := m.route != nil && m.route.bearer
	if m.alt == nil {
		return ok
	}
	alt := m.alt.route != nil && m.alt.route.bearer
	if m.route != nil && m.route.public {
		return alt
	}
	return ok && alt
}

// AcceptsDevice reports whether the route takes the gateway's device
// tokens (every route needing an identity does, unless device: false);
// with a case-folded match, both spellings' routes must.
func (m *Match) AcceptsDevice() bool {
	ok := m.route == nil || !m.route.noDevice
	if m.alt == nil {
		return ok
	}
	return ok && (m.alt.route == nil || !m.alt.route.noDevice)
}

// Decide says what happens to the target for s (nil: not signed in),
// which came via via; narrow, when set, must also admit the identity
// (forward-auth's allowed_* parameters can only narrow).
func (m *Match) Decide(s *session.Session, via Via, narrow []*rule) Decision {
	d := m.decide(s, via, narrow)
	d.API = m.api
	if d.Route == nil {
		d.def = m.def
	}
	return d
}

func (m *Match) decide(s *session.Session, via Via, narrow []*rule) Decision {
	if m.settledOK {
		return m.settled
	}
	d := m.decideOne(s, via)
	if d.Outcome == Allow && m.alt != nil {
		d = m.both(d, s, via)
	}
	if d.Outcome != Allow {
		return d
	}
	for _, n := range narrow {
		if ok, _ := n.allows(&s.Identity); !ok {
			return Decision{Outcome: Deny, Route: d.Route, rule: "narrowed by " + n.name, upstream: d.upstream}
		}
	}
	return d
}

// decideOne is the decision of m's own row, without the case-folded one.
func (m *Match) decideOne(s *session.Session, via Via) Decision {
	d := m.decideFor(m.method, s, via)
	if d.Outcome != Allow {
		return d
	}
	if d2, ok := m.overrides(s, via); !ok {
		return d2
	}
	return d
}

// both adds the case-folded match's verdict to d, the exact-case Allow:
// the stricter wins, public counts only as spelled, and the log names
// both routes when both admit. The upstream stays the exact-case one.
func (m *Match) both(d Decision, s *session.Session, via Via) Decision {
	d2 := m.alt.decideOne(s, via)
	d2.upstream = d.upstream
	switch {
	case d2.Outcome != Allow:
		d2.rule = "case-insensitive " + d2.rule
		return d2
	case d2.Public:
		return d // no exemption where the spelling differs
	case d.Public:
		d2.rule = "case-insensitive " + d2.rule
		return d2
	}
	d.why += "; case-insensitive " + d2.Rule()
	return d
}

// overrides judges the methods the request's method-override headers name:
// a POST that may pass with X-HTTP-Method-Override: DELETE passes only if
// a DELETE may. ok is false with the refusal otherwise.
func (m *Match) overrides(s *session.Session, via Via) (Decision, bool) {
	for _, other := range m.also {
		if !isMethod(other) {
			return Decision{Outcome: Deny, Route: m.route, rule: "method override " + strconv.Quote(truncate(other, 16)) + " is not a method", upstream: m.row.upstream}, false
		}
		if d := m.decideFor(other, s, via); d.Outcome != Allow {
			return Decision{Outcome: Deny, Route: d.Route, rule: "method override " + other + ": " + d.Rule(), upstream: m.row.upstream}, false
		}
	}
	return Decision{}, true
}

// decideFor judges one method of the target for s. Provider pins hold for
// sessions and device tokens (which carry the sign-in that approved them)
// only: a bearer token names its issuer, not a sign-in.
func (m *Match) decideFor(method string, s *session.Session, via Via) Decision {
	d := Decision{upstream: m.row.upstream}
	r := m.route
	if method != m.method {
		var ok bool
		if r, ok = m.row.pick(method); !ok {
			d.Route, d.rule = r, r.name+": method "+method+" not listed"
			return d
		}
	}
	d.Route = r
	rl, name := m.def, "default"
	if r != nil {
		if r.public {
			d.Outcome, d.Public, d.rule, d.why = Allow, true, r.name, " public"
			return d
		}
		name = r.name
		if r.rule != nil {
			rl = r.rule
		}
	}
	switch {
	case s == nil:
		d.Outcome, d.rule, d.why = SignIn, name, ": not signed in"
		if r != nil {
			d.Provider = r.provider
		}
		return d
	case via != ViaBearer && r != nil && r.provider != "" && s.Provider != r.provider:
		// Signed in, but with another provider than the route requires:
		// for this route that is not signed in.
		d.Outcome, d.Provider, d.rule = SignIn, r.provider, r.name+": requires provider "+r.provider
		return d
	}
	if rl.conditional() {
		in := exprInput{s: s, via: via, method: method, req: m.req}
		if in.req == nil {
			in.req = &reqAttrs{} // unreachable: Match sets req when a rule reads it
		}
		allow, label, why, failed := rl.judge(&in)
		if !allow {
			d.rule, d.ExprFailed = name+": "+why, failed
			return d
		}
		d.Outcome, d.rule, d.why, d.also = Allow, name, label, rl.also
		return d
	}
	allow, why := rl.allows(&s.Identity)
	if !allow {
		d.rule = name + ": no email, domain, group or claim matched"
		return d
	}
	d.Outcome, d.rule, d.why = Allow, name, why
	return d
}

// Decide is Match and Decide in one call, for tools that decide requests
// the gateway never sees (portcullis policy test).
func (rt *Routes) Decide(t Target, s *session.Session, via Via) Decision {
	m := rt.Match(t)
	return m.Decide(s, via, nil)
}
