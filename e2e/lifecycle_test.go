package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/redistest"
)

// TestRefreshBeforeExpiry: with a 3-second access token and refresh_before
// 2s, a session refreshes at the provider and keeps working, picks up new
// groups, and ends at the next refresh once its refresh token is revoked.
func TestRefreshBeforeExpiry(t *testing.T) {
	w := newWorld(t, worldOptions{
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
	})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))

	if err := w.idp.SetGroups("u-alice", []string{"admins", "auditors"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // within refresh_before of the token's expiry
	resp, err := c.Get(w.gateway + "/after-refresh")
	if err != nil {
		t.Fatal(err)
	}
	seen := decodeSeen(t, resp)
	if n := w.idp.Stats().TokenRequests["refresh_token"]; n < 1 {
		t.Fatalf("refresh_token grants at the provider = %d, want at least 1", n)
	}
	if got := seen.Header.Get("X-Forwarded-Groups"); got != "admins,auditors" {
		t.Errorf("groups after refresh = %q, want the provider's new ones", got)
	}

	w.idp.RevokeRefreshTokens("u-alice")
	time.Sleep(3 * time.Second) // past the next refresh point
	resp, err = noFollow(c).Get(w.gateway + "/after-revoke")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !w.toSignIn(resp) {
		t.Errorf("after the refresh token was revoked: %d to %q, want a new sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !w.logs.waitFor("refresh refused") {
		t.Error("the ended session was not logged")
	}
}

// logoutToken signs a back-channel logout token with the provider's own key.
func logoutToken(t *testing.T, key any, kid, iss string, claims map[string]any) string {
	t.Helper()
	c := map[string]any{
		"iss": iss, "aud": "portcullis", "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
		"jti": rand.Text(), "sub": "u-alice",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := jsonMarshal(c)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func postLogoutToken(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/backchannel_logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitRejected polls base until the client's session is refused, and
// returns how long that took.
func waitRejected(t *testing.T, c *http.Client, base string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		resp, err := noFollow(c).Get(base + "/probe")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still accepts the session %v after it was ended", base, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBackchannelLogoutTwoReplicas: a logout token signed with the
// provider's keys, posted to replica A, ends the session on A and B within
// a second; hostile tokens are refused with 400 and revoke nothing.
func TestBackchannelLogoutTwoReplicas(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2})
	a, b := w.replicas[0].url, w.replicas[1].url
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	for _, base := range []string{a, b} { // both replicas have it cached now
		resp, err := c.Get(base + "/warm")
		if err != nil {
			t.Fatal(err)
		}
		decodeSeen(t, resp)
	}
	key, kid := w.idp.SigningKey()
	iss := w.idp.URL
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	replayed := logoutToken(t, key, kid, iss, map[string]any{"sub": "someone-else"})
	if code := postLogoutToken(t, a, replayed); code != 200 {
		t.Fatalf("a valid token for another user: %d", code)
	}
	for _, tt := range []struct {
		name  string
		token string
	}{
		{"nonce", logoutToken(t, key, kid, iss, map[string]any{"nonce": "n"})},
		{"no events", logoutToken(t, key, kid, iss, map[string]any{"events": nil})},
		{"replayed jti", replayed},
		{"wrong aud", logoutToken(t, key, kid, iss, map[string]any{"aud": "another-client"})},
		{"expired", logoutToken(t, key, kid, iss, map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-3 * time.Minute).Unix()})},
		{"alg none", unsigned(iss)},
		{"unknown key", logoutToken(t, other, kid, iss, nil)},
		{"no sub or sid", logoutToken(t, key, kid, iss, map[string]any{"sub": nil})},
		{"no jti", logoutToken(t, key, kid, iss, map[string]any{"jti": nil})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code := postLogoutToken(t, a, tt.token); code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", code)
			}
		})
	}
	for _, base := range []string{a, b} {
		resp, err := c.Get(base + "/still-here")
		if err != nil {
			t.Fatal(err)
		}
		decodeSeen(t, resp) // nothing was revoked by the hostile tokens
	}

	if code := postLogoutToken(t, a, logoutToken(t, key, kid, iss, nil)); code != 200 {
		t.Fatalf("valid logout token: %d", code)
	}
	onA := waitRejected(t, c, a, time.Second)
	onB := waitRejected(t, c, b, time.Second)
	t.Logf("back-channel logout to rejection: replica A %v, replica B %v", onA, onB)
}

