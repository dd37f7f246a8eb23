package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli_test.go: `portcullis login` against `portcullis demo`, end to end,
// as the README shows it: the terminal prints a code, a browser approves
// it on the gateway after signing in at the demo provider, and
// `portcullis token` then gives what curl sends.

var (
	demoPassword = regexp.MustCompile(`(?m)^\s+alice\s+(\S+)\s`)
	completeURI  = regexp.MustCompile(`https?://\S+/oauth2/device\?user_code=[A-Z-]+`)
)

func TestCLILoginAgainstDemo(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	demoCmd := exec.CommandContext(ctx, binary, "demo", "-listen", addr)
	demoOut := &syncBuffer{}
	demoCmd.Stdout, demoCmd.Stderr = demoOut, demoOut
	if err := demoCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); demoCmd.Wait() })
	if !demoOut.waitFor("Press Ctrl-C to stop.") {
		t.Fatalf("the demo did not start:\n%s", demoOut)
	}
	m := demoPassword.FindStringSubmatch(demoOut.String())
	if m == nil {
		t.Fatalf("no password for alice in the demo's output:\n%s", demoOut)
	}
	password := m[1]
	gw := "http://" + addr

	env := append(os.Environ(), "PORTCULLIS_CONFIG_DIR="+t.TempDir())
	login := exec.CommandContext(ctx, binary, "login", gw, "-no-qr")
	login.Env = env
	loginOut := &syncBuffer{}
	login.Stdout, login.Stderr = loginOut, loginOut
	start := time.Now()
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- login.Wait() }()
	var complete string
	for deadline := time.Now().Add(10 * time.Second); complete == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		complete = completeURI.FindString(loginOut.String())
	}
	if complete == "" {
		t.Fatalf("login printed no verification link:\n%s", loginOut)
	}

	// The browser: the link, the demo provider's sign-in, Approve.
	c := browser(t)
	resp, err := c.Get(complete)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	final, err := demoSignIn(c, resp.Request.URL.String(), "alice", password)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(final)
	csrf := deviceCSRF.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("after signing in: %d, want the approval page:\n%s", final.StatusCode, page)
	}
	u, _ := url.Parse(complete)
	form := url.Values{"csrf": {csrf[1]}, "user_code": {u.Query().Get("user_code")}, "decision": {"approve"}}
	req, _ := http.NewRequest("POST", gw+"/oauth2/device", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", gw)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %v %v", resp, err)
	}

	select {
	case err := <-done:
		if err != nil || !strings.Contains(loginOut.String(), "Signed in to "+gw) {
			t.Fatalf("login: %v\n%s", err, loginOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("login still waiting 30s after the approval:\n%s", loginOut)
	}
	t.Logf("portcullis login against the demo: signed in %v after it started (the demo polls every 5s)", time.Since(start).Round(time.Millisecond))

	tok := exec.Command(binary, "token", gw)
	tok.Env = env
	out, err := tok.Output()
	token := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(token, "pcd_") || strings.Contains(token, "\n") {
		t.Fatalf("portcullis token: %v %q", err, out)
	}
	req, _ = http.NewRequest("GET", gw+"/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, "alice@example.com") {
		t.Fatalf("curl with the token: %d\n%s", resp.StatusCode, b)
	}

	// logout revokes it at the gateway.
	lo := exec.Command(binary, "logout", gw)
	lo.Env = env
	if out, err := lo.CombinedOutput(); err != nil {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the token after logout: %d, want 401", resp.StatusCode)
	}
}
