package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/redistest"
)

// Issue 18: the parts the gateway depends on fail and come back. The
// provider is a process of its own, killed with SIGKILL and started again
// on the same address; Redis is killed and comes back empty.

// roleEnv, set to "provider" in the environment, makes the test binary a
// provider process instead of running tests (TestMain);
// providerSpecEnv names the JSON file with its providerSpec.
const (
	roleEnv         = "E2E_ROLE"
	providerSpecEnv = "E2E_PROVIDER_SPEC"
)

// providerSpec is what a provider process serves. The signing key is
// fixed, as a real provider keeps its keys on disk: tokens issued before
// a restart still verify after it. Everything else the demo provider
// holds (refresh tokens, authorization requests) lives in memory and is
// gone after a restart.
type providerSpec struct {
	Addr                string
	Users               []demo.User
	Clients             []demo.Client
	AccessTokenLifetime time.Duration
	KeyPEM              string // PKCS #8
}

// runProviderProcess serves the provider described by the file named in
// providerSpecEnv until its standard input closes (the test that started
// it is gone) or it is killed.
func runProviderProcess() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "provider process:", err)
		return 1
	}
	b, err := os.ReadFile(os.Getenv(providerSpecEnv))
	if err != nil {
		return fail(err)
	}
	var spec providerSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fail(err)
	}
	block, _ := pem.Decode([]byte(spec.KeyPEM))
	if block == nil {
		return fail(errors.New("no PEM key in the spec"))
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fail(err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return fail(fmt.Errorf("the key is a %T, want RSA", key))
	}
	srv, err := demo.Start(spec.Addr, demo.Config{
		Users:               spec.Users,
		Clients:             spec.Clients,
		AccessTokenLifetime: spec.AccessTokenLifetime,
		SigningKey:          rsaKey,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return fail(err)
	}
	fmt.Println("provider listening at", srv.URL)
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	return 0
}

// providerProcess is the provider running as a process of its own: the
// test binary re-executed with roleEnv set.
type providerProcess struct {
	addr string
	spec string // the providerSpec file
	cmd  *exec.Cmd
	// stdin is the process's standard input, held open while it runs.
	stdin io.WriteCloser
	out   *syncBuffer
}

// launch is a worldOptions.provider: it starts the provider for cfg on a
// free address and returns its issuer URL. The process is killed when
// the test ends.
func (p *providerProcess) launch(t *testing.T, cfg demo.Config) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = freeAddr(t)
	b, err := json.Marshal(providerSpec{Addr: p.addr, Users: cfg.Users, Clients: cfg.Clients,
		AccessTokenLifetime: cfg.AccessTokenLifetime, KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	p.spec = filepath.Join(t.TempDir(), "provider.json")
	writeFile(t, p.spec, string(b))
	p.out = &syncBuffer{}
	p.start(t)
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("provider process output:\n%s", p.out.String())
		}
	})
	return "http://" + p.addr
}

// start runs the process and returns when it accepts connections, with
// the time it first did.
func (p *providerProcess) start(t *testing.T) time.Time {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), roleEnv+"=provider", providerSpecEnv+"="+p.spec)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Its standard input is a pipe this process holds: if the test binary
	// dies, the provider sees EOF and exits rather than linger.
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider process does not listen on %s after 15s: %v\n%s", p.addr, err, p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as a crash or a lost host would.
func (p *providerProcess) kill(t *testing.T) {
	t.Helper()
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("killing the provider: %v", err)
	}
	p.cmd.Wait()
}

// metricValue is the value of one series at a metrics listener, 0 when
// it is not there yet.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(readAll(resp)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// statusCount counts the statuses a test saw, by phase.
type statusCount struct {
	mu sync.Mutex
	m  map[string]map[int]int
}

func (s *statusCount) add(phase string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]map[int]int{}
	}
	if s.m[phase] == nil {
		s.m[phase] = map[int]int{}
	}
	s.m[phase][code]++
}

func (s *statusCount) get(phase string) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m[phase])
}

func (s *statusCount) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, phase := range slices.Sorted(maps.Keys(s.m)) {
		parts = append(parts, fmt.Sprintf("%s %v", phase, s.m[phase]))
	}
	return strings.Join(parts, "; ")
}

// no500 fails t if a replica's output, or an earlier one's (a process
// since restarted), has a 5xx other than 502 and 503 (the answers for a
// part that is down), or a panic.
func no500(t *testing.T, w *world, earlier ...string) {
	t.Helper()
	outputs := earlier
	for _, rp := range w.replicas {
		outputs = append(outputs, rp.logs.String())
	}
	for _, logs := range outputs {
		for _, bad := range []string{"status=500", "status=501", "status=504", "panic"} {
			if strings.Contains(logs, bad) {
				t.Errorf("a gateway logged %s:\n%s", bad, logs)
			}
		}
	}
}

