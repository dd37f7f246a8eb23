package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/demo"
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

// TestCaseVariantAdminPath: a case-folding backend would serve /ADMIN/ as
// /admin/, so across the wire the /admin/ rule governs every spelling, and
// /STATUS is not the public /status.
func TestCaseVariantAdminPath(t *testing.T) {
	w := newWorld(t, worldOptions{policy: adminPolicy})

	dave := browser(t)
	decodeSeen(t, w.signIn(dave, "/reports", "dave"))
	for _, p := range []string{"/ADMIN/users", "/Admin/users", "/aDmIn", "/%41dmin/users"} {
		resp, err := dave.Get(w.gateway + p)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "Ask the platform team for the admins group.") {
			t.Errorf("dave at %s = %d, want 403 with the /admin/ route's message", p, resp.StatusCode)
		}
	}
	// A near miss stays the default rule's.
	resp, err := dave.Get(w.gateway + "/ADMINS/x")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp)

	alice := browser(t)
	if seen := decodeSeen(t, w.signIn(alice, "/Admin/Users", "alice")); seen.Path != "/Admin/Users" {
		t.Errorf("upstream saw %q, want the path as sent", seen.Path)
	}

	resp, err = http.Get(w.gateway + "/STATUS")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), w.idp.URL) {
		t.Errorf("anonymous /STATUS ended at %s (%d), want the sign-in page: it is not the public /status", resp.Request.URL, resp.StatusCode)
	}
	if !w.logs.waitFor(`rule="case-insensitive policy.routes[0] /admin/: no email, domain, group or claim matched"`) {
		t.Error("the access log does not name the case-insensitive route that denied dave")
	}
}

// TestSignInNoRuleAdmits: bob@example.org, whom no rule could admit, and
// a user with a malformed email get the deny page at the callback and no
// session; their identity never reaches a public route.
func TestSignInNoRuleAdmits(t *testing.T) {
	users := append(defaultUsers(), demo.User{ID: "u-mal", Username: "mal", Password: "mal-password-1",
		Email: "mal@ex\u0430mple.com", EmailVerified: true, Name: "Mal", Groups: []string{"admins"}})
	w := newWorld(t, worldOptions{policy: adminPolicy, users: users})
	for _, user := range []string{"bob", "mal"} {
		c := browser(t)
		resp := w.signIn(c, "/reports", user)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s at the callback = %d, want 403", user, resp.StatusCode)
		}
		for _, ck := range c.Jar.Cookies(mustURL(w.gateway)) {
			if ck.Name == "_portcullis" {
				t.Errorf("%s got a session cookie", user)
			}
		}
		resp, err := c.Get(w.gateway + "/status")
		if err != nil {
			t.Fatal(err)
		}
		if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "" || seen.Header.Get("X-Forwarded-Email") != "" {
			t.Errorf("%s's identity reached a public route: %v", user, seen.Header)
		}
	}
	if w.upstream.count() != 2 {
		t.Errorf("upstream reached %d times, want 2 (the public route only)", w.upstream.count())
	}
	if !w.logs.waitFor("no rule of the policy could admit this identity") {
		t.Error("the log does not say why bob was refused")
	}
}
