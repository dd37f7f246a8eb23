package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/session"
)

// FuzzIdentityHeaders seals a session with arbitrary claim values (subject,
// email, preferred username and groups, split on "\x1f") and sends it through
// the handler, proxied and as a forward-auth call. Invariants: no panic;
// every identity header is one value an HTTP parser reads back unchanged
// (no control byte, no edge whitespace); splitting the groups header on ","
// gives exactly the unambiguous input groups, in order; a header is absent
// only for a value that is ambiguous.
func FuzzIdentityHeaders(f *testing.F) {
	h, store, up := fuzzGateway(f, Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com", TrustedProxies: []string{"192.0.2.0/24"}},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "http://app.internal"}},
		Policy:    PolicyConfig{Routes: []RouteConfig{{Path: "/", Public: true}}},
	})
	for _, s := range [][4]string{
		{"bob", "bob@example.com", "bob", "devs\x1fops"},
		{"bob", "bob@example.com", "admin ", "eng,admins\x1fadmins \x1fdevs"},
		{" root", "ceo@example.com\t", "\"x", "\"eng\x1fadmins\"\x1f"},
		{"u", "", "", "a\x00b\x1f\r\n\x1f\x7f"},
		{"Doe, Jane", "a@b", "é", ",\x1f \x1f\x1f"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, sub, email, username, groupList string) {
		if sub == "" || !utf8.ValidString(sub) || !utf8.ValidString(email) || !utf8.ValidString(username) || !utf8.ValidString(groupList) {
			return // a session always has a subject; claims come from JSON, always UTF-8
		}
		var groups []string
		if groupList != "" {
			groups = strings.Split(groupList, "\x1f")
		}
		v, err := store.Seal(&session.Session{
			Identity: session.Identity{Issuer: "https://idp.test", Subject: sub, Email: email, EmailVerified: true, PreferredUsername: username, Groups: groups},
			Provider: "corp", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		})
		if err != nil {
			return // too large for a cookie: the gateway would not issue it either
		}
		var want []string
		for _, g := range groups {
			if !ambiguous(g, true) {
				want = append(want, g)
			}
		}
		single := map[string]string{hdrUser: sub, hdrEmail: email, hdrPreferredUsername: username}
		auth := map[string]string{hdrUser: hdrAuthUser, hdrEmail: hdrAuthEmail, hdrPreferredUsername: hdrAuthPreferredUsername, hdrGroups: hdrAuthGroups}

		r := httptest.NewRequest("GET", "https://gw.example.com/x", nil)
		r.Header.Set("Cookie", store.Name()+"="+v)
		h.ServeHTTP(httptest.NewRecorder(), r)
		got := up.take()
		if got == nil {
			t.Fatal("the public route was not proxied")
		}
		checkIdentityHeaders(t, "proxied", got.Header, single, hdrGroups, want, nil)

		r = httptest.NewRequest("GET", "https://gw.example.com/oauth2/auth", nil)
		r.RemoteAddr = "192.0.2.1:1000"
		r.Header.Set("X-Original-URI", "/x")
		r.Header.Set("Cookie", store.Name()+"="+v)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code/100 != 2 {
			t.Fatalf("forward-auth: %d", rec.Code)
		}
		checkIdentityHeaders(t, "forward-auth", rec.Header(), single, hdrGroups, want, auth)
	})
}

// checkIdentityHeaders checks the identity headers in hdr (named through
// rename when given) against the session's values.
func checkIdentityHeaders(t *testing.T, where string, hdr http.Header, single map[string]string, groupsName string, groups []string, rename map[string]string) {
	t.Helper()
	name := func(n string) string {
		if rename != nil {
			return rename[n]
		}
		return n
	}
	for n, in := range single {
		vs, sent := hdr[name(n)]
		switch {
		case sent && (len(vs) != 1 || vs[0] != in):
			t.Errorf("%s: %s = %q, the session holds %q", where, name(n), vs, in)
		case sent && ambiguous(in, false):
			t.Errorf("%s: %s sent for the ambiguous %q", where, name(n), in)
		case !sent && in != "" && !ambiguous(in, false):
			t.Errorf("%s: %s not sent for %q", where, name(n), in)
		}
	}
	vs := hdr[name(groupsName)]
	if len(groups) == 0 {
		if len(vs) != 0 {
			t.Errorf("%s: %s = %q with no unambiguous group", where, name(groupsName), vs)
		}
		return
	}
	if len(vs) != 1 {
		t.Fatalf("%s: %s = %q, want one value", where, name(groupsName), vs)
	}
	if got := strings.Split(vs[0], ","); !slices.Equal(got, groups) {
		t.Errorf("%s: %s splits into %q, want %q", where, name(groupsName), got, groups)
	}
	if strings.TrimSpace(vs[0]) != vs[0] || strings.ContainsFunc(vs[0], func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Errorf("%s: %s = %q is not read back unchanged", where, name(groupsName), vs[0])
	}
}
