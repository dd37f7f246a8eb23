package demo

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// postLogin posts the login form by hand and returns status and body.
func postLogin(t *testing.T, issuer string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := browser(t).PostForm(issuer+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func authRequestID(t *testing.T, loginURL string) string {
	t.Helper()
	id := mustParse(t, loginURL).Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("login URL %q has no authRequestID", loginURL)
	}
	return id
}

func TestLoginPage(t *testing.T) {
	for _, tt := range []struct {
		name      string
		hints     bool
		wantHints bool
	}{
		{"hints off", false, false},
		{"hints on", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startRP(t, func(c *Config) { c.ShowUserHints = tt.hints })
			a := p.authorize(t, browser(t), oauthParam("login_hint", `bob"><b>`))
			resp, err := http.Get(a.loginURL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(body)

			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login page: %s", resp.Status)
			}
			for _, c := range []struct {
				what string
				got  bool
				want bool
			}{
				{"labelled username field", strings.Contains(page, `<label for="username">`), true},
				{"labelled password field", strings.Contains(page, `<label for="password">`), true},
				{"autofocus", strings.Contains(page, "autofocus"), true},
				{"escaped login_hint", strings.Contains(page, `value="bob&#34;&gt;&lt;b&gt;"`), true},
				{"raw login_hint", strings.Contains(page, `bob"><b>`), false},
				{"script", strings.Contains(page, "<script"), false},
				{"external resource", strings.Contains(page, "src=") || strings.Contains(page, "href="), false},
				{"user hints", strings.Contains(page, "<code>alice</code>") && strings.Contains(page, "<code>bob</code>"), tt.wantHints},
				{"a password", strings.Contains(page, alicePass) || strings.Contains(page, bobPass), false},
				{"CSP", strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'"), true},
			} {
				if c.got != c.want {
					t.Errorf("page has %s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestLoginRejections(t *testing.T) {
	p := startRP(t, nil)
	const hostile = `"><script>alert(1)</script>`
	for _, tt := range []struct {
		name       string
		user, pass string
		wantStatus int
		wantBody   string
	}{
		{"wrong password", "alice", "wrong", http.StatusUnauthorized, msgBadPassword},
		{"unknown user", "zelda", "wrong", http.StatusUnauthorized, msgBadPassword},
		{"hostile username", hostile, "wrong", http.StatusUnauthorized, "&lt;script&gt;alert(1)&lt;/script&gt;"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := p.authorize(t, browser(t))
			status, body, _ := postLogin(t, p.issuer, url.Values{
				"authRequestID": {authRequestID(t, a.loginURL)}, "username": {tt.user}, "password": {tt.pass},
			})
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body lacks %q:\n%s", tt.wantBody, body)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, `value="wrong"`) {
				t.Errorf("body echoes unescaped input or the password:\n%s", body)
			}
		})
	}

	t.Run("unknown user and wrong password look alike", func(t *testing.T) {
		pages := map[string]string{}
		for _, user := range []string{"alice", "zelda"} {
			a := p.authorize(t, browser(t))
			id := authRequestID(t, a.loginURL)
			_, body, _ := postLogin(t, p.issuer, url.Values{"authRequestID": {id}, "username": {user}, "password": {"x"}})
			body = strings.ReplaceAll(body, id, "ID")
			pages[user] = strings.ReplaceAll(body, `value="`+user+`"`, `value="USER"`)
		}
		if pages["alice"] != pages["zelda"] {
			t.Errorf("pages differ:\n%s\n---\n%s", pages["alice"], pages["zelda"])
		}
	})

	for _, tt := range []struct {
		name string
		do   func(t *testing.T) int
	}{
		{"GET with unknown authRequestID", func(t *testing.T) int {
			resp, err := http.Get(p.issuer + "/login?authRequestID=nope")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}},
		{"POST with unknown authRequestID", func(t *testing.T) int {
			status, _, _ := postLogin(t, p.issuer, url.Values{"authRequestID": {"nope"}, "username": {"alice"}, "password": {alicePass}})
			return status
		}},
		{"POST for a request already signed in", func(t *testing.T) int {
			a := p.authorize(t, browser(t))
			form := url.Values{"authRequestID": {authRequestID(t, a.loginURL)}, "username": {"alice"}, "password": {alicePass}}
			if status, _, _ := postLogin(t, p.issuer, form); status != http.StatusSeeOther {
				t.Fatalf("first login: %d, want 303", status)
			}
			form.Set("username", "bob")
			form.Set("password", bobPass)
			status, _, _ := postLogin(t, p.issuer, form)
			return status
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.do(t), http.StatusBadRequest; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
		})
	}
}

// TestCallbackIssuesOneCode checks that revisiting zitadel's callback URL
// after a login does not mint a second code.
func TestCallbackIssuesOneCode(t *testing.T) {
	p := startRP(t, nil)
	c := browser(t)
	a := p.authorize(t, c)
	resp, err := c.PostForm(p.issuer+"/login", url.Values{
		"authRequestID": {authRequestID(t, a.loginURL)}, "username": {"alice"}, "password": {alicePass},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	for i, wantCode := range []bool{true, false} {
		resp, err := c.Get(callback)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil {
			t.Fatalf("visit %d: no redirect (%s)", i+1, resp.Status)
		}
		if got := loc.Query().Get("code") != ""; got != wantCode {
			t.Errorf("visit %d: got a code = %v, want %v (redirect %s)", i+1, got, wantCode, loc.Redacted())
		}
	}
}

// TestSignInFollowingRedirects drives SignIn with a client that follows
// redirects, as the load harness does: it ends on the client's callback.
func TestSignInFollowingRedirects(t *testing.T) {
	p := startRP(t, nil)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	start := browser(t)
	a := p.authorize(t, start)
	resp, err := SignIn(context.Background(), c, a.loginURL, "alice", alicePass)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), "callback reached"; got != want {
		t.Errorf("final body = %q, want %q", got, want)
	}
	if got := resp.Request.URL.Query().Get("state"); got != a.state {
		t.Errorf("final URL state = %q, want %q", got, a.state)
	}

	a = p.authorize(t, start)
	if _, err := SignIn(context.Background(), c, a.loginURL, "alice", "wrong"); err != ErrSignInRejected {
		t.Errorf("SignIn with a wrong password: %v, want ErrSignInRejected", err)
	}
}
