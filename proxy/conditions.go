package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/portcullis/portcullis/session"
)

// conditions.go adds to a rule what the identity alone cannot say: an
// `expr:` (expr.go), `source_ips:` and `hours:`. A rule passes when its
// entries (emails, domains, groups, claims) admit the identity, or it has
// none but an expression, and every condition it has holds. Conditions
// only narrow: none of them admits anyone on its own, except an
// expression, which then is the rule.

// conditionSpec is what the file says of a rule's conditions.
type conditionSpec struct {
	expr      string
	exprAt    Pos
	sourceIPs []string
	hours     []string
}

// addConditions compiles spec onto r, named name ("policy.routes[2]").
func (r *rule) addConditions(name string, spec conditionSpec, env *exprEnv) error {
	var errs []error
	var also []string
	r.zone = env.zone
	if len(spec.sourceIPs) > 0 {
		for _, s := range spec.sourceIPs {
			p, err := parseCIDR(strings.TrimSpace(s))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.source_ips: %v", name, err))
				continue
			}
			r.sources = append(r.sources, p)
		}
		also = append(also, "source_ips")
	}
	if len(spec.hours) > 0 {
		ws, err := parseWindows(spec.hours)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%v", name, err))
		}
		r.hours, r.hoursText = ws, strings.Join(spec.hours, "; ")
		also = append(also, "hours")
	}
	if spec.expr != "" {
		ce, err := env.compile(name+".expr", spec.exprAt, spec.expr)
		if err != nil {
			errs = append(errs, err)
		}
		r.expr = ce
		also = append(also, "expr")
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if (r.sources != nil || r.hours != nil) && !r.hasEntries() && r.expr == nil {
		// Which users? A route's own rule replaces the default one, so
		// "office network only" would otherwise admit everybody there.
		return fmt.Errorf("%s: source_ips and hours only narrow a rule: say who may pass as well (emails, email_domains, groups, claims or expr; email_domains: [\"*\"] for every signed-in user)", name)
	}
	if len(also) > 0 {
		r.also = " and " + strings.Join(also, ", ")
	}
	return nil
}

// conditional reports whether the rule reads more than the identity.
func (r *rule) conditional() bool { return r.also != "" }

// judge is allows with the conditions: whether the rule admits in, the
// label of what admitted it, or why not ("groups:sre matched, but
// source_ips: …"); failed says the expression failed to evaluate.
func (r *rule) judge(in *exprInput) (ok bool, label, why string, failed bool) {
	id := &in.s.Identity
	if r.hasEntries() || !r.conditional() {
		if ok, label = r.allows(id); !ok {
			return false, "", "no email, domain, group or claim matched", false
		}
	} else if id.Subject == "" {
		return false, "", "not signed in", false
	}
	if !r.conditional() {
		return true, label, "", false
	}
	but := ""
	if label != "" {
		but = strings.TrimPrefix(label, " ") + " matched, but "
	}
	if r.sources != nil && !r.fromSource(in.req.client) {
		if !in.req.client.IsValid() {
			return false, "", but + "source_ips: the client's address is unknown", false
		}
		return false, "", but + "source_ips: " + in.req.client.String() + " is not listed", false
	}
	if r.hours != nil && !inWindows(r.hours, in.req.now.In(r.zone)) {
		return false, "", but + "hours: " + in.req.now.In(r.zone).Format("Mon 15:04 MST") + " is outside " + r.hoursText, false
	}
	if r.expr != nil {
		ok, err := r.expr.eval(in)
		switch {
		case err != nil:
			return false, "", but + "expr failed (denied): " + truncate(err.Error(), 200), true
		case !ok:
			return false, "", but + r.expr.whyFalse(in), false
		}
	}
	return true, label, "", false
}

func (r *rule) fromSource(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.sources {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// mayAdmit is admits' question for one rule: could it admit id for some
// request at some time? Conditions are not known at sign-in, so they
// count as yes.
func (r *rule) mayAdmit(id *session.Identity) bool {
	if !r.hasEntries() {
		return r.expr != nil && id.Subject != ""
	}
	ok, _ := r.allows(id)
	return ok
}

// exprClaimNames lists the claims the expressions read, for sign-in to
// keep; expressions that do not compile name none (loading reports them).
func exprClaimNames(srcs []string) []string {
	var env *exprEnv
	var out []string
	for _, src := range srcs {
		if src == "" {
			continue
		}
		if env == nil {
			var err error
			if env, err = newExprEnv(time.UTC); err != nil {
				return nil
			}
		}
		if ce, err := env.compile("expr", Pos{}, src); err == nil {
			out = append(out, ce.claims...)
		}
	}
	return out
}
