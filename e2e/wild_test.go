package e2e

// Worlds whose provider behaves like identity providers found in the wild
// (issue 15): the project's own op-based provider, configured with the
// options of package demo that imitate Zitadel, Dex, Ory Hydra and
// Keycloak. docs/providers.md names these tests per provider. Hydra's
// logout tokens without exp: TestBackchannelLogoutWithoutExp
// (lifecycle_test.go); id_token_hint at sign-out in general:
// TestSignOutIDTokenHint.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// dexSubject is what Dex puts in sub: a base64 protobuf of the user's ID
// at the connector and the connector's ID ("local").
const dexSubject = "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs"

// dexUsers are the default users with Dex's opaque subjects.
func dexUsers() []demo.User {
	users := defaultUsers()
	users[0].ID = dexSubject
	users[1].ID = "CiQ1ZGI0ODQ0Ni1mNjU5LTQ0ZDUtYjY5OC0wYjgxZDZiNGY4NWISBWxvY2Fs"
	return users
}

// dexLike is a provider without end_session that answers invalid_request
// for a refresh token already used, with 3-second access tokens the
// gateway refreshes 2 seconds before they expire.
func dexLike(providerExtra string) worldOptions {
	return worldOptions{
		users: dexUsers(),
		idp: func(c *demo.Config) {
			c.NoEndSession = true
			c.RefreshReuseError = "invalid_request"
		},
		scopes:         "[openid, email, profile, groups, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
		providerExtra:  providerExtra,
	}
}

// userinfoOf reads the gateway's /oauth2/userinfo for the client's session.
func userinfoOf(t *testing.T, c *http.Client, gateway string) map[string]any {
	t.Helper()
	resp, err := c.Get(gateway + "/oauth2/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
		t.Fatalf("/oauth2/userinfo: %s", resp.Status)
	}
	return info
}

// wantHeaders checks the identity headers the upstream received.
func wantHeaders(t *testing.T, seen seenRequest, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := seen.Header.Get(name); got != v {
			t.Errorf("upstream %s = %q, want %q", name, got, v)
		}
	}
}

// TestWildZitadelLike: the ID token carries the protocol claims only and
// userinfo everything else, as Zitadel does (OpenID Connect Core §5.4).
// The upstream still receives the email and preferred username, an email
// rule and a group rule on userinfo-only groups admit, and the gateway's
// userinfo says the email is verified.
func TestWildZitadelLike(t *testing.T) {
	w := newWorld(t, worldOptions{
		gatewayClient: func(c *demo.Client) { c.MinimalIDToken = true },
		policy: "policy:\n  email_domains: [example.com]\n  routes:\n" +
			"    - {path: /admin/, groups: [admins]}\n    - {path: /mail/, emails: [alice@example.com]}\n",
	})
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/mail/inbox", "alice"))
	wantHeaders(t, seen, map[string]string{
		"X-Forwarded-User": "u-alice", "X-Forwarded-Email": "alice@example.com",
		"X-Forwarded-Preferred-Username": "alice", "X-Forwarded-Groups": "admins,developers",
	})
	resp, err := c.Get(w.gateway + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)
	info := userinfoOf(t, c, w.gateway)
	if info["email_verified"] != true || info["email"] != "alice@example.com" || info["name"] != "Alice" {
		t.Errorf("/oauth2/userinfo = %v, want alice's verified email and name", info)
	}
	if n := w.idp.Stats().UserinfoRequests; n < 1 {
		t.Errorf("userinfo requests at the provider = %d, want at least 1", n)
	}

	dave := browser(t)
	resp = w.signIn(dave, "/admin/", "dave") // dave@example.com, groups [developers]
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave (not in admins) at /admin/ = %d, want 403", resp.StatusCode)
	}
}

// TestWildDexSubject: Dex's subject is an opaque base64 protobuf, and by
// default it is what X-Forwarded-User carries; headers.user: email gives
// the email instead.
func TestWildDexSubject(t *testing.T) {
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"default", "", dexSubject},
		{"headers.user email", "headers:\n  user: email\n", "alice@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := dexLike("")
			opts.extraConfig = tt.extra
			w := newWorld(t, opts)
			seen := decodeSeen(t, w.signIn(browser(t), "/", "alice"))
			wantHeaders(t, seen, map[string]string{"X-Forwarded-User": tt.want, "X-Forwarded-Email": "alice@example.com"})
		})
	}
}

// TestWildDexUserClaim: user_claim: email on the provider makes
// X-Forwarded-User the email for this provider's users, whatever
// headers.user says.
func TestWildDexUserClaim(t *testing.T) {
	opts := dexLike("    user_claim: email")
	opts.extraConfig = "headers:\n  user: subject\n"
	w := newWorld(t, opts)
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/", "alice"))
	wantHeaders(t, seen, map[string]string{"X-Forwarded-User": "alice@example.com"})
	if got := userinfoOf(t, c, w.gateway)["subject"]; got != dexSubject {
		t.Errorf("/oauth2/userinfo subject = %v, want Dex's opaque %q", got, dexSubject)
	}
}

