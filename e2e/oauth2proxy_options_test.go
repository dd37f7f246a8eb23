package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oauth2-proxy's routing and policy options through the real binary
// (issue 16 item 3): skip_auth_routes, trusted_ips, api_routes,
// authenticated_emails_file changed while the gateway runs, and
// pass_encoded_slashes.

const optionsPolicy = `policy:
  email_domains: [example.com]
  skip_auth_routes:
    - GET=^/probe$
    - ^/public/
  api_routes: [^/api/]
  routes:
    - path: /rabbit/
      pass_encoded_slashes: true
`

// rawGet sends a GET with the path exactly as given (no cleaning) and the
// browser's Accept header.
func rawGet(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestOAuth2ProxySkipAuthRoutes: skipped routes pass without sign-in and
// without identity, on the canonical path only; everything else still
// needs a session.
func TestOAuth2ProxySkipAuthRoutes(t *testing.T) {
	w := newWorld(t, worldOptions{policy: optionsPolicy})
	anon := noFollow(browser(t))

	for _, p := range []string{"/probe", "/public/", "/public/app.js"} {
		resp := rawGet(t, anon, w.gateway+p)
		if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "" || seen.Path != p {
			t.Errorf("GET %s reached the upstream as %q with user %q", p, seen.Path, seen.Header.Get("X-Forwarded-User"))
		}
	}
	// The method is part of the entry; the regex is anchored. A POST
	// without a session that cannot be kept (no Origin: nothing vouches
	// for it) gets the "please repeat" page with its way to sign in.
	req, _ := http.NewRequest("POST", w.gateway+"/probe", nil)
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b, "<h1>Your session expired</h1>") {
		t.Errorf("POST /probe = %d, want the 401 page asking to sign in and repeat:\n%s", resp.StatusCode, b)
	}
	for _, p := range []string{"/app", "/admin/public/", "/probe/x"} {
		if resp := rawGet(t, anon, w.gateway+p); !w.toSignIn(resp) {
			t.Errorf("GET %s = %d, want a redirect to sign in", p, resp.StatusCode)
		}
	}
	// Traversal and encodings never reach a skip: refused.
	n := w.upstream.count()
	for _, p := range []string{"/public/../app", "/public/%2e%2e/app", "/public/%2E%2E/app", "/public/..%2Fapp", "/public//app", "/public/x;/../../app"} {
		if resp := rawGet(t, anon, w.gateway+p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, resp.StatusCode)
		}
	}
	if w.upstream.count() != n {
		t.Error("a refused path reached the upstream")
	}

	// A signed-in user's identity is not passed on a skipped route either,
	// and a client's own identity headers never are.
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/app", "alice"))
	req, _ = http.NewRequest("GET", w.gateway+"/public/x", nil)
	req.Header.Set("X-Forwarded-User", "mallory")
	resp, err = alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "" || seen.Header.Get("X-Forwarded-Email") != "" {
		t.Errorf("a skipped route passed identity on: %v", seen.Header)
	}
	if !w.logs.waitFor(`rule="policy.skip_auth_routes[1] ^/public/ public"`) {
		t.Error("the access log does not name the skip entry")
	}
}

// TestOAuth2ProxyAPIRoutes: on api_routes a browser without a session
// gets a JSON 401 with the sign-in link, never the redirect other paths
// get.
func TestOAuth2ProxyAPIRoutes(t *testing.T) {
	w := newWorld(t, worldOptions{policy: optionsPolicy})
	anon := noFollow(browser(t))
	resp := rawGet(t, anon, w.gateway+"/api/v1/items")
	defer resp.Body.Close()
	var body struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
	}
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/items = %d %s (Location %q), want a JSON 401", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "unauthenticated" || !strings.HasPrefix(body.LoginURL, w.gateway+"/oauth2/start") {
		t.Errorf("401 body %+v (%v)", body, err)
	}
	if resp := rawGet(t, anon, w.gateway+"/app/api/v1"); !w.toSignIn(resp) {
		t.Errorf("GET /app/api/v1 = %d, want a redirect to sign in", resp.StatusCode)
	}
	// Signed in, the API answers.
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/app", "alice"))
	resp = rawGet(t, alice, w.gateway+"/api/v1/items")
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Errorf("signed-in API request carried %v", seen.Header)
	}
}

