package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// signin.go runs the demo provider in the harness process and signs in to
// each gateway through the real authorization-code flow, as a browser
// would; the session cookie it ends with is what wrk sends.

// alice is the user every load run is signed in as.
var alice = demo.User{ID: "u-alice", Username: "alice", Password: demo.NewPassword(),
	Email: "alice@example.com", EmailVerified: true, Name: "Alice",
	Groups: []string{"admins", "developers"}}

// startProvider starts the demo provider with users and one client
// registration per gateway, its access and ID tokens living tokenTTL. The
// load benchmark gives alice alone an hour, so no gateway refreshes tokens
// during the measurement (a refresh would measure the provider, which
// shares the machine); the soak wants refreshes and gives seconds.
func (h *harness) startProvider(gws []*gateway, users []demo.User, tokenTTL time.Duration) error {
	var clients []demo.Client
	for _, g := range gws {
		clients = append(clients, demo.Client{ID: g.clientID, Secret: g.secret,
			RedirectURIs:           []string{g.url + "/oauth2/callback"},
			PostLogoutRedirectURIs: []string{g.url + "/", g.url + "/oauth2/signed_out"}})
	}
	idp, err := demo.Start("127.0.0.1:0", demo.Config{Users: users, Clients: clients,
		AccessTokenLifetime: tokenTTL, IDTokenLifetime: tokenTTL})
	if err != nil {
		return err
	}
	h.idp = idp
	return nil
}

// signIn opens the gateway as a browser, signs in as alice at the
// provider's login page, and keeps the session cookie the gateway set.
func (h *harness) signIn(ctx context.Context, g *gateway) error {
	jar, err := signInAs(ctx, nil, h.idp.URL, g, alice)
	if err != nil {
		return err
	}
	u, _ := url.Parse(g.url)
	g.cookie = sessionCookie(jar.Cookies(u), "_portcullis")
	if g.cookie == "" {
		return fmt.Errorf("portcullis-%s set no session cookie", g.name)
	}
	return nil
}

// signInAs opens the gateway as a browser would (a new cookie jar, the
// redirects followed, over tr; nil is the default transport), signs in as
// user at the provider at idpURL through its login page, insists on
// ending at the upstream's page, and returns the jar with the session.
func signInAs(ctx context.Context, tr http.RoundTripper, idpURL string, g *gateway, user demo.User) (*cookiejar.Jar, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, "GET", g.url+"/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", g.url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), idpURL) {
		return nil, fmt.Errorf("GET %s/ ended at %s (%s), want the provider's login page", g.url, resp.Request.URL, resp.Status)
	}
	final, err := demo.SignIn(ctx, c, resp.Request.URL.String(), user.Username, user.Password)
	if err != nil {
		return nil, fmt.Errorf("signing in to portcullis-%s: %w", g.name, err)
	}
	body, _ := io.ReadAll(final.Body)
	final.Body.Close()
	if final.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return nil, fmt.Errorf("after signing in to portcullis-%s: %s %q, want the upstream's page", g.name, final.Status, body)
	}
	return jar, nil
}

// chunkName matches the chunks a large session cookie is split into.
var chunkName = regexp.MustCompile(`^_\d$`)

// sessionCookie is the Cookie header carrying the session: the cookie
// named base, or its chunks base_0, base_1, … (never the login cookies).
func sessionCookie(cookies []*http.Cookie, base string) string {
	var parts []string
	for _, c := range cookies {
		if c.Name == base || (strings.HasPrefix(c.Name, base) && chunkName.MatchString(c.Name[len(base):])) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}
