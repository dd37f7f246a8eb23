package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

// Sign-ins no rule could ever admit (issue 14, defect 9): a malformed
// email, or an identity that no route's rule and not the default rule
// admits, is refused at the callback with the deny page, before a
// session exists. Public routes do not count: they admit anonymous
// requests, not this identity.

// signInAs runs a sign-in that redeems to id and returns the callback's
// answer and the attempt's login cookie name.
func (e *env) signInAs(id session.Identity) (*http.Response, string) {
	e.t.Helper()
	a := e.begin("/")
	e.idp.mu.Lock()
	id.Issuer = e.idp.issuer
	e.idp.codes["c"] = &session.Session{Identity: id, Provider: e.idp.ID()}
	e.idp.mu.Unlock()
	resp, _ := e.callback("code=c&state="+url.QueryEscape(a.state), a.login)
	name, _, _ := strings.Cut(a.login, "=")
	return resp, name
}

// refusedSignIn checks a 403 with no session and the login cookie spent.
func refusedSignIn(t *testing.T, e *env, resp *http.Response, login string) {
	t.Helper()
	refused(t, e, resp, http.StatusForbidden)
	spent := false
	for _, c := range resp.Cookies() {
		spent = spent || (c.Name == login && c.MaxAge < 0)
	}
	if !spent {
		t.Error("the login cookie was not consumed")
	}
}

// malformedEmails are refused even for an identity a group rule admits.
var malformedEmails = []struct{ name, email string }{
	{"two at signs", "a@b@example.com"},
	{"Cyrillic a in the domain", "bob@ex\u0430mple.com"},
	{"non-ASCII local part", "b\u00f6b@example.com"},
	{"trailing dot domain", "bob@example.com."},
	{"empty local part", "@example.com"},
	{"empty domain", "bob@"},
	{"no at sign", "bob.example.com"},
	{"space in local part", "bob smith@example.com"},
	{"space after at", "bob@ example.com"},
	{"leading dot", ".bob@example.com"},
	{"double dot", "bo..b@example.com"},
	{"empty label", "bob@example..com"},
	{"address literal", "bob@[192.0.2.1]"},
	{"quoted local part", `"bob"@example.com`},
	{"hyphen at label start", "bob@-example.com"},
	{"newline", "bob\n@example.com"},
	{"local part over 64 bytes", strings.Repeat("b", 65) + "@example.com"},
}

func TestCallbackRefusesMalformedEmail(t *testing.T) {
	for _, tt := range malformedEmails {
		t.Run(tt.name, func(t *testing.T) {
			e := hostileEnv(t)
			resp, login := e.signInAs(session.Identity{Subject: "bob", Email: tt.email, EmailVerified: true, Groups: []string{"admins"}})
			refusedSignIn(t, e, resp, login)
			if !strings.Contains(e.logs.String(), errEmailMalformed.Error()) {
				t.Error("the log does not name the reason")
			}
		})
	}
}

// TestCallbackAdmitsWellFormed: near misses that must still sign in.
func TestCallbackAdmitsWellFormed(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   session.Identity
	}{
		{"plain", session.Identity{Subject: "bob", Email: "bob@example.com", EmailVerified: true}},
		{"apostrophe and plus", session.Identity{Subject: "bob", Email: "o'brien+x@example.com", EmailVerified: true}},
		{"upper case", session.Identity{Subject: "bob", Email: "Bob@Example.COM", EmailVerified: true}},
		{"no email, admitted by group", session.Identity{Subject: "bob", Groups: []string{"admins"}}},
		{"A-label domain, admitted by group", session.Identity{Subject: "bob", Email: "bob@xn--exmple-4nf.com", EmailVerified: true, Groups: []string{"admins"}}},
		{"other domain, admitted by the /admin/ rule only", session.Identity{Subject: "eve", Email: "eve@other.example", EmailVerified: true, Groups: []string{"admins"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := hostileEnv(t)
			resp, _ := e.signInAs(tt.id)
			if resp.StatusCode != http.StatusFound {
				t.Errorf("status %d, want 302", resp.StatusCode)
			}
			if _, ok := cookiesOf(resp)[e.store.Name()]; !ok {
				t.Error("no session cookie")
			}
		})
	}
}

func TestCallbackRefusesUnadmittable(t *testing.T) {
	onlyPublic := func(c *Config) {
		c.Policy = PolicyConfig{Routes: []RouteConfig{{Path: "/public/", Public: true}}}
	}
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		id     session.Identity
	}{
		{"other domain, no group", nil, session.Identity{Subject: "eve", Email: "eve@evil.example", EmailVerified: true}},
		{"look-alike domain", nil, session.Identity{Subject: "eve", Email: "eve@evil-example.com", EmailVerified: true}},
		{"unverified email of the domain", nil, session.Identity{Subject: "eve", Email: "eve@example.com"}},
		{"no email, no group", nil, session.Identity{Subject: "eve"}},
		{"group of other case", nil, session.Identity{Subject: "eve", Groups: []string{"Admins"}}},
		{"only a public route", onlyPublic, session.Identity{Subject: "bob", Email: "bob@example.com", EmailVerified: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Policy.Routes = []RouteConfig{{Path: "/public/", Public: true}, {Path: "/admin/", Groups: []string{"admins"}}}
				if tt.mutate != nil {
					tt.mutate(c)
				}
			})
			resp, login := e.signInAs(tt.id)
			refusedSignIn(t, e, resp, login)
			if !strings.Contains(e.logs.String(), errNoRuleAdmits.Error()) {
				t.Error("the log does not name the reason")
			}
		})
	}
}

// TestAdmits is the question on its own: could any rule admit id?
func TestAdmits(t *testing.T) {
	rt, err := policyTable(PolicyConfig{Routes: []RouteConfig{
		{Path: "/public/", Public: true},
		{Path: "/admin/", Groups: []string{"admins"}},
		{Path: "/api/", Methods: []string{"POST"}, Claims: map[string][]string{"role": {"writer"}}},
		{Path: "/partners/", EmailDomains: []string{".partner.example"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		id   session.Identity
		want error
	}{
		{"group", session.Identity{Subject: "a", Groups: []string{"admins"}}, nil},
		{"claim on a method route", session.Identity{Subject: "a", Claims: map[string][]string{"role": {"writer"}}}, nil},
		{"subdomain", session.Identity{Subject: "a", Email: "a@x.partner.example", EmailVerified: true}, nil},
		{"bare parent domain", session.Identity{Subject: "a", Email: "a@partner.example", EmailVerified: true}, errNoRuleAdmits},
		{"other claim value", session.Identity{Subject: "a", Claims: map[string][]string{"role": {"reader"}}}, errNoRuleAdmits},
		{"no subject", session.Identity{Groups: []string{"admins"}}, errNoRuleAdmits},
		{"nothing (the default rule admits nobody)", session.Identity{Subject: "a", Email: "a@example.com", EmailVerified: true}, errNoRuleAdmits},
		{"malformed beats a group", session.Identity{Subject: "a", Email: "a@b@c", Groups: []string{"admins"}}, errEmailMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rt.admits(&tt.id); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("admits = %v, want %v", got, tt.want)
			}
		})
	}
	if got := signInFailure(rt.admits(&session.Identity{Subject: "a"})); got != "not_admitted_by_policy" {
		t.Errorf("metric reason %q", got)
	}
	if got := signInFailure(rt.admits(&session.Identity{Subject: "a", Email: "x"})); got != "email_malformed" {
		t.Errorf("metric reason %q", got)
	}
}
