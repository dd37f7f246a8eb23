package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// testDemo starts `portcullis demo` in-process on free ports until the
// test ends; the context is the demo's.
func testDemo(t *testing.T) (context.Context, *demoRun) {
	return testDemoWith(t, nil)
}

// testDemoWith starts the demo with own's policy and ui (demo -config).
func testDemoWith(t *testing.T, own *config) (context.Context, *demoRun) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDemo(ctx, demoOptions{Listen: "127.0.0.1:0", IDPListen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler), Own: own})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-d.Done; err != nil {
			t.Errorf("demo gateway: %v", err)
		}
		d.Close()
	})
	return ctx, d
}

// TestDemo runs `portcullis demo` in-process and signs in as the demo user
// through the real login page, as the README's first command invites.
func TestDemo(t *testing.T) {
	ctx, d := testDemo(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.Get(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), d.IDP.URL+"/login") {
		t.Fatalf("opening the demo ended at %s, want the provider's login page", resp.Request.URL)
	}
	alice := d.Users[0]
	page, err := demo.SignIn(ctx, c, resp.Request.URL.String(), alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Request.URL.String(), d.URL) {
		t.Fatalf("after sign-in: %d at %s", page.StatusCode, page.Request.URL)
	}

	// The demo app, asked for JSON, shows what it received.
	req, _ := http.NewRequest("GET", d.URL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo struct {
		Headers map[string][]string `json:"headers"`
		Cookies []string            `json:"cookies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	if got := echo.Headers["X-Forwarded-Email"]; len(got) != 1 || got[0] != alice.Email {
		t.Errorf("demo app saw X-Forwarded-Email %q, want %q", got, alice.Email)
	}
	if len(echo.Cookies) != 0 {
		t.Errorf("demo app saw cookies %v, want none of the gateway's", echo.Cookies)
	}
	u, _ := url.Parse(d.URL)
	// The session keeps the ID token for sign-out's id_token_hint (the
	// demo provider advertises end_session): 1.5 KB of the cookie, stored
	// as decoded segments, and still one cookie far below the 4000-byte
	// chunk budget.
	found := false
	for _, ck := range jar.Cookies(u) {
		switch {
		case ck.Name == "_portcullis":
			found = true
			t.Logf("demo user's session cookie: %d bytes (name+value)", len(ck.Name)+len(ck.Value))
			if len(ck.Name)+len(ck.Value) > 2048 {
				t.Errorf("session cookie is %d bytes, want at most 2048", len(ck.Name)+len(ck.Value))
			}
		case strings.HasPrefix(ck.Name, "_portcullis_"):
			t.Errorf("the session was chunked (%s)", ck.Name)
		}
	}
	if !found {
		t.Error("no session cookie")
	}
}

// TestDemoShowsAuthorization: the demo's policy has a route someone is
// denied (bob at /admin/ gets the 403 page with its message, alice gets
// in) and a public one.
// demoOpen opens path in browser c, signing in as u when the gateway asks.
func demoOpen(t *testing.T, ctx context.Context, d *demoRun, c *http.Client, u demo.User, path string) (int, string) {
	t.Helper()
	resp, err := c.Get(d.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(resp.Request.URL.String(), d.IDP.URL) {
		resp.Body.Close()
		if resp, err = demo.SignIn(ctx, c, resp.Request.URL.String(), u.Username, u.Password); err != nil {
			t.Fatal(err)
		}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// TestDemoOwnConfig: demo -config tries a real configuration's policy and
// ui with the demo's provider and users; what cannot apply is said.
func TestDemoOwnConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	os.WriteFile(path, []byte(`server:
  public_url: https://app.example.com
providers:
  - {id: corp, type: oidc, issuer_url: https://login.example.com, client_id: gw, client_secret_file: /run/secrets/corp}
policy:
  email_domains: [example.com]
  routes:
    - {path: /ops/, groups: [sre], deny_message: "Operations is for the SRE team."}
    - {path: /dev/, groups: [developers], provider: corp}
ui:
  product_name: Acme Access
`), 0o600)
	var notes strings.Builder
	own, err := demoConfig(path, &notes)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`route /dev/ pins provider "corp"`, "no demo user is in the groups sre"} {
		if !strings.Contains(notes.String(), want) {
			t.Errorf("notes %q lack %q", notes.String(), want)
		}
	}
	ctx, d := testDemoWith(t, own)
	bob := d.Users[1]
	c := browser()
	if code, page := demoOpen(t, ctx, d, c, bob, "dev/"); code != http.StatusOK {
		t.Errorf("bob (developers) at /dev/: %d\n%s", code, page)
	}
	if code, page := demoOpen(t, ctx, d, c, bob, "ops/"); code != http.StatusForbidden || !strings.Contains(page, "Operations is for the SRE team.") || !strings.Contains(page, "<span>Acme Access</span>") {
		t.Errorf("bob at /ops/: %d, want the 403 page with the policy's message, branded:\n%s", code, page)
	}
	if code, _ := demoOpen(t, ctx, d, browser(), bob, "admin/"); code != http.StatusOK {
		t.Errorf("/admin/ is the demo's own route, not this policy's: %d", code)
	}
}

func TestDemoShowsAuthorization(t *testing.T) {
	ctx, d := testDemo(t)
	open := func(c *http.Client, u demo.User, path string) (int, string) {
		t.Helper()
		return demoOpen(t, ctx, d, c, u, path)
	}
	alice, bob := d.Users[0], d.Users[1]
	if code, page := open(browser(), bob, "admin/"); code != http.StatusForbidden || !strings.Contains(page, "sign in as alice") {
		t.Errorf("bob at /admin/: %d, want the 403 page with the demo's message:\n%s", code, page)
	}
	ac := browser()
	if code, _ := open(ac, alice, "admin/"); code != http.StatusOK {
		t.Errorf("alice at /admin/: %d, want 200", code)
	}
	// The demo app's Sign out button (a same-origin POST) ends, through
	// the provider's end_session, on the signed-out page.
	signOut, err := http.NewRequest(http.MethodPost, d.URL+"oauth2/sign_out", nil)
	if err != nil {
		t.Fatal(err)
	}
	signOut.Header.Set("Origin", strings.TrimSuffix(d.URL, "/"))
	resp, err := ac.Do(signOut)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<h1>You are signed out</h1>") || !strings.HasPrefix(resp.Request.URL.String(), d.URL) {
		t.Errorf("sign-out ended at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, b)
	}
	resp, err = http.Get(d.URL + "public/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Request.URL.String(), d.IDP.URL) {
		t.Errorf("/public/ without a session: %d at %s, want the app", resp.StatusCode, resp.Request.URL)
	}
}
