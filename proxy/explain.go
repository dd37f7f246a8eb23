package proxy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/session"
)

// explain.go is `portcullis policy explain`: for one request and identity,
// every rule the route table considered, whether it applied, each part of
// the governing rule and how it judged, and the decision. The decision
// printed is Decide's own; the rest explains it and decides nothing.

// Explain describes, line by line, how the table decides t for s (nil:
// not signed in), which came via via.
func (rt *Routes) Explain(t Target, s *session.Session, via Via) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	m := rt.Match(t)
	d := m.Decide(s, via, nil)
	add("request: %s %s%s%s", t.Method, t.Host, t.Path, query(t.Query))
	add("  source_ip %s, time %s, as %s", orUnknown(t.Client.IsValid(), t.Client.String()), t.Time.In(rt.def.zone).Format("2006-01-02 15:04:05 MST (Mon)"), via)
	if t.Proxied {
		if m.row.upstream < 0 {
			add("upstream: none serves %s%s", t.Host, t.Path)
		} else {
			uc := rt.ups[m.row.upstream]
			add("upstream: %s%s", normHost(uc.Host), uc.Path)
		}
	}
	for i, sk := range rt.skip {
		add("policy.skip_auth_routes[%d] %s: %s", i, sk.route.name, yesNo(sk.matches(t.Method, t.Path)))
	}
	if len(rt.trusted) > 0 {
		_, ok := rt.trusted.admit(t.Client)
		add("policy.trusted_ips: %s", yesNo(ok))
	}
	rt.explainRoutes(&out, t, m.row, m.route)
	if m.alt != nil {
		add("the path folded to lower case is governed by another route, which must admit the request too:")
		rt.explainRule(&out, m.alt, s, via)
	}
	rt.explainRule(&out, &m, s, via)
	add("decision: %s %s", strings.ToUpper(d.Outcome.String()), d.Rule())
	return out
}

