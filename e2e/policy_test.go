package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const adminPolicy = `policy:
  email_domains: [example.com]
  routes:
    - path: /admin/
      groups: [admins]
      deny_message: Ask the platform team for the admins group.
    - path: /status
      public: true
`

// TestAdminRoute: with the real provider's groups, a member of admins
// passes /admin/ and a signed-in non-member gets 403 with the route's
// message; a public route needs no sign-in.
func TestAdminRoute(t *testing.T) {
	w := newWorld(t, worldOptions{policy: adminPolicy})

	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/admin/users", "alice"))

	dave := browser(t)
	resp := w.signIn(dave, "/admin/users", "dave")
	b := readAll(resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "Ask the platform team for the admins group.") {
		t.Errorf("dave at /admin/ = %d %s, want 403 with the route's message", resp.StatusCode, b)
	}
	// dave may use the rest of the site.
	resp, err := dave.Get(w.gateway + "/reports")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)

	resp, err = http.Get(w.gateway + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "" {
		t.Errorf("anonymous request to a public route carried an identity: %v", seen.Header)
	}
	if !w.logs.waitFor(`rule="policy.routes[0] /admin/: no email, domain, group or claim matched"`) {
		t.Error("the access log does not name the rule that denied dave")
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
