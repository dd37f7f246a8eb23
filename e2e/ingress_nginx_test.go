package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestIngressNginxShape runs the server block ingress-nginx generates for
// the annotations in docs/forward-auth.md (testdata/ingress-nginx/README.md
// says what it is and what is substituted) with real nginx in front of the
// gateway: a deep link survives the sign-in, no response is a 5xx, the app
// gets each listed X-Auth-Request-* header once and never a client's own
// copy, and a user the policy refuses gets 403.
func TestIngressNginxShape(t *testing.T) {
	requireTool(t, "nginx", "nginx-light")
	listen := freeAddr(t)
	w := newWorld(t, worldOptions{publicAddr: listen, policy: nginxPolicy})
	doc, err := os.ReadFile("testdata/ingress-nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	runNginx(t, listen, substitute(t, string(doc), map[string]string{
		"listen 80;":                                        "listen " + listen + ";",
		"server_name dashboard.example.com;":                "server_name _;",
		"http://portcullis.auth.svc.cluster.local:4180":     w.gateway,
		"http://upstream_balancer":                          w.upstream.URL,
		"https://$host/oauth2/start":                        "http://$http_host/oauth2/start",
		"set_escape_uri $escaped_request_uri $request_uri;": "set $escaped_request_uri $request_uri;",
	}))
	site := "http://" + listen

	c, log := loggedBrowser(t)
	const deep = "/reports/q3?year=2026"
	first, err := noFollow(c).Get(site + deep)
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	if loc := first.Header.Get("Location"); first.StatusCode != http.StatusFound || loc != site+"/oauth2/start?rd="+deep {
		t.Fatalf("unauthenticated through ingress-nginx: %d to %q, want the auth-signin URL", first.StatusCode, loc)
	}
	final := signInVia(t, w, c, site+deep, "alice")
	seen := decodeSeen(t, final)
	if final.Request.URL.String() != site+deep || seen.Path != "/reports/q3" || seen.Query != "year=2026" {
		t.Errorf("after sign-in the browser is at %s and the app got %s?%s, want %s", final.Request.URL, seen.Path, seen.Query, deep)
	}
	checkIngressHeaders(t, seen)

	// A signed-in browser's own copies of the listed headers are
	// overwritten by the auth answer's.
	req, _ := http.NewRequest("GET", site+"/reports/q4", nil)
	req.Header.Set("X-Auth-Request-Email", "evil@example.com")
	req.Header.Set("X-Auth-Request-User", "evil")
	req.Header.Set("X-Auth-Request-Groups", "forged-group")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	checkIngressHeaders(t, seen)
	if g := seen.Header.Values("X-Auth-Request-Groups"); len(g) != 1 || strings.Contains(g[0], "forged") {
		t.Errorf("a client's X-Auth-Request-Groups reached the app: %q", g)
	}
	log.check(t)
	_, daveLog, _ := checkDaveDenied(t, w, site)
	daveLog.check(t)
}

// checkIngressHeaders: what auth-response-headers lists reaches the app
// once, with the signed-in user's values.
func checkIngressHeaders(t *testing.T, seen seenRequest) {
	t.Helper()
	checkHeadersOnce(t, seen, map[string]string{"X-Auth-Request-Email": "alice@example.com", "X-Auth-Request-User": "u-alice"})
}