// TestWildDexSignOut: Dex has no end_session_endpoint, so sign-out is
// local: the browser is not sent to the provider, and the session ends.
func TestWildDexSignOut(t *testing.T) {
	w := newWorld(t, dexLike(""))
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	resp, err := noFollow(c).PostForm(w.gateway+"/oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, w.idp.URL) {
		t.Errorf("sign-out redirected to the provider: %q", loc)
	}
	if resp.StatusCode >= 400 {
		t.Errorf("sign-out = %d", resp.StatusCode)
	}
	if n := w.idp.Stats().EndSessionRequests; n != 0 {
		t.Errorf("end-session requests at the provider = %d, want 0", n)
	}
	resp, err = noFollow(c).Get(w.gateway + "/after-sign-out")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !w.toSignIn(resp) {
		t.Errorf("after sign-out: %d to %q, want a new sign-in at the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestWildDexRefreshReuse: Dex rotates refresh tokens and answers
// invalid_request, not invalid_grant, for one already used. The gateway
// refreshes short access tokens and keeps the session; once the refresh
// token it holds was redeemed elsewhere, the next refresh ends the session
// (docs/sessions.md: every RFC 6749 §5.2 error does).
func TestWildDexRefreshReuse(t *testing.T) {
	w := newWorld(t, dexLike(""))
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	time.Sleep(1500 * time.Millisecond) // within refresh_before of the token's expiry
	resp, err := c.Get(w.gateway + "/after-refresh")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)
	if n := w.idp.Stats().TokenRequests["refresh_token"]; n < 1 {
		t.Fatalf("refresh_token grants at the provider = %d, want at least 1", n)
	}

	if n := w.idp.RedeemRefreshTokens(dexSubject); n != 1 {
		t.Fatalf("refresh tokens redeemed elsewhere = %d, want the gateway's 1", n)
	}
	time.Sleep(3 * time.Second) // past the next refresh point
	resp, err = noFollow(c).Get(w.gateway + "/after-reuse")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !w.toSignIn(resp) {
		t.Errorf("after the refresh token was reused: %d to %q, want a new sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !w.logs.waitFor("refresh refused", "invalid_request") {
		t.Errorf("the ended session was not logged with Dex's invalid_request:\n%s", w.logs.String())
	}
}

// TestWildHydraLike: Ory Hydra refuses RP-initiated logout without
// id_token_hint; the gateway sends it, so sign-out at Hydra works and comes
// back to the gateway's signed-out page.
func TestWildHydraLike(t *testing.T) {
	w := newWorld(t, worldOptions{idp: func(c *demo.Config) { c.RequireIDTokenHint = true }})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := w.idp.Stats(); st.EndSessionRequests != 1 || st.EndSessionHinted != 1 {
		t.Errorf("end-session requests %d, with id_token_hint %d, want 1 and 1", st.EndSessionRequests, st.EndSessionHinted)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), w.gateway+"/oauth2/signed_out") {
		t.Errorf("after sign-out: %d at %s, want the gateway's signed-out page", resp.StatusCode, resp.Request.URL)
	}
}

// TestWildKeycloakLike: the issuer has a path (/realms/demo) and the roles
// are nested in realm_access.roles, read with groups_claim.
func TestWildKeycloakLike(t *testing.T) {
	users := defaultUsers()
	users[0].ExtraClaims = map[string]any{"realm_access": map[string]any{"roles": []any{"admin", "offline_access"}}}
	users[2].ExtraClaims = map[string]any{"realm_access": map[string]any{"roles": []any{"user"}}}
	w := newWorld(t, worldOptions{
		users:         users,
		idp:           func(c *demo.Config) { c.Issuer = "/realms/demo" },
		providerExtra: "    groups_claim: realm_access.roles",
		policy:        "policy:\n  email_domains: [example.com]\n  routes:\n    - {path: /admin/, groups: [admin]}\n",
	})
	if !strings.HasSuffix(w.idp.URL, "/realms/demo") {
		t.Fatalf("issuer %q has no realm path", w.idp.URL)
	}
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/admin/", "alice"))
	wantHeaders(t, seen, map[string]string{"X-Forwarded-Groups": "admin,offline_access"})
	dave := browser(t)
	resp := w.signIn(dave, "/admin/", "dave")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave (role user) at /admin/ = %d, want 403", resp.StatusCode)
	}
	resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := w.idp.Stats().EndSessionRequests; n != 1 {
		t.Errorf("end-session requests under the realm path = %d, want 1", n)
	}
}

// TestWildGitLabLike: type gitlab reads the groups from the ID token's
// groups_direct (full group paths); the subject is GitLab's numeric user
// ID, so headers.user: preferred_username gives the username.
func TestWildGitLabLike(t *testing.T) {
	users := defaultUsers()
	users[0].ID = "4183"
	users[0].ExtraClaims = map[string]any{"groups_direct": []any{"acme", "acme/platform"}, "nickname": "alice"}
	users[2].ExtraClaims = map[string]any{"groups_direct": []any{"acme"}}
	w := newWorld(t, worldOptions{
		users: users, providerType: "gitlab",
		extraConfig: "headers:\n  user: preferred_username\n",
		policy:      "policy:\n  email_domains: [example.com]\n  routes:\n    - {path: /ops/, groups: [acme/platform]}\n",
	})
	seen := decodeSeen(t, w.signIn(browser(t), "/ops/", "alice"))
	wantHeaders(t, seen, map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Groups": "acme,acme/platform"})
	resp := w.signIn(browser(t), "/ops/", "dave")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave (only in acme) at /ops/ = %d, want 403", resp.StatusCode)
	}
}

// TestWildGoogleLike: type google with hosted_domains admits only ID
// tokens whose hd is listed; Google has no end_session_endpoint, so
// sign-out is local; the subject is a long number, so user_claim: email.
func TestWildGoogleLike(t *testing.T) {
	users := defaultUsers()
	users[0].ID = "107691503500061507151"
	users[0].ExtraClaims = map[string]any{"hd": "example.com"}
	w := newWorld(t, worldOptions{
		users: users, providerType: "google",
		idp:           func(c *demo.Config) { c.NoEndSession = true },
		providerExtra: "    hosted_domains: [example.com]\n    user_claim: email",
	})
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/", "alice"))
	wantHeaders(t, seen, map[string]string{"X-Forwarded-User": "alice@example.com", "X-Forwarded-Email": "alice@example.com"})
	resp := w.signIn(browser(t), "/", "dave") // dave@example.com, but a consumer account: no hd
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave without hd = %d, want 403", resp.StatusCode)
	}
	resp, err := noFollow(c).PostForm(w.gateway+"/oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, w.idp.URL) || w.idp.Stats().EndSessionRequests != 0 {
		t.Errorf("sign-out went to the provider (Location %q)", loc)
	}
}

