package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// TestSignOutRevokesRefreshToken: with end_session: never the sign-out is
// local and the page says so, and the refresh token is revoked at the
// provider (RFC 7009): a copy of the old cookie, shown to a second replica
// (cookie sessions: it has not seen the sign-out), can no longer refresh
// there. With revoke_tokens: never, the same copy still refreshes.
func TestSignOutRevokesRefreshToken(t *testing.T) {
	for _, tt := range []struct {
		name    string
		revoke  string
		revoked bool
	}{
		{"revoke_tokens auto", "auto", true},
		{"revoke_tokens never", "never", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{
				replicas:       2,
				scopes:         "[openid, email, profile, offline_access]",
				accessTokenTTL: 3 * time.Second,
				sessionExtra:   "  refresh_before: 2s\n",
				providerExtra:  "    end_session: never\n    revoke_tokens: " + tt.revoke + "\n",
				extraConfig:    "metrics:\n  listen: {{METRICS}}\n",
			})
			a, b := w.replicas[0], w.replicas[1]
			c := browser(t)
			decodeSeen(t, w.signIn(c, "/", "alice"))
			signedInAt := time.Now()
			aURL, _ := url.Parse(a.url)
			stolen := c.Jar.Cookies(aURL) // a copy of the session cookie, taken before sign-out

			resp, err := c.PostForm(a.url+"/oauth2/sign_out", url.Values{})
			if err != nil {
				t.Fatal(err)
			}
			page := readAll(resp)
			if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You are signed out of this gateway. You may still be signed in at corp.") {
				t.Fatalf("sign-out = %d at %s, want the local signed-out page:\n%s", resp.StatusCode, resp.Request.URL, page)
			}
			if n := w.idp.Stats().EndSessionRequests; n != 0 {
				t.Errorf("end_session: never, yet the provider saw %d end-session requests", n)
			}
			if tt.revoked && !scrapeHas(t, a.metrics, `portcullis_token_revocations_total{provider="corp",result="revoked"} 1`) {
				t.Error("the revocation was not counted")
			}

			// Within refresh_before of the access token's expiry, replica B
			// refreshes the copied session at the provider.
			time.Sleep(time.Until(signedInAt.Add(1500 * time.Millisecond)))
			jar, _ := cookiejar.New(nil)
			bURL, _ := url.Parse(b.url)
			jar.SetCookies(bURL, stolen)
			thief := noFollow(&http.Client{Jar: jar, Timeout: 10 * time.Second})
			resp, err = thief.Get(b.url + "/after-sign-out")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tt.revoked {
				if !w.toSignIn(resp) {
					t.Errorf("copied cookie after revocation: %d to %q, want a new sign-in", resp.StatusCode, resp.Header.Get("Location"))
				}
				if !b.logs.waitFor("refresh refused") {
					t.Error("replica B did not log the refused refresh")
				}
			} else if resp.StatusCode != http.StatusOK {
				t.Errorf("copied cookie without revocation: %d, want the refresh to work (control)", resp.StatusCode)
			}
			if n := w.idp.Stats().TokenRequests["refresh_token"]; n < 1 {
				t.Errorf("refresh_token grants at the provider = %d, want replica B to have tried one", n)
			}
		})
	}
}

// scrapeHas polls the metrics listener at addr for up to 2s for a line.
func scrapeHas(t *testing.T, addr, line string) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil && strings.Contains(readAll(resp), line) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFrontchannelLogoutTwoReplicas: the provider's front-channel logout
// request (iss and sid, Front-Channel Logout 1.0 §2) on replica A ends the
// session on replica B too (Redis); without sid it is refused and ends
// nothing; the answer may be framed by the provider's origin only.
func TestFrontchannelLogoutTwoReplicas(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2})
	a, b := w.replicas[0].url, w.replicas[1].url
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))
	resp, err := c.Get(b + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)
	sid := w.idp.SessionID("u-alice")
	if sid == "" {
		t.Fatal("the provider has no sid for alice's sign-in")
	}
	iss := url.QueryEscape(w.idp.URL)
	// An iframe of the provider's page: no gateway cookie is sent.
	for _, q := range []string{"?iss=" + iss, "?sid=" + url.QueryEscape(sid), "?iss=" + url.QueryEscape(w.idp.URL+"/") + "&sid=" + url.QueryEscape(sid)} {
		resp, err := http.Get(a + "/oauth2/frontchannel_logout" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("front-channel logout %s = %d, want 400", q, resp.StatusCode)
		}
	}
	resp, err = c.Get(b + "/still-here")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)

	resp, err = http.Get(a + "/oauth2/frontchannel_logout?iss=" + iss + "&sid=" + url.QueryEscape(sid))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("front-channel logout = %d, Cache-Control %q; want 200, no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+w.idp.URL+";") || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("CSP %q, X-Frame-Options %q: want framing by %s only", csp, resp.Header.Get("X-Frame-Options"), w.idp.URL)
	}
	onA := waitRejected(t, c, a, time.Second)
	onB := waitRejected(t, c, b, time.Second)
	t.Logf("front-channel logout to rejection: replica A %v, replica B %v", onA, onB)
}

// TestCheckOnline: -check -online against the real provider names what it
// supports and exactly the URIs to register; with a trailing slash on the
// issuer it names the mismatch and the fix, and exits 1.
func TestCheckOnline(t *testing.T) {
	w := newWorld(t, worldOptions{})
	rp := w.replicas[0]
	run := func(config string) (string, int) {
		cmd := exec.Command(binary, "-config", config, "-check", "-online")
		cmd.Env = rp.env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run(rp.config)
	t.Logf("-check -online:\n%s", out)
	if code != 0 {
		t.Fatalf("-check -online against a good provider: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"ok: sign-in can work",
		"end_session (RP-initiated logout) yes", "back-channel logout no", "front-channel logout no", "token revocation yes", "userinfo yes",
		"redirect URI:              " + rp.url + "/oauth2/callback",
		"post-logout redirect URI:  " + rp.url + "/oauth2/signed_out",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"back-channel logout URI", "front-channel logout URI", "error:"} {
		if strings.Contains(out, absent) {
			t.Errorf("output has %q, which this provider cannot use:\n%s", absent, out)
		}
	}

	slash := strings.Replace(readFile(t, rp.config), "issuer_url: "+w.idp.URL+"\n", "issuer_url: "+w.idp.URL+"/\n", 1)
	if !strings.Contains(slash, w.idp.URL+"/\n") {
		t.Fatal("could not add the trailing slash to the configuration")
	}
	bad := rp.config + ".slash.yaml"
	writeFile(t, bad, slash)
	defer os.Remove(bad)
	out, code = run(bad)
	t.Logf("-check -online, trailing slash:\n%s", out)
	if code != 1 || !strings.Contains(out, "remove the trailing slash") || !strings.Contains(out, "error: issuer mismatch") {
		t.Errorf("-check -online with a trailing slash: exit %d, want 1 naming the mismatch:\n%s", code, out)
	}
}
