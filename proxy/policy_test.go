package proxy

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

func verified(email string, groups ...string) session.Identity {
	return session.Identity{Subject: "s", Email: email, EmailVerified: true, Groups: groups}
}

func withClaims(claims map[string][]string) session.Identity {
	return session.Identity{Subject: "s", Claims: claims}
}

// ruleCase is one row of the per-rule-type tables below.
type ruleCase struct {
	name string
	cfg  []string // the rule's entries
	id   session.Identity
	want bool
}

func runRuleCases(t *testing.T, build func([]string) (*rule, error), cases []ruleCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r, err := build(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := r.allows(&tt.id); got != tt.want {
				t.Errorf("allows(%+v) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestRuleEmailDomains(t *testing.T) {
	ex := []string{"example.com"}
	sub := []string{".example.com"}
	runRuleCases(t, func(c []string) (*rule, error) { return compileRule("t", nil, c, nil, nil) }, []ruleCase{
		{"exact domain", ex, verified("a@example.com"), true},
		{"case folded", []string{"Example.COM"}, verified("A@EXAMPLE.com"), true},
		{"lookalike hyphen prefix", ex, verified("a@evil-example.com"), false},
		{"lookalike glued prefix", ex, verified("a@evilexample.com"), false},
		{"lookalike suffix", ex, verified("a@example.com.evil.net"), false},
		{"lookalike tld", ex, verified("a@example.co"), false},
		{"lookalike trailing dot", ex, verified("a@example.com."), false},
		{"subdomain needs a dot rule", ex, verified("a@sub.example.com"), false},
		{"two @, allowed domain last", ex, verified("a@evil.com@example.com"), false},
		{"two @, allowed domain first", ex, verified("a@example.com@evil.com"), false},
		{"no @", ex, verified("example.com"), false},
		{"empty local part", ex, verified("@example.com"), true},
		{"unverified", ex, session.Identity{Subject: "s", Email: "a@example.com"}, false},
		{"no email", ex, session.Identity{Subject: "s"}, false},
		{"unicode lookalike", ex, verified("a@exаmple.com"), false},
		{"dot rule subdomain", sub, verified("a@x.example.com"), true},
		{"dot rule deep subdomain", sub, verified("a@x.y.example.com"), true},
		{"dot rule not apex", sub, verified("a@example.com"), false},
		{"dot rule glued", sub, verified("a@evilexample.com"), false},
		{"dot rule unverified", sub, session.Identity{Subject: "s", Email: "a@x.example.com"}, false},
		{"star admits any signed-in user", []string{"*"}, session.Identity{Subject: "s"}, true},
		{"star needs a subject", []string{"*"}, session.Identity{}, false},
	})
}

func TestRuleEmails(t *testing.T) {
	alice := []string{"alice@example.com"}
	runRuleCases(t, func(c []string) (*rule, error) { return compileRule("t", c, nil, nil, nil) }, []ruleCase{
		{"exact", alice, verified("alice@example.com"), true},
		{"case folded", []string{"Alice@Example.com"}, verified("ALICE@example.COM"), true},
		{"other user", alice, verified("bob@example.com"), false},
		{"prefix", alice, verified("alice@example.co"), false},
		{"suffix", alice, verified("alice@example.com.evil"), false},
		{"plus address", alice, verified("alice+x@example.com"), false},
		{"two @", alice, verified("alice@example.com@evil.com"), false},
		{"unverified", alice, session.Identity{Subject: "s", Email: "alice@example.com"}, false},
		{"surrounding space", alice, verified(" alice@example.com"), false},
		{"empty email", alice, verified(""), false},
	})
}

func TestRuleGroups(t *testing.T) {
	admins := []string{"admins"}
	runRuleCases(t, func(c []string) (*rule, error) { return compileRule("t", nil, nil, c, nil) }, []ruleCase{
		{"member", admins, verified("", "users", "admins"), true},
		{"case sensitive", admins, verified("", "Admins"), false},
		{"prefix", admins, verified("", "admins-lite"), false},
		{"substring", admins, verified("", "notadmins"), false},
		{"comma-joined in one group", admins, verified("", "users,admins"), false},
		{"trailing space", admins, verified("", "admins "), false},
		{"no groups", admins, verified("a@example.com"), false},
		{"empty group in identity", admins, verified("", ""), false},
		{"any of several", []string{"a", "b"}, verified("", "b"), true},
	})
}

func TestRuleClaims(t *testing.T) {
	build := func(c []string) (*rule, error) {
		return compileRule("t", nil, nil, nil, map[string][]string{"department": c})
	}
	runRuleCases(t, build, []ruleCase{
		{"value", []string{"sre", "platform"}, withClaims(map[string][]string{"department": {"platform"}}), true},
		{"one of many values", []string{"sre"}, withClaims(map[string][]string{"department": {"hr", "sre"}}), true},
		{"other value", []string{"sre"}, withClaims(map[string][]string{"department": {"hr"}}), false},
		{"case sensitive", []string{"sre"}, withClaims(map[string][]string{"department": {"SRE"}}), false},
		{"prefix", []string{"sre"}, withClaims(map[string][]string{"department": {"sre-lite"}}), false},
		{"other claim with the value", []string{"sre"}, withClaims(map[string][]string{"team": {"sre"}}), false},
		{"claim missing", []string{"sre"}, withClaims(nil), false},
		{"group with the value", []string{"sre"}, verified("", "sre"), false},
	})
}

func TestCompileRuleRejects(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		emails, domains, groups []string
		claims                  map[string][]string
	}{
		{"empty group", nil, nil, []string{""}, nil},
		{"email without @", []string{"alice"}, nil, nil, nil},
		{"email with two @", []string{"a@b@c"}, nil, nil, nil},
		{"domain with @", nil, []string{"@example.com"}, nil, nil},
		{"wildcard inside domain", nil, []string{"*.example.com"}, nil, nil},
		{"empty domain", nil, []string{""}, nil, nil},
		{"lone dot", nil, []string{"."}, nil, nil},
		{"trailing dot", nil, []string{"example.com."}, nil, nil},
		{"claim without values", nil, nil, nil, map[string][]string{"dept": nil}},
		{"claim with empty value", nil, nil, nil, map[string][]string{"dept": {""}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := compileRule("test", tt.emails, tt.domains, tt.groups, tt.claims); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// policyTable compiles cfg as the gateway does, without upstreams (as in
// forward-auth mode, every host and path is then decided by policy alone).
func policyTable(cfg PolicyConfig) (*Routes, error) {
	return compileRoutes(nil, cfg, "/oauth2", Known{Bearer: true})
}

// decideAt is the gateway's decision for id (nil: not signed in) at host,
// method and canonical path.
func (rt *Routes) decideAt(host, method, path string, id *session.Identity) Decision {
	var s *session.Session
	if id != nil {
		s = &session.Session{Identity: *id}
	}
	return rt.Decide(Target{Method: method, Host: host, Path: path}, s, ViaSession)
}

// issuePolicy is the example policy from the routes issue.
var issuePolicy = PolicyConfig{
	EmailDomains: []string{"example.com"},
	Routes: []RouteConfig{
		{Path: "/admin/", Groups: []string{"admins"}},
		{Host: "grafana.example.com", Path: "/", Emails: []string{"alice@example.com"}, Claims: map[string][]string{"department": {"sre", "platform"}}},
		{Path: "/healthz", Public: true},
		{Path: "/api/", Methods: []string{"GET"}, Groups: []string{"readers"}},
	},
}

func TestPolicyRoutes(t *testing.T) {
	p, err := policyTable(issuePolicy)
	if err != nil {
		t.Fatal(err)
	}
	alice := verified("alice@example.com", "admins")
	bob := verified("bob@example.com", "readers")
	carol := session.Identity{Subject: "c", Email: "carol@example.com", EmailVerified: true, Claims: map[string][]string{"department": {"sre"}}}
	outsider := verified("eve@evil.com", "admins-lite")
	for _, tt := range []struct {
		name               string
		host, method, path string
		id                 *session.Identity
		want               bool
		rule               string // substring of the deciding rule
	}{
		{"default rule admits the domain", "app", "GET", "/", &bob, true, "default email_domains:example.com"},
		{"default rule denies others", "app", "GET", "/", &outsider, false, "default"},
		{"admin route admits admins", "app", "GET", "/admin/users", &alice, true, "routes[0] /admin/ groups:admins"},
		{"admin route denies the domain", "app", "GET", "/admin/users", &bob, false, "routes[0]"},
		{"admin route covers the bare directory", "app", "GET", "/admin", &bob, false, "routes[0]"},
		{"admin route not for /administrator", "app", "GET", "/administrator", &bob, true, "default"},
		{"admin look-alike group", "app", "GET", "/admin/", &outsider, false, "routes[0]"},
		{"host route by email", "grafana.example.com", "GET", "/d/1", &alice, true, "routes[1]"},
		{"host route by claim", "grafana.example.com", "GET", "/", &carol, true, "claims:department"},
		{"host route denies the domain", "grafana.example.com", "GET", "/", &bob, false, "routes[1]"},
		{"host route case and port", "GRAFANA.example.com", "GET", "/", &alice, true, "routes[1]"},
		{"host route wins over shorter path? no: longer path first", "grafana.example.com", "GET", "/admin/x", &alice, true, "routes[0]"},
		{"other host is not grafana", "grafana.example.com.evil", "GET", "/", &bob, true, "default"},
		{"public route without session", "app", "GET", "/healthz", nil, true, "public"},
		{"public route is exact-prefix only", "app", "GET", "/healthzz", nil, false, "not signed in"},
		{"api GET for readers", "app", "GET", "/api/items", &bob, true, "routes[3]"},
		{"api HEAD counts as GET", "app", "HEAD", "/api/items", &bob, true, "routes[3]"},
		{"api GET denies non-readers", "app", "GET", "/api/items", &alice, false, "routes[3]"},
		{"api POST not listed", "app", "POST", "/api/items", &bob, false, "method POST not listed"},
		{"not signed in", "app", "GET", "/", nil, false, "not signed in"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := p.decideAt(normHost(tt.host), tt.method, tt.path, tt.id)
			if allow := d.Outcome == Allow; allow != tt.want || !strings.Contains(d.Rule(), tt.rule) {
				t.Errorf("decide = allow %v by %q, want %v by …%q…", allow, d.Rule(), tt.want, tt.rule)
			}
		})
	}
}

func TestPolicyMethodRoutes(t *testing.T) {
	p, err := policyTable(PolicyConfig{
		EmailDomains: []string{"example.com"},
		Routes: []RouteConfig{
			{Path: "/api/", Methods: []string{"get"}, Groups: []string{"readers"}},
			{Path: "/api/", Methods: []string{"POST", "PUT"}, Groups: []string{"writers"}},
			{Path: "/docs/", Methods: []string{"GET"}, Public: true},
			{Path: "/docs/", Groups: []string{"editors"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	reader, writer := verified("r@example.com", "readers"), verified("w@example.com", "writers")
	for _, tt := range []struct {
		method, path string
		id           *session.Identity
		want         bool
	}{
		{"GET", "/api/x", &reader, true},
		{"POST", "/api/x", &reader, false},
		{"POST", "/api/x", &writer, true},
		{"PUT", "/api/x", &writer, true},
		{"DELETE", "/api/x", &writer, false},
		{"GET", "/docs/a", nil, true},
		{"POST", "/docs/a", &reader, false},
		{"POST", "/docs/a", &session.Identity{Subject: "e", Groups: []string{"editors"}}, true},
	} {
		if d := p.decideAt("h", tt.method, tt.path, tt.id); (d.Outcome == Allow) != tt.want {
			t.Errorf("%s %s = %v (%s), want %v", tt.method, tt.path, d.Outcome == Allow, d.Rule(), tt.want)
		}
	}
}

func TestCompilePolicyRejects(t *testing.T) {
	for _, tt := range []struct {
		name  string
		route RouteConfig
	}{
		{"path not canonical", RouteConfig{Path: "/a/../b"}},
		{"path with encoded slash", RouteConfig{Path: "/a%2Fb"}},
		{"public with a rule", RouteConfig{Path: "/x", Public: true, Groups: []string{"g"}}},
		{"bad method", RouteConfig{Path: "/x", Methods: []string{"GET /"}}},
		{"bad host", RouteConfig{Host: "a/b", Path: "/"}},
		{"wildcard host", RouteConfig{Host: "*.example.com", Path: "/"}},
		{"bad rule", RouteConfig{Path: "/x", Groups: []string{""}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := policyTable(PolicyConfig{Routes: []RouteConfig{tt.route}}); err == nil {
				t.Error("accepted")
			}
		})
	}
	dup := PolicyConfig{Routes: []RouteConfig{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"GET", "POST"}}}}
	if _, err := policyTable(dup); err == nil {
		t.Error("two routes claiming GET on the same path accepted")
	}
}

func TestPolicyDeniesThroughHandler(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy = PolicyConfig{Groups: []string{"admins"}} })
	if resp := e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("bob", "bob@example.com", "users"))); resp.StatusCode != 403 {
		t.Errorf("non-member = %d, want 403", resp.StatusCode)
	}
	if e.count() != 0 {
		t.Error("denied request reached the upstream")
	}
	if resp := e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("alice", "alice@example.com", "admins"))); resp.StatusCode != 200 {
		t.Errorf("member = %d, want 200", resp.StatusCode)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `rule="default: no email, domain, group or claim matched"`) {
		t.Errorf("the access log does not name the deciding rule:\n%s", logs)
	}
}

func TestDenyMessageAndJSON(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{{Path: "/admin/", Groups: []string{"admins"}, DenyMessage: "Ask #platform for admin access."}}
	})
	jar := e.sessionCookie("bob", "bob@example.com")
	resp := e.do(get("https://gw.example.com/admin/", "Cookie", jar, "Accept", "text/html"))
	if b := body(resp); resp.StatusCode != 403 || !strings.Contains(b, "Ask #platform for admin access.") || !strings.Contains(b, "Request id") {
		t.Errorf("403 page = %d %s", resp.StatusCode, b)
	}
	resp = e.do(get("https://gw.example.com/admin/", "Cookie", jar, "Accept", "application/json"))
	m := decodeJSON(t, resp)
	if m["error"] != "forbidden" || m["message"] != "Ask #platform for admin access." || m["request_id"] == "" {
		t.Errorf("403 JSON = %v", m)
	}
}
