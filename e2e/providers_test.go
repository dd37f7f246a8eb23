package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// TestTwoProviders runs one gateway with two real providers: "corp" as a
// Keycloak-type provider (realm and client roles become groups) and
// "google" as a Google-type provider restricted to the example.com hosted
// domain. A user signs in through each from the sign-in page.
func TestTwoProviders(t *testing.T) {
	up := newRecorder(t)
	addr := freeAddr(t)
	public := "http://" + addr
	clientSecret := randomSecret()
	client := demo.Client{ID: "portcullis", Secret: clientSecret,
		RedirectURIs: []string{public + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{public + "/oauth2/signed_out"}}
	corp, err := demo.Start("127.0.0.1:0", demo.Config{
		Users: []demo.User{{ID: "k-alice", Username: "alice", Password: "alice-pw-1", Email: "alice@example.com", EmailVerified: true,
			ExtraClaims: map[string]any{
				"realm_access":    map[string]any{"roles": []string{"admin", "offline_access"}},
				"resource_access": map[string]any{"grafana": map[string]any{"roles": []string{"editor"}}},
			}}},
		Clients: []demo.Client{client},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { corp.Close() })
	googleIdP, err := demo.Start("127.0.0.1:0", demo.Config{
		Users: []demo.User{
			{ID: "g-bob", Username: "bob", Password: "bob-pw-1", Email: "bob@example.com", EmailVerified: true,
				ExtraClaims: map[string]any{"hd": "example.com"}},
			{ID: "g-eve", Username: "eve", Password: "eve-pw-1", Email: "eve@gmail.com", EmailVerified: true},
			{ID: "g-mal", Username: "mal", Password: "mal-pw-1", Email: "mal@evil.example", EmailVerified: true,
				ExtraClaims: map[string]any{"hd": "evil.example"}},
		},
		Clients: []demo.Client{client},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { googleIdP.Close() })

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
server: {listen: %s, public_url: %s}
ui: {title: "Sign in to Acme"}
providers:
  - {id: corp, type: keycloak, name: Corporate SSO, issuer_url: %s, client_id: portcullis, client_secret: %s}
  - {id: google, type: google, name: Google, issuer_url: %s, client_id: portcullis, client_secret: %s, hosted_domains: [example.com]}
session:
  cookie: {secrets: [%s], secure: false}
upstreams: [{path: /, url: %s}]
policy: {email_domains: [example.com]}
`, addr, public, corp.URL, clientSecret, googleIdP.URL, clientSecret, randomSecret(), up.URL)), 0o600)
	rp := &replica{url: public, config: cfg, env: os.Environ()}
	rp.start(t)
	t.Cleanup(func() { rp.stop(t) })

	signInVia := func(name, user, password string) *http.Response {
		t.Helper()
		c := browser(t)
		resp, err := c.Get(public + "/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		page := readAll(resp)
		if !strings.Contains(page, "Sign in to Acme") || !strings.Contains(page, "Sign in with Corporate SSO") || !strings.Contains(page, "Sign in with Google") {
			t.Fatalf("sign-in page:\n%s", page)
		}
		link := between(page, `href="`, `">Sign in with `+name)
		link = strings.ReplaceAll(link, "&amp;", "&")
		resp, err = c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		final, err := demoSignIn(c, resp.Request.URL.String(), user, password)
		if err != nil {
			t.Fatal(err)
		}
		return final
	}

	seen := decodeSeen(t, signInVia("Corporate SSO", "alice", "alice-pw-1"))
	if got := seen.Header.Get("X-Forwarded-Groups"); got != "admin,grafana:editor,offline_access" {
		t.Errorf("Keycloak roles as groups = %q", got)
	}
	seen = decodeSeen(t, signInVia("Google", "bob", "bob-pw-1"))
	if got := seen.Header.Get("X-Forwarded-User"); got != "g-bob" {
		t.Errorf("Google user = %q", got)
	}
	for _, u := range []struct{ user, pw string }{{"eve", "eve-pw-1"}, {"mal", "mal-pw-1"}} {
		resp := signInVia("Google", u.user, u.pw)
		body := readAll(resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not admitted") {
			t.Errorf("%s outside the hosted domain: %d %s", u.user, resp.StatusCode, body)
		}
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, b)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(s[:i], a)
	if j < 0 {
		return ""
	}
	return s[j+len(a) : i]
}

// TestIssuerTrailingSlashNamed: a provider configured with a trailing
// slash its discovery document does not have (the real provider here) is
// never silently "unavailable": /ready and the log name the mismatch and
// the fix, and sign-ins get 503, not a redirect to an unverified issuer.
func TestIssuerTrailingSlashNamed(t *testing.T) {
	idp, err := demo.Start("127.0.0.1:0", demo.Config{Users: defaultUsers(),
		Clients: []demo.Client{{ID: "portcullis", Secret: "s3cret-s3cret", RedirectURIs: []string{"http://x/oauth2/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	addr := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
server: {listen: %s, public_url: http://%s}
providers:
  - {id: corp, issuer_url: %s/, client_id: portcullis, client_secret: s3cret-s3cret}
session:
  cookie: {secrets: [%s], secure: false}
upstreams: [{path: /, url: http://127.0.0.1:9}]
policy: {email_domains: [example.com]}
`, addr, addr, idp.URL, randomSecret())), 0o600)
	rp := &replica{url: "http://" + addr, config: cfg, env: os.Environ()}
	rp.cmd = exec.Command(binary, "-config", rp.config)
	rp.logs = &syncBuffer{}
	rp.cmd.Stdout, rp.cmd.Stderr = rp.logs, rp.logs
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.stop(t) })
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(body, "trailing slash") {
		if resp, err := http.Get(rp.url + "/ready"); err == nil {
			body = readAll(resp)
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("/ready is 200 with a mismatched issuer")
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "trailing slash") || !strings.Contains(body, "differs from discovered") {
		t.Errorf("/ready does not name the mismatch: %q", body)
	}
	if !rp.logs.waitFor("trailing slash") {
		t.Errorf("the log does not name the mismatch:\n%s", rp.logs.String())
	}
	resp, err := noFollow(&http.Client{Timeout: 10 * time.Second}).Get(rp.url + "/oauth2/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("sign-in with a mismatched issuer: %d, want 503", resp.StatusCode)
	}
}
