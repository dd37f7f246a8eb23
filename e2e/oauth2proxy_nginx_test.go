package e2e

import (
	"html"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// oauth2-proxy's own documented nginx auth_request block, run verbatim
// (testdata/oauth2-proxy/README.md says where each comes from) in front of
// Portcullis: a migrating user's configuration must keep working.

// oauth2ProxyNginx runs the documented block in file with only the listen
// address (and its TLS lines), oauth2-proxy's address and the backend
// changed.
func oauth2ProxyNginx(t *testing.T, file, listen, gateway, app string) {
	t.Helper()
	doc, err := os.ReadFile("testdata/oauth2-proxy/" + file)
	if err != nil {
		t.Fatal(err)
	}
	runNginx(t, listen, substitute(t, string(doc), map[string]string{
		"listen 443 ssl;":       "listen " + listen + ";",
		"server_name ...;":      "server_name _;",
		"include ssl/ssl.conf;": "",
		"127.0.0.1:4180":        strings.TrimPrefix(gateway, "http://"),
		"http://backend/":       app + "/",
	}))
}

// statusLog is a transport that records every response a browser gets,
// redirects included, so that a test can say none was a 5xx.
type statusLog struct {
	mu   sync.Mutex
	seen []string
	bad  []string
}

func (l *statusLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	line := r.Method + " " + r.URL.String() + " " + resp.Status
	l.seen = append(l.seen, line)
	if resp.StatusCode >= 500 {
		l.bad = append(l.bad, line)
	}
	return resp, nil
}

func (l *statusLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Errorf("server errors in the flow: %q\nall requests:\n%s", l.bad, strings.Join(l.seen, "\n"))
	}
}

// loggedBrowser is browser(t) recording every status it receives.
func loggedBrowser(t *testing.T) (*http.Client, *statusLog) {
	c := browser(t)
	l := &statusLog{}
	c.Transport = l
	return c, l
}

// TestOAuth2ProxyNginxBlock: the current documented block. An
// unauthenticated browser is sent to /oauth2/sign_in (by nginx's named
// location), from there to the provider, and once signed in the backend
// gets X-User and X-Email from the auth answer. No request gets a 500: an
// X-Forwarded-Uri from nginx no longer makes /oauth2/auth redirect.
func TestOAuth2ProxyNginxBlock(t *testing.T) {
	listen := freeAddr(t)
	w := newWorld(t, worldOptions{publicAddr: listen, policy: nginxPolicy})
	oauth2ProxyNginx(t, "nginx-current.conf", listen, w.gateway, w.upstream.URL)
	site := "http://" + listen

	c, log := loggedBrowser(t)
	first, err := noFollow(c).Get(site + "/reports/q3?x=1")
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	if loc := first.Header.Get("Location"); first.StatusCode != http.StatusFound || !strings.Contains(loc, "/oauth2/sign_in?rd=") {
		t.Fatalf("unauthenticated through nginx: %d to %q, want nginx's 302 to /oauth2/sign_in", first.StatusCode, loc)
	}
	final := signInVia(t, w, c, site+"/reports/q3?x=1", "alice")
	// nginx's rd is $scheme://$host$request_uri: $host has no port, so on
	// this test's non-default port rd names another origin, which the
	// redirect policy refuses; the browser lands on / of the site.
	seen := decodeSeen(t, final)
	if final.Request.URL.Host != listen || seen.Path != "/" {
		t.Errorf("after sign-in the browser is at %s, the app got %s", final.Request.URL, seen.Path)
	}
	checkOAuth2ProxyHeaders(t, seen)

	// Signed in, the original page: the app gets it with the identity.
	resp, err := c.Get(site + "/reports/q3?x=1")
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	if seen.Path != "/reports/q3" || seen.Query != "x=1" {
		t.Errorf("the app got %s?%s", seen.Path, seen.Query)
	}
	checkOAuth2ProxyHeaders(t, seen)
	log.check(t)
	checkOAuth2ProxyDenials(t, w, site)
}

