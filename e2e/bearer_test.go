package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/demo"
)

// TestBearerMachineClient: a machine client gets a JWT access token from
// the real provider with the client_credentials grant and calls an API
// route with it; tokens for another audience, tampered tokens and
// non-JWTs are refused with 401 and never redirected.
func TestBearerMachineClient(t *testing.T) {
	w := newWorld(t, worldOptions{
		extraClients: []demo.Client{
			{ID: "robot", Secret: "robot-secret-0123456789", ClientCredentials: true, JWTAccessTokens: true,
				Audience: []string{"portcullis-api"}, ServiceGroups: []string{"deployers"}},
			{ID: "stranger", Secret: "stranger-secret-0123456789", ClientCredentials: true, JWTAccessTokens: true,
				Audience: []string{"another-api"}, ServiceGroups: []string{"deployers"}},
		},
		extraConfig: "bearer:\n  audiences: [portcullis-api]\n",
		policy: `policy:
  email_domains: [example.com]
  routes:
    - path: /api/
      bearer: true
      groups: [deployers]
`,
	})
	token := func(id, secret string) string {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: w.idp.URL + "/oauth/token"}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("client_credentials for %s: %v", id, err)
		}
		return tok.AccessToken
	}
	robot := token("robot", "robot-secret-0123456789")
	call := func(path, auth string) *http.Response {
		req, _ := http.NewRequest("GET", w.gateway+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := noFollow(http.DefaultClient).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	seen := decodeSeen(t, call("/api/deploy", "Bearer "+robot))
	if seen.Header.Get("X-Forwarded-User") != "robot" || seen.Header.Get("X-Forwarded-Groups") != "deployers" {
		t.Errorf("upstream identity for the machine client = %v", seen.Header)
	}

	parts := strings.Split(robot, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	for _, tt := range []struct {
		name, path, auth string
		want             int
	}{
		{"token for another audience", "/api/deploy", "Bearer " + token("stranger", "stranger-secret-0123456789"), 401},
		{"tampered signature", "/api/deploy", "Bearer " + tampered, 401},
		{"not a JWT", "/api/deploy", "Bearer abc", 401},
		{"bearer on a cookie-only route", "/reports", "Bearer " + robot, 401},
		{"no token at all (API route, browser-like request)", "/api/deploy", "", 302},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := w.upstream.count()
			resp := call(tt.path, tt.auth)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.auth != "" && resp.Header.Get("Location") != "" {
				t.Errorf("a bearer client was redirected to %s", resp.Header.Get("Location"))
			}
			if tt.want == 401 && tt.path == "/api/deploy" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if w.upstream.count() != before {
				t.Error("a refused request reached the upstream")
			}
		})
	}
}

// TestGroupsFromUserinfo: with a provider whose ID token carries no groups
// and no profile, the gateway asks the userinfo endpoint once, the group
// rule still works, and the email comes from there too (OpenID Connect
// Core §5.4).
func TestGroupsFromUserinfo(t *testing.T) {
	w := newWorld(t, worldOptions{
		gatewayClient: func(c *demo.Client) { c.MinimalIDToken = true },
		policy:        "policy:\n  groups: [admins]\n",
	})
	seen := decodeSeen(t, w.signIn(browser(t), "/", "alice"))
	if got := seen.Header.Get("X-Forwarded-Groups"); got != "admins,developers" {
		t.Errorf("groups = %q, want them from userinfo", got)
	}
	if got := seen.Header.Get("X-Forwarded-Email"); got != "alice@example.com" {
		t.Errorf("email = %q: the minimal ID token has none, userinfo has it", got)
	}
	if n := w.idp.Stats().UserinfoRequests; n != 1 {
		t.Errorf("userinfo requests = %d, want 1", n)
	}
	resp := w.signIn(browser(t), "/", "dave")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave (no admins group) = %d, want 403", resp.StatusCode)
	}
}
