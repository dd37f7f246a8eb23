package proxy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/session"
)

// Claims into headers (issue 14, defect 1): a provider's group or name
// that an upstream would read as another value. A backend splitting
// X-Forwarded-Groups on commas must never read "admins" from a group named
// "eng,admins"; a backend trimming whitespace (every HTTP parser does:
// RFC 9110 §5.5) must never read "admin" from a username "admin ".

// sealed is a cookie for a session with exactly id (issuer filled in).
func (e *env) sealed(id session.Identity) string {
	e.t.Helper()
	id.Issuer = e.idp.issuer
	v, err := e.store.Seal(&session.Session{Identity: id, Provider: "corp", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

// splitGroups is what a naive backend does with X-Forwarded-Groups.
func splitGroups(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, g := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(g))
		}
	}
	return out
}

func TestAmbiguousGroupsNeverJoined(t *testing.T) {
	e := hostileEnv(t)
	for _, tt := range []struct {
		name  string
		group string
		kept  bool // whether the group reaches the headers as itself
	}{
		{"comma", "eng,admins", false},
		{"comma first", ",admins", false},
		{"comma last", "admins,", false},
		{"only a comma", ",", false},
		{"trailing space", "admins ", false},
		{"leading space", " admins", false},
		{"trailing tab", "admins\t", false},
		{"comma and space", "eng, admins", false},
		{"double quote opening", `"admins`, false},
		{"double quote inside", `eng"admins`, false},
		{"quoted with a comma", `"eng,admins"`, false},
		{"empty", "", false},
		{"NUL", "admins\x00", false},
		{"CR LF", "devs\r\nX-Forwarded-User: root", false},
		{"DEL", "adm\x7fins", false},
		// Near misses: reach the upstream unchanged.
		{"plain", "admins", true},
		{"inner space", "eng admins", true},
		{"hyphen", "eng-admins", true},
		{"semicolon", "eng;admins", true},
		{"equals and slash", "team=eng/admins", true},
		{"non-ASCII", "équipe", true},
		{"single quote", "o'brien", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cookie := e.sealed(session.Identity{Subject: "bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"devs", tt.group, "ops"}})
			want := []string{"devs", "ops"}
			if tt.kept {
				want = []string{"devs", tt.group, "ops"}
			}
			r := get("https://gw.example.com/app")
			r.Header.Set("Cookie", cookie)
			if resp := e.do(r); resp.StatusCode != http.StatusOK {
				t.Fatalf("proxied: status %d", resp.StatusCode)
			}
			if got := splitGroups(e.last().Header, hdrGroups); !slices.Equal(got, want) {
				t.Errorf("upstream %s splits into %q, want %q", hdrGroups, got, want)
			}
			r = authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", "/app")
			r.Header.Set("Cookie", cookie)
			resp := e.do(r)
			if resp.StatusCode/100 != 2 {
				t.Fatalf("forward-auth: status %d", resp.StatusCode)
			}
			if got := splitGroups(resp.Header, hdrAuthGroups); !slices.Equal(got, want) {
				t.Errorf("forward-auth %s splits into %q, want %q", hdrAuthGroups, got, want)
			}
		})
	}
	// "eng,admins" must not make bob an admin for the backend, nor for the
	// gateway's own policy (/admin/ needs the group "admins" exactly).
	r := get("https://gw.example.com/admin/x")
	r.Header.Set("Cookie", e.sealed(session.Identity{Subject: "bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"eng,admins", "admins "}}))
	if resp := e.do(r); resp.StatusCode != http.StatusForbidden {
		t.Errorf("groups that only look like admins reach /admin/: %d", resp.StatusCode)
	}
}

func TestAmbiguousSingleValuesNotSent(t *testing.T) {
	e := hostileEnv(t)
	for _, tt := range []struct {
		name   string
		id     session.Identity
		absent []string // headers that must not be sent
		want   map[string]string
	}{
		{"username with a trailing space", session.Identity{Subject: "bob", PreferredUsername: "admin "},
			[]string{hdrPreferredUsername}, map[string]string{hdrUser: "bob"}},
		{"username with a leading tab", session.Identity{Subject: "bob", PreferredUsername: "\tadmin"},
			[]string{hdrPreferredUsername}, map[string]string{hdrUser: "bob"}},
		{"email with a trailing space", session.Identity{Subject: "bob", Email: "ceo@example.com ", EmailVerified: true},
			[]string{hdrEmail}, map[string]string{hdrUser: "bob"}},
		{"subject with spaces around", session.Identity{Subject: " root ", PreferredUsername: "bob"},
			[]string{hdrUser}, map[string]string{hdrPreferredUsername: "bob"}},
		{"username with a NUL", session.Identity{Subject: "bob", PreferredUsername: "admin\x00"},
			[]string{hdrPreferredUsername}, map[string]string{hdrUser: "bob"}},
		// Near misses: a comma is harmless in a single value.
		{"name-like username", session.Identity{Subject: "bob", PreferredUsername: "Doe, Jane"},
			nil, map[string]string{hdrPreferredUsername: "Doe, Jane", hdrUser: "bob"}},
		{"inner space", session.Identity{Subject: "bob", PreferredUsername: "jane doe"},
			nil, map[string]string{hdrPreferredUsername: "jane doe"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get("https://gw.example.com/public/x")
			r.Header.Set("Cookie", e.sealed(tt.id))
			if resp := e.do(r); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			up := e.last().Header
			for _, h := range tt.absent {
				if vs, ok := up[h]; ok {
					t.Errorf("%s sent as %q", h, vs)
				}
			}
			for h, v := range tt.want {
				if got := up.Get(h); got != v {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
		})
	}
}

// TestAmbiguousGroupsLoggedAndCounted: a sign-in whose groups hold a
// value left out is logged and counted once; the requests after it only
// leave the value out. The signed assertion still carries every group as
// a JSON array element, where a comma is just a character.
func TestAmbiguousGroupsLoggedAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	e := newEnvOpts(t, func(c *Config) {
		c.Upstreams[0].Assertion.Header = "X-Portcullis-Assertion"
	}, func(o *Options) { o.Metrics = m })
	a := e.begin("/")
	e.idp.issue("c", "bob", "bob@example.com", "eng,admins", "devs", "ops ")
	resp, _ := e.callback("code=c&state="+a.state, a.login)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if got := counterValue(t, reg, "portcullis_identity_values_dropped_total", "field", "group"); got != 1 {
		t.Errorf("dropped{field=group} = %v after one sign-in, want 1", got)
	}
	if !strings.Contains(e.logs.String(), "identity values left out") || !strings.Contains(e.logs.String(), `eng,admins`) {
		t.Errorf("no log line naming the group:\n%s", e.logs.String())
	}
	r := get("https://gw.example.com/x")
	for _, c := range resp.Cookies() {
		if c.Name == e.store.Name() {
			r.AddCookie(c)
		}
	}
	if resp := e.do(r); resp.StatusCode != http.StatusOK {
		t.Fatalf("request after sign-in: %d", resp.StatusCode)
	}
	up := e.last().Header
	if got := up.Get(hdrGroups); got != "devs" {
		t.Errorf("%s = %q, want devs", hdrGroups, got)
	}
	if got := counterValue(t, reg, "portcullis_identity_values_dropped_total", "field", "group"); got != 1 {
		t.Errorf("dropped{field=group} = %v after a request, want still 1", got)
	}
	tok := strings.Split(up.Get("X-Portcullis-Assertion"), ".")
	if len(tok) != 3 {
		t.Fatalf("assertion = %q", up.Get("X-Portcullis-Assertion"))
	}
	payload, err := base64.RawURLEncoding.DecodeString(tok[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Groups []string }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if want := []string{"eng,admins", "devs", "ops "}; !slices.Equal(claims.Groups, want) {
		t.Errorf("assertion groups = %q, want %q", claims.Groups, want)
	}
}

// counterValue is the value of the counter family{labels...} in reg
// (labels as name, value pairs; others may be present), 0 when it has not
// been counted.
func counterValue(t *testing.T, reg *prometheus.Registry, family string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
