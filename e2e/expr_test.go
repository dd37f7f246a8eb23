package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/demo"
)

// exprPolicy uses a claim the provider puts in userinfo only, the
// client's address and a request header.
const exprPolicy = `policy:
  email_domains: [example.com]
  routes:
    - path: /t/
      expr: request.path.segment(1) in identity.claims.tenant
      remediation: Ask your tenant's administrator to add you.
    - path: /office/
      email_domains: [example.com]
      source_ips: [10.0.0.0/8]
      remediation: Connect to the VPN.
    - path: /ops/
      groups: [developers]
      expr: >-
        ip(request.source_ip).isLoopback() &&
        request.headers["x-ticket"].startsWith("OPS-") &&
        !("cookie" in request.headers)
`

// TestExpressionPolicy runs CEL rules against the real provider, whose ID
// token carries no claims beyond the protocol's (they are in userinfo
// only, as with many providers): the tenant claim an expression names is
// kept at sign-in and decides; source_ips sees the real client address;
// a failing expression denies and is logged; the 403 carries the rule's
// remediation.
func TestExpressionPolicy(t *testing.T) {
	users := defaultUsers()
	users[0].ExtraClaims = map[string]any{"tenant": []string{"acme", "initech"}}
	w := newWorld(t, worldOptions{policy: exprPolicy, users: users, gatewayClient: func(c *demo.Client) { c.MinimalIDToken = true }})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/t/acme/dashboard", "alice"))

	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", w.gateway+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := alice.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	decodeSeen(t, get("/t/initech/"))
	resp := get("/t/globex/", "Accept", "text/html")
	if b := readAll(resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "Ask your tenant&#39;s administrator to add you.") {
		t.Errorf("another tenant = %d %s, want 403 with the remediation", resp.StatusCode, b)
	}
	resp = get("/t/globex/", "Accept", "application/json")
	var body struct{ Error, Remediation string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || body.Remediation != "Ask your tenant's administrator to add you." {
		t.Errorf("JSON 403 = %d %+v", resp.StatusCode, body)
	}

	resp = get("/office/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("/office/ from loopback = %d, want 403", resp.StatusCode)
	}
	decodeSeen(t, get("/ops/", "X-Ticket", "OPS-17"))
	resp = get("/ops/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("/ops/ without a ticket = %d, want 403", resp.StatusCode)
	}
	if !w.logs.waitFor(
		`rule="policy.routes[1] /office/: email_domains:example.com matched, but source_ips: 127.0.0.1 is not listed"`,
		`rule="policy.routes[0] /t/: expr is false: request.path.segment(1) in identity.claims.tenant"`,
		`msg="policy expression failed to evaluate; the request is denied"`,
		`no such key: x-ticket`,
	) {
		t.Errorf("the log does not name what failed:\n%s", w.logs.String())
	}

	// dave has no tenant claim at all: the expression fails, and denies.
	dave := browser(t)
	resp = w.signIn(dave, "/t/acme/", "dave")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("dave at /t/acme/ = %d, want 403", resp.StatusCode)
	}
}
