package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skip2/go-qrcode"
)

// testUnit is one of the grant's seconds in these tests.
const testUnit = 20 * time.Millisecond

// fakeDeviceGateway serves the gateway's side of the device grant (RFC
// 8628) as a small state machine: each poll on time takes the next answer
// of script; a poll sooner than the interval allows (5 s more after every
// slow_down, §3.5) is answered slow_down and counted in tooEarly.
type fakeDeviceGateway struct {
	t   *testing.T
	srv *httptest.Server

	// set before the test runs
	script      []string // "authorization_pending", "slow_down", "ok", "unavailable", or an error code
	auth        map[string]any
	token       string
	tokenType   string
	tokenExpiry int // seconds; 0: omitted
	revokeCode  int

	mu         sync.Mutex
	authorizes int
	authorized time.Time
	polls      []time.Time
	tooEarly   int
	revoked    []string
	minGap     time.Duration
}

func newFakeDeviceGateway(t *testing.T, script ...string) *fakeDeviceGateway {
	g := &fakeDeviceGateway{t: t, script: script, token: "tok-abc.DEF_123", tokenType: "Bearer", tokenExpiry: 3600, revokeCode: 200}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	g.auth = map[string]any{
		"device_code": "dev-code-1", "user_code": "WDJB-MJHT",
		"verification_uri":          g.srv.URL + "/oauth2/device",
		"verification_uri_complete": g.srv.URL + "/oauth2/device?user_code=WDJB-MJHT",
		"expires_in":                100, "interval": 1,
	}
	return g
}

func (g *fakeDeviceGateway) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/oauth2/device/authorize":
		g.authorizes++
		if r.PostForm.Get("client_id") != "portcullis-cli" {
			oauthJSON(w, 401, "invalid_client")
			return
		}
		g.authorized = time.Now()
		if iv, ok := g.auth["interval"].(int); ok {
			g.minGap = time.Duration(iv) * testUnit
		} else {
			g.minGap = 5 * testUnit
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.auth)
	case "/oauth2/device/token":
		g.poll(w, r)
	case "/oauth2/revoke":
		if r.PostForm.Get("token_type_hint") != "access_token" {
			oauthJSON(w, 400, "invalid_request")
			return
		}
		g.revoked = append(g.revoked, r.PostForm.Get("token"))
		w.WriteHeader(g.revokeCode)
	default:
		http.NotFound(w, r)
	}
}

func (g *fakeDeviceGateway) poll(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	if f.Get("grant_type") != deviceGrantType || f.Get("device_code") != "dev-code-1" || f.Get("client_id") != "portcullis-cli" {
		oauthJSON(w, 400, "invalid_grant")
		return
	}
	now := time.Now()
	last := g.authorized
	if n := len(g.polls); n > 0 {
		last = g.polls[n-1]
	}
	g.polls = append(g.polls, now)
	if now.Sub(last) < g.minGap {
		g.tooEarly++
		g.minGap += 5 * testUnit
		oauthJSON(w, 400, "slow_down")
		return
	}
	answer := "authorization_pending"
	if len(g.script) > 0 {
		answer, g.script = g.script[0], g.script[1:]
	}
	switch answer {
	case "ok":
		body := map[string]any{"access_token": g.token, "token_type": g.tokenType}
		if g.tokenExpiry != 0 {
			body["expires_in"] = g.tokenExpiry
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	case "unavailable":
		w.Header().Set("Retry-After", "1")
		oauthJSON(w, 503, "temporarily_unavailable")
	case "slow_down":
		g.minGap += 5 * testUnit
		oauthJSON(w, 400, answer)
	default:
		oauthJSON(w, 400, answer)
	}
}

func oauthJSON(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "said " + code})
}

func (g *fakeDeviceGateway) stats() (polls []time.Time, tooEarly, authorizes int, revoked []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.polls...), g.tooEarly, g.authorizes, append([]string(nil), g.revoked...)
}

