package proxy

import (
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

// The route table replaced two matchers: one over `upstreams` (longest
// prefix, host-specific first) and one over `policy.routes` (longest path,
// "/dir/" also covering "/dir", host-specific first, then by method). The
// reference functions below are those two matchers as they were, written
// as plainly as possible; TestRoutesAgreeWithSeparateMatchers checks that
// the one table gives every request the upstream and the route they gave.

// refUpstream is the old upstream matcher: -1 for none.
func refUpstream(ups []UpstreamConfig, host, path string) int {
	order := make([]int, len(ups))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ua, ub := ups[order[a]], ups[order[b]]
		if len(ua.Path) != len(ub.Path) {
			return len(ua.Path) > len(ub.Path)
		}
		return ua.Host != "" && ub.Host == ""
	})
	for _, i := range order {
		if u := ups[i]; (u.Host == "" || normHost(u.Host) == host) && pathHasPrefix(path, u.Path) {
			return i
		}
	}
	return -1
}

// refRoute is the old policy route matcher: the route for (host, method,
// path), nil for the default rule; ok false when the method is not listed.
func refRoute(routes []*Route, host, method, path string) (*Route, bool) {
	if method == "HEAD" {
		method = "GET"
	}
	var best *Route
	for _, pr := range routes { // sorted as compilePolicy sorts them
		if pr.host != "" && pr.host != host {
			continue
		}
		if !policyPathMatch(path, pr.path) {
			continue
		}
		if best != nil && (pr.path != best.path || pr.host != best.host) {
			break
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

func TestRoutesAgreeWithSeparateMatchers(t *testing.T) {
	hosts := []string{"", "a.example", "b.example"}
	paths := []string{"/", "/api", "/api/", "/api/v1/", "/admin/", "/admin/reports", "/admin", "/docs/", "/healthz"}
	methods := [][]string{nil, {"GET"}, {"POST", "PUT"}, {"DELETE"}}
	rng := rand.New(rand.NewPCG(13, 2026))
	for round := 0; round < 300; round++ {
		var ups []UpstreamConfig
		seenUp := map[string]bool{}
		// Host-less upstreams only when no route names a host (the table
		// refuses that combination; TestNewRejectsBadConfig covers it).
		hostRoutes := rng.IntN(2) == 0
		for n := rng.IntN(4); n >= 0; n-- {
			h := hosts[rng.IntN(len(hosts))]
			if hostRoutes && h == "" {
				h = hosts[1+rng.IntN(2)]
			}
			p := paths[rng.IntN(len(paths))]
			if seenUp[h+p] {
				continue
			}
			seenUp[h+p] = true
			ups = append(ups, UpstreamConfig{Host: h, Path: p, URL: "http://up" + string(rune('a'+len(ups)))})
		}
		var rcs []RouteConfig
		seenRoute := map[string]bool{}
		for n := rng.IntN(6); n > 0; n-- {
			rc := RouteConfig{Path: paths[rng.IntN(len(paths))], Methods: methods[rng.IntN(len(methods))], Groups: []string{"g"}}
			if hostRoutes {
				rc.Host = hosts[rng.IntN(len(hosts))]
			}
			key := rc.Host + rc.Path
			if seenRoute[key+strings.Join(rc.Methods, ",")] || (len(rc.Methods) > 0 && seenRoute[key+"any-method:"+strings.Join(rc.Methods, ",")]) {
				continue
			}
			clash := false
			for _, m := range rc.Methods {
				clash = clash || seenRoute[key+"m:"+m]
			}
			if clash {
				continue
			}
			for _, m := range rc.Methods {
				seenRoute[key+"m:"+m] = true
			}
			seenRoute[key+strings.Join(rc.Methods, ",")] = true
			rcs = append(rcs, rc)
		}
		rt, err := compileRoutes(ups, PolicyConfig{EmailDomains: []string{"*"}, Routes: rcs}, "/oauth2", Known{})
		if err != nil {
			t.Fatalf("round %d: %v\nupstreams %+v\nroutes %+v", round, err, ups, rcs)
		}
		for _, host := range append(hosts, "other.example") {
			for _, p := range []string{"/", "/api", "/api/", "/api/x", "/api/v1", "/api/v1/", "/api/v1/x", "/apis", "/admin", "/admin/",
				"/admin/reports", "/admin/reports/x", "/admin/reportsx", "/docs", "/docs/", "/docs/a", "/healthz", "/healthz/x", "/healthzz", "/x"} {
				for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"} {
					m := rt.Match(Target{Method: method, Host: normHost(host), Path: p})
					wantUp := refUpstream(rt.ups, normHost(host), p)
					wantRoute, wantOK := refRoute(rt.policy, normHost(host), method, p)
					gotRoute, gotOK := m.row.pick(method)
					if m.row.upstream != wantUp || gotRoute != wantRoute || gotOK != wantOK {
						t.Fatalf("round %d: %s %s%s: table gives upstream %d route %v (%v), the separate matchers gave %d %v (%v)\nupstreams %+v\nroutes %+v",
							round, method, host, p, m.row.upstream, name(gotRoute), gotOK, wantUp, name(wantRoute), wantOK, ups, rcs)
					}
				}
			}
		}
	}
}

func name(r *Route) string {
	if r == nil {
		return "default"
	}
	return r.name
}

// TestDecide is the decision as a value: for each target and identity, the
// outcome, the rule that decided, and where a sign-in must go.
func TestDecide(t *testing.T) {
	rt, err := compileRoutes([]UpstreamConfig{
		{Host: "app.example", Path: "/", URL: "http://app"},
		{Host: "app.example", Path: "/reports/", URL: "http://reports"},
	}, PolicyConfig{EmailDomains: []string{"example.com"}, Routes: []RouteConfig{
		{Path: "/partners/", Provider: "partner", EmailDomains: []string{"partner.example"}},
		{Path: "/api/", Methods: []string{"GET"}, Bearer: true, Groups: []string{"readers"}},
		{Path: "/api/", Methods: []string{"DELETE"}, Provider: "corp", Groups: []string{"admins"}},
		{Path: "/docs/", Methods: []string{"GET"}, Public: true},
		{Path: "/docs/", Groups: []string{"editors"}},
	}}, "/oauth2", Known{Providers: []string{"corp", "partner"}, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	corp := sess("corp", "alice@example.com", "readers", "editors")
	partner := sess("partner", "pat@partner.example")
	admin := sess("partner", "root@example.com", "readers", "admins")
	for _, tt := range []struct {
		name     string
		t        Target
		s        *sessionT
		via      Via
		want     Outcome
		rule     string // substring of Rule()
		provider string // SignIn's provider
		upstream int
	}{
		{"served and allowed", tgt("GET", "app.example", "/x", true), corp, ViaSession, Allow, "default email_domains:example.com", "", 0},
		{"the longer upstream serves its prefix", tgt("GET", "app.example", "/reports/q", true), corp, ViaSession, Allow, "default", "", 1},
		{"no upstream for the host", tgt("GET", "other.example", "/x", true), corp, ViaSession, NotFound, "no upstream for other.example/x", "", -1},
		{"forward-auth decides what no upstream serves", tgt("GET", "other.example", "/x", false), corp, ViaSession, Allow, "default", "", -1},
		{"not signed in", tgt("GET", "app.example", "/x", true), nil, ViaSession, SignIn, "default: not signed in", "", 0},
		{"pinned route, not signed in", tgt("GET", "app.example", "/partners/a", true), nil, ViaSession, SignIn, "not signed in", "partner", 0},
		{"pinned route, another provider", tgt("GET", "app.example", "/partners/a", true), corp, ViaSession, SignIn, "requires provider partner", "partner", 0},
		{"pinned route, its provider", tgt("GET", "app.example", "/partners/a", true), partner, ViaSession, Allow, "email_domains:partner.example", "", 0},
		{"pinned directory without its slash", tgt("GET", "app.example", "/partners", true), corp, ViaSession, SignIn, "requires provider partner", "partner", 0},
		{"bearer identities are not pinned", tgt("DELETE", "app.example", "/api/x", true), sess("", "ci@example.com", "admins"), ViaBearer, Allow, "groups:admins", "", 0},
		{"method not listed", tgt("PATCH", "app.example", "/api/x", true), corp, ViaSession, Deny, "method PATCH not listed", "", 0},
		{"HEAD is a GET", tgt("HEAD", "app.example", "/api/x", true), corp, ViaSession, Allow, "groups:readers", "", 0},
		{"public GET", tgt("GET", "app.example", "/docs/a", true), nil, ViaSession, Allow, "public", "", 0},
		{"public GET overridden to a protected method", tgtAlso("GET", "/docs/a", "POST"), nil, ViaSession, Deny, "method override POST: policy.routes[4] /docs/: not signed in", "", 0},
		{"override to a method nobody listed", tgtAlso("GET", "/api/x", "PATCH"), corp, ViaSession, Deny, "method override PATCH: policy.routes[2] /api/: method PATCH not listed", "", 0},
		{"override that is no method", tgtAlso("GET", "/api/x", "GET /"), corp, ViaSession, Deny, `method override "GET /" is not a method`, "", 0},
		{"override to a method the identity may use", tgtAlso("POST", "/docs/a", "GET"), corp, ViaSession, Allow, "groups:editors", "", 0},
		{"override to a pinned route's method, other provider", tgtAlso("GET", "/api/x", "DELETE"), admin, ViaSession, Deny, "method override DELETE: policy.routes[2] /api/: requires provider corp", "", 0},
		{"rule does not admit", tgt("GET", "app.example", "/x", true), partner, ViaSession, Deny, "default: no email, domain, group or claim matched", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := rt.Decide(tt.t, tt.s, tt.via)
			if d.Outcome != tt.want || !strings.Contains(d.Rule(), tt.rule) || d.Provider != tt.provider || d.upstream != tt.upstream {
				t.Errorf("Decide = %v by %q, provider %q, upstream %d; want %v by …%q…, provider %q, upstream %d",
					d.Outcome, d.Rule(), d.Provider, d.upstream, tt.want, tt.rule, tt.provider, tt.upstream)
			}
		})
	}
}

func tgt(method, host, path string, proxied bool) Target {
	return Target{Method: method, Host: host, Path: path, Proxied: proxied}
}

func tgtAlso(method, path string, also ...string) Target {
	t := tgt(method, "app.example", path, true)
	t.Also = also
	return t
}

func sess(provider, email string, groups ...string) *sessionT {
	return &sessionT{Identity: verified(email, groups...), Provider: provider}
}

// TestNarrowing: forward-auth's allowed_* parameters only narrow.
func TestNarrowing(t *testing.T) {
	rt, err := compileRoutes(nil, PolicyConfig{EmailDomains: []string{"example.com"}}, "/oauth2", Known{})
	if err != nil {
		t.Fatal(err)
	}
	admins, err := compileRule("allowed_groups", nil, nil, []string{"admins"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := rt.Match(tgt("GET", "app.example", "/", false))
	if d := m.Decide(sess("corp", "alice@example.com", "admins"), ViaSession, []*rule{admins}); d.Outcome != Allow {
		t.Errorf("an admin under allowed_groups=admins: %v by %q", d.Outcome, d.Rule())
	}
	if d := m.Decide(sess("corp", "bob@example.com", "devs"), ViaSession, []*rule{admins}); d.Outcome != Deny || d.Rule() != "narrowed by allowed_groups" {
		t.Errorf("bob under allowed_groups=admins: %v by %q, want deny narrowed by allowed_groups", d.Outcome, d.Rule())
	}
	if d := m.Decide(sess("corp", "eve@evil.example", "admins"), ViaSession, []*rule{admins}); d.Outcome != Deny || !strings.HasPrefix(d.Rule(), "default") {
		t.Errorf("narrowing widened the policy: %v by %q", d.Outcome, d.Rule())
	}
}

// TestValidateWithoutCollaborators: the proxy sections validate with no
// store, no keys and no provider, and report every problem at once.
func TestValidateWithoutCollaborators(t *testing.T) {
	_, err := Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com", TrustedProxies: []string{"nope"}},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "ftp://x"}, {Path: "/oauth2/x", URL: "http://x"}},
		Policy:    PolicyConfig{Routes: []RouteConfig{{Path: "/a/", Provider: "ghost"}, {Path: "/b/", Bearer: true}}},
		Headers:   HeadersConfig{User: "name"},
		UI:        UIConfig{LogoURL: "javascript:alert(1)"},
	}.Validate(Known{Providers: []string{"corp"}})
	for _, want := range []string{"must be http(s)", "inside the gateway's own prefix", `pins provider "ghost"`,
		"accepts bearer tokens, but the bearer section names no issuer", "headers.user", "ui.logo_url", "trusted_proxies"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nwant it to mention %q", err, want)
		}
	}
	s, err := Config{Server: ServerConfig{PublicURL: "http://gw.example.com"}}.Validate(Known{})
	if err != nil {
		t.Fatal(err)
	}
	if sc := s.Server(); sc.Listen != "127.0.0.1:4180" || sc.Prefix != "/oauth2" || sc.ReadHeaderTimeout == 0 {
		t.Errorf("defaults not filled: %+v", sc)
	}
	w := strings.Join(s.Warnings(), "\n")
	for _, want := range []string{"no upstreams", "policy admits nobody", "plain http"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
}

// BenchmarkPolicyDecideCaseFolded is BenchmarkPolicyDecide for a path
// whose case differs from its route's: the folded lookup's cost.
func BenchmarkPolicyDecideCaseFolded(b *testing.B) {
	p, err := policyTable(issuePolicy)
	if err != nil {
		b.Fatal(err)
	}
	s := &session.Session{Identity: verified("alice@example.com", "admins")}
	t := Target{Method: "GET", Host: "app.example.com", Path: "/ADMIN/users/7"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(t, s, ViaSession); d.Outcome != Allow {
			b.Fatal("denied")
		}
	}
}
