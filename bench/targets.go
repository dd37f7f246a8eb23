package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// targets.go starts what wrk drives, each in its own process: the
// upstream, the floors, Portcullis in each session mode, Redis, and nginx
// with the documented auth_request block.

// target is one thing wrk drives.
type target struct {
	name   string  // row label in the table
	url    string  // what wrk requests
	cookie string  // Cookie header sent with every request
	floor  *target // the baseline this target is compared to; nil for a floor
	// procs are the servers under test (not the upstream, not wrk): their
	// CPU time per request is reported.
	procs []*child
	redis bool // served by the Redis-mode gateway: counted for its cache hit ratio
}

// gateway is one Portcullis process.
type gateway struct {
	label    string // "cookie", "Redis": in the table
	name     string // "cookie", "redis": in file and client names
	store    string // session.store
	logLevel string
	addr     string
	url      string
	metrics  string // metrics.listen, with metrics.pprof on; "" for none
	clientID string // its registration at the demo provider
	secret   string // the client secret
	proc     *child
	cookie   string // the signed-in session's Cookie header, after signIn
	// scopes is providers[0].scopes, "" for [openid, email, profile];
	// sessionExtra are more session: keys, each line indented two spaces.
	// The soak asks for offline_access and sets refresh_before.
	scopes, sessionExtra string
}

// startRole runs this binary again as one of the servers in roles.go.
func (h *harness) startRole(name, role string, args ...string) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args = append([]string{"role", role, "-listen", addr}, args...)
	c, err := h.procs.server(name, h.dir, exec.Command(h.exe, args...))
	if err != nil {
		return nil, "", err
	}
	return c, addr, waitListening(c, addr)
}

// buildPortcullis builds the gateway binary once, into the temp dir.
func (h *harness) buildPortcullis(ctx context.Context) (string, error) {
	bin := filepath.Join(h.dir, "portcullis")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = h.root
	if out, err := h.procs.output(ctx, "go build", cmd); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// newGateway picks an address and a client registration for a gateway to
// be started once the provider runs.
func newGateway(label, store, logLevel string) (*gateway, error) {
	name := strings.ToLower(label)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return &gateway{label: label, name: name, store: store, logLevel: logLevel, addr: addr, url: "http://" + addr,
		clientID: "portcullis-" + name, secret: randomSecret()}, nil
}

// portcullisConfig is the gateway's configuration: the demo provider as
// issuer, one upstream, policy email_domains [example.com], everything else
// at its default. trusted_proxies names the local nginx, which asks
// /oauth2/auth; wrk's direct requests send no forwarded headers.
func portcullisConfig(g *gateway, issuer, secretFile, cookieSecret, redisAddr, upstream string) string {
	metrics := ""
	if g.metrics != "" {
		metrics = fmt.Sprintf("metrics:\n  listen: %s\n  pprof: true\n", g.metrics)
	}
	scopes := g.scopes
	if scopes == "" {
		scopes = "[openid, email, profile]"
	}
	store := "  store: cookie\n"
	if g.store == "redis" {
		store = fmt.Sprintf("  store: redis\n  redis:\n    addrs: [%s]\n", redisAddr)
	}
	return fmt.Sprintf(`server:
  listen: %s
  public_url: %s
  trusted_proxies: [127.0.0.1]
providers:
  - id: demo
    type: oidc
    issuer_url: %s
    client_id: %s
    client_secret_file: %s
    scopes: %s
session:
%s%s  cookie:
    name: _portcullis
    secrets: ["%s"]
    secure: false
upstreams:
  - path: /
    url: %s
policy:
  email_domains: [example.com]
log:
  level: %s
%s`, g.addr, g.url, issuer, g.clientID, secretFile, scopes, store, g.sessionExtra, cookieSecret, upstream, g.logLevel, metrics)
}

// startPortcullis writes g's configuration and runs the built binary with
// it until /ready says yes.
func (h *harness) startPortcullis(g *gateway, bin, cookieSecret, redisAddr, upstream string) error {
	secretFile := filepath.Join(h.dir, g.name+".client-secret")
	if err := os.WriteFile(secretFile, []byte(g.secret+"\n"), 0o600); err != nil {
		return err
	}
	cfg := portcullisConfig(g, h.idp.URL, secretFile, cookieSecret, redisAddr, upstream)
	cfgFile := filepath.Join(h.dir, g.name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	c, err := h.procs.server("portcullis-"+g.name, h.dir, exec.Command(bin, "-config", cfgFile))
	if err != nil {
		return err
	}
	g.proc = c
	return waitReady(c, g.url)
}

// startRedis runs a throwaway redis-server on a free port, without
// persistence.
func (h *harness) startRedis() (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	dir := filepath.Join(h.dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes")
	c, err := h.procs.server("redis", h.dir, cmd)
	if err != nil {
		return nil, "", err
	}
	return c, addr, waitListening(c, addr)
}

// nginxServerBlock is the server block documented in docs/forward-auth.md,
// so that what is measured is what the documentation tells people to run
// (e2e/nginx_test.go tests the same block).
func nginxServerBlock(root string) (string, error) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "forward-auth.md"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile("(?s)## nginx \\(`auth_request`\\).*?```nginx\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		return "", fmt.Errorf("docs/forward-auth.md has no nginx block under its nginx heading")
	}
	return string(m[1]), nil
}

// nginxConfig runs the documented block with one change: both proxy_pass
// targets go through an upstream block with idle keep-alive connections,
// so nginx does not open a TCP connection per request and per
// subrequest. Every forward-auth target gets the same configuration; only
// the auth service differs.
func nginxConfig(block, dir, listen, auth, app string) (string, error) {
	const keepAlive = "proxy_http_version 1.1;\n        proxy_set_header Connection \"\";"
	for old, new := range map[string]string{
		"listen 80;":                        "listen " + listen + ";",
		"proxy_pass http://127.0.0.1:4180;": "proxy_pass http://auth_service;\n        " + keepAlive,
		"proxy_pass http://127.0.0.1:8080;": "proxy_pass http://app;\n        " + keepAlive,
	} {
		if !strings.Contains(block, old) {
			return "", fmt.Errorf("the nginx block in docs/forward-auth.md lacks %q", old)
		}
		block = strings.ReplaceAll(block, old, new)
	}
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream auth_service {
        server %[2]s;
        keepalive 64;
    }
    upstream app {
        server %[3]s;
        keepalive 64;
    }
%[4]s
}
`, dir, auth, app, block), nil
}

// startNginx runs nginx in the foreground with the documented block in
// front of app, asking auth.
func (h *harness) startNginx(name, block, auth, app string) (*child, string, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	conf, err := nginxConfig(block, dir, listen, auth, app)
	if err != nil {
		return nil, "", err
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	cmd := exec.Command("nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confFile)
	c, err := h.procs.server(name, h.dir, cmd)
	if err != nil {
		return nil, "", err
	}
	return c, "http://" + listen, waitListening(c, listen)
}

// check makes one request to t as wrk will and insists on the upstream's
// 200, so that a target that would only answer redirects or errors is
// caught before it is measured.
func check(t *target) error {
	req, err := http.NewRequest("GET", t.url, nil)
	if err != nil {
		return err
	}
	if t.cookie != "" {
		req.Header.Set("Cookie", t.cookie)
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return fmt.Errorf("%s: GET %s answered %s %q (Location %q), want 200 %q",
			t.name, t.url, resp.Status, body, resp.Header.Get("Location"), upstreamBody)
	}
	return nil
}

// randomSecret is base64 of 32 random bytes, as Portcullis wants its
// secrets.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
