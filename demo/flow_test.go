package demo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The fixtures of the provider tests: one gateway-like client whose
// callback is a tiny loopback server, and two users.
const (
	clientID     = "gateway"
	clientSecret = "gateway-secret"
	alicePass    = "correct horse battery staple"
	bobPass      = "bob-password"
)

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

// sharedKey saves generating an RSA key for every test server.
func sharedKey(t *testing.T) *rsa.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatalf("generating key: %v", err)
		}
		testKey = k
	})
	return testKey
}

// rp is the relying party side of a test: the client's callback server,
// the oauth2 config and the go-oidc verifier.
type rp struct {
	idp      *Provider
	issuer   string
	callback *httptest.Server
	oauth    oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func testUsers() []User {
	return []User{
		{
			ID: "u-alice", Username: "alice", Password: alicePass,
			Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell",
			Groups: []string{"admins", "developers"},
			ExtraClaims: map[string]any{
				"hd":           "example.com",
				"realm_access": map[string]any{"roles": []any{"admin"}},
				"department":   "R&D <script>",
			},
		},
		{ID: "u-bob", Username: "bob", Password: bobPass, Email: "bob@example.com"},
	}
}

// startRP starts a provider with Start and the fixtures (change adjusts
// its config) and discovers it with go-oidc.
func startRP(t *testing.T, change func(*Config)) *rp {
	t.Helper()
	return newRP(t, "", change)
}

// newRP is startRP for an issuer URL ending in issuerPath; a non-empty path
// needs the address before New, so the provider is served by hand.
func newRP(t *testing.T, issuerPath string, change func(*Config)) *rp {
	t.Helper()
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("callback reached"))
	}))
	t.Cleanup(callback.Close)
	cfg := Config{
		Users: testUsers(),
		Clients: []Client{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs:           []string{callback.URL + "/oauth2/callback"},
			PostLogoutRedirectURIs: []string{callback.URL + "/signed-out"},
		}},
		SigningKey: sharedKey(t),
	}
	if change != nil {
		change(&cfg)
	}
	var idp *Provider
	if issuerPath == "" {
		srv, err := Start("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { srv.Close() })
		if srv.URL != srv.Issuer() {
			t.Fatalf("Server.URL = %q, Issuer() = %q", srv.URL, srv.Issuer())
		}
		idp = srv.Provider
	} else {
		srv := httptest.NewUnstartedServer(nil)
		cfg.Issuer = "http://" + srv.Listener.Addr().String() + issuerPath
		var err error
		if idp, err = New(cfg); err != nil {
			t.Fatalf("New: %v", err)
		}
		srv.Config.Handler = idp
		srv.Start()
		t.Cleanup(srv.Close)
	}

	provider, err := oidc.NewProvider(context.Background(), idp.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &rp{
		idp:      idp,
		issuer:   idp.Issuer(),
		callback: callback,
		oauth: oauth2.Config{
			ClientID: clientID, ClientSecret: clientSecret,
			Endpoint:    endpoint,
			RedirectURL: callback.URL + "/oauth2/callback",
			Scopes:      []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess},
		},
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// browser is an http.Client with a cookie jar that does not follow
// redirects, so each hop can be inspected.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// attempt is one authorization request in progress.
type attempt struct {
	state, nonce, verifier string
	loginURL               string
}

// authorize sends the browser to the authorization endpoint and returns
// where it was redirected: the login page. opts go into the request.
func (p *rp) authorize(t *testing.T, c *http.Client, opts ...oauth2.AuthCodeOption) attempt {
	t.Helper()
	a := attempt{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, opts...)
	resp, err := c.Get(p.oauth.AuthCodeURL(a.state, opts...))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize answered %s without a redirect", resp.Status)
	}
	a.loginURL = loc.String()
	return a
}

// code signs in through the login form and returns the code from the
// redirect to the client's callback, after checking its state.
func (p *rp) code(t *testing.T, c *http.Client, a attempt, username, password string) (string, error) {
	t.Helper()
	resp, err := SignIn(context.Background(), c, a.loginURL, username, password)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", errors.New("sign-in did not redirect to the client: " + resp.Status)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, p.oauth.RedirectURL; got != want {
		t.Fatalf("redirected to %q, want %q", got, want)
	}
	q := loc.Query()
	if got := q.Get("state"); got != a.state {
		t.Fatalf("state = %q, want %q", got, a.state)
	}
	if e := q.Get("error"); e != "" {
		return "", errors.New("authorization error: " + e)
	}
	return q.Get("code"), nil
}

// signIn runs the whole code flow for username and returns the tokens and
// the verified ID token.
func (p *rp) signIn(t *testing.T, username, password string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, attempt) {
	t.Helper()
	c := browser(t)
	a := p.authorize(t, c, opts...)
	code, err := p.code(t, c, a, username, password)
	if err != nil {
		t.Fatalf("sign-in as %s: %v", username, err)
	}
	tok, err := p.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt := p.verify(t, tok)
	if idt.Nonce != a.nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, a.nonce)
	}
	return tok, idt, a
}

// verify checks the ID token in tok with go-oidc.
func (p *rp) verify(t *testing.T, tok *oauth2.Token) *oidc.IDToken {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("token response has no id_token")
	}
	idt, err := p.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	return idt
}

// refresh redeems a refresh token.
func (p *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	return p.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// oauthErrorCode is the OAuth2 error code of err, or "" if it has none.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// claimsOf decodes the ID token's claims into a map.
func claimsOf(t *testing.T, idt *oidc.IDToken) map[string]any {
	t.Helper()
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		t.Fatalf("decoding claims: %v", err)
	}
	return m
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func oauthParam(k, v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam(k, v) }
