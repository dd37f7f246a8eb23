package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

// Case-variant paths (issue 14, defect 2). Paths are case-sensitive by
// RFC 3986 (§6.2.2.1 folds scheme, host and percent-encodings only), but
// IIS, Windows file servers and many Java and PHP setups serve /ADMIN/ as
// /admin/. A path is governed by every route it matches compared
// case-insensitively; public: true exempts only an exact-case match.

// caseVariants run through the real handler (hostileEnv: /public/ public,
// /admin/ for admins, the rest for example.com) in reverse-proxy and
// forward-auth mode. admin: the path is an admin path to a case-folding
// backend; public: it needs no sign-in.
var caseVariants = []struct {
	name          string
	target        string
	admin, public bool
}{
	{"upper-case directory", "/ADMIN/", true, false},
	{"capitalised, deeper", "/Admin/secret", true, false},
	{"mixed case without slash", "/aDmIn", true, false},
	{"exact directory without slash", "/admin", true, false},
	{"upper-case directory without slash", "/ADMIN", true, false},
	{"encoded upper-case letter", "/%41dmin/x", true, false},
	{"encoded lower-case letter, upper rest", "/%61DMIN/x", true, false},
	{"upper-case public is not public", "/PUBLIC/", false, false},
	{"capitalised public is not public", "/Public/page", false, false},
	{"public as spelled", "/public/", false, true},
	{"public, deeper", "/public/page", false, true},
	// Near misses: folding must not widen a route past its segments.
	{"longer segment", "/ADMINS/", false, false},
	{"prefix of a longer word", "/Administrator", false, false},
	{"admin deeper down", "/docs/ADMIN/", false, false},
	{"letter before", "/xADMIN/", false, false},
	{"public as a longer segment", "/PUBLICITY/", false, false},
}

func TestCaseVariantPaths(t *testing.T) {
	e := hostileEnv(t)
	bob, alice := e.bob(), e.alice()
	for _, tt := range caseVariants {
		t.Run(tt.name, func(t *testing.T) {
			anon, signedIn := http.StatusUnauthorized, http.StatusOK
			if tt.public {
				anon = http.StatusOK
			}
			if tt.admin {
				signedIn = http.StatusForbidden
			}
			if resp := e.do(get(tt.target, "Accept", "application/json")); resp.StatusCode != anon {
				t.Errorf("signed out: %d, want %d", resp.StatusCode, anon)
			}
			if resp := e.do(get(tt.target, "Cookie", bob)); resp.StatusCode != signedIn {
				t.Errorf("bob: %d, want %d", resp.StatusCode, signedIn)
			}
			before := e.count()
			if resp := e.do(get(tt.target, "Cookie", alice)); resp.StatusCode != http.StatusOK {
				t.Errorf("alice (admin): %d, want 200", resp.StatusCode)
			} else if e.count() != before+1 {
				t.Error("alice's request did not reach the upstream")
			}
			// Forward-auth: the same decision.
			fwd := map[int]int{http.StatusOK: http.StatusAccepted}
			want := signedIn
			if w, ok := fwd[want]; ok {
				want = w
			}
			if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", tt.target, "Cookie", bob)); resp.StatusCode != want {
				t.Errorf("forward-auth as bob: %d, want %d", resp.StatusCode, want)
			}
			want = http.StatusUnauthorized
			if tt.public {
				want = http.StatusAccepted
			}
			if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", tt.target)); resp.StatusCode != want {
				t.Errorf("forward-auth signed out: %d, want %d", resp.StatusCode, want)
			}
		})
	}
}

// TestCaseVariantUpstreamPath: the upstream gets the path as spelled; the
// gateway folds only to decide.
func TestCaseVariantUpstreamPath(t *testing.T) {
	e := hostileEnv(t)
	if resp := e.do(get("/Admin/Secret", "Cookie", e.alice())); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice: %d, want 200", resp.StatusCode)
	}
	if got := e.last().Path; got != "/Admin/Secret" {
		t.Errorf("upstream saw %q, want /Admin/Secret", got)
	}
}