// TestWildAuthentikLike: authentik's issuer ends in a slash
// (/application/o/<slug>/); configured exactly so, sign-in, the identity
// and sign-out at the provider work. (The same issuer written without its
// slash is named as the mismatch it is: TestIssuerTrailingSlashNamed.)
func TestWildAuthentikLike(t *testing.T) {
	w := newWorld(t, worldOptions{
		idp: func(c *demo.Config) {
			c.Issuer = "/application/o/portcullis"
			c.IssuerTrailingSlash = true
		},
		extraConfig: "headers:\n  user: preferred_username\n",
	})
	if !strings.HasSuffix(w.idp.URL, "/application/o/portcullis/") {
		t.Fatalf("issuer %q has no trailing slash", w.idp.URL)
	}
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/", "alice"))
	wantHeaders(t, seen, map[string]string{
		"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "admins,developers",
	})
	resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := w.idp.Stats(); st.EndSessionRequests != 1 || st.EndSessionHinted != 1 {
		t.Errorf("end-session requests %d, with id_token_hint %d, want 1 and 1", st.EndSessionRequests, st.EndSessionHinted)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), w.gateway+"/oauth2/signed_out") {
		t.Errorf("after sign-out the browser is at %s, want the gateway's signed-out page", resp.Request.URL)
	}
}

// TestWildOktaLike: Okta's end-session endpoint, like Hydra's, refuses a
// request without id_token_hint. With the default session.keep_id_token
// the gateway has the hint and sign-out completes at the provider; with
// keep_id_token: false the provider refuses it (what docs/providers.md
// warns about), and the gateway's own session has ended all the same.
func TestWildOktaLike(t *testing.T) {
	for _, tt := range []struct {
		name, session string
		wantStatus    int
	}{
		{"keep_id_token default", "", http.StatusOK},
		{"keep_id_token false", "  keep_id_token: false\n", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{
				idp:          func(c *demo.Config) { c.RequireIDTokenHint = true },
				scopes:       "[openid, email, profile, groups, offline_access]",
				sessionExtra: tt.session,
			})
			c := browser(t)
			decodeSeen(t, w.signIn(c, "/", "alice"))
			resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || w.idp.Stats().EndSessionRequests != 1 {
				t.Errorf("sign-out ended with %d at %s, want %d after one end-session request", resp.StatusCode, resp.Request.URL, tt.wantStatus)
			}
			resp, err = noFollow(c).Get(w.gateway + "/after-sign-out")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Errorf("after sign-out the gateway answered %d, want a redirect to sign in again", resp.StatusCode)
			}
		})
	}
}
