// Package e2e runs the real portcullis binary against a real OpenID
// provider (zitadel/oidc's op package, via package demo) and real upstreams,
// all on loopback, and walks what a browser does.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// binary is the portcullis executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "provider" {
		os.Exit(runProviderProcess()) // the test binary re-executed as the provider (outage_test.go)
	}
	dir, err := os.MkdirTemp("", "portcullis-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "portcullis")
	build := exec.Command("go", "build", "-race", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building portcullis:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor reports whether every want appears in the buffer within 2s. A
// gateway writes its access line after the response, and its output
// reaches the buffer through a pipe: a line can lag the response it is
// about.
func (s *syncBuffer) waitFor(want ...string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for {
		logs, all := s.String(), true
		for _, w := range want {
			all = all && strings.Contains(logs, w)
		}
		if all || time.Now().After(deadline) {
			return all
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ports freeAddr hands out: below the kernel's ephemeral range (Linux:
// 32768–60999), which every :0 listener (httptest servers, redistest) and
// every outgoing connection draws from. A port freed by freeAddr could
// otherwise go to one of those before the gateway binds it, and the
// gateway's /ready would be answered by someone else.
const (
	freePortLow  = 20000
	freePortHigh = 32000
)

// handedOut remembers the ports freeAddr gave, so no two callers in this
// process get the same one.
var handedOut sync.Map

// freeAddr returns a loopback address nobody listens on right now and no
// other caller of freeAddr has been given.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		port := freePortLow + mrand.IntN(freePortHigh-freePortLow)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // someone else's
		}
		ln.Close()
		return ln.Addr().String()
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// world is one provider, one upstream and one or more gateway processes.
type world struct {
	t        *testing.T
	idp      *demo.Server // nil when worldOptions.provider runs it elsewhere
	issuer   string       // the provider's URL
	upstream *recorder
	gateway  string // base URL of the first replica, or of the front (frontAddr)
	logs     *syncBuffer
	cmd      *exec.Cmd
	users    map[string]demo.User
	replicas []*replica
}

// replica is one gateway process.
type replica struct {
	url     string
	cmd     *exec.Cmd
	logs    *syncBuffer
	config  string // the configuration file
	env     []string
	admin   string // admin.listen, when {{ADMIN}} appears in extraConfig
	metrics string // metrics.listen, when {{METRICS}} appears in extraConfig
	// waitReadyWith is the client that polls /ready (an HTTPS one for TLS).
	waitReadyWith *http.Client
}

type worldOptions struct {
	// extraConfig is appended to the generated configuration;
	// serverExtra is added to its server section (indented by two).
	extraConfig string
	serverExtra string
	// policy replaces the default policy section.
	policy string
	users  []demo.User
	// gatewayClient adjusts the gateway's client registration at the
	// provider; extraClients registers more (machine clients).
	gatewayClient func(*demo.Client)
	extraClients  []demo.Client
	// redis, when set, is the address of the Redis the gateway keeps
	// sessions in; redisExtra is added to the session.redis section.
	redis      string
	redisExtra string
	// sessionExtra is added to the session section; providerExtra to the
	// provider's (indented by four spaces; {{ISSUER}} becomes the
	// provider's URL).
	sessionExtra  string
	providerExtra string
	// scopes replaces the requested scopes; accessTokenTTL the provider's
	// access token lifetime.
	scopes         string
	accessTokenTTL time.Duration
	// idp adjusts the provider's configuration (behaviours of providers in
	// the wild: NoEndSession, RefreshReuseError, an issuer path, ...).
	idp func(*demo.Config)
	// providerType is the provider's type (default oidc).
	providerType string
	// replicas is the number of gateway processes sharing the
	// configuration (default 1). Browsers reach the first one.
	replicas int
	// upstreamURL, when set, replaces the recorder as the upstream (an app
	// serving HTML to a real browser).
	upstreamURL string
	// publicAddr is where browsers reach the sign-in endpoints when that is
	// not the gateway itself (an nginx in front); the gateway then has no
	// upstreams and trusts 127.0.0.1 as its proxy.
	publicAddr string
	// frontAddr is where browsers reach the gateways when a reverse proxy
	// in front balances them (nginx with an upstream block): public_url
	// names it and the gateways trust 127.0.0.1 as their proxy, as with
	// publicAddr, but they keep their upstreams, and w.gateway is the
	// front's URL.
	frontAddr string
	// provider, when set, runs the provider with cfg somewhere else (a
	// process of its own) and returns its issuer URL; w.idp is then nil.
	provider func(t *testing.T, cfg demo.Config) string
}

func defaultUsers() []demo.User {
	return []demo.User{
		{ID: "u-alice", Username: "alice", Password: "alice-password-1", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice", Groups: []string{"admins", "developers"}},
		{ID: "u-bob", Username: "bob", Password: "bob-password-1", Email: "bob@example.org", EmailVerified: true,
			Name: "Bob", Groups: []string{"developers"}},
		{ID: "u-dave", Username: "dave", Password: "dave-password-1", Email: "dave@example.com", EmailVerified: true,
			Name: "Dave", Groups: []string{"developers"}},
		{ID: "u-eve", Username: "eve", Password: "eve-password-1", Email: "eve@example.com", EmailVerified: false, Name: "Eve"},
	}
}

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	w := &world{t: t, upstream: newRecorder(t), logs: &syncBuffer{}, users: map[string]demo.User{}}
	if opts.users == nil {
		opts.users = defaultUsers()
	}
	for _, u := range opts.users {
		w.users[u.Username] = u
	}
	if opts.replicas == 0 {
		opts.replicas = 1
	}
	addrs := make([]string, opts.replicas)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	public := "http://" + addrs[0]
	if opts.publicAddr != "" {
		public = "http://" + opts.publicAddr
	}
	if opts.frontAddr != "" {
		public = "http://" + opts.frontAddr
	}
	if opts.policy == "" {
		opts.policy = "policy:\n  email_domains: [example.com]\n"
	}
	secret := randomSecret()
	gwClient := demo.Client{ID: "portcullis", Secret: secret,
		RedirectURIs: []string{public + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{public + "/", public + "/oauth2/signed_out"}}
	if opts.gatewayClient != nil {
		opts.gatewayClient(&gwClient)
	}
	idpConfig := demo.Config{
		Users:               opts.users,
		Clients:             append([]demo.Client{gwClient}, opts.extraClients...),
		AccessTokenLifetime: opts.accessTokenTTL,
	}
	if opts.idp != nil {
		opts.idp(&idpConfig)
	}
	if opts.provider != nil {
		w.issuer = opts.provider(t, idpConfig)
	} else {
		idp, err := demo.Start("127.0.0.1:0", idpConfig)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idp.Close() })
		w.idp, w.issuer = idp, idp.URL
	}

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	secretLine := "    client_secret_file: " + secretFile
	if gwClient.Secret == "" {
		secretLine = "" // a public or private_key_jwt client (gatewayClient)
	}
	store := ""
	if opts.redis != "" {
		store = fmt.Sprintf("  store: redis\n  redis:\n    addrs: [%s]\n%s", opts.redis, opts.redisExtra)
	}
	cookieSecret := randomSecret()
	upstream := w.upstream.URL
	if opts.upstreamURL != "" {
		upstream = opts.upstreamURL
	}
	if opts.providerType == "" {
		opts.providerType = "oidc"
	}
	if opts.scopes == "" {
		opts.scopes = "[openid, email, profile]"
	}
	for i, addr := range addrs {
		admin, metrics := "", ""
		extra := opts.extraConfig
		if strings.Contains(extra, "{{ADMIN}}") {
			admin = freeAddr(t)
			extra = strings.ReplaceAll(extra, "{{ADMIN}}", admin)
		}
		if strings.Contains(extra, "{{METRICS}}") {
			metrics = freeAddr(t)
			extra = strings.ReplaceAll(extra, "{{METRICS}}", metrics)
		}
		cfg := fmt.Sprintf(`
server:
  listen: %s
  public_url: %s
%s
providers:
  - id: corp
    type: %s
    issuer_url: %s
    client_id: portcullis
%s
    scopes: %s
%s
session:
%s%s
  cookie:
    name: _portcullis
    secrets: [${E2E_COOKIE_SECRET}]
    secure: false
%s
%s
log:
  level: debug
%s`, addr, public, trustedFor(opts), opts.providerType, w.issuer, secretLine, opts.scopes, strings.ReplaceAll(opts.providerExtra, "{{ISSUER}}", w.issuer), opts.sessionExtra, store, upstreamsFor(opts, upstream), opts.policy, extra)
		cfgFile := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i))
		os.WriteFile(cfgFile, []byte(cfg), 0o600)
		rp := &replica{url: "http://" + addr, config: cfgFile, admin: admin, metrics: metrics,
			env: append(os.Environ(), "E2E_COOKIE_SECRET="+cookieSecret)}
		rp.start(t)
		t.Cleanup(func() { rp.stop(t) })
		w.replicas = append(w.replicas, rp)
	}
	w.gateway, w.cmd, w.logs = w.replicas[0].url, w.replicas[0].cmd, w.replicas[0].logs
	if opts.frontAddr != "" {
		w.gateway = public
	}
	return w
}

func trustedFor(opts worldOptions) string {
	if opts.publicAddr == "" && opts.frontAddr == "" {
		return opts.serverExtra
	}
	return "  trusted_proxies: [127.0.0.1]\n" + opts.serverExtra
}

func upstreamsFor(opts worldOptions, url string) string {
	if opts.publicAddr != "" {
		return "" // forward-auth only
	}
	return "upstreams:\n  - path: /\n    url: " + url
}

// start runs the gateway process and waits until it is ready.
func (rp *replica) start(t *testing.T) {
	t.Helper()
	rp.launch(t)
	rp.waitReady(t)
}

// launch runs the gateway process without waiting for /ready (which
// fails while its provider is down).
func (rp *replica) launch(t *testing.T) {
	t.Helper()
	rp.logs = &syncBuffer{}
	rp.cmd = exec.Command(binary, "-config", rp.config)
	rp.cmd.Env = rp.env
	rp.cmd.Stdout, rp.cmd.Stderr = rp.logs, rp.logs
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// restart stops the process and starts it again with the cookie secrets
// given (first seals, all open), as an operator rolling out a new secret.
func (rp *replica) restart(t *testing.T, secrets ...string) {
	t.Helper()
	rp.stop(t)
	cfg, err := os.ReadFile(rp.config)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^    secrets: .*$`)
	cfg = re.ReplaceAll(cfg, []byte("    secrets: ["+strings.Join(secrets, ", ")+"]"))
	if err := os.WriteFile(rp.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	rp.start(t)
}

func (rp *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	c := rp.waitReadyWith
	if c == nil {
		c = http.DefaultClient
	}
	for time.Now().Before(deadline) {
		resp, err := c.Get(rp.url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway %s not ready after 20s; output:\n%s", rp.url, rp.logs.String())
}

// stop sends SIGTERM and waits for a clean exit.
func (rp *replica) stop(t *testing.T) {
	if rp.cmd.Process == nil || rp.cmd.ProcessState != nil {
		return
	}
	rp.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- rp.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway %s exited with %v; output:\n%s", rp.url, err, rp.logs.String())
		}
	case <-time.After(15 * time.Second):
		rp.cmd.Process.Kill()
		t.Errorf("gateway %s did not stop within 15s of SIGTERM", rp.url)
	}
}

// browser is an HTTP client with a cookie jar that follows redirects,
// like a browser navigating.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// noFollow is the same client that stops at the first redirect.
func noFollow(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// signIn opens path through the gateway and signs in at the provider's
// login page as user; it returns the final response (the upstream's page).
// toSignIn reports whether resp is the gateway's redirect to the provider.
func (w *world) toSignIn(resp *http.Response) bool {
	return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), w.issuer)
}

func (w *world) signIn(c *http.Client, path, user string) *http.Response {
	w.t.Helper()
	resp, err := c.Get(w.gateway + path)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), w.issuer) {
		w.t.Fatalf("GET %s ended at %s (%d), want the provider's login page", path, resp.Request.URL, resp.StatusCode)
	}
	u := w.users[user]
	final, err := demo.SignIn(context.Background(), c, resp.Request.URL.String(), u.Username, u.Password)
	if err != nil {
		w.t.Fatalf("signing in as %s: %v", user, err)
	}
	return final
}

// recorder is an upstream that answers with JSON of what it received.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seenRequest
	// slow receives a value when a request for /slow arrives; the request
	// is answered only when release is closed.
	slow    chan struct{}
	release chan struct{}
}

type seenRequest struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"raw_path"`
	Query   string      `json:"query"`
	Header  http.Header `json:"header"`
}

func newRecorder(t *testing.T) *recorder {
	return startRecorder(t, false)
}

// newTLSRecorder is a recorder serving HTTPS with its own certificate.
func newTLSRecorder(t *testing.T) *recorder {
	return startRecorder(t, true)
}

func startRecorder(t *testing.T, useTLS bool) *recorder {
	r := &recorder{slow: make(chan struct{}, 1), release: make(chan struct{})}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := seenRequest{req.Method, req.URL.Path, req.URL.RawPath, req.URL.RawQuery, req.Header.Clone()}
		r.mu.Lock()
		r.reqs = append(r.reqs, s)
		r.mu.Unlock()
		if req.URL.Path == "/slow" {
			r.slow <- struct{}{}
			select {
			case <-r.release:
			case <-time.After(20 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	if useTLS {
		r.StartTLS()
	} else {
		r.Start()
	}
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func decodeSeen(t *testing.T, resp *http.Response) seenRequest {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var s seenRequest
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d from %s: %s", resp.StatusCode, resp.Request.URL, b)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("response from %s is not the upstream's JSON: %v\n%s", resp.Request.URL, err, b)
	}
	return s
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