// caseTable has host rows, an exact-style route, per-method routes, a
// public route spelled in upper case, and a protected route under a
// public one that only folding reaches.
func caseTable(t *testing.T) *Routes {
	t.Helper()
	rt, err := compileRoutes([]UpstreamConfig{
		{Host: "app.example.com", Path: "/", URL: "http://app"},
		{Host: "other.example.com", Path: "/", URL: "http://other"},
	}, PolicyConfig{EmailDomains: []string{"example.com"}, Routes: []RouteConfig{
		{Host: "App.Example.COM", Path: "/admin/", Groups: []string{"admins"}},
		{Path: "/reports", Groups: []string{"auditors"}},
		{Path: "/public/", Public: true},
		{Path: "/api/", Methods: []string{"GET"}, Groups: []string{"readers"}},
		{Path: "/api/", Methods: []string{"POST"}, Groups: []string{"writers"}},
		{Path: "/Docs/", Public: true},
		{Path: "/Static/", Public: true},
		{Path: "/static/private/", Groups: []string{"admins"}},
	}}, "/oauth2", Known{})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestCaseFoldedDecide(t *testing.T) {
	rt := caseTable(t)
	bob := verified("bob@example.com", "devs")
	admin := verified("ann@example.com", "admins")
	reader := verified("rea@example.com", "readers")
	writer := verified("wri@example.com", "writers")
	for _, tt := range []struct {
		name, host, method, path string
		id                       *session.Identity
		want                     Outcome
		public                   bool
	}{
		{"host route as spelled", "app.example.com", "GET", "/admin/", &bob, Deny, false},
		{"mixed host, upper path", "APP.Example.com:443", "GET", "/ADMIN/x", &bob, Deny, false},
		{"mixed host, admin passes", "App.example.com", "GET", "/ADMIN/x", &admin, Allow, false},
		{"other host is not the route's", "other.example.com", "GET", "/ADMIN/", &bob, Allow, false},
		{"exact-style route, upper", "app.example.com", "GET", "/REPORTS", &bob, Deny, false},
		{"exact-style route, deeper", "app.example.com", "GET", "/Reports/2024", &bob, Deny, false},
		{"exact-style near miss", "app.example.com", "GET", "/REPORTSX", &bob, Allow, false},
		{"upper public needs sign-in", "app.example.com", "GET", "/PUBLIC/", nil, SignIn, false},
		{"public as spelled", "app.example.com", "GET", "/public/", nil, Allow, true},
		{"method route GET, reader", "app.example.com", "GET", "/API/x", &reader, Allow, false},
		{"method route GET, writer", "app.example.com", "GET", "/API/x", &writer, Deny, false},
		{"method route POST, writer", "app.example.com", "POST", "/Api/x", &writer, Allow, false},
		{"method route POST, reader", "app.example.com", "POST", "/Api/x", &reader, Deny, false},
		{"method not listed", "app.example.com", "DELETE", "/API/x", &writer, Deny, false},
		{"public spelled upper, request lower", "app.example.com", "GET", "/docs/x", nil, SignIn, false},
		{"public spelled upper, as spelled", "app.example.com", "GET", "/Docs/x", nil, Allow, true},
		{"protected under public, signed out", "app.example.com", "GET", "/Static/PRIVATE/x", nil, SignIn, false},
		{"protected under public, bob", "app.example.com", "GET", "/Static/private/x", &bob, Deny, false},
		{"protected under public, admin", "app.example.com", "GET", "/Static/Private/x", &admin, Allow, false},
		{"public sibling stays public", "app.example.com", "GET", "/Static/x", nil, Allow, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := ParseTarget(tt.method, tt.host, tt.path, true)
			if err != nil {
				t.Fatal(err)
			}
			var s *session.Session
			if tt.id != nil {
				s = &session.Session{Identity: *tt.id}
			}
			d := rt.Decide(tg, s, ViaSession)
			if d.Outcome != tt.want || d.Public != tt.public {
				t.Errorf("%s %s: %v public=%v (%s), want %v public=%v", tt.method, tt.path, d.Outcome, d.Public, d.Rule(), tt.want, tt.public)
			}
			if d.upstream < 0 {
				t.Errorf("no upstream")
			}
		})
	}
}