// checkOAuth2ProxyDenials: through oauth2-proxy's block, dave may use the
// site but not /admin/: nginx answers 403 (the gateway's 403 passes
// through auth_request as the denial it is), and forged headers get no
// further.
func checkOAuth2ProxyDenials(t *testing.T, w *world, site string) {
	t.Helper()
	dave, daveLog, before := checkDaveDenied(t, w, site)
	// The block clears no forwarded header but X-Forwarded-Uri: one a
	// client adds names another request than nginx's, and the gateway
	// refuses it with a 403 (a 400 would be nginx's 500), signed in or not.
	for _, forged := range [][2]string{
		{"X-Original-URI", "/public/x"},
		{"X-Original-URL", site + "/public/x"},
	} {
		for _, c := range []*http.Client{dave, http.DefaultClient} {
			req, _ := http.NewRequest("GET", site+"/admin/panel", nil)
			req.Header.Set(forged[0], forged[1])
			req.Header.Set("Accept", "application/json")
			resp, err := noFollow(c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("a forged %s through the block: %d, want 403", forged[0], resp.StatusCode)
			}
		}
	}
	if w.upstream.count() != before {
		t.Error("a forged header reached the app")
	}
	daveLog.check(t)
}

// signInVia follows target in the browser c to the provider's login page
// (failing the test if it ends anywhere else), signs user in there and
// returns where the browser ends.
func signInVia(t *testing.T, w *world, c *http.Client, target, user string) *http.Response {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), w.idp.URL) {
		t.Fatalf("the browser ended at %s (%d), want the provider's login page", resp.Request.URL, resp.StatusCode)
	}
	final, err := demoSignIn(c, resp.Request.URL.String(), user, w.users[user].Password)
	if err != nil {
		t.Fatal(err)
	}
	return final
}

// checkDaveDenied signs dave in through the proxy at site and checks
// that /admin/ (admins only, nginxPolicy) is a 403 that never reaches the
// app; it returns dave's browser and the app's request count.
func checkDaveDenied(t *testing.T, w *world, site string) (*http.Client, *statusLog, int) {
	t.Helper()
	dave, daveLog := loggedBrowser(t)
	resp, err := dave.Get(site + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, err = demoSignIn(dave, resp.Request.URL.String(), "dave", w.users["dave"].Password); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	before := w.upstream.count()
	resp, err = dave.Get(site + "/admin/panel")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || w.upstream.count() != before {
		t.Errorf("dave at /admin/: %d, want 403 and no request to the app", resp.StatusCode)
	}
	return dave, daveLog, before
}

// TestOAuth2ProxyNginxBlock403: the block as documented up to 7.9.x,
// error_page 401 =403 /oauth2/sign_in: nginx serves the sign-in answer
// with status 403, so a browser does not follow its Location. The body
// still leads on (a meta refresh, which the test follows as a browser
// would, and a link); X-Auth-Request-Redirect ($request_uri) brings the
// user back to the page they asked for.
func TestOAuth2ProxyNginxBlock403(t *testing.T) {
	listen := freeAddr(t)
	w := newWorld(t, worldOptions{publicAddr: listen, policy: nginxPolicy})
	oauth2ProxyNginx(t, "nginx-7.9.conf", listen, w.gateway, w.upstream.URL)
	site := "http://" + listen

	c, log := loggedBrowser(t)
	resp, err := c.Get(site + "/reports/q3?x=1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unauthenticated through nginx: %d, want nginx's 403 (error_page 401 =403)", resp.StatusCode)
	}
	// A browser follows the page's meta refresh by itself; the link is
	// for one that does not.
	refresh := regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`).FindSubmatch(page)
	href := regexp.MustCompile(`<a href="([^"]+)"`).FindSubmatch(page)
	if refresh == nil || href == nil || string(refresh[1]) != string(href[1]) {
		t.Fatalf("the sign-in answer does not lead on (a refresh and a link to the same place):\n%s", page)
	}
	link := html.UnescapeString(string(refresh[1]))
	if !strings.HasPrefix(link, w.idp.URL) {
		t.Fatalf("the sign-in page leads to %q, want the provider", link)
	}
	resp, err = c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	alice := w.users["alice"]
	final, err := demoSignIn(c, resp.Request.URL.String(), alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	seen := decodeSeen(t, final)
	if seen.Path != "/reports/q3" || seen.Query != "x=1" {
		t.Errorf("after sign-in the app got %s?%s, want the page first asked for", seen.Path, seen.Query)
	}
	checkOAuth2ProxyHeaders(t, seen)
	log.check(t)
}

// checkOAuth2ProxyHeaders: what the block's auth_request_set lines copy
// from the auth answer reaches the app, once.
func checkOAuth2ProxyHeaders(t *testing.T, seen seenRequest) {
	t.Helper()
	checkHeadersOnce(t, seen, map[string]string{"X-Email": "alice@example.com", "X-User": "u-alice"})
}

// checkHeadersOnce: the app got each header in want exactly once, with
// that value.
func checkHeadersOnce(t *testing.T, seen seenRequest, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := seen.Header.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("app got %s = %q, want %q", name, got, v)
		}
	}
}