func unsigned(iss string) string {
	h := b64(`{"alg":"none","typ":"logout+jwt"}`)
	p := b64(`{"iss":"` + iss + `","aud":"portcullis","iat":` + itoa(time.Now().Unix()) + `,"exp":` + itoa(time.Now().Add(time.Minute).Unix()) +
		`,"jti":"none-1","sub":"u-alice","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`)
	return h + "." + p + "."
}

// TestAdminRevokeTwoReplicas: `portcullis sessions revoke` through replica
// A's admin API ends the user's sessions on both replicas within a second.
func TestAdminRevokeTwoReplicas(t *testing.T) {
	rs := redistest.Standalone(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	os.WriteFile(tokenFile, []byte(strings.Repeat("a1b2", 10)+"\n"), 0o600)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2,
		extraConfig: "admin:\n  listen: {{ADMIN}}\n  token_file: " + tokenFile + "\n"})
	a, b := w.replicas[0], w.replicas[1]
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	resp, err := c.Get(b.url + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)

	list, err := exec.Command(binary, "sessions", "list", "-config", a.config, "-user", "u-alice").CombinedOutput()
	if err != nil || !strings.Contains(string(list), "Go-http-client") {
		t.Fatalf("sessions list: %v\n%s", err, list)
	}
	out, err := exec.Command(binary, "sessions", "revoke", "-config", a.config, "-user", "u-alice").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revoked 1 session(s) of u-alice") {
		t.Fatalf("sessions revoke: %v\n%s", err, out)
	}
	onA := waitRejected(t, c, a.url, time.Second)
	onB := waitRejected(t, c, b.url, time.Second)
	t.Logf("admin revoke to rejection: replica A %v, replica B %v", onA, onB)
}

// TestSignOutIDTokenHint: sign-out sends the ID token as id_token_hint
// (the real provider here advertises end_session): by default in both
// stores, and not with session.keep_id_token: false.
func TestSignOutIDTokenHint(t *testing.T) {
	rs := redistest.Standalone(t)
	for _, tt := range []struct {
		name string
		opts worldOptions
		hint bool
	}{
		{"cookie default", worldOptions{}, true},
		{"cookie keep_id_token false", worldOptions{sessionExtra: "  keep_id_token: false\n"}, false},
		{"redis default", worldOptions{redis: rs.Addr()}, true},
		{"redis keep_id_token false", worldOptions{redis: rs.Addr(), sessionExtra: "  keep_id_token: false\n"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			c := browser(t)
			decodeSeen(t, w.signIn(c, "/", "alice"))
			resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			st := w.idp.Stats()
			if st.EndSessionRequests != 1 {
				t.Fatalf("end-session requests = %d, want 1", st.EndSessionRequests)
			}
			if got := st.EndSessionHinted == 1; got != tt.hint {
				t.Errorf("end-session request carried id_token_hint: %v, want %v", got, tt.hint)
			}
		})
	}
}