// cliEnv points the token store at a fresh directory and shortens the
// grant's seconds; it returns the directory.
func cliEnv(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "portcullis")
	t.Setenv(cliConfigDirEnv, dir)
	t.Setenv("KUBERNETES_EXEC_INFO", "")
	saved := deviceSecond
	deviceSecond = testUnit
	t.Cleanup(func() { deviceSecond = saved })
	return dir
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func readTokens(t *testing.T, dir string) map[string]*storedToken {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]*storedToken
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoginPollsRespectingSlowDown(t *testing.T) {
	dir := cliEnv(t)
	g := newFakeDeviceGateway(t, "authorization_pending", "authorization_pending", "slow_down", "ok")
	start := time.Now()
	code, stdout, stderr := runCLI("login", g.srv.URL+"/some/page?x=1", "-no-qr")
	if code != 0 {
		t.Fatalf("login = %d, stderr:\n%s", code, stderr)
	}
	polls, tooEarly, _, _ := g.stats()
	if len(polls) != 4 || tooEarly != 0 {
		t.Errorf("polls = %d, too early = %d; want 4 on time (pending, pending, slow_down, ok)", len(polls), tooEarly)
	}
	if len(polls) >= 4 {
		if gap := polls[3].Sub(polls[2]); gap < 6*testUnit {
			t.Errorf("after slow_down the client waited %v, want at least the interval + 5 s (%v)", gap, 6*testUnit)
		}
	}
	if elapsed := time.Since(start); elapsed < 9*testUnit {
		t.Errorf("login took %v: the interval was not honoured", elapsed)
	}
	for _, want := range []string{"WDJB-MJHT", "expires in 1m40s", g.srv.URL + "/oauth2/device", "user_code=WDJB-MJHT", "Signed in to " + g.srv.URL + "; token valid until "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, g.token) || stdout != "" {
		t.Errorf("the token was printed, or stdout used: stdout %q, stderr:\n%s", stdout, stderr)
	}
	if strings.Contains(stderr, "\x1b") {
		t.Errorf("a QR code or escape was written though stderr is no terminal and -no-qr was given")
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, "tokens.json"), 0o600)
	got := readTokens(t, dir)[g.srv.URL]
	if got == nil || got.AccessToken != g.token {
		t.Fatalf("stored = %+v, want the token under %s", got, g.srv.URL)
	}
	if d := got.ExpiresAt.Sub(got.ObtainedAt); d != time.Hour {
		t.Errorf("stored lifetime = %v, want 1h (expires_in 3600)", d)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d files, want tokens.json alone (no temporary file left)", len(entries))
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

func TestLoginDefaultIntervalAndTransientErrors(t *testing.T) {
	cliEnv(t)
	g := newFakeDeviceGateway(t, "unavailable", "ok")
	delete(g.auth, "interval") // §3.2: 5 s when absent
	if code, _, stderr := runCLI("login", g.srv.URL, "-no-qr"); code != 0 {
		t.Fatalf("login = %d:\n%s", code, stderr)
	}
	polls, tooEarly, _, _ := g.stats()
	if len(polls) != 2 || tooEarly != 0 {
		t.Errorf("polls = %d, too early = %d; want 2 on time (503, ok)", len(polls), tooEarly)
	}
	if len(polls) == 2 {
		if gap := polls[1].Sub(polls[0]); gap < 10*testUnit {
			t.Errorf("after a 503 the client polled again after %v, want a back-off of at least twice the interval", gap)
		}
	}
}

func TestLoginEnds(t *testing.T) {
	for _, tt := range []struct {
		name, answer, want string
		expiresIn          int
	}{
		{"denied", "access_denied", "the sign-in was denied", 600},
		{"expired at the gateway", "expired_token", "the code expired", 600},
		{"expired here", "authorization_pending", "the code expired", 3},
		{"unknown error", "invalid_grant", "said invalid_grant", 600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := cliEnv(t)
			script := []string{tt.answer}
			if tt.answer == "authorization_pending" {
				script = []string{tt.answer, tt.answer, tt.answer, tt.answer, tt.answer}
			}
			g := newFakeDeviceGateway(t, script...)
			g.auth["expires_in"] = tt.expiresIn
			code, _, stderr := runCLI("login", g.srv.URL, "-no-qr")
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("login = %d, want 1 saying %q:\n%s", code, tt.want, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "tokens.json")); err == nil {
				t.Errorf("a token file was written")
			}
			if polls, _, _, _ := g.stats(); tt.expiresIn == 3 && len(polls) > 3 {
				t.Errorf("%d polls within a code lifetime of 3 intervals", len(polls))
			}
		})
	}
}