// TestCaseFoldedRuleNamesRoute: the log names the route that refused,
// and says it matched case-insensitively.
func TestCaseFoldedRuleNamesRoute(t *testing.T) {
	rt := caseTable(t)
	bob := verified("bob@example.com")
	d := rt.decideAt("app.example.com", "GET", "/ADMIN/", &bob)
	if !strings.Contains(d.Rule(), "case-insensitive policy.routes[0] app.example.com/admin/") {
		t.Errorf("rule %q does not name the admin route", d.Rule())
	}
	if d.Route == nil || d.Route.path != "/admin/" {
		t.Errorf("route %v, want /admin/", d.Route)
	}
}

// TestCaseVariantRefusedPaths: non-ASCII characters that case-fold to an
// ASCII letter are refused, since a backend may fold them into /admin.
func TestCaseVariantRefusedPaths(t *testing.T) {
	for _, tt := range []struct{ name, path string }{
		{"dotted capital I, encoded", "/ADM%C4%B0N/"},
		{"dotted capital I, raw", "/ADMİN/"},
		{"dotless i", "/admın/"},
		{"long s", "/ſecret/"},
		{"Kelvin sign", "/\u212Aey/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := canonicalPath(tt.path); !errors.Is(err, errAmbiguousPath) {
				t.Errorf("canonicalPath(%q) = %v, want refused", tt.path, err)
			}
		})
	}
	// Near misses: other non-ASCII letters stay allowed.
	for _, p := range []string{"/caf%C3%A9/", "/%C3%84rger/", "/straße/"} {
		if _, _, err := canonicalPath(p); err != nil {
			t.Errorf("canonicalPath(%q) = %v, want accepted", p, err)
		}
	}
}

// TestCaseCollidingRoutesRefused: two routes (or upstreams) whose paths
// differ only in case would be one path to a case-folding backend.
func TestCaseCollidingRoutesRefused(t *testing.T) {
	_, err := compileRoutes(nil, PolicyConfig{Routes: []RouteConfig{
		{Path: "/public/", Public: true},
		{Path: "/PUBLIC/", Groups: []string{"admins"}},
	}}, "/oauth2", Known{})
	if err == nil {
		t.Error("routes /public/ and /PUBLIC/ accepted")
	}
	_, err = compileRoutes([]UpstreamConfig{
		{Path: "/App/", URL: "http://a"}, {Path: "/app/", URL: "http://b"},
	}, PolicyConfig{}, "/oauth2", Known{})
	if err == nil {
		t.Error("upstreams /App/ and /app/ accepted")
	}
	// Near miss: one spelling per host is fine.
	if _, err := compileRoutes(nil, PolicyConfig{Routes: []RouteConfig{
		{Host: "a.example", Path: "/Admin/", Groups: []string{"admins"}},
		{Host: "b.example", Path: "/admin/", Groups: []string{"admins"}},
	}}, "/oauth2", Known{}); err != nil {
		t.Errorf("different hosts refused: %v", err)
	}
}

// TestCaseFoldedBearer: a bearer token is taken only where every route
// that needs an identity takes one.
func TestCaseFoldedBearer(t *testing.T) {
	rt, err := compileRoutes(nil, PolicyConfig{EmailDomains: []string{"example.com"}, Routes: []RouteConfig{
		{Path: "/api/", Bearer: true, Groups: []string{"readers"}},
		{Path: "/Pub/", Public: true},
		{Path: "/pub/machines/", Bearer: true, Groups: []string{"robots"}},
	}}, "/oauth2", Known{Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/api/x", true},
		{"/API/x", false}, // the default rule governs it as spelled: no bearer there
		{"/Pub/MACHINES/x", true},
		{"/pub/machines/x", true},
		{"/Pub/x", false},
	} {
		t.Run(tt.path, func(t *testing.T) {
			m := rt.Match(Target{Method: "GET", Host: "h", Path: tt.path})
			if got := m.AcceptsBearer(); got != tt.want {
				t.Errorf("AcceptsBearer = %v, want %v", got, tt.want)
			}
		})
	}
}
