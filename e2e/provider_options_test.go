package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// provider_options_test.go drives the provider options of issue 15 item 2
// against the demo provider (zitadel's op): skip_discovery, public and
// private_key_jwt clients, audiences, prompt/acr_values/login_hint, and
// ca_file with the provider on TLS.

// refreshOnce waits into the refresh window of a 3-second access token
// (refresh_before 2s) and makes a request, which refreshes the session;
// it returns what the upstream saw.
func refreshOnce(t *testing.T, w *world, c *http.Client) seenRequest {
	t.Helper()
	time.Sleep(1500 * time.Millisecond)
	resp, err := c.Get(w.gateway + "/after-refresh")
	if err != nil {
		t.Fatal(err)
	}
	seen := decodeSeen(t, resp)
	if n := w.idp.Stats().TokenRequests["refresh_token"]; n < 1 {
		t.Fatalf("refresh_token grants at the provider = %d, want at least 1", n)
	}
	return seen
}

// TestProviderSkipDiscovery: with skip_discovery and the demo's endpoints
// given explicitly, the gateway signs in, reads userinfo and refreshes
// without ever asking for the discovery document.
func TestProviderSkipDiscovery(t *testing.T) {
	w := newWorld(t, worldOptions{
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
		// Groups only at userinfo, and only groups admit: a sign-in
		// that did not reach the configured userinfo_endpoint is denied.
		gatewayClient: func(c *demo.Client) { c.MinimalIDToken = true },
		policy:        "policy:\n  groups: [admins]\n",
		providerExtra: `    skip_discovery: true
    authorization_endpoint: {{ISSUER}}/authorize
    token_endpoint: {{ISSUER}}/oauth/token
    jwks_uri: {{ISSUER}}/keys
    userinfo_endpoint: {{ISSUER}}/userinfo
    end_session_endpoint: {{ISSUER}}/end_session
    revocation_endpoint: {{ISSUER}}/revoke
`,
	})
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/", "alice"))
	if got := seen.Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q, want u-alice", got)
	}
	if got := seen.Header.Get("X-Forwarded-Groups"); got != "admins,developers" {
		t.Errorf("X-Forwarded-Groups = %q: groups come from userinfo here, at the configured userinfo_endpoint", got)
	}
	refreshOnce(t, w, c)
	st := w.idp.Stats()
	if st.DiscoveryRequests != 0 {
		t.Errorf("discovery requested %d times with skip_discovery", st.DiscoveryRequests)
	}
	if st.UserinfoRequests == 0 {
		t.Error("userinfo was never called at the configured userinfo_endpoint")
	}
}

// TestProviderPublicClient: client_auth none, registered at the provider as
// a public client: sign-in and refresh send client_id alone, with PKCE.
func TestProviderPublicClient(t *testing.T) {
	w := newWorld(t, worldOptions{
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
		gatewayClient:  func(c *demo.Client) { c.Secret, c.Public = "", true },
		providerExtra:  "    client_auth: none\n",
	})
	c := browser(t)
	if got := decodeSeen(t, w.signIn(c, "/", "alice")).Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q", got)
	}
	refreshOnce(t, w, c)
	auth := w.idp.Stats().TokenAuth
	if auth["none"] < 2 || len(auth) != 1 {
		t.Errorf("token requests by client authentication = %v, want only none (code and refresh)", auth)
	}
}

// TestProviderPrivateKeyJWT: client_auth private_key_jwt with an EC key
// from client_private_key_file; the provider verifies each assertion with
// the registered public key, at sign-in and at refresh. A gateway with
// another key is refused.
func TestProviderPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeKey(t, key)
	w := newWorld(t, worldOptions{
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
		gatewayClient:  func(c *demo.Client) { c.Secret, c.PublicKey, c.KeyID = "", key.Public(), "gw-1" },
		providerExtra: fmt.Sprintf(`    client_auth: private_key_jwt
    client_private_key_file: %s
    client_key_id: gw-1
`, keyFile),
	})
	c := browser(t)
	if got := decodeSeen(t, w.signIn(c, "/", "alice")).Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q", got)
	}
	refreshOnce(t, w, c)
	auth := w.idp.Stats().TokenAuth
	if auth["private_key_jwt"] < 2 || len(auth) != 1 {
		t.Errorf("token requests by client authentication = %v, want only private_key_jwt (code and refresh)", auth)
	}
	if strings.Contains(w.logs.String(), "PRIVATE KEY") {
		t.Error("the private key appears in the gateway's log")
	}

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrong := newWorld(t, worldOptions{
		gatewayClient: func(c *demo.Client) { c.Secret, c.PublicKey = "", key.Public() },
		providerExtra: fmt.Sprintf("    client_auth: private_key_jwt\n    client_private_key_file: %s\n", writeKey(t, other)),
	})
	b := browser(t)
	resp, err := b.Get(wrong.gateway + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	final, err := demo.SignIn(context.Background(), b, resp.Request.URL.String(), "alice", "alice-password-1")
	if err != nil {
		t.Fatal(err)
	}
	final.Body.Close()
	if final.StatusCode < 400 || wrong.upstream.count() != 0 {
		t.Errorf("a gateway with the wrong key signed in: %d, upstream saw %d requests", final.StatusCode, wrong.upstream.count())
	}
}