func TestLoginCancelled(t *testing.T) {
	cliEnv(t)
	g := newFakeDeviceGateway(t)
	c := newDeviceClient(g.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { time.Sleep(3 * testUnit); cancel() }() // Ctrl-C
	_, err := c.login(ctx, &bytes.Buffer{}, showOptions{})
	if msg := loginMessage(g.srv.URL, err); msg != "sign-in cancelled. Nothing was stored." {
		t.Errorf("cancelled login: %v (%q)", err, msg)
	}
}

func TestLoginGatewayRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"grant off", http.NotFound, "does not serve the device grant (404)"},
		{"unavailable", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			oauthJSON(w, 503, "temporarily_unavailable")
		}, "unavailable (503); try again in"},
		{"client refused", func(w http.ResponseWriter, r *http.Request) { oauthJSON(w, 401, "invalid_client") },
			"refused (401 invalid_client): said invalid_client"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "https://elsewhere.example/", 302) },
			"redirect (302)"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }, "not the expected JSON"},
		{"hostile verification_uri", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"device_code":"d","user_code":"U","verification_uri":"javascript:alert(1)","expires_in":60}`))
		}, "verification_uri"},
		{"no expires_in", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"device_code":"d","user_code":"U","verification_uri":"https://gw.example/device"}`))
		}, "lacks"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cliEnv(t)
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			code, _, stderr := runCLI("login", srv.URL, "-no-qr")
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("login = %d, want 1 saying %q:\n%s", code, tt.want, stderr)
			}
		})
	}
}

func TestLoginHostileAnswers(t *testing.T) {
	t.Run("escapes in the code are not printed", func(t *testing.T) {
		cliEnv(t)
		g := newFakeDeviceGateway(t, "ok")
		g.auth["user_code"] = "AB\x1b]0;pwned\x07CD\u202e\r"
		g.auth["verification_uri_complete"] = "file:///etc/passwd"
		code, _, stderr := runCLI("login", g.srv.URL, "-no-qr")
		if code != 0 {
			t.Fatalf("login = %d:\n%s", code, stderr)
		}
		if strings.ContainsAny(stderr, "\x1b\x07\r\u202e") || !strings.Contains(stderr, "AB]0;pwnedCD") {
			t.Errorf("control characters reached the terminal: %q", stderr)
		}
		if strings.Contains(stderr, "file:") {
			t.Errorf("a non-web verification_uri_complete was shown: %q", stderr)
		}
	})
	for _, tt := range []struct {
		name, token, tokenType string
		expiry                 int
		want                   string
	}{
		{"token with a newline", "abc\nX-Evil: 1", "Bearer", 3600, "not a valid bearer token"},
		{"token with a space", "abc def", "Bearer", 3600, "not a valid bearer token"},
		{"empty token", "", "Bearer", 3600, "not a valid bearer token"},
		{"not bearer", "abc", "mac", 3600, `"mac" token`},
		{"no lifetime", "abc", "bearer", 0, "without expires_in"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := cliEnv(t)
			g := newFakeDeviceGateway(t, "ok")
			g.token, g.tokenType, g.tokenExpiry = tt.token, tt.tokenType, tt.expiry
			code, _, stderr := runCLI("login", g.srv.URL, "-no-qr")
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("login = %d, want 1 saying %q:\n%s", code, tt.want, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "tokens.json")); err == nil {
				t.Errorf("the refused token was stored")
			}
		})
	}
}

