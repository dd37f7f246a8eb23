package proxy

import (
	"testing"

	"github.com/portcullis/portcullis/session"
)

func TestRuleAllows(t *testing.T) {
	verified := func(email string, groups ...string) session.Identity {
		return session.Identity{Subject: "s", Email: email, EmailVerified: true, Groups: groups}
	}
	unverified := session.Identity{Subject: "s", Email: "a@example.com"}
	for _, tt := range []struct {
		name    string
		emails  []string
		domains []string
		groups  []string
		id      session.Identity
		want    bool
	}{
		{"domain", nil, []string{"example.com"}, nil, verified("a@example.com"), true},
		{"domain case", nil, []string{"Example.COM"}, nil, verified("A@EXAMPLE.com"), true},
		{"lookalike prefix", nil, []string{"example.com"}, nil, verified("a@evil-example.com"), false},
		{"lookalike glued", nil, []string{"example.com"}, nil, verified("a@evilexample.com"), false},
		{"lookalike suffix", nil, []string{"example.com"}, nil, verified("a@example.com.evil.net"), false},
		{"subdomain needs dot rule", nil, []string{"example.com"}, nil, verified("a@sub.example.com"), false},
		{"dot rule subdomain", nil, []string{".example.com"}, nil, verified("a@sub.example.com"), true},
		{"dot rule not apex", nil, []string{".example.com"}, nil, verified("a@example.com"), false},
		{"dot rule lookalike", nil, []string{".example.com"}, nil, verified("a@evilexample.com"), false},
		{"two @", nil, []string{"example.com"}, nil, verified("a@evil.com@example.com"), false},
		{"no @", nil, []string{"example.com"}, nil, verified("example.com"), false},
		{"unverified email", nil, []string{"example.com"}, nil, unverified, false},
		{"unverified exact email", []string{"a@example.com"}, nil, nil, unverified, false},
		{"exact email", []string{"a@example.com"}, nil, nil, verified("a@example.com"), true},
		{"exact email case", []string{"A@Example.com"}, nil, nil, verified("a@EXAMPLE.com"), true},
		{"exact email other", []string{"a@example.com"}, nil, nil, verified("b@example.com"), false},
		{"group", nil, nil, []string{"admins"}, verified("", "users", "admins"), true},
		{"group case sensitive", nil, nil, []string{"admins"}, verified("", "Admins"), false},
		{"group prefix", nil, nil, []string{"admins"}, verified("", "admins-lite"), false},
		{"no groups", nil, nil, []string{"admins"}, verified("a@example.com"), false},
		{"star", nil, []string{"*"}, nil, session.Identity{Subject: "s"}, true},
		{"star needs a subject", nil, []string{"*"}, nil, session.Identity{}, false},
		{"zero rule denies", nil, nil, nil, verified("a@example.com", "admins"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compileRule("test", tt.emails, tt.domains, tt.groups)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := r.allows(&tt.id); got != tt.want {
				t.Errorf("allows(%+v) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestCompileRuleRejects(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		emails, domains, groups []string
	}{
		{"empty group", nil, nil, []string{""}},
		{"email without @", []string{"alice"}, nil, nil},
		{"email with two @", []string{"a@b@c"}, nil, nil},
		{"domain with @", nil, []string{"@example.com"}, nil},
		{"wildcard inside domain", nil, []string{"*.example.com"}, nil},
		{"empty domain", nil, []string{""}, nil},
		{"trailing dot", nil, []string{"example.com."}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := compileRule("test", tt.emails, tt.domains, tt.groups); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestPolicyDenies(t *testing.T) {
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
}
