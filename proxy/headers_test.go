package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

func TestIdentityHeaderSpoofing(t *testing.T) {
	e := newEnv(t, nil)
	jar := e.sessionCookie("alice", "alice@example.com", "users")
	for _, tt := range []struct {
		name, header, value string
	}{
		{"canonical", "X-Forwarded-Email", "ceo@example.com"},
		{"lower case", "x-forwarded-email", "ceo@example.com"},
		{"upper case", "X-FORWARDED-EMAIL", "ceo@example.com"},
		{"underscores", "X_Forwarded_Email", "ceo@example.com"},
		{"mixed", "x_FORWARDED-email", "ceo@example.com"},
		{"user", "X-Forwarded-User", "ceo"},
		{"user underscores", "X_FORWARDED_USER", "ceo"},
		{"groups", "X-Forwarded-Groups", "admins"},
		{"preferred username", "X-Forwarded-Preferred-Username", "ceo"},
		{"access token", "X-Forwarded-Access-Token", "forged"},
		{"auth request user", "X-Auth-Request-User", "ceo"},
		{"auth request email underscores", "X_Auth_Request_Email", "ceo@example.com"},
		{"remote user", "Remote-User", "ceo"},
		{"remote user underscores", "REMOTE_USER", "ceo"},
		{"grafana", "X-WEBAUTH-USER", "admin"},
		{"original url", "X-Original-URL", "/admin"},
		{"rewrite url", "X-Rewrite-Url", "/admin"},
		{"forwarded prefix", "X-Forwarded-Prefix", "/evil"},
		{"forwarded host underscores", "X_Forwarded_Host", "evil.com"},
		{"request id", "X-Request-Id", "forged-id"},
		{"assertion", "X-Portcullis-Assertion", "forged.jwt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get("https://gw.example.com/app", "Cookie", jar)
			r.Header[tt.header] = []string{tt.value} // raw key: no canonicalisation
			resp := e.do(r)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			for k, vs := range e.last().Header {
				for _, v := range vs {
					if v == tt.value {
						t.Errorf("upstream received the spoofed value in %s: %q", k, v)
					}
				}
			}
			if got := e.last().Header.Get("X-Forwarded-Email"); got != "alice@example.com" {
				t.Errorf("X-Forwarded-Email = %q, want the session's", got)
			}
		})
	}
}

func TestSpoofingOnPublicAndErrorPaths(t *testing.T) {
	// Spoofed headers on an unauthenticated request never reach anything.
	e := newEnv(t, nil)
	r := get("https://gw.example.com/app", "X-Forwarded-Email", "ceo@example.com", "Accept", "application/json")
	if resp := e.do(r); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
	}
	if e.count() != 0 {
		t.Error("unauthenticated request reached the upstream")
	}
}

func TestConnectionHeaderCannotDropIdentity(t *testing.T) {
	e := newEnv(t, nil)
	r := get("https://gw.example.com/app", "Cookie", e.sessionCookie("alice", "alice@example.com", "users"),
		"Connection", "close, X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups")
	if resp := e.do(r); resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	h := e.last().Header
	if h.Get("X-Forwarded-User") != "alice" || h.Get("X-Forwarded-Email") != "alice@example.com" || h.Get("X-Forwarded-Groups") != "users" {
		t.Errorf("identity headers after Connection trick: %v", h)
	}
}

func TestGatewayCookiesStripped(t *testing.T) {
	e := newEnv(t, nil)
	jar := e.sessionCookie("alice", "alice@example.com")
	for _, tt := range []struct {
		name, cookie, want string
	}{
		{"only ours", jar, ""},
		{"ours among others", "a=1; " + jar + "; b=2", "a=1; b=2"},
		{"chunks and login", "a=1; __Host-_PORTCULLIS_0=x; __Host-_portcullis_login_abc=y; " + jar, "a=1"}, // a real chunk next to the plain cookie is ambiguous (no session)
		{"miscapitalised copy", "__HOST-_PORTCULLIS=x; " + jar + "; keep=me", "keep=me"},
		{"unprefixed copy", "_portcullis=x; " + jar, ""},
		{"similar app cookie kept", "portcullis_app=1; " + jar, "portcullis_app=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if resp := e.do(get("https://gw.example.com/", "Cookie", tt.cookie)); resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if got := e.last().Header.Get("Cookie"); got != tt.want {
				t.Errorf("upstream Cookie = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaderSet(t *testing.T) {
	s := newHeaderSet("X-Forwarded-Email")
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"X-Forwarded-Email", true}, {"x_forwarded_email", true}, {"X-FORWARDED_EMAIL", true},
		{"X-Forwarded-Emails", false}, {"X-Forwarded", false}, {"", false},
		{strings.Repeat("X", 100), false},
	} {
		if got := s.has(tt.name); got != tt.want {
			t.Errorf("has(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUserHeaderChoice(t *testing.T) {
	for _, tt := range []struct{ choice, want string }{
		{"", "alice-sub"}, {"subject", "alice-sub"}, {"email", "alice@example.com"}, {"preferred_username", "alice-sub"},
	} {
		t.Run(tt.choice, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Headers.User = tt.choice })
			e.do(get("https://gw.example.com/", "Cookie", e.sessionCookie("alice-sub", "alice@example.com")))
			if got := e.last().Header.Get("X-Forwarded-User"); got != tt.want {
				t.Errorf("X-Forwarded-User = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUserClaimWins: a session carrying the provider's user_claim value
// sends it as X-Forwarded-User whatever headers.user picks; a value an
// upstream could misread is left out like any other (identityValues).
func TestUserClaimWins(t *testing.T) {
	for _, tt := range []struct{ choice, user, want string }{
		{"subject", "alice@example.com", "alice@example.com"},
		{"preferred_username", "u-42", "u-42"},
		{"subject", "", "alice"},
		{"subject", " padded", ""},
	} {
		e := newEnv(t, func(c *Config) { c.Headers.User = tt.choice })
		s := e.baseSession(func(s *session.Session) { s.User = tt.user })
		e.do(get("https://gw.example.com/", "Cookie", e.cookieFor(s)))
		if got := e.last().Header.Values("X-Forwarded-User"); strings.Join(got, ",") != tt.want {
			t.Errorf("headers.user %s, user %q: X-Forwarded-User = %q, want %q", tt.choice, tt.user, got, tt.want)
		}
	}
}

func TestHeaderValuesAreIndependent(t *testing.T) {
	vals := make(headerValues, 0, 2)
	a, b := vals.one("a"), vals.one("b")
	a = append(a, "a2") // must not overwrite b
	c := vals.one("c")  // past the capacity: a new array
	if b[0] != "b" || len(a) != 2 || a[1] != "a2" || c[0] != "c" || len(b) != 1 || cap(b) != 1 {
		t.Errorf("a=%q b=%q c=%q", a, b, c)
	}
}