func TestLoginBrowser(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"off by default", nil, ""},
		{"-browser", []string{"-browser"}, "/oauth2/device?user_code=WDJB-MJHT"},
		{"-no-browser wins", []string{"-browser", "-no-browser"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cliEnv(t)
			var opened string
			saved := openBrowser
			openBrowser = func(u string) error { opened = u; return nil }
			defer func() { openBrowser = saved }()
			g := newFakeDeviceGateway(t, "ok")
			if code, _, stderr := runCLI(append([]string{"login", g.srv.URL, "-no-qr"}, tt.flags...)...); code != 0 {
				t.Fatalf("login = %d:\n%s", code, stderr)
			}
			if (tt.want == "") != (opened == "") || !strings.HasSuffix(opened, tt.want) {
				t.Errorf("opened %q, want %q", opened, tt.want)
			}
		})
	}
}

// storeToken puts a token for origin into the test's store.
func storeToken(t *testing.T, origin, token string, life time.Duration) *storedToken {
	t.Helper()
	s, err := openTokenStore()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	e := &storedToken{AccessToken: token, ObtainedAt: now, ExpiresAt: now.Add(life)}
	if err := s.put(origin, e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTokenPrints(t *testing.T) {
	cliEnv(t)
	storeToken(t, "https://app.example.com", "tok-1", time.Hour)
	storeToken(t, "https://other.example.com", "tok-2", time.Hour)
	storeToken(t, "https://soon.example.com", "tok-3", 59*time.Second)
	for _, tt := range []struct {
		url, out string
		code     int
	}{
		{"https://app.example.com", "tok-1\n", 0},
		{"HTTPS://App.Example.COM:443/any/path?q=1#f", "tok-1\n", 0},
		{"https://other.example.com/", "tok-2\n", 0},
		{"https://soon.example.com", "", 1},
		{"https://none.example.com", "", 1},
		{"https://app.example.com:8443", "", 1},
	} {
		code, stdout, stderr := runCLI("token", tt.url)
		if code != tt.code || stdout != tt.out {
			t.Errorf("token %s = %d %q, want %d %q (stderr %q)", tt.url, code, stdout, tt.code, tt.out, stderr)
		}
		if tt.code == 1 && !strings.Contains(stderr, "no valid token for https://") || tt.code == 0 && stderr != "" {
			t.Errorf("token %s: stderr %q", tt.url, stderr)
		}
	}
}

func TestTokenExecCredential(t *testing.T) {
	cliEnv(t)
	e := storeToken(t, "https://app.example.com", "tok-1", time.Hour)
	for _, tt := range []struct{ info, apiVersion string }{
		{"", "client.authentication.k8s.io/v1"},
		{`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`, "client.authentication.k8s.io/v1"},
		{`{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{}}`, "client.authentication.k8s.io/v1beta1"},
	} {
		t.Setenv("KUBERNETES_EXEC_INFO", tt.info)
		code, stdout, stderr := runCLI("token", "--exec-credential", "https://app.example.com")
		if code != 0 {
			t.Fatalf("token --exec-credential = %d: %s", code, stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %q", stdout)
		}
		status, _ := got["status"].(map[string]any)
		exp, err := time.Parse(time.RFC3339, status["expirationTimestamp"].(string))
		if got["apiVersion"] != tt.apiVersion || got["kind"] != "ExecCredential" || status["token"] != "tok-1" || err != nil || !exp.Equal(e.ExpiresAt) {
			t.Errorf("ExecCredential = %s, want %s with token tok-1 expiring %s", stdout, tt.apiVersion, e.ExpiresAt)
		}
	}
}

func TestTokenExecCredentialSignsIn(t *testing.T) {
	cliEnv(t)
	g := newFakeDeviceGateway(t, "ok")
	t.Setenv("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`)
	code, stdout, stderr := runCLI("token", "--exec-credential", g.srv.URL)
	if _, _, n, _ := g.stats(); code != 1 || stdout != "" || n != 0 || !strings.Contains(stderr, "no valid token") {
		t.Errorf("not interactive: %d %q, %d sign-ins started; stderr %q", code, stdout, n, stderr)
	}
	t.Setenv("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}`)
	code, stdout, stderr = runCLI("token", "--exec-credential", g.srv.URL, "-no-qr")
	var got execCredential
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Status.Token != g.token {
		t.Fatalf("interactive: %d %q (%v); stderr:\n%s", code, stdout, err, stderr)
	}
	if !strings.Contains(stderr, "WDJB-MJHT") {
		t.Errorf("the code was not shown on stderr: %q", stderr)
	}
	if code, stdout, _ := runCLI("token", g.srv.URL); code != 0 || stdout != g.token+"\n" {
		t.Errorf("after the sign-in, token = %d %q", code, stdout)
	}
}

func TestLoginExecCredential(t *testing.T) {
	cliEnv(t)
	g := newFakeDeviceGateway(t, "ok")
	code, stdout, stderr := runCLI("login", "-exec-credential", "-no-qr", g.srv.URL)
	var got execCredential
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Status.Token != g.token || got.Kind != "ExecCredential" {
		t.Errorf("login -exec-credential = %d %q (%v); stderr:\n%s", code, stdout, err, stderr)
	}
}

func TestLogout(t *testing.T) {
	dir := cliEnv(t)
	g := newFakeDeviceGateway(t)
	storeToken(t, g.srv.URL, "tok-1", time.Hour)
	storeToken(t, "https://other.example.com", "tok-2", time.Hour)
	code, _, stderr := runCLI("logout", g.srv.URL+"/")
	if _, _, _, revoked := g.stats(); code != 0 || len(revoked) != 1 || revoked[0] != "tok-1" {
		t.Errorf("logout = %d, revoked %q; stderr %q", code, revoked, stderr)
	}
	if !strings.Contains(stderr, "Revoked the token") || strings.Contains(stderr, "tok-1") {
		t.Errorf("stderr: %q", stderr)
	}
	tokens := readTokens(t, dir)
	if _, ok := tokens[g.srv.URL]; ok || tokens["https://other.example.com"] == nil {
		t.Errorf("after logout the file holds %v", tokens)
	}
	checkMode(t, filepath.Join(dir, "tokens.json"), 0o600)
	if code, _, stderr := runCLI("logout", g.srv.URL); code != 0 || !strings.Contains(stderr, "Not signed in") {
		t.Errorf("second logout = %d %q", code, stderr)
	}
}

func TestLogoutGatewayFails(t *testing.T) {
	for _, tt := range []struct {
		name string
		down bool
		want string
	}{
		{"unreachable", true, "could not reach the gateway"},
		{"refused", false, "the gateway answered 500"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := cliEnv(t)
			g := newFakeDeviceGateway(t)
			g.revokeCode = 500
			storeToken(t, g.srv.URL, "tok-1", time.Hour)
			if tt.down {
				g.srv.Close()
			}
			code, _, stderr := runCLI("logout", g.srv.URL)
			if code != 0 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "stays valid there until") {
				t.Errorf("logout = %d, want 0 saying %q:\n%s", code, tt.want, stderr)
			}
			if _, ok := readTokens(t, dir)[g.srv.URL]; ok {
				t.Errorf("the token is still stored")
			}
		})
	}
}

func TestTokenStoreRefusesExposedFile(t *testing.T) {
	dir := cliEnv(t)
	g := newFakeDeviceGateway(t, "ok")
	storeToken(t, g.srv.URL, "tok-1", time.Hour)
	path := filepath.Join(dir, "tokens.json")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("token", g.srv.URL)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "chmod 600 "+path) {
		t.Errorf("token with a 0644 file = %d %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runCLI("login", g.srv.URL, "-no-qr")
	if _, _, n, _ := g.stats(); code != 1 || n != 0 || !strings.Contains(stderr, "mode 0644") {
		t.Errorf("login with a 0644 file = %d after %d sign-ins started; stderr %q", code, n, stderr)
	}
	// logout revokes the exposed token and rewrites the file 0600.
	code, _, stderr = runCLI("logout", g.srv.URL)
	if _, _, _, revoked := g.stats(); code != 0 || len(revoked) != 1 || !strings.Contains(stderr, "warning") {
		t.Errorf("logout with a 0644 file = %d, revoked %q; stderr %q", code, revoked, stderr)
	}
	checkMode(t, path, 0o600)
}

func TestTokenStoreRefusesOpenDirectory(t *testing.T) {
	dir := cliEnv(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	s, _ := openTokenStore()
	if err := s.put("https://app.example.com", &storedToken{AccessToken: "x"}); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("put into a 0777 directory: %v", err)
	}
}

func TestCLIURLValidation(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"HTTPS://App.Example.COM:443/x?y#z", "https://app.example.com"},
		{"https://app.example.com:8443/", "https://app.example.com:8443"},
		{"http://localhost:8080/path", "http://localhost:8080"},
		{"http://127.0.0.1:80", "http://127.0.0.1"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"https://[2001:db8::1]/", "https://[2001:db8::1]"},
	} {
		if got, err := gatewayOrigin(tt.in); err != nil || got != tt.want {
			t.Errorf("gatewayOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	cliEnv(t)
	for _, tt := range []struct{ in, want string }{
		{"http://app.example.com", "plain http"},
		{"http://10.0.0.1", "plain http"},
		{"http://localhost.evil.com", "plain http"},
		{"ftp://app.example.com", "must start with https://"},
		{"app.example.com", "must start with https://"},
		{"javascript:alert(1)", "must start with https://"},
		{"https://user:pw@app.example.com", "user name or password"},
		{"https://@app.example.com", "user name or password"},
		{"https://", "no host"},
		{"https:app.example.com", "no host"},
		{"https://app.example.com\\@evil.com", "backslashes"},
		{"https://app.example.com\n", "control characters"},
		{"https://münchen.example", "ASCII"},
		{"https://[fe80::1%25eth0]:8443", "no IPv6 zone"},
		{"https://app.example.com:99999", "bad port"},
		{"https://app.example.com:0", "bad port"},
	} {
		code, _, stderr := runCLI("token", tt.in)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("token %q = %d, want 2 saying %q: %s", tt.in, code, tt.want, stderr)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	cliEnv(t)
	for _, args := range [][]string{{"login"}, {"login", "https://a.example", "https://b.example"}, {"token", "-nope", "https://a.example"}, {"logout"}, {"logout", "-no-qr", "https://a.example"}} {
		if code, _, stderr := runCLI(args...); code != 2 || !strings.Contains(stderr, "usage: portcullis "+args[0]) {
			t.Errorf("%q = %d: %s", args, code, stderr)
		}
	}
}

// TestCLIQR reads the drawn QR code back into modules: each line holds
// two rows, light modules drawn, the colours fixed.
func TestCLIQR(t *testing.T) {
	var b bytes.Buffer
	const content = "https://app.example.com/oauth2/device?user_code=WDJB-MJHT"
	if err := writeQR(&b, content); err != nil {
		t.Fatal(err)
	}
	q := mustQR(t, content)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := (len(q) + 1) / 2; len(lines) != want {
		t.Fatalf("%d lines for %d rows, want %d", len(lines), len(q), want)
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, "\x1b[97;40m") || !strings.HasSuffix(line, "\x1b[0m") {
			t.Fatalf("line %d does not set and reset its colours: %q", i, line)
		}
		cells := []rune(strings.TrimSuffix(strings.TrimPrefix(line, "\x1b[97;40m"), "\x1b[0m"))
		if len(cells) != len(q[0]) {
			t.Fatalf("line %d has %d cells, want %d", i, len(cells), len(q[0]))
		}
		for x, c := range cells {
			top, bottom := !q[2*i][x], 2*i+1 < len(q) && !q[2*i+1][x]
			gotTop, gotBottom := c == '█' || c == '▀', c == '█' || c == '▄'
			if top != gotTop || bottom != gotBottom {
				t.Fatalf("line %d cell %d = %q, want light top %v, light bottom %v", i, x, c, top, bottom)
			}
		}
	}
	// The quiet zone: the first line is light across.
	if strings.ContainsAny(lines[0], " ▄") {
		t.Errorf("the quiet zone has dark modules: %q", lines[0])
	}
}

func mustQR(t *testing.T, content string) [][]bool {
	t.Helper()
	q, err := qrcode.New(content, qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	return q.Bitmap()
}

func TestCLIInWords(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{10 * time.Minute, "10 minutes"}, {time.Minute, "1 minute"}, {100 * time.Second, "1m40s"}, {30 * time.Second, "30s"}} {
		if got := inWords(tt.d); got != tt.want {
			t.Errorf("inWords(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
