package validate

// exercise_test.go takes a running gateway down the paths that make its
// labelled metrics appear: a sign-in at a real OpenID provider, a refresh,
// a denied request, a policy expression that fails, a configuration reload
// and a sign-out with token revocation.

import (
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// startExampleProvider serves zitadel/oidc's stock example provider (its
// storage, users and login form, unchanged) on loopback, with one web
// client for the gateway, and returns its issuer.
func startExampleProvider(t *testing.T, clientID, secret, redirectURI string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	clients := map[string]*storage.Client{clientID: storage.WebClient(clientID, secret, redirectURI)}
	store := storage.NewStorageWithClients(storage.NewUserStore(issuer+"/"), clients)
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, store, slog.New(slog.DiscardHandler), false), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("example provider: %v", err)
		}
	})
	return issuer
}

// The example's login form: it posts to an absolute path, with the auth
// request's id in a hidden field.
var (
	loginActionRE = regexp.MustCompile(`<form method="POST" action="([^"]*)"`)
	loginIDRE     = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)">`)
)

// signIn opens a protected page, fills in the example provider's form as
// its first user and follows the redirects back through the gateway.
func signIn(t *testing.T, c *http.Client, gw *runningGateway, issuer string) {
	t.Helper()
	resp, err := c.Get(gw.public + "/app")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	login := resp.Request.URL
	if !strings.HasPrefix(login.String(), issuer+"/login/") {
		t.Fatalf("GET /app ended at %s, want the example provider's login page", login)
	}
	action, id := loginActionRE.FindSubmatch(page), loginIDRE.FindSubmatch(page)
	if action == nil || id == nil {
		t.Fatalf("no login form at %s:\n%s", login, page)
	}
	target, err := login.Parse(html.UnescapeString(string(action[1])))
	if err != nil {
		t.Fatal(err)
	}
	// The example's first user: "test-user@" + the issuer's host name.
	resp, err = c.PostForm(target.String(), url.Values{
		"id": {html.UnescapeString(string(id[1]))}, "username": {"test-user@127.0.0.1"}, "password": {"verysecure"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "upstream\n" {
		t.Fatalf("the sign-in ended at %s with %s:\n%s", resp.Request.URL, resp.Status, body)
	}
}

// scrapeExercisedGateway runs the gateway, takes it down every path the
// queries need, and returns what /metrics then lists.
func scrapeExercisedGateway(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	redisAddr := startRedis(t)
	secret := randomBase64(24)
	public := "http://" + freeAddr(t)
	issuer := startExampleProvider(t, "portcullis", secret, public+"/oauth2/callback")
	gw := startGatewayAt(t, public, issuer, secret, redisAddr)

	c := newBrowser(t)
	signIn(t, c, gw, issuer) // sign-in success, decisions, provider calls, Redis
	for _, step := range []struct {
		path string
		want int
	}{
		{"/app", http.StatusOK},        // a refresh: the token expires within refresh_before
		{"/t/x", http.StatusForbidden}, // the expression fails: no tenant claim
		{"/oauth2/callback?state=forged&code=forged", http.StatusBadRequest}, // a failed sign-in
	} {
		if err := expectStatus(c, gw.public+step.path, step.want); err != nil {
			t.Error(err)
		}
	}
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	resp, err := c.PostForm(gw.public+"/oauth2/sign_out", url.Values{}) // ends the session, revokes its tokens
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var families map[string]*dto.MetricFamily
	waitFor(t, "the reload to be counted", func() error {
		families = gw.scrape(t)
		if _, ok := families["portcullis_config_reload_total"]; !ok {
			return fmt.Errorf("no portcullis_config_reload_total yet")
		}
		return nil
	})
	return families
}
