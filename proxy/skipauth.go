package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
)

// skipauth.go holds oauth2-proxy's routing options that do not fit the
// prefix table: policy.skip_auth_routes and policy.trusted_ips (requests
// that pass without sign-in), and policy.api_routes (requests that are
// never redirected to sign-in). Every regex is matched against the
// canonical path (canonicalPath), the one the route table and the
// upstream use, so "/public/../admin" or "/public/%2e%2e/admin" never
// reach a skip: they are refused before anything is matched.

// pathRegex is one compiled skip_auth_routes or api_routes entry.
type pathRegex struct {
	method string // upper case; "" for any
	re     *regexp.Regexp
	route  *Route // names the entry in decisions, logs and metrics
}

// compilePathRegexes compiles the entries of the list key ("policy.skip_auth_routes");
// withMethod allows oauth2-proxy's "METHOD=^regex" form.
func compilePathRegexes(key string, entries []string, withMethod bool) ([]*pathRegex, error) {
	var out []*pathRegex
	for i, e := range entries {
		name := key + "[" + strconv.Itoa(i) + "]"
		pr := &pathRegex{}
		expr := strings.TrimSpace(e)
		if withMethod && !strings.HasPrefix(expr, "^") {
			if m, rest, ok := strings.Cut(expr, "="); ok {
				switch {
				case strings.HasSuffix(m, "!"):
					// oauth2-proxy's "METHOD!=^regex": skip everything
					// else. A list of what is public cannot grow by
					// accident; a negation does with every new path.
					return nil, fmt.Errorf("%s %q: negated entries (!=) are not supported: list the paths that skip sign-in", name, e)
				case !isMethod(strings.ToUpper(strings.TrimSpace(m))):
					return nil, fmt.Errorf("%s %q: want METHOD=^regex or ^regex", name, e)
				}
				pr.method, expr = strings.ToUpper(strings.TrimSpace(m)), strings.TrimSpace(rest)
			}
		}
		if expr == "" {
			return nil, fmt.Errorf("%s %q: empty regex", name, e)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", name, e, err)
		}
		if !anchoredRegex(expr) {
			// An unanchored "/public" also matches "/admin/public".
			return nil, fmt.Errorf("%s %q: the regex must start with ^ (in every alternative): an unanchored regex matches anywhere in the path", name, e)
		}
		pr.re = re
		pr.route = &Route{name: name + " " + e, public: true}
		out = append(out, pr)
	}
	return out, nil
}

// anchoredRegex reports whether every match of expr must begin at the
// start of the text: "^/a|^/b" is, "^/a|/b" is not.
func anchoredRegex(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return false
	}
	return anchoredAtStart(re.Simplify())
}

func anchoredAtStart(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return true
	case syntax.OpConcat, syntax.OpCapture:
		return len(re.Sub) > 0 && anchoredAtStart(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchoredAtStart(sub) {
				return false
			}
		}
		return len(re.Sub) > 0
	}
	// OpBeginLine ((?m)^) matches after any "\n" too; repetitions may
	// match nothing; everything else matches anywhere.
	return false
}

// matches reports whether the entry admits method at path (HEAD is a GET
// without the body).
func (p *pathRegex) matches(method, path string) bool {
	if p.method != "" && p.method != method && !(method == http.MethodHead && p.method == http.MethodGet) {
		return false
	}
	return p.re.MatchString(path)
}

// trustedIPs is the parsed policy.trusted_ips.
type trustedIPs []netip.Prefix

func parseTrustedIPs(entries []string) (trustedIPs, error) {
	var out trustedIPs
	for i, e := range entries {
		name := "policy.trusted_ips[" + strconv.Itoa(i) + "]"
		e = strings.TrimSpace(e)
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%s: %q is not an IP address or CIDR", name, e)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%s: %q: write IPv4 ranges in their IPv4 form", name, e)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%s: %q admits every address: that turns authentication off", name, e)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// admit returns the range that contains a, or false.
func (t trustedIPs) admit(a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// trustedIPsRoute names trusted_ips decisions in logs and metrics.
var trustedIPsRoute = &Route{name: "policy.trusted_ips", public: true}

// bypass settles m as a pass without sign-in and without identity when a
// skip_auth_routes entry or trusted_ips admits t. frw is the case-folded
// row when another route governs the path as a case-folding backend reads
// it: a skip regex must then match that reading too. What no identity can
// change stays as decided: nothing serves the target, or its method (or
// one its overrides name) is not listed.
func (rt *Routes) bypass(m *Match, t Target, rw, frw *row) {
	if len(rt.skip) == 0 && len(rt.trusted) == 0 {
		return
	}
	if m.settledOK && m.settled.Outcome != Allow {
		return
	}
	listed := func(method string) bool {
		if !isMethod(method) {
			return false
		}
		if _, ok := rw.pick(method); !ok {
			return false
		}
		if frw != nil {
			if _, ok := frw.pick(method); !ok {
				return false
			}
		}
		return true
	}
	if !listed(t.Method) {
		return
	}
	for _, o := range t.Also {
		if !listed(o) {
			return
		}
	}
	if s := rt.skipFor(t.Method, t.Path, frw != nil); s != nil {
		for _, o := range t.Also {
			if rt.skipFor(o, t.Path, frw != nil) == nil {
				s = nil // public for every method the request acts as, or not at all
				break
			}
		}
		if s != nil {
			m.settle(Decision{Outcome: Allow, Route: s.route, Public: true, rule: s.route.name, why: " public"})
			m.anonymous, m.alt = true, nil
			return
		}
	}
	if p, ok := rt.trusted.admit(t.Client); ok {
		m.settle(Decision{Outcome: Allow, Route: trustedIPsRoute, Public: true, rule: trustedIPsRoute.name, why: " " + p.String()})
		m.anonymous, m.alt = true, nil
	}
}

// skipFor is the skip_auth_routes entry admitting method at path, nil for
// none; folded says the lower-cased path must match too.
func (rt *Routes) skipFor(method, path string, folded bool) *pathRegex {
	for _, s := range rt.skip {
		if s.matches(method, path) && (!folded || s.re.MatchString(lowerASCII(path))) {
			return s
		}
	}
	return nil
}

// isAPI reports whether path is on one of policy.api_routes.
func (rt *Routes) isAPI(path string) bool {
	for _, a := range rt.api {
		if a.re.MatchString(path) {
			return true
		}
	}
	return false
}

// clientAddrs reports whether decisions need the client's address
// (policy.trusted_ips, or a rule's conditions).
func (rt *Routes) clientAddrs() bool { return len(rt.trusted) > 0 || rt.reqAttrs }

// match is Routes.Match for a request the handler serves: t with the
// client's address, headers and the time when the policy reads them.
func (h *Handler) match(r *http.Request, rq *request, t Target) Match {
	if h.routes.clientAddrs() {
		t.Client = rq.client.addr // invalid when unknown: trusted_ips and source_ips admit nobody then
	}
	if h.routes.reqAttrs {
		t.Header, t.Time = r.Header, time.Now()
	}
	return h.routes.Match(t)
}