func writeKey(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "client.key")
	writeFile(t, f, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	return f
}

// TestProviderAudiences: with extra accepted audiences the ID token's aud
// is checked by the gateway instead of go-oidc; the demo's tokens (aud the
// client, azp the client) still pass, at sign-in and at refresh. (zitadel
// always puts the client_id into aud, so tokens for an extra audience
// alone are exercised in the providers package's tests.)
func TestProviderAudiences(t *testing.T) {
	w := newWorld(t, worldOptions{
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: 3 * time.Second,
		sessionExtra:   "  refresh_before: 2s\n",
		providerExtra:  "    audiences: [api://corp]\n",
	})
	c := browser(t)
	if got := decodeSeen(t, w.signIn(c, "/", "alice")).Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q", got)
	}
	if got := refreshOnce(t, w, c).Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("after refresh X-Forwarded-User = %q", got)
	}
}

// TestProviderRequestOptions: prompt and acr_values from the provider's
// configuration and /oauth2/start's login_hint reach the provider's
// authorization endpoint; an unprintable login_hint does not.
func TestProviderRequestOptions(t *testing.T) {
	w := newWorld(t, worldOptions{providerExtra: "    prompt: login\n    acr_values: phr\n"})
	c := browser(t)
	resp, err := c.Get(w.gateway + "/oauth2/start?rd=/hinted&login_hint=" + url.QueryEscape("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := w.idp.Stats().LastAuthorize
	for key, want := range map[string]string{"prompt": "login", "acr_values": "phr", "login_hint": "alice@example.com"} {
		if got := q.Get(key); got != want {
			t.Errorf("authorization request %s = %q, want %q", key, got, want)
		}
	}
	final, err := demo.SignIn(context.Background(), c, resp.Request.URL.String(), "alice", "alice-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, final); seen.Path != "/hinted" || seen.Header.Get("X-Forwarded-User") != "u-alice" {
		t.Errorf("after sign-in: %s as %q", seen.Path, seen.Header.Get("X-Forwarded-User"))
	}

	resp, err = browser(t).Get(w.gateway + "/oauth2/start?login_hint=" + url.QueryEscape("alice\x00@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := w.idp.Stats().LastAuthorize; q.Has("login_hint") {
		t.Errorf("an unprintable login_hint reached the provider: %q", q.Get("login_hint"))
	}
	if !w.logs.waitFor("login_hint dropped") {
		t.Error("the dropped login_hint was not logged")
	}
}

// TestProviderCAFile: the demo provider serves HTTPS with a certificate of
// its own; with ca_file naming it the gateway discovers, signs in and
// fetches keys over TLS, with metrics on (the instrumented transport wraps
// the ca_file one).
func TestProviderCAFile(t *testing.T) {
	dir := t.TempDir()
	var idp atomic.Pointer[demo.Provider]
	tlsIdP := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.Load().ServeHTTP(w, r)
	}))
	tlsIdP.StartTLS()
	t.Cleanup(tlsIdP.Close)

	addr, metrics := freeAddr(t), freeAddr(t)
	public := "http://" + addr
	secret := randomSecret()
	p, err := demo.New(demo.Config{Issuer: tlsIdP.URL, Users: defaultUsers(),
		Clients: []demo.Client{{ID: "portcullis", Secret: secret, RedirectURIs: []string{public + "/oauth2/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	idp.Store(p)
	caFile := filepath.Join(dir, "idp-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsIdP.Certificate().Raw})))
	up := newRecorder(t)
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
server: {listen: %s, public_url: %s}
providers: [{id: corp, issuer_url: %s, client_id: portcullis, client_secret: %s, ca_file: %s}]
session: {cookie: {secrets: [%s], secure: false}}
upstreams: [{path: /, url: %s}]
policy: {email_domains: [example.com]}
metrics: {listen: %s}
`, addr, public, tlsIdP.URL, secret, caFile, randomSecret(), up.URL, metrics))
	rp := &replica{url: public, config: cfg, env: os.Environ()}
	rp.start(t)
	t.Cleanup(func() { rp.stop(t) })

	// The browser trusts the provider's certificate too.
	jar, _ := cookiejar.New(nil)
	pool := x509.NewCertPool()
	pool.AddCert(tlsIdP.Certificate())
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(public + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), tlsIdP.URL) {
		t.Fatalf("GET / ended at %s, want the provider's login page", resp.Request.URL)
	}
	final, err := demo.SignIn(context.Background(), c, resp.Request.URL.String(), "alice", "alice-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeSeen(t, final).Header.Get("X-Forwarded-User"); got != "u-alice" {
		t.Errorf("X-Forwarded-User = %q", got)
	}
	if n := p.Stats().TokenRequests["authorization_code"]; n != 1 {
		t.Errorf("code exchanges over TLS = %d, want 1", n)
	}
	resp, err = http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `portcullis_provider_request_duration_seconds_count{outcome="2xx",provider="corp"}`; !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s: the provider's calls bypassed the instrumented transport", want)
	}
}
