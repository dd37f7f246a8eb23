package e2e

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// startZitadelExample serves zitadel/oidc's stock example provider (its
// storage, users and login UI, unchanged) on loopback, with one web client
// for the gateway, and returns the issuer. Like Zitadel itself, it puts
// email and profile claims only in userinfo when it issues an access token
// (OpenID Connect Core §5.4): nothing of this project's own provider is in
// the way.
func startZitadelExample(t *testing.T, clientID, secret, redirectURI string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	clients := map[string]*storage.Client{clientID: storage.WebClient(clientID, secret, redirectURI)}
	store := storage.NewStorageWithClients(storage.NewUserStore(issuer+"/"), clients)
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, store, nil, false), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("zitadel example server: %v", err)
		}
	})
	return issuer
}

// TestZitadelExampleProvider signs in through the stock zitadel example
// provider's login form: the upstream receives the user's email and
// preferred username, which that provider answers only at userinfo, the
// email rule admits, and a rule naming another address refuses.
func TestZitadelExampleProvider(t *testing.T) {
	addr := freeAddr(t)
	public := "http://" + addr
	secret := randomSecret()
	issuer := startZitadelExample(t, "portcullis", secret, public+"/oauth2/callback")
	upstream := newRecorder(t)

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	writeFile(t, secretFile, secret)
	cfg := fmt.Sprintf(`
server:
  listen: %s
  public_url: %s
providers:
  - id: zitadel
    type: oidc
    issuer_url: %s
    client_id: portcullis
    client_secret_file: %s
    scopes: [openid, email, profile]
session:
  cookie:
    secrets: [%s]
    secure: false
upstreams:
  - path: /
    url: %s
policy:
  email_domains: [zitadel.ch]
  routes:
    - {path: /second-user/, emails: [test-user2@zitadel.ch]}
log:
  level: debug
`, addr, public, issuer, secretFile, randomSecret(), upstream.URL)
	cfgFile := filepath.Join(dir, "config.yaml")
	writeFile(t, cfgFile, cfg)
	rp := &replica{url: public, config: cfgFile, env: os.Environ()}
	rp.start(t)
	t.Cleanup(func() { rp.stop(t) })

	c := browser(t)
	resp, err := c.Get(public + "/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), issuer+"/login/") {
		t.Fatalf("GET /app ended at %s, want the example provider's login page", resp.Request.URL)
	}
	// The example's first user: "test-user@" + the issuer's host name.
	seen := decodeSeen(t, exampleSignIn(t, c, resp.Request.URL, "test-user@127.0.0.1", "verysecure"))
	for name, want := range map[string]string{
		"X-Forwarded-User":               "id1",
		"X-Forwarded-Email":              "test-user@zitadel.ch",
		"X-Forwarded-Preferred-Username": "test-user@127.0.0.1",
	} {
		if got := seen.Header.Get(name); got != want {
			t.Errorf("upstream %s = %q, want %q", name, got, want)
		}
	}
	info := userinfoOf(t, c, public)
	if info["email_verified"] != true || info["name"] != "Test User" {
		t.Errorf("/oauth2/userinfo = %v, want the verified email and the name from userinfo", info)
	}
	resp, err = c.Get(public + "/second-user/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a route for another address = %d, want 403", resp.StatusCode)
	}
}

// The example's login template: one form posting to an absolute path, the
// auth request's ID in a hidden field.
var (
	exampleActionRE = regexp.MustCompile(`<form method="POST" action="([^"]*)"`)
	exampleIDRE     = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)">`)
)

// exampleSignIn fills in the example provider's login form at loginURL as
// a browser would and follows the redirects back through the gateway; it
// returns the final response.
func exampleSignIn(t *testing.T, c *http.Client, loginURL *url.URL, username, password string) *http.Response {
	t.Helper()
	resp, err := c.Get(loginURL.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, id := exampleActionRE.FindSubmatch(page), exampleIDRE.FindSubmatch(page)
	if action == nil || id == nil {
		t.Fatalf("no login form at %s:\n%s", loginURL, page)
	}
	target, err := loginURL.Parse(html.UnescapeString(string(action[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.PostForm(target.String(), url.Values{
		"id": {html.UnescapeString(string(id[1]))}, "username": {username}, "password": {password},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
