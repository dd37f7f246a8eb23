package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/session"
)

// exprTable compiles a table whose only route, /x/, has the expression.
func exprTable(t testing.TB, expr string) *Routes {
	t.Helper()
	rt, err := policyTable(PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Expr: expr}}})
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return rt
}

// exprCase is a request to /x/ and its attributes.
type exprCase struct {
	method, path, query string
	header              http.Header
	client              string
	now                 time.Time
}

func (c exprCase) target(t testing.TB) Target {
	t.Helper()
	tg, err := ParseTarget(cmpOr(c.method, "GET"), "gw.example.com", cmpOr(c.path, "/x/"), false)
	if err != nil {
		t.Fatal(err)
	}
	tg.Query, tg.Header, tg.Time = c.query, c.header, c.now
	if c.client != "" {
		tg.Client = netip.MustParseAddr(c.client)
	}
	return tg
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func alice() *session.Session {
	return &session.Session{Provider: "corp", Identity: session.Identity{Issuer: "https://idp", Subject: "alice", Email: "alice@example.com",
		EmailVerified: true, Groups: []string{"sre", "staff"}, Claims: map[string][]string{"tenant": {"acme"}}}}
}

// TestExprRefusedAtLoad is the hostile table of expressions that never
// reach a request: each is refused when the configuration loads, with
// the reason.
func TestExprRefusedAtLoad(t *testing.T) {
	for _, tt := range []struct{ name, expr, want string }{
		{"empty", "  ", "empty"},
		{"not a bool", `size(identity.groups)`, "returns int, not bool"},
		{"a string", `identity.email`, "returns string, not bool"},
		{"type confusion: list as string", `identity.groups == "admins"`, "no matching overload"},
		{"type confusion: list compared with int", `request.query.n > 5`, "no matching overload"},
		{"type confusion: bool as string", `identity.email_verified == "true"`, "no matching overload"},
		{"no such variable", `request.cookies.session != ""`, "undeclared reference"},
		{"tokens are not variables", `identity.access_token.startsWith("ey")`, "undeclared reference"},
		{"syntax", `identity.email ==`, "Syntax error"},
		{"loop: a comprehension in a comprehension", `identity.groups.all(g, identity.groups.exists(h, h == g))`, "could cost up to"},
		{"allocate: a list per header per group", `identity.groups.all(g, request.headers.exists(k, (k + g + k + g).size() > 0))`, "could cost up to"},
		{"allocate: nested comprehensions", `[1,2].all(a, [1,2].all(b, [1,2].all(c, a+b+c > 0)))`, "comprehension"},
		{"too long", strings.Repeat("true && ", 600) + "true", "more than 4096"},
		{"too deep", strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), "recursion"},
		{"a regex from the request", `request.path.matches(request.headers["x-pattern"])`, "constant pattern"},
		{"a malformed regex", `request.path.matches("(")`, "invalid matches argument"},
		{"a claim by computed name", `identity.claims[request.headers["x-claim"]] == ["admin"]`, "constant name"},
		{"iterating over every claim", `identity.claims.exists(k, k == "role")`, "constant name"},
		{"a window from the request", `now.within(request.headers["x-hours"])`, "constant window"},
		{"a malformed window", `now.within("Funday 09:00-17:00")`, "not a day"},
		{"a malformed block", `ip(request.source_ip).in_cidr("10.0.0.0/33")`, "not an address or a CIDR block"},
		{"a malformed timestamp literal", `now > timestamp("yesterday")`, "timestamp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policyTable(PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Expr: tt.expr}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "policy.routes[0].expr") {
				t.Errorf("the error does not name the rule: %v", err)
			}
		})
	}
}