// attemptSignIn is one complete sign-in of u at base with a new browser,
// as an error when any step fails: the gateway's redirect to the
// provider, the login page, the callback, the upstream's answer with u's
// identity. It never fails the test, for polling; a 500 is counted.
func attemptSignIn(base, issuer string, u demo.User, seen *statusCount) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/")
	if err != nil {
		return err // e.g. the gateway's redirect led to a provider that is down
	}
	page := readAll(resp)
	seen.add("sign-in attempts", resp.StatusCode)
	if !strings.HasPrefix(resp.Request.URL.String(), issuer) {
		return fmt.Errorf("GET / ended at %s with %d: %.120s", resp.Request.URL, resp.StatusCode, page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := demo.SignIn(ctx, c, resp.Request.URL.String(), u.Username, u.Password)
	if err != nil {
		return err
	}
	b := readAll(final)
	seen.add("sign-in attempts", final.StatusCode)
	var s seenRequest
	if final.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &s) != nil || s.Header.Get("X-Forwarded-User") != u.ID {
		return fmt.Errorf("sign-in ended with %d: %.200s", final.StatusCode, b)
	}
	return nil
}

// TestProviderRestart: the provider process is killed and started again.
// While it is down, a signed-in user keeps working, past the access
// token's lifetime (the refresh fails and the session is kept), on a
// replica that discovered the provider before and on one restarted
// during the outage; a sign-in whose callback comes during the outage
// gets the documented 502; a new sign-in on the replica that never
// discovered the provider gets the 503 page with Retry-After. No 500
// anywhere. When the provider is back, a complete sign-in works again
// within a bound on both replicas, and refreshes reach the provider again.
func TestProviderRestart(t *testing.T) {
	t.Parallel()
	idp := &providerProcess{}
	const tokenTTL = 3 * time.Second
	w := newWorld(t, worldOptions{
		replicas:       2,
		provider:       idp.launch,
		scopes:         "[openid, email, profile, offline_access]",
		accessTokenTTL: tokenTTL,
		sessionExtra:   "  refresh_before: 2s\n",
		extraConfig:    "metrics:\n  listen: {{METRICS}}\n",
	})
	rp0, rp1 := w.replicas[0], w.replicas[1]
	var seen statusCount

	// alice signs in; dave gets as far as the redirect to the callback.
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/", "alice"))
	callback, dave := w.callbackURL(t, "dave")

	idp.kill(t)
	killed := time.Now() // every token the provider issued was issued before

	// The code exchange cannot reach the token endpoint: 502, with a way
	// to start again (docs/providers.md, "When a provider fails").
	resp, err := noFollow(dave).Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(resp)
	seen.add("provider down", resp.StatusCode)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "could not complete the sign-in") {
		t.Errorf("callback with the provider down = %d %.300s, want 502 saying the sign-in could not complete", resp.StatusCode, page)
	}

	// A replica restarted during the outage never discovers the provider.
	rp1.stop(t)
	rp1Before := rp1.logs.String()
	rp1.launch(t)
	deadline := time.Now().Add(20 * time.Second)
	for !rp1.logs.waitFor("provider not reachable yet") {
		if time.Now().After(deadline) {
			t.Fatalf("replica 1 did not start with the provider down:\n%s", rp1.logs.String())
		}
	}
	resp, err = http.Get(rp1.url + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	page = readAll(resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "provider corp unavailable") {
		t.Errorf("replica 1 /ready with the provider down = %d %q, want 503 naming the provider", resp.StatusCode, page)
	}

	// A new sign-in there: the 503 page, with Retry-After.
	resp, err = noFollow(browser(t)).Get(rp1.url + "/new")
	if err != nil {
		t.Fatal(err)
	}
	page = readAll(resp)
	seen.add("provider down", resp.StatusCode)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "The sign-in service cannot be reached") || err != nil || retry <= 0 {
		t.Errorf("new sign-in on replica 1 with the provider down = %d (Retry-After %q) %.300s, want 503 saying the sign-in service cannot be reached, with Retry-After in seconds",
			resp.StatusCode, resp.Header.Get("Retry-After"), page)
	}

	// On replica 0, which discovered the provider before it went down,
	// too: the sign-in's start finds the authorization endpoint not
	// answering and says so, rather than sending the browser there.
	// It trusts its last probe for 2s (providers/reach.go), so within
	// that of the kill a sign-in may still be sent to the provider.
	for {
		resp, err = noFollow(browser(t)).Get(rp0.url + "/new")
		if err != nil {
			t.Fatal(err)
		}
		page = readAll(resp)
		seen.add("provider down", resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(page, "The sign-in service cannot be reached") && resp.Header.Get("Retry-After") != "" {
			t.Logf("replica 0 (discovery kept) says the provider is unreachable %v after the kill", time.Since(killed).Round(time.Millisecond))
			break
		}
		if !w.toSignIn(resp) || time.Since(killed) > 4*time.Second {
			t.Fatalf("new sign-in on replica 0 (discovery kept), %v after the provider went down = %d to %q, want the 503 page with Retry-After",
				time.Since(killed).Round(time.Millisecond), resp.StatusCode, resp.Header.Get("Location"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// alice, on both replicas, until her access token has been expired a
	// while: every request reaches the upstream as her.
	for i := 0; time.Since(killed) < tokenTTL+time.Second; i++ {
		rp := w.replicas[i%2]
		resp, err := noFollow(alice).Get(rp.url + "/during")
		if err != nil {
			t.Fatal(err)
		}
		seen.add("provider down", resp.StatusCode)
		b := readAll(resp)
		var s seenRequest
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(b), &s) != nil || s.Header.Get("X-Forwarded-User") != "u-alice" {
			t.Fatalf("alice on replica %d, %v after the provider went down: %d %.300s", i%2, time.Since(killed).Round(time.Millisecond), resp.StatusCode, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, rp := range w.replicas {
		if !rp.logs.waitFor("session refresh failed; keeping the session") {
			t.Errorf("replica %d attempted no refresh of alice's expiring session: the check above proves nothing", i)
		}
	}

	// The provider comes back on the same address. Both replicas are
	// polled with complete sign-ins until each has one. (public_url is
	// replica 0's: a sign-in started on replica 1, which needs its
	// discovery, comes back to replica 0's callback.)
	cameBack := idp.start(t)
	var wg sync.WaitGroup
	took := make([]time.Duration, len(w.replicas))
	var lastErr [2]atomic.Value
	for i, rp := range w.replicas {
		wg.Go(func() {
			for time.Since(cameBack) < 30*time.Second {
				err := attemptSignIn(rp.url, w.issuer, w.users["dave"], &seen)
				if err == nil {
					took[i] = time.Since(cameBack)
					return
				}
				lastErr[i].Store(err.Error())
				time.Sleep(150 * time.Millisecond)
			}
			took[i] = -1
		})
	}
	wg.Wait()
	worst := max(took[0], took[1])
	if took[0] < 0 || took[1] < 0 {
		t.Fatalf("no complete sign-in within 30s of the provider coming back (replica 0 %v, replica 1 %v; last errors %v, %v)",
			took[0], took[1], lastErr[0].Load(), lastErr[1].Load())
	}
	t.Logf("provider recovery: first sign-in %v after the provider came back", worst.Round(time.Millisecond))
	t.Logf("replica 0 (discovered before the outage): %v; replica 1 (restarted during the outage, discovery retried): %v",
		took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))

	// A session begun after the recovery refreshes at the provider.
	const refreshed = `portcullis_session_refreshes_total{provider="corp",result="success"}`
	fresh := browser(t)
	decodeSeen(t, w.signIn(fresh, "/", "dave"))
	before := metricValue(t, rp0.metrics, refreshed)
	time.Sleep(tokenTTL - 2*time.Second + 300*time.Millisecond) // within refresh_before of expiry
	resp, err = fresh.Get(w.gateway + "/after-refresh")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)
	if after := metricValue(t, rp0.metrics, refreshed); after <= before {
		t.Errorf("no successful refresh after the provider came back (%s %v, then %v):\n%s", refreshed, before, after, rp0.logs.String())
	}

	// alice's refresh token died with the provider's memory: once her
	// refresh is retried (after its backoff) the provider refuses it and
	// the session ends; a browser is sent to sign in, never a 500.
	deadline = time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		rp := w.replicas[i%2]
		resp, err := noFollow(alice).Get(rp.url + "/after")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen.add("provider back", resp.StatusCode)
		if resp.StatusCode != http.StatusOK {
			if !w.toSignIn(resp) {
				t.Errorf("alice after the provider forgot her refresh token: %d to %q, want the redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("alice's session, whose refresh token the restarted provider does not know, was still served 20s after it came back")
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("statuses: %s", seen.String())
	for phase, m := range seen.m {
		if m[http.StatusInternalServerError] > 0 {
			t.Errorf("%s: %d responses were 500", phase, m[http.StatusInternalServerError])
		}
	}
	no500(t, w, rp1Before)
}

// TestRedisRestartEmpty: Redis is killed under light load from a signed-in
// user and comes back empty (no persistence). While it is down the
// session is served from the replica's cache, then 503s; never a 500 and
// never a redirect to sign in. Once it is back, the session it forgot is
// gone: a browser is sent to sign in, an XHR gets a 401 in JSON, and the
// user signs in again.
func TestRedisRestartEmpty(t *testing.T) {
	t.Parallel()
	rs := redistest.Standalone(t)
	const cacheTTL = 2 * time.Second
	w := newWorld(t, worldOptions{redis: rs.Addr(), redisExtra: fmt.Sprintf("    cache_ttl: %v\n", cacheTTL)})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/", "alice"))
	cookies := alice.Jar.Cookies(mustURL(w.gateway))
	// withOldCookie is a browser holding alice's session cookie as it was
	// before the outage (the load's may be cleared by a redirect).
	withOldCookie := func() *http.Client {
		c := browser(t)
		c.Jar.SetCookies(mustURL(w.gateway), cookies)
		return noFollow(c)
	}

	var (
		seen  statusCount
		phase atomic.Value
		wg    sync.WaitGroup
	)
	phase.Store("1 up")
	done := make(chan struct{})
	var expired atomic.Int64 // when the cache entry has surely expired (UnixNano)
	var servedAfterExpiry atomic.Int64
	loader := withOldCookie()
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// A request is counted in the phase it began and ended in,
			// or in a transition ("2 down>3 back") when they differ.
			began, from := time.Now(), phase.Load().(string)
			resp, err := loader.Get(w.gateway + "/light")
			label := from
			if to := phase.Load().(string); to != from {
				label = from + ">" + to
			}
			if err != nil {
				seen.add(label, 0)
				continue
			}
			resp.Body.Close()
			seen.add(label, resp.StatusCode)
			if e := expired.Load(); e != 0 && resp.StatusCode == http.StatusOK && began.UnixNano() > e {
				servedAfterExpiry.Add(1)
			}
		}
	})
	stopLoad := func() {
		select {
		case <-done:
		default:
			close(done)
			wg.Wait()
		}
	}
	defer stopLoad()
	time.Sleep(300 * time.Millisecond)

	phase.Store("2 down")
	rs.Kill()
	// No cache entry outlives this: each was added before the kill.
	expired.Store(time.Now().Add(cacheTTL).UnixNano())
	time.Sleep(cacheTTL + time.Second)

	// Each phase starts before the change it names, so a request counted
	// in one phase alone saw nothing of the next.
	phase.Store("3 back")
	rs.Restart()
	w.replicas[0].waitReady(t)
	// Redis answers again, and has forgotten the session.
	resp, err := withOldCookie().Get(w.gateway + "/browser")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen.add("3 back", resp.StatusCode)
	if !w.toSignIn(resp) {
		t.Errorf("browser with the forgotten session: %d to %q, want the redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", w.gateway+"/api/items", nil)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	req.Header.Set("Accept", "application/json")
	resp, err = withOldCookie().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	seen.add("3 back", resp.StatusCode)
	var answer struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &answer) != nil || answer.LoginURL == "" {
		t.Errorf("XHR with the forgotten session: %d %s %s, want 401 JSON with a login_url", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	time.Sleep(300 * time.Millisecond) // the load sees the restarted Redis too
	stopLoad()

	// A new sign-in works, and so does the new session.
	again := browser(t)
	decodeSeen(t, w.signIn(again, "/", "alice"))
	for range 3 {
		resp, err := noFollow(again).Get(w.gateway + "/new-session")
		if err != nil {
			t.Fatal(err)
		}
		seen.add("4 signed in again", resp.StatusCode)
		if got := decodeSeen(t, resp); got.Header.Get("X-Forwarded-User") != "u-alice" {
			t.Errorf("the new session reached the upstream as %q", got.Header.Get("X-Forwarded-User"))
		}
	}

	t.Logf("redis restart: statuses (0: transport error) %s", seen.String())
	for phase, m := range seen.m {
		for code, n := range m {
			if code == 0 || code >= 500 && code != http.StatusServiceUnavailable {
				t.Errorf("%s: %d responses were %d", phase, n, code)
			}
		}
	}
	if up := seen.get("1 up"); up[http.StatusOK] == 0 || len(up) != 1 {
		t.Errorf("before the outage: %v, want only 200s", up)
	}
	down := seen.get("2 down")
	if down[http.StatusServiceUnavailable] == 0 {
		t.Errorf("while Redis was down, past cache_ttl: %v, want 503s", down)
	}
	if down[http.StatusFound] > 0 || down[http.StatusUnauthorized] > 0 {
		t.Errorf("while Redis was down the session was treated as gone: %v", down)
	}
	if n := servedAfterExpiry.Load(); n > 0 {
		t.Errorf("%d requests were served with the session after its cache entry expired, though Redis was down or had forgotten it", n)
	}
	if back := seen.get("3 back"); back[http.StatusFound] == 0 {
		t.Errorf("after Redis came back empty: %v, want redirects to sign in", back)
	}
	no500(t, w)
}
