package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

func TestBearerRoutes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.Routes = []RouteConfig{
			{Path: "/api/", Bearer: true, Groups: []string{"deployers"}},
			{Path: "/ui/", Groups: []string{"deployers"}},
		}
	})
	e.bearer.tokens["good"] = session.Identity{Issuer: "https://ci", Subject: "ci-bot", Groups: []string{"deployers"}}
	e.bearer.tokens["weak"] = session.Identity{Issuer: "https://ci", Subject: "other-bot", Groups: []string{"readers"}}
	e.bearer.tokens["odd-email"] = session.Identity{Issuer: "https://ci", Subject: "ci-bot", Email: "a@b@example.com", EmailVerified: true, Groups: []string{"deployers"}}
	for _, tt := range []struct {
		name, path, auth string
		want             int
		wwwAuth          string
	}{
		{"valid token on a bearer route", "/api/deploy", "Bearer good", 200, ""},
		{"scheme is case-insensitive", "/api/deploy", "bearer good", 200, ""},
		{"token for someone the rule refuses", "/api/deploy", "Bearer weak", 403, ""},
		{"invalid token", "/api/deploy", "Bearer forged", 401, `error="invalid_token"`},
		{"token with a malformed email", "/api/deploy", "Bearer odd-email", 401, `error="invalid_token"`},
		{"empty token", "/api/deploy", "Bearer ", 401, `error="invalid_token"`},
		{"token on a route without bearer", "/ui/", "Bearer good", 401, ""},
		{"no token, no cookie", "/api/deploy", "", 302, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			r := get("https://gw.example.com" + tt.path)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			resp := e.do(r)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); tt.wwwAuth != "" && !strings.Contains(got, tt.wwwAuth) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wwwAuth)
			}
			if resp.Header.Get("Location") != "" && tt.auth != "" {
				t.Errorf("a bearer client was redirected to %q", resp.Header.Get("Location"))
			}
			if tt.want == 200 {
				up := e.last()
				if up.Header.Get("X-Forwarded-User") != "ci-bot" || up.Header.Get("X-Forwarded-Groups") != "deployers" {
					t.Errorf("upstream identity = %v", up.Header)
				}
				if up.Header.Get("Authorization") != tt.auth {
					t.Errorf("upstream Authorization = %q, want the client's token passed on", up.Header.Get("Authorization"))
				}
			} else if e.count() != before {
				t.Error("a refused request reached the upstream")
			}
		})
	}
	e.bearer.down = true
	r := get("https://gw.example.com/api/x", "Authorization", "Bearer good")
	if resp := e.do(r); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("issuer down = %d, want 503", resp.StatusCode)
	}
}

func TestBearerRouteNeedsBearerSection(t *testing.T) {
	err := tryNew(t, func(c *Config) { c.Policy.Routes = []RouteConfig{{Path: "/api/", Bearer: true}} })
	if err == nil || !strings.Contains(err.Error(), "accepts bearer tokens") {
		t.Errorf("err = %v", err)
	}
}
