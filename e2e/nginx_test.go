package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nginxSnippet is the server block documented in docs/forward-auth.md, so
// the documentation is what this test runs.
func nginxSnippet(t *testing.T) string {
	return docSnippet(t, "## nginx \\(`auth_request`\\)", "nginx")
}

// docSnippet is the first fenced block in lang after the heading that
// headingRE matches in docs/forward-auth.md.
func docSnippet(t *testing.T, headingRE, lang string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/forward-auth.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)" + headingRE + ".*?```" + lang + "\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/forward-auth.md has no %s block under its heading %s", lang, headingRE)
	}
	return string(m[1])
}

// startNginx runs nginx in the foreground with the documented server block,
// pointed at the gateway and the app.
func startNginx(t *testing.T, listen, gateway, app string) {
	t.Helper()
	runNginx(t, listen, substitute(t, nginxSnippet(t), map[string]string{
		"listen 80;":     "listen " + listen + ";",
		"127.0.0.1:4180": strings.TrimPrefix(gateway, "http://"),
		"127.0.0.1:8080": strings.TrimPrefix(app, "http://"),
	}))
}

// substitute replaces each key of subst in a documented configuration,
// failing when the documentation no longer has it.
func substitute(t *testing.T, conf string, subst map[string]string) string {
	t.Helper()
	for old, new := range subst {
		if !strings.Contains(conf, old) {
			t.Fatalf("documented nginx block lacks %q", old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	return conf
}

// runNginx runs nginx in the foreground with server as its one server
// block, until the test ends; it returns once nginx listens on listen.
func runNginx(t *testing.T, listen, server string) {
	t.Helper()
	bin := requireTool(t, "nginx", "nginx-light")
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, server)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := func() string {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return "error.log:\n" + string(log)
	}
	runListening(t, "nginx", listen, 10*time.Second, errorLog, nil, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confFile)
}

// runListening runs a proxy (nginx, caddy) until the test ends and
// returns once it listens on listen; env, when set, replaces the
// environment. On failure its output, and extra's, is logged.
func runListening(t *testing.T, name, listen string, wait time.Duration, extra func() string, env []string, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	more := func() string {
		if extra == nil {
			return ""
		}
		return extra()
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s\n%s", name, out.String(), more())
		}
	})
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s\n%s", name, err, out.String(), more())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const nginxPolicy = `policy:
  email_domains: [example.com]
  routes:
    - path: /public/
      public: true
    - path: /admin/
      groups: [admins]
`

// TestNginxAuthRequest runs the documented nginx configuration in front of
// an app, with Portcullis as the auth_request service.
func TestNginxAuthRequest(t *testing.T) {
	listen := freeAddr(t)
	w := newWorld(t, worldOptions{publicAddr: listen, policy: nginxPolicy})
	startNginx(t, listen, w.gateway, w.upstream.URL)
	site := "http://" + listen

	// Unauthenticated: nginx's 401 becomes Portcullis' redirect to the provider.
	c := browser(t)
	resp, err := noFollow(c).Get(site + "/reports/q3?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !w.toSignIn(resp) {
		t.Fatalf("unauthenticated GET through nginx = %d to %q, want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	if w.upstream.count() != 0 {
		t.Fatal("the app was reached without a session")
	}

	// Sign in; the browser returns to the page it asked for.
	resp, err = c.Get(site + "/reports/q3?x=1")
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
		t.Errorf("after sign-in the app got %s?%s", seen.Path, seen.Query)
	}
	for name, want := range map[string]string{
		"X-Forwarded-User":               "u-alice",
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Groups":             "admins,developers",
		"X-Forwarded-Preferred-Username": "alice",
	} {
		if got := seen.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("app got %s = %q, want %q (set by nginx from the auth answer)", name, got, want)
		}
	}

	// Spoofed identity headers from the client never reach the app.
	req, _ := http.NewRequest("GET", site+"/admin/panel", nil)
	for _, h := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Auth-Request-Email"} {
		req.Header.Set(h, "spoofed")
	}
	req.Header["X_Forwarded_Email"] = []string{"spoofed"}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	for name, vs := range seen.Header {
		for _, v := range vs {
			if strings.Contains(v, "spoofed") {
				t.Errorf("app received the spoofed %s: %q", name, v)
			}
		}
	}

	// A forged X-Forwarded-Uri sent through nginx changes nothing: dave may
	// use the site but is not an admin, and /admin/ stays closed to him.
	dave := browser(t)
	resp, err = dave.Get(site + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if final, err = demoSignIn(dave, resp.Request.URL.String(), "dave", w.users["dave"].Password); err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, final); seen.Header.Get("X-Forwarded-User") != "u-dave" {
		t.Fatalf("dave is not signed in: %v", seen.Header)
	}
	before := w.upstream.count()
	for _, forged := range [][2]string{
		{"X-Forwarded-Uri", "/public/x"},
		{"X-Original-URI", "/public/x"},
		{"X-Original-URL", site + "/public/x"},
	} {
		req, _ := http.NewRequest("GET", site+"/admin/panel", nil)
		req.Header.Set(forged[0], forged[1])
		resp, err := noFollow(dave).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("dave with a forged %s: %d, want 403", forged[0], resp.StatusCode)
		}
	}
	if w.upstream.count() != before {
		t.Error("a forged header let dave reach /admin/")
	}

	// Public routes pass without a session.
	resp, err = http.Get(site + "/public/status")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)

	// The gateway called directly by an untrusted peer: its forwarded
	// headers are ignored, so it cannot learn or steer decisions.
	resp, err = untrustedClient(t).Do(mustRequest(t, w.gateway+"/oauth2/auth", "X-Forwarded-Uri", "/public/x", "Accept", "application/json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("untrusted peer's forged X-Forwarded-Uri: %d, want 401 (decided as GET /)", resp.StatusCode)
	}
}

// untrustedClient connects from 127.0.0.2, which the gateway (trusting
// 127.0.0.1 only) treats as any other client.
func untrustedClient(t *testing.T) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

func mustRequest(t *testing.T, url string, header ...string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// TestForwardAuthSignInLinkFromForwardedHost: a trusted proxy forwarding a
// Host the redirect policy does not admit gets a sign-in link without
// that target (the binary, over the wire, Traefik-style headers, at the
// entry point that redirects browsers).
func TestForwardAuthSignInLinkFromForwardedHost(t *testing.T) {
	w := newWorld(t, worldOptions{publicAddr: freeAddr(t)})
	c := noFollow(&http.Client{Timeout: 10 * time.Second})
	for _, tt := range []struct{ host, wantRD string }{
		{"evil.example", ""},
		{"127.0.0.1.evil.example", ""},
	} {
		resp, err := c.Do(mustRequest(t, w.gateway+"/oauth2/forward_auth", "Accept", "text/html", "X-Forwarded-Method", "GET",
			"X-Forwarded-Proto", "http", "X-Forwarded-Host", tt.host, "X-Forwarded-Uri", "/x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("host %s: %d to %v", tt.host, resp.StatusCode, err)
		}
		if !strings.HasSuffix(loc.Path, "/oauth2/start") || loc.Query().Get("rd") != tt.wantRD {
			t.Errorf("host %s: sign-in link %s, want rd=%q", tt.host, loc, tt.wantRD)
		}
	}
}
