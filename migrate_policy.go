package main

import (
	"net/netip"
	"strings"
)

// migrate_policy.go carries oauth2-proxy's routing options over to
// policy.skip_auth_routes, policy.api_routes and policy.trusted_ips. Each
// entry Portcullis would read more widely than oauth2-proxy did, or not at
// all, is written narrower or left out, and said so.

// appendList adds vals to the list at path (several options write
// skip_auth_routes).
func (m *migration) appendList(path string, vals []string, comment string) {
	if len(vals) == 0 {
		return
	}
	have, _ := m.lookup(path).([]string)
	if have != nil {
		comment = "from several options"
	}
	m.set(path, append(have, vals...), comment)
}

// anchored is re with a leading ^: oauth2-proxy matched an unanchored
// regex anywhere in the path, which Portcullis refuses (/public would
// admit /admin/public); anchoring it admits less.
func (m *migration) anchored(src, re string) string {
	if strings.HasPrefix(re, "^") {
		return re
	}
	m.note(noteChanged, src, re+": anchored as ^"+re+" (an unanchored regex matched anywhere in the path)")
	return "^" + re
}

// convSkipAuthRoute: "METHOD=^regex" or "^regex", as Portcullis reads
// them; "METHOD!=" (every method but one) has no equivalent.
func convSkipAuthRoute(m *migration, o *option, v optValue) {
	var out []string
	for _, e := range v.vals {
		method, re, hasMethod := strings.Cut(e, "=")
		switch {
		case hasMethod && strings.HasSuffix(method, "!"):
			m.note(noteNoEquivalent, v.src, e+": a negated method has no equivalent; those requests now need a session")
			continue
		case !hasMethod || strings.HasPrefix(e, "^"):
			out = append(out, m.anchored(v.src, e))
		default:
			out = append(out, method+"="+m.anchored(v.src, re))
		}
	}
	m.appendList("policy.skip_auth_routes", out, "from "+v.src)
}

// convSkipAuthRegex: the older form, a regex alone.
func convSkipAuthRegex(m *migration, o *option, v optValue) {
	var out []string
	for _, re := range v.vals {
		out = append(out, m.anchored(v.src, re))
	}
	m.appendList("policy.skip_auth_routes", out, "from "+v.src)
}

// convSkipPreflight: CORS preflights pass everywhere.
func convSkipPreflight(m *migration, o *option, v optValue) {
	if v.on() {
		m.appendList("policy.skip_auth_routes", []string{"OPTIONS=^/"}, "from "+v.src)
	}
}

// convAPIRoutes: api_routes, anchored.
func convAPIRoutes(m *migration, o *option, v optValue) {
	var out []string
	for _, re := range v.vals {
		out = append(out, m.anchored(v.src, re))
	}
	m.appendList("policy.api_routes", out, "from "+v.src)
}

// convTrustedIPs: the ranges, except those Portcullis refuses because
// they admit everyone.
func convTrustedIPs(m *migration, o *option, v optValue) {
	var out []string
	for _, e := range v.vals {
		if p, err := netip.ParsePrefix(e); err == nil && p.Bits() == 0 {
			m.note(noteNoEquivalent, v.src, e+": a range of every address is refused (it would switch sign-in off)")
			continue
		}
		out = append(out, e)
	}
	m.appendList("policy.trusted_ips", out, "from "+v.src)
}
