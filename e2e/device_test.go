package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// device_test.go: the gateway's device authorization grant (RFC 8628)
// with the real provider, on two replicas sharing a real Redis: the
// device asks one replica, the user approves on the other, the token
// works on both and a revocation ends it on both within a second.

// deviceCall POSTs a form to a device endpoint and decodes the JSON.
func deviceCall(t *testing.T, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(resp)
	m := map[string]any{}
	if b != "" { // /oauth2/revoke answers 200 with no body
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("%s: %d, not JSON: %v\n%s", endpoint, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode, m
}

var deviceCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// approveDevice opens verification_uri_complete in c (signing in as user
// when the browser has no session yet) and presses decision.
func (w *world) approveDevice(c *http.Client, base, complete, user, decision string) {
	w.t.Helper()
	u, _ := url.Parse(complete)
	path := u.RequestURI()
	var page string
	resp, err := c.Get(base + path)
	if err != nil {
		w.t.Fatal(err)
	}
	if strings.HasPrefix(resp.Request.URL.String(), w.idp.URL) {
		resp.Body.Close()
		resp = w.signIn(c, path, user)
	}
	page = readAll(resp)
	m := deviceCSRF.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		w.t.Fatalf("verification page: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{"csrf": {m[1]}, "user_code": {u.Query().Get("user_code")}, "decision": {decision}}
	req, _ := http.NewRequest("POST", base+"/oauth2/device", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.gateway) // the browser's page is on the public origin
	resp, err = c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	if page := readAll(resp); resp.StatusCode != http.StatusOK {
		w.t.Fatalf("%s: %d\n%s", decision, resp.StatusCode, page)
	}
}

// pollUntil polls the token endpoint at the interval until the answer is
// not authorization_pending.
func pollUntil(t *testing.T, endpoint, deviceCode string, interval time.Duration) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, m := deviceCall(t, endpoint, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}})
		switch m["error"] {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		default:
			return code, m
		}
		time.Sleep(interval)
	}
	t.Fatal("still pending after 30s")
	return 0, nil
}

func bearerGet(t *testing.T, target, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestDeviceGrant(t *testing.T) {
	rs := redistest.Standalone(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	os.WriteFile(tokenFile, []byte(strings.Repeat("c3d4", 10)+"\n"), 0o600)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2,
		extraConfig: "device:\n  enabled: true\n  interval: 1s\n  lifetime: 1h\nadmin:\n  listen: {{ADMIN}}\n  token_file: " + tokenFile + "\n"})
	a, b := w.replicas[0].url, w.replicas[1].url

	start := time.Now()
	code, m := deviceCall(t, a+"/oauth2/device/authorize", url.Values{"client_id": {"e2e-cli"}})
	if code != http.StatusOK || m["interval"] != float64(1) || m["verification_uri"] != w.gateway+"/oauth2/device" {
		t.Fatalf("authorize: %d %v", code, m)
	}
	dc, _ := m["device_code"].(string)
	complete, _ := m["verification_uri_complete"].(string)

	// Polling the other replica: pending, and too fast is slow_down.
	tokenURL := b + "/oauth2/device/token"
	grant := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}}
	if _, m := deviceCall(t, tokenURL, grant); m["error"] != "authorization_pending" {
		t.Fatalf("first poll: %v", m)
	}
	if _, m := deviceCall(t, tokenURL, grant); m["error"] != "slow_down" {
		t.Errorf("immediate second poll: %v, want slow_down", m)
	}

	// alice approves in a browser, on the other replica than the device asked.
	alice := browser(t)
	w.approveDevice(alice, b, complete, "alice", "approve")
	code, m = pollUntil(t, a+"/oauth2/device/token", dc, 6*time.Second)
	token, _ := m["access_token"].(string)
	if code != http.StatusOK || m["token_type"] != "Bearer" || token == "" {
		t.Fatalf("token: %d %v", code, m)
	}
	t.Logf("device grant: authorize → approved → token in %v (polling every 1s, one slow_down)", time.Since(start).Round(time.Millisecond))
	if _, m := deviceCall(t, a+"/oauth2/device/token", grant); m["error"] != "invalid_grant" {
		t.Errorf("a second redemption: %v, want invalid_grant", m)
	}

	for _, base := range []string{a, b} {
		seen := decodeSeen(t, bearerGet(t, base+"/api/who", token))
		if seen.Header.Get("X-Forwarded-User") != "u-alice" || seen.Header.Get("Authorization") != "" {
			t.Errorf("%s with the device token: upstream saw user %q, Authorization %q", base, seen.Header.Get("X-Forwarded-User"), seen.Header.Get("Authorization"))
		}
	}

	// Listed with alice's sessions, saying what holds it.
	list, err := exec.Command(binary, "sessions", "list", "-config", w.replicas[0].config, "-user", "u-alice").CombinedOutput()
	if err != nil || !strings.Contains(string(list), "e2e-cli, device grant from 127.0.0.1") {
		t.Errorf("sessions list: %v\n%s", err, list)
	}

	// A denied request.
	_, m2 := deviceCall(t, a+"/oauth2/device/authorize", url.Values{})
	complete2, _ := m2["verification_uri_complete"].(string)
	dc2, _ := m2["device_code"].(string)
	w.approveDevice(alice, a, complete2, "alice", "deny")
	if _, m := pollUntil(t, b+"/oauth2/device/token", dc2, time.Second); m["error"] != "access_denied" {
		t.Errorf("after denial: %v, want access_denied", m)
	}

	// Revoked on A: B refuses it within a second, though it had it cached.
	code, _ = deviceCall(t, a+"/oauth2/revoke", url.Values{"token": {token}})
	if code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	revoked := time.Now()
	for {
		resp := bearerGet(t, b+"/api/who", token)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("B still accepts the revoked token after 1s (%d)", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("device token revoked on A, refused on B after %v", time.Since(revoked).Round(time.Millisecond))
}