func query(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

func yesNo(ok bool) string {
	if ok {
		return "matches"
	}
	return "does not match"
}

func orUnknown(ok bool, s string) string {
	if ok {
		return s
	}
	return "unknown"
}

// explainRoutes lists every policy route in the order they take
// precedence, and why each governs the target or not.
func (rt *Routes) explainRoutes(out *[]string, t Target, rw *row, picked *Route) {
	if len(rt.policy) == 0 {
		*out = append(*out, "policy.routes: none; the default rule governs")
		return
	}
	*out = append(*out, "policy.routes, most specific first:")
	for _, pr := range rt.policy {
		why := ""
		switch {
		case slices.Contains(rw.routes, pr) && pr == picked:
			why = "governs " + t.Method
		case slices.Contains(rw.routes, pr):
			why = "not for " + t.Method + " (methods " + strings.Join(pr.methods, ", ") + ")"
		case pr.host != "" && pr.host != t.Host:
			why = "for host " + pr.host + " only"
		case !policyPathMatch(t.Path, pr.path):
			why = "path " + pr.path + " does not match"
		default:
			why = "a route with a longer path governs"
		}
		*out = append(*out, fmt.Sprintf("  %-40s %s", pr.name+methodsNote(pr), why))
	}
	if len(rw.routes) == 0 {
		*out = append(*out, "  no route matches: the default rule governs")
	}
}

func methodsNote(pr *Route) string {
	if len(pr.methods) == 0 {
		return ""
	}
	return " [" + strings.Join(pr.methods, ",") + "]"
}

// explainRule shows each part of the rule governing m, judged for s.
func (rt *Routes) explainRule(out *[]string, m *Match, s *session.Session, via Via) {
	add := func(format string, args ...any) { *out = append(*out, fmt.Sprintf(format, args...)) }
	r := m.route
	rl, name := m.def, "default rule (policy)"
	if r != nil {
		if r.public {
			add("%s: public, no identity needed", r.name)
			return
		}
		if r.rule != nil {
			rl, name = r.rule, r.name
		} else {
			name = r.name + ", with the default rule"
		}
	}
	add("rule %s:", name)
	if s == nil {
		add("  not signed in")
		return
	}
	req := m.req
	if req == nil {
		req = &reqAttrs{}
	}
	in := &exprInput{s: s, via: via, method: m.method, req: req}
	for _, line := range rl.explain(in) {
		add("  %s", line)
	}
}

// explain judges each entry and condition of r for in.
func (r *rule) explain(in *exprInput) []string {
	var out []string
	id := &in.s.Identity
	if r.hasEntries() {
		out = append(out, r.explainEntries(id)...)
	} else if r.expr != nil {
		out = append(out, "who: no emails, domains, groups or claims; the expression decides")
	} else {
		out = append(out, "who: nobody (the rule names no one)")
	}
	if r.sources != nil {
		blocks := make([]string, len(r.sources))
		for i, p := range r.sources {
			blocks[i] = p.String()
		}
		out = append(out, fmt.Sprintf("source_ips [%s]: %s", strings.Join(blocks, ", "), yesNo(r.fromSource(in.req.client))))
	}
	if r.hours != nil {
		specs := make([]string, len(r.hours))
		for i := range r.hours {
			specs[i] = r.hours[i].spec
		}
		local := in.req.now.In(r.zone)
		out = append(out, fmt.Sprintf("hours [%s] at %s: %s", strings.Join(specs, "; "), local.Format("Mon 15:04 MST"), yesNo(inWindows(r.hours, local))))
	}
	if r.expr != nil {
		ok, err := r.expr.eval(in)
		out = append(out, "expr "+exprVerdict(ok, err)+": "+r.expr.src)
		for _, p := range r.expr.parts {
			ok, err := runBool(p.prg, in)
			out = append(out, "  "+exprVerdict(ok, err)+": "+p.src)
		}
	}
	return out
}

func exprVerdict(ok bool, err error) string {
	switch {
	case err != nil:
		return "fails (denies: " + truncate(err.Error(), 120) + ")"
	case ok:
		return "is true"
	}
	return "is false"
}

// explainEntries judges each entry of r for id.
func (r *rule) explainEntries(id *session.Identity) []string {
	var out []string
	verified := id.EmailVerified && strings.Count(id.Email, "@") == 1
	emailNote := ""
	if !verified {
		emailNote = " (no verified email)"
	}
	one := func(rl *rule) bool { ok, _ := rl.allows(id); return ok }
	if r.anyone {
		out = append(out, "email_domains [*]: "+yesNo(id.Subject != ""))
	}
	if len(r.emails) > 0 {
		out = append(out, fmt.Sprintf("emails %v: %s%s", slices.Sorted(maps.Keys(r.emails)), yesNo(one(&rule{emails: r.emails})), emailNote))
	}
	if r.file != nil {
		out = append(out, "authenticated_emails_file: "+yesNo(one(&rule{file: r.file}))+emailNote)
	}
	if len(r.domains)+len(r.suffix) > 0 {
		var ds []string
		for _, d := range slices.Concat(r.domains, r.suffix) {
			ds = append(ds, d.value)
		}
		out = append(out, fmt.Sprintf("email_domains %v: %s%s", ds, yesNo(one(&rule{domains: r.domains, suffix: r.suffix})), emailNote))
	}
	if len(r.groups) > 0 {
		out = append(out, fmt.Sprintf("groups %v: %s (identity's groups %v)", slices.Sorted(maps.Keys(r.groups)), yesNo(one(&rule{groups: r.groups})), id.Groups))
	}
	for _, c := range slices.Sorted(maps.Keys(r.claims)) {
		cv := r.claims[c]
		out = append(out, fmt.Sprintf("claims %s %v: %s (identity's %v)", c, slices.Sorted(maps.Keys(cv.values)),
			yesNo(one(&rule{claims: map[string]claimValues{c: cv}})), id.Claims[c]))
	}
	return out
}