// TestExprDeniesAtRunTime is the hostile table of expressions that
// compile but must not pass: reading what is not there (credentials are
// not in request.headers), type confusion through dyn, arithmetic
// faults, out-of-range reads, and work past the cost limit all deny, and
// the decision says why.
func TestExprDeniesAtRunTime(t *testing.T) {
	secrets := http.Header{"Authorization": {"Bearer secret"}, "Cookie": {"_portcullis=x"}, "Proxy-Authorization": {"Basic x"}, "User-Agent": {"curl/8"}}
	huge := alice()
	for i := 0; i < 60_000; i++ {
		huge.Groups = append(huge.Groups, "g")
	}
	for _, tt := range []struct {
		name, expr string
		c          exprCase
		s          *session.Session
		want       string // in the decision's rule
	}{
		{"the Authorization header is not readable", `request.headers["authorization"].startsWith("Bearer")`, exprCase{header: secrets}, nil, "no such key"},
		{"nor the Cookie header", `request.headers.cookie.contains("_portcullis")`, exprCase{header: secrets}, nil, "no such key"},
		{"nor found by iterating", `request.headers.exists(k, k in ["authorization", "cookie", "proxy-authorization"])`, exprCase{header: secrets}, nil, "is false"},
		{"type confusion through dyn", `dyn(identity.groups)[0] + 1 > 0`, exprCase{}, nil, "no such overload"},
		{"a string as a number", `int(request.query.n[0]) > 3`, exprCase{query: "n=abc"}, nil, "failed"},
		{"division by zero", `1 / (size(identity.groups) - size(identity.groups)) == 0`, exprCase{}, nil, "division by zero"},
		{"overflow", `9223372036854775807 + size(identity.groups) > 0`, exprCase{}, nil, "overflow"},
		{"a segment past the end", `request.segments[5] == "admin"`, exprCase{}, nil, "index out of bounds"},
		{"an unknown client address", `ip(request.source_ip).in_cidr("10.0.0.0/8")`, exprCase{}, nil, "parse error"},
		{"an ambiguous query", `request.query.tenant == ["acme"]`, exprCase{query: "tenant=%zz"}, nil, "invalid URL escape"},
		{"a missing claim", `"admin" in identity.claims.role`, exprCase{}, nil, "no such key"},
		{"work past the cost limit", `identity.groups.exists(g, g == "nobody")`, exprCase{}, huge, "cost limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := exprTable(t, tt.expr)
			s := tt.s
			if s == nil {
				s = alice()
			}
			d := rt.Decide(tt.c.target(t), s, ViaSession)
			if d.Outcome != Deny || !strings.Contains(d.Rule(), tt.want) {
				t.Errorf("%s = %s %q, want deny naming %q", tt.expr, d.Outcome, d.Rule(), tt.want)
			}
		})
	}
}

// TestExprVariables checks each variable against the identity and
// request it describes, and each helper.
func TestExprVariables(t *testing.T) {
	s := alice()
	s.Name, s.PreferredUsername = "Alice Example", "alice"
	c := exprCase{method: "POST", path: "/x/acme/reports", query: "a=1&a=2&b=3", header: http.Header{"X-Team": {"core", "infra"}, "User-Agent": {"curl/8"}},
		client: "10.1.2.3", now: time.Date(2026, 12, 7, 22, 30, 0, 0, time.UTC)} // a Monday
	for _, expr := range []string{
		`identity.subject == "alice" && identity.issuer == "https://idp" && identity.provider == "corp"`,
		`identity.email == "alice@example.com" && identity.email_verified`,
		`identity.name == "Alice Example" && identity.preferred_username == "alice"`,
		`identity.groups == ["sre", "staff"] && "sre" in identity.groups`,
		`identity.claims.tenant == ["acme"] && has(identity.claims.tenant) && !has(identity.claims.role) && "tenant" in identity.claims`,
		`identity.authenticated_via == "device"`,
		`request.method == "POST" && request.host == "gw.example.com" && request.path == "/x/acme/reports"`,
		`request.segments == ["x", "acme", "reports"] && request.path.segment(1) == "acme" && request.path.segment(9) == ""`,
		`request.query.a == ["1", "2"] && request.query.b == ["3"] && !has(request.query.c)`,
		`request.headers["x-team"] == "core, infra" && request.headers["user-agent"] == "curl/8"`,
		`request.source_ip == "10.1.2.3" && ip(request.source_ip).in_cidr("10.0.0.0/8") && !ip(request.source_ip).in_cidr("10.1.2.4")`,
		`cidr("10.0.0.0/8").containsIP(ip(request.source_ip))`,
		`now == timestamp("2026-12-07T22:30:00Z") && now.hour() == 23 && now.minute() == 30 && now.weekday() == 1`,
		`now.within("Mon 22:00-06:00") && !now.within("Mon-Fri 09:00-18:00") && now.getHours("UTC") == 22`,
	} {
		rt, err := policyTable(PolicyConfig{TimeZone: "Europe/Berlin", Routes: []RouteConfig{{Path: "/x/", Expr: expr}}})
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if d := rt.Decide(c.target(t), s, ViaDevice); d.Outcome != Allow {
			t.Errorf("%s = %s (%s), want allow", expr, d.Outcome, d.Rule())
		}
	}
}