// TestSignOutReachesProvider: sign-out continues to the provider's
// end-session endpoint and comes back to the gateway's signed-out page.
func TestSignOutReachesProvider(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	resp, err := c.PostForm(w.gateway+"/oauth2/sign_out", url.Values{"rd": {"/goodbye"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := w.idp.Stats().EndSessionRequests; n != 1 {
		t.Errorf("end-session requests at the provider = %d, want 1", n)
	}
	// Back from the provider (/oauth2/signed_out), the browser goes on to
	// rd, the app's own page, which now asks for a new sign-in.
	if !strings.HasPrefix(resp.Request.URL.String(), w.idp.URL) {
		t.Errorf("after sign-out the browser is at %s, want a new sign-in at the provider", resp.Request.URL)
	}
	if !w.logs.waitFor("path=/oauth2/signed_out", "path=/goodbye") {
		t.Errorf("the return did not pass /oauth2/signed_out and go on to rd (/goodbye)")
	}
}

// TestKeyRotation follows the runbook: add the new secret second, then
// first; every active user's cookie is re-sealed on their next request;
// then retire the old secret. Nobody is signed out.
func TestKeyRotation(t *testing.T) {
	w := newWorld(t, worldOptions{})
	rp := w.replicas[0]
	oldSecret := ""
	for _, e := range rp.env {
		if v, ok := strings.CutPrefix(e, "E2E_COOKIE_SECRET="); ok {
			oldSecret = v
		}
	}
	newSecret := randomSecret()
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	idle := browser(t) // a user who will not come back during the rotation
	decodeSeen(t, w.signIn(idle, "/", "dave"))

	get := func(cl *http.Client) *http.Response {
		resp, err := noFollow(cl).Get(w.gateway + "/x")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rp.restart(t, oldSecret, newSecret) // step 1: new secret added, second
	decodeSeen(t, get(c))
	rp.restart(t, newSecret, oldSecret) // step 2: new secret first; old cookies still open
	decodeSeen(t, get(c))               // ... and alice's cookie is re-sealed under the new secret
	rp.restart(t, newSecret)            // step 3: old secret retired
	decodeSeen(t, get(c))
	resp := get(idle)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("a cookie never re-sealed, after its secret was retired: %d, want a new sign-in", resp.StatusCode)
	}
}

// TestBackchannelLogoutSameSecond: a back-channel logout by subject in the
// same second as the sign-in ends that session too (cookie mode, the
// default): the boundary fails closed.
func TestBackchannelLogoutSameSecond(t *testing.T) {
	w := newWorld(t, worldOptions{})
	key, kid := w.idp.SigningKey()
	for attempt := 0; ; attempt++ {
		c := browser(t)
		decodeSeen(t, w.signIn(c, "/", "alice"))
		signedIn := time.Now()
		if code := postLogoutToken(t, w.gateway, logoutToken(t, key, kid, w.idp.URL, nil)); code != 200 {
			t.Fatalf("logout token: %d", code)
		}
		sameSecond := time.Now().Truncate(time.Second).Equal(signedIn.Truncate(time.Second))
		waitRejected(t, c, w.gateway, time.Second)
		if sameSecond || attempt == 4 {
			t.Logf("signed in and logged out within one second: %v (attempt %d)", sameSecond, attempt+1)
			return
		}
	}
}

// TestBackchannelLogoutWithoutExp: a logout token without exp, as Ory
// Hydra sends, signed by the real provider's key. Refused with 400 by
// default (Back-Channel Logout 1.0 §2.4); with logout_token_without_exp
// it ends the session, and start-up warns about the setting.
func TestBackchannelLogoutWithoutExp(t *testing.T) {
	for _, tt := range []struct {
		name, extra string
		want        int
	}{
		{"default", "", http.StatusBadRequest},
		{"opted in", "    logout_token_without_exp: true", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{providerExtra: tt.extra})
			c := browser(t)
			decodeSeen(t, w.signIn(c, "/", "alice"))
			key, kid := w.idp.SigningKey()
			if code := postLogoutToken(t, w.gateway, logoutToken(t, key, kid, w.idp.URL, map[string]any{"exp": nil})); code != tt.want {
				t.Fatalf("logout token without exp: %d, want %d", code, tt.want)
			}
			if tt.want == http.StatusOK {
				waitRejected(t, c, w.gateway, time.Second)
				if !w.logs.waitFor("logout_token_without_exp is on") {
					t.Errorf("no start-up warning:\n%s", w.logs.String())
				}
				return
			}
			resp, err := c.Get(w.gateway + "/still-here")
			if err != nil {
				t.Fatal(err)
			}
			decodeSeen(t, resp)
		})
	}
}