// TestOAuth2ProxyTrustedIPs: the tests run on loopback, so a world with
// trusted_ips [127.0.0.1/32] lets every request through without sign-in
// (and says so at start); the same configuration without it redirects.
func TestOAuth2ProxyTrustedIPs(t *testing.T) {
	trusted := newWorld(t, worldOptions{policy: "policy:\n  email_domains: [example.com]\n  trusted_ips: [127.0.0.1/32]\n"})
	anon := noFollow(browser(t))
	seen := decodeSeen(t, rawGet(t, anon, trusted.gateway+"/app"))
	if seen.Header.Get("X-Forwarded-User") != "" {
		t.Errorf("a trusted-ip request carried an identity: %v", seen.Header)
	}
	if !trusted.logs.waitFor("policy.trusted_ips bypasses authentication: requests from 127.0.0.1/32 pass without sign-in", `rule="policy.trusted_ips 127.0.0.1/32"`) {
		t.Errorf("no start warning or access line for trusted_ips:\n%s", trusted.logs.String())
	}
	// A client-sent X-Forwarded-For is no way in: 127.0.0.1 is no trusted
	// proxy here, so the peer is the client. (Shown in the world without
	// trusted_ips: naming a trusted address gets nothing.)
	plain := newWorld(t, worldOptions{policy: "policy:\n  email_domains: [example.com]\n  trusted_ips: [192.0.2.0/24]\n"})
	req, _ := http.NewRequest("GET", plain.gateway+"/app", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !plain.toSignIn(resp) {
		t.Errorf("without 127.0.0.1 in trusted_ips (and a spoofed X-Forwarded-For): %d, want a redirect to sign in", resp.StatusCode)
	}
}

// TestOAuth2ProxyEmailsFileReload: authenticated_emails_file admits its
// addresses; changed while the gateway runs, the new list applies within
// seconds, to new sign-ins and existing sessions alike; a malformed
// version keeps the last good list, and both are counted.
func TestOAuth2ProxyEmailsFileReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "emails")
	writeFile(t, file, "# who may use the app\nAlice@Example.com\neve@example.com\n")
	w := newWorld(t, worldOptions{
		policy:      "policy:\n  authenticated_emails_file: " + file + "\n",
		extraConfig: "metrics:\n  listen: {{METRICS}}\n",
	})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/app", "alice"))
	bob := browser(t)
	if resp := w.signIn(bob, "/app", "bob"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob, not listed: %d, want 403", resp.StatusCode)
	}
	// Listed, but the provider does not vouch for the address.
	eve := browser(t)
	if resp := w.signIn(eve, "/app", "eve"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("eve, listed with an unverified email: %d, want 403", resp.StatusCode)
	}

	// Bob in, alice out, while the gateway runs.
	writeFile(t, file, "bob@example.org\n")
	future := time.Now().Add(time.Second)
	os.Chtimes(file, future, future)
	if !w.logs.waitForWithin(10*time.Second, "policy.authenticated_emails_file reloaded") {
		t.Fatalf("the changed file was not reloaded:\n%s", w.logs.String())
	}
	bob = browser(t)
	decodeSeen(t, w.signIn(bob, "/app", "bob"))
	resp := rawGet(t, alice, w.gateway+"/app")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice's session after she was removed: %d, want 403", resp.StatusCode)
	}

	// A malformed version: bob keeps his access, the error is logged.
	writeFile(t, file, "bob@example.org\nnot an address\n")
	future = future.Add(time.Second)
	os.Chtimes(file, future, future)
	if !w.logs.waitForWithin(10*time.Second, "keeping the previous list", `line 2: \"not an address\" is not an email address`) {
		t.Fatalf("the malformed file was not reported:\n%s", w.logs.String())
	}
	decodeSeen(t, rawGet(t, bob, w.gateway+"/app"))
	rp := w.replicas[0]
	for _, line := range []string{`portcullis_emails_file_reloads_total{result="ok"} 1`, `portcullis_emails_file_reloads_total{result="error"} 1`} {
		if !scrapeHas(t, rp.metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// TestOAuth2ProxyPassEncodedSlashes: RabbitMQ's management API names the
// default vhost "/" as "%2F"; under a route with pass_encoded_slashes it
// reaches the upstream as sent, elsewhere it is refused as before.
func TestOAuth2ProxyPassEncodedSlashes(t *testing.T) {
	w := newWorld(t, worldOptions{policy: optionsPolicy})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/app", "alice"))
	seen := decodeSeen(t, rawGet(t, alice, w.gateway+"/rabbit/api/queues/%2F/q1"))
	if seen.RawPath != "/rabbit/api/queues/%2F/q1" {
		t.Errorf("the upstream received %q (raw %q), want the %%2F kept", seen.Path, seen.RawPath)
	}
	for _, p := range []string{"/app/%2F", "/rabbit/api/..%2F..%2Fapp", "/rabbit/%2F%2e%2e/x"} {
		if resp := rawGet(t, alice, w.gateway+p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, resp.StatusCode)
		}
	}
}

// waitForWithin is waitFor with a longer wait: the emails file is looked
// at every 2s.
func (s *syncBuffer) waitForWithin(d time.Duration, want ...string) bool {
	deadline := time.Now().Add(d)
	for {
		logs, all := s.String(), true
		for _, w := range want {
			all = all && strings.Contains(logs, w)
		}
		if all || time.Now().After(deadline) {
			return all
		}
		time.Sleep(50 * time.Millisecond)
	}
}
