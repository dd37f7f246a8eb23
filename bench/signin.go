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

// startProvider starts the demo provider with alice and one client
// registration per gateway. Access tokens live an hour, so no gateway
// refreshes tokens during the measurement; a refresh would measure the
// provider, which shares the machine.
func (h *harness) startProvider(gws []*gateway) error {
	var clients []demo.Client
	for _, g := range gws {
		clients = append(clients, demo.Client{ID: g.clientID, Secret: g.secret,
			RedirectURIs: []string{g.url + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{g.url + "/"}})
	}
	idp, err := demo.Start("127.0.0.1:0", demo.Config{Users: []demo.User{alice}, Clients: clients,
		AccessTokenLifetime: time.Hour, IDTokenLifetime: time.Hour})
	if err != nil {
		return err
	}
	h.idp = idp
	return nil
}

// signIn opens the gateway as a browser, signs in as alice at the
// provider's login page, and keeps the session cookie the gateway set.
func (h *harness) signIn(ctx context.Context, g *gateway) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", g.url+"/", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("opening %s: %w", g.url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), h.idp.URL) {
		return fmt.Errorf("GET %s/ ended at %s (%s), want the provider's login page", g.url, resp.Request.URL, resp.Status)
	}
	final, err := demo.SignIn(ctx, c, resp.Request.URL.String(), alice.Username, alice.Password)
	if err != nil {
		return fmt.Errorf("signing in to portcullis-%s: %w", g.name, err)
	}
	body, _ := io.ReadAll(final.Body)
	final.Body.Close()
	if final.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return fmt.Errorf("after signing in to portcullis-%s: %s %q, want the upstream's page", g.name, final.Status, body)
	}
	u, _ := url.Parse(g.url)
	g.cookie = sessionCookie(jar.Cookies(u), "_portcullis")
	if g.cookie == "" {
		return fmt.Errorf("portcullis-%s set no session cookie", g.name)
	}
	return nil
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