// TestConditionsOnRules checks source_ips and hours, alone and with an
// expression, and how a rule with conditions is refused or explained.
func TestConditionsOnRules(t *testing.T) {
	rt, err := policyTable(PolicyConfig{
		TimeZone: "Europe/Berlin",
		Routes: []RouteConfig{
			{Path: "/office/", Groups: []string{"sre"}, SourceIPs: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"}},
			{Path: "/day/", Groups: []string{"sre"}, Hours: []string{"Mon-Fri 09:00-18:00"}},
			{Path: "/both/", Groups: []string{"sre"}, SourceIPs: []string{"10.0.0.0/8"}, Hours: []string{"Mon-Fri 09:00-18:00"},
				Expr: `request.method == "GET"`, Remediation: "Use the VPN in working hours."},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	monday10 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // 10:00 in Berlin
	for _, tt := range []struct {
		path, method, client string
		now                  time.Time
		want                 Outcome
		why                  string
	}{
		{"/office/a", "GET", "10.9.9.9", monday10, Allow, "groups:sre and source_ips"},
		{"/office/a", "GET", "::ffff:10.9.9.9", monday10, Allow, ""},
		{"/office/a", "GET", "2001:db8::1", monday10, Allow, ""},
		{"/office/a", "GET", "192.0.2.7", monday10, Allow, ""},
		{"/office/a", "GET", "192.0.2.8", monday10, Deny, "source_ips: 192.0.2.8 is not listed"},
		{"/office/a", "GET", "", monday10, Deny, "address is unknown"},
		{"/day/a", "GET", "", monday10, Allow, "and hours"},
		{"/day/a", "GET", "", monday10.Add(9 * time.Hour), Deny, "hours: Mon 19:00 CET is outside Mon-Fri 09:00-18:00"},
		{"/both/a", "GET", "10.1.1.1", monday10, Allow, "groups:sre and source_ips, hours, expr"},
		{"/both/a", "POST", "10.1.1.1", monday10, Deny, `expr is false: request.method == "GET"`},
	} {
		tg := exprCase{method: tt.method, path: tt.path, client: tt.client, now: tt.now}.target(t)
		d := rt.Decide(tg, alice(), ViaSession)
		if d.Outcome != tt.want || !strings.Contains(d.Rule(), tt.why) {
			t.Errorf("%s %s from %q at %s = %s %q, want %s naming %q", tt.method, tt.path, tt.client, tt.now, d.Outcome, d.Rule(), tt.want, tt.why)
		}
		if tt.path == "/both/a" && tt.want == Deny && d.Remediation() != "Use the VPN in working hours." {
			t.Errorf("remediation = %q", d.Remediation())
		}
	}
	// The top-level rule takes conditions, a deny_message and a
	// remediation too.
	def, err := policyTable(PolicyConfig{EmailDomains: []string{"example.com"}, Expr: `request.method == "GET"`,
		DenyMessage: "Read-only.", Remediation: "Ask for write access."})
	if err != nil {
		t.Fatal(err)
	}
	if d := def.Decide(exprCase{path: "/a"}.target(t), alice(), ViaSession); d.Outcome != Allow || d.Rule() != "default email_domains:example.com and expr" {
		t.Errorf("default rule, GET = %s %q", d.Outcome, d.Rule())
	}
	d := def.Decide(exprCase{method: "POST", path: "/a"}.target(t), alice(), ViaSession)
	if d.Outcome != Deny || d.DenyMessage() != "Read-only." || d.Remediation() != "Ask for write access." ||
		d.Rule() != `default: email_domains:example.com matched, but expr is false: request.method == "GET"` {
		t.Errorf("default rule, POST = %s %q %q %q", d.Outcome, d.Rule(), d.DenyMessage(), d.Remediation())
	}

	bob := alice()
	bob.Groups = nil
	if d := rt.Decide(exprCase{path: "/office/a", client: "10.1.1.1", now: monday10}.target(t), bob, ViaSession); d.Outcome != Deny ||
		!strings.Contains(d.Rule(), "no email, domain, group or claim matched") {
		t.Errorf("a non-member from the office = %s %q", d.Outcome, d.Rule())
	}

	for _, tt := range []struct {
		name string
		cfg  PolicyConfig
		want string
	}{
		{"source_ips alone admit nobody in particular", PolicyConfig{Routes: []RouteConfig{{Path: "/x/", SourceIPs: []string{"10.0.0.0/8"}}}}, "only narrow a rule"},
		{"hours alone", PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Hours: []string{"09:00-17:00"}}}}, "only narrow a rule"},
		{"a public route with conditions", PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Public: true, Expr: "true"}}}, "public route"},
		{"a bad block", PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Groups: []string{"a"}, SourceIPs: []string{"10.0.0.0/99"}}}}, "policy.routes[0].source_ips"},
		{"a bad window", PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Groups: []string{"a"}, Hours: []string{"9-5"}}}}, "policy.routes[0].hours"},
		{"a bad zone", PolicyConfig{TimeZone: "Mars/Olympus", EmailDomains: []string{"*"}}, "policy.time_zone"},
		{"the machine's zone", PolicyConfig{TimeZone: "Local", EmailDomains: []string{"*"}}, "policy.time_zone"},
		{"the default rule's expression", PolicyConfig{Expr: "1"}, "policy.expr"},
	} {
		if _, err := policyTable(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestWindows checks the hours: syntax and its overnight and weekday
// edges.
func TestWindows(t *testing.T) {
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, 6+d, h, m, 0, 0, time.UTC) } // d 0 is a Sunday
	for _, tt := range []struct {
		spec string
		at   time.Time
		in   bool
	}{
		{"Mon-Fri 09:00-18:00", day(1, 9, 0), true},
		{"Mon-Fri 09:00-18:00", day(1, 8, 59), false},
		{"Mon-Fri 09:00-18:00", day(5, 17, 59), true},
		{"Mon-Fri 09:00-18:00", day(5, 18, 0), false},
		{"Mon-Fri 09:00-18:00", day(6, 12, 0), false},
		{"Mon-Fri 22:00-06:00", day(1, 23, 0), true},
		{"Mon-Fri 22:00-06:00", day(2, 5, 59), true},  // the Monday night's end
		{"Mon-Fri 22:00-06:00", day(1, 5, 0), false},  // Sunday night is not listed
		{"Mon-Fri 22:00-06:00", day(6, 5, 0), true},   // Friday night runs into Saturday
		{"Mon-Fri 22:00-06:00", day(6, 23, 0), false}, // Saturday does not start one
		{"Fri-Mon 10:00-11:00", day(0, 10, 30), true}, // a wrapping day range
		{"Fri-Mon 10:00-11:00", day(3, 10, 30), false},
		{"sat,SUN 00:00-24:00", day(0, 23, 59), true},
		{"Sat,Sun 00:00-24:00", day(1, 0, 0), false},
		{"Mon,Wed-Thu 12:00-13:00", day(4, 12, 30), true},
		{"Mon,Wed-Thu 12:00-13:00", day(2, 12, 30), false},
		{"22:00-06:00", day(3, 2, 0), true},
	} {
		ws, err := parseWindows([]string{tt.spec})
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		if got := inWindows(ws, tt.at); got != tt.in {
			t.Errorf("%s at %s = %v, want %v", tt.spec, tt.at.Format("Mon 15:04"), got, tt.in)
		}
	}
	for _, bad := range []string{"", "Mon-Fri", "Mon-Fri 9:00-18:00", "Mon-Fri 09:00", "Mon-Fri 09:00-18:60", "Mon-Fri 24:00-06:00",
		"Mon-Fri 24:01-06:00", "Moon 09:00-10:00", "Mon-Fri 10:00-10:00", "Mon Fri 09:00-10:00", "Mon-Fri 09:00-25:00"} {
		if _, err := parseWindows([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestExprClaimsAndGroups checks what sign-in must keep for expressions:
// the claims they name, and every group once one reads identity.groups.
func TestExprClaimsAndGroups(t *testing.T) {
	pol := PolicyConfig{Expr: `identity.claims.department == ["ops"]`,
		Routes: []RouteConfig{{Path: "/t/", Expr: `request.path.segment(1) in identity.claims["tenant"] && has(identity.claims.amr) && "x" in identity.claims`}}}
	got := strings.Join(pol.ClaimNames(), ",")
	if got != "amr,department,tenant,x" {
		t.Errorf("ClaimNames = %s", got)
	}
	rt, err := policyTable(PolicyConfig{Groups: []string{"a"}, Routes: []RouteConfig{{Path: "/x/", Groups: []string{"b"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if g := rt.groupNames(); !g["a"] || !g["b"] || len(g) != 2 {
		t.Errorf("groupNames without expressions = %v", g)
	}
	if g := exprTable(t, `!("contractors" in identity.groups)`).groupNames(); g != nil {
		t.Errorf("groupNames with an expression reading groups = %v, want nil (no group may be dropped)", g)
	}
}

// TestExprAdmitsAtSignIn checks the callback's question with conditions:
// an expression-only rule may admit anyone signed in, entries still
// decide for rules that have them.
func TestExprAdmitsAtSignIn(t *testing.T) {
	rt, err := policyTable(PolicyConfig{Routes: []RouteConfig{
		{Path: "/x/", Expr: `request.method == "GET"`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.admits(&alice().Identity); err != nil {
		t.Errorf("an expression-only rule refused a sign-in: %v", err)
	}
	rt, err = policyTable(PolicyConfig{Routes: []RouteConfig{{Path: "/x/", Groups: []string{"admins"}, SourceIPs: []string{"10.0.0.0/8"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.admits(&alice().Identity); err == nil {
		t.Error("a rule whose entries do not admit the identity admitted it because of its conditions")
	}
}

// TestExprAllocationsDoNotGrow checks that a decision with an expression
// allocates the same whether it is the hundredth or the ten-thousandth.
func TestExprAllocationsDoNotGrow(t *testing.T) {
	rt := exprTable(t, `"sre" in identity.groups && request.method == "GET" && ip(request.source_ip).in_cidr("10.0.0.0/8")`)
	tg := exprCase{client: "10.1.2.3", now: time.Now()}.target(t)
	s := alice()
	decide := func() {
		m := rt.Match(tg)
		if d := m.Decide(s, ViaSession, nil); d.Outcome != Allow {
			t.Fatalf("decision = %s %s", d.Outcome, d.Rule())
		}
	}
	few := testing.AllocsPerRun(100, decide)
	many := testing.AllocsPerRun(10_000, decide)
	if many > few {
		t.Errorf("allocations per decision grew from %.1f (100 runs) to %.1f (10,000 runs)", few, many)
	}
}

// TestExprThroughHandler checks a real request: the remediation on the
// 403 page and in its JSON, request.headers without credentials, and the
// access log naming the part of the rule that failed.
func TestExprThroughHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvOpts(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{
			{Path: "/admin/", Groups: []string{"admins"}, Expr: `request.headers["x-ticket"].startsWith("OPS-")`,
				DenyMessage: "Admin changes need a ticket.", Remediation: "Open an OPS ticket and send its number in X-Ticket."},
			{Path: "/leak/", Expr: `!("cookie" in request.headers) && !("authorization" in request.headers)`},
		}
	}, func(o *Options) { o.Metrics = NewMetrics(reg) })
	jar := e.sessionCookie("alice", "alice@example.com", "admins")
	resp := e.do(get("https://gw.example.com/admin/", "Cookie", jar, "Accept", "text/html"))
	if b := body(resp); resp.StatusCode != 403 || !strings.Contains(b, "Open an OPS ticket and send its number in X-Ticket.") || !strings.Contains(b, "Admin changes need a ticket.") {
		t.Errorf("403 page = %d %s", resp.StatusCode, b)
	}
	resp = e.do(get("https://gw.example.com/admin/", "Cookie", jar, "Accept", "application/json"))
	if m := decodeJSON(t, resp); m["remediation"] != "Open an OPS ticket and send its number in X-Ticket." {
		t.Errorf("403 JSON = %v", m)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `groups:admins matched, but expr failed (denied): no such key: x-ticket`) ||
		!strings.Contains(logs, `level=WARN msg="policy expression failed to evaluate; the request is denied"`) {
		t.Errorf("the log does not say which part failed, with a warning:\n%s", logs)
	}
	if got := counterValue(t, reg, "portcullis_policy_expr_errors_total", "rule", "policy.routes[0] /admin/"); got != 2 {
		t.Errorf("portcullis_policy_expr_errors_total = %v, want 2", got)
	}
	if resp := e.do(get("https://gw.example.com/admin/", "Cookie", jar, "X-Ticket", "OPS-42")); resp.StatusCode != 200 {
		t.Errorf("with a ticket = %d", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/leak/", "Cookie", jar, "Authorization", "Basic eDp5")); resp.StatusCode != 200 {
		t.Errorf("credentials showed in request.headers: %d", resp.StatusCode)
	}
}

// typicalExpr is the benchmarks' typical rule: SREs, for GET only, from
// the office network, in working hours.
const typicalExpr = `request.method == "GET" && ip(request.source_ip).in_cidr("10.0.0.0/8") && now.within("Mon-Fri 00:00-24:00")`

// exprBenchRoutes is a route for /admin/ with groups: [sre] and, for
// "typical", the typical expression too.
func exprBenchRoutes(kind string) []RouteConfig {
	r := RouteConfig{Path: "/admin/", Groups: []string{"sre"}}
	if kind == "typical" {
		r.Expr = typicalExpr
	}
	return []RouteConfig{r, {Path: "/healthz", Public: true}}
}

// BenchmarkDecideExpr is one decision with and without the typical
// expression (compare with benchstat -col /expr).
func BenchmarkDecideExpr(b *testing.B) {
	monday := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	for _, kind := range []string{"none", "typical"} {
		b.Run("expr="+kind, func(b *testing.B) {
			rt, err := policyTable(PolicyConfig{EmailDomains: []string{"example.com"}, Routes: exprBenchRoutes(kind)})
			if err != nil {
				b.Fatal(err)
			}
			tg := exprCase{path: "/admin/users/7", client: "10.1.2.3", now: monday}.target(b)
			tg.Header = http.Header{"User-Agent": {"Mozilla/5.0"}, "Accept": {"text/html"}}
			s := alice()
			b.ReportAllocs()
			for b.Loop() {
				m := rt.Match(tg)
				if d := m.Decide(s, ViaSession, nil); d.Outcome != Allow {
					b.Fatal(d.Rule())
				}
			}
		})
	}
}

// BenchmarkServeHTTPExpr is a signed-in GET through the whole handler to
// a route with and without the typical expression.
func BenchmarkServeHTTPExpr(b *testing.B) {
	for _, kind := range []string{"none", "typical"} {
		b.Run("expr="+kind, func(b *testing.B) {
			h, store := benchHandler(b, func(c *Config) { c.Policy.Routes = exprBenchRoutes(kind) })
			v, err := store.Seal(&session.Session{Identity: alice().Identity, Provider: "corp", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			r := dashboardRequest(store.Name() + "=" + v)
			r.URL.Path, r.RequestURI = "/admin/users/7", "/admin/users/7"
			r.RemoteAddr = "10.1.2.3:40000"
			serveLoop(b, h, r)
		})
	}
}

// FuzzExpr compiles any source: it is refused or it evaluates to a bool
// or an error, never a panic, and never past the cost limit.
func FuzzExpr(f *testing.F) {
	for _, seed := range []string{typicalExpr, `identity.groups.exists(g, g.startsWith("a"))`, `request.query.a == ["1"]`,
		`now.within("Sat,Sun 00:00-24:00")`, `request.path.segment(-1) == ""`, `dyn(request.headers)[1] == 2`, `[1,2].map(x, x * x)[3] == 1`,
		`"a".repeat(100) == ""`, `request.path.split("/").size() > 2`, `identity.claims.x[0] == "y"`} {
		f.Add(seed)
	}
	env, err := newExprEnv(time.UTC)
	if err != nil {
		f.Fatal(err)
	}
	s := alice()
	in := &exprInput{s: s, method: "GET", req: &reqAttrs{host: "gw.example.com", path: "/a/b", query: "a=1",
		header: http.Header{"X-A": {"b"}}, client: netip.MustParseAddr("10.0.0.1"), now: time.Now()}}
	f.Fuzz(func(t *testing.T, src string) {
		ce, err := env.compile("fuzz.expr", Pos{}, src)
		if err != nil {
			return
		}
		if ce.cost > exprMaxCost {
			t.Fatalf("%q compiled with cost %d", src, ce.cost)
		}
		ce.eval(in)
		ce.whyFalse(in)
	})
}
