package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// fakeGitHub answers like github.com (or GitHub Enterprise Server under
// /api/v3) with recorded-shape responses: the OAuth token endpoint, /user,
// /user/emails, /user/orgs in two pages, /user/teams. A test overrides any
// API path with its own handler.
type fakeGitHub struct {
	*httptest.Server
	prefix  string // API path prefix: "" (api.github.com) or "/api/v3"
	linkAPI string // what Link headers name as the API root

	mu       sync.Mutex
	reqs     []*http.Request
	forms    []url.Values
	emails   []map[string]any
	override map[string]http.HandlerFunc // by API path without prefix
	hits     map[string]int
}

const ghToken = "gho_16C7e42F292c6912E7710c838347Ae178B4a"

func newFakeGitHub(t *testing.T, ghes bool) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{override: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	f.emails = []map[string]any{
		{"email": "octocat@example.com", "primary": true, "verified": true, "visibility": "private"},
		{"email": "octo@work.example", "primary": false, "verified": true, "visibility": nil},
		{"email": "typo@unverified.example", "primary": false, "verified": false, "visibility": nil},
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	f.linkAPI = "https://api.github.com"
	if ghes {
		f.prefix = "/api/v3"
		f.linkAPI = f.URL + "/api/v3"
	}
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Clone(context.Background()))
	f.mu.Unlock()
	if r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost {
		f.serveToken(w, r)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok || r.Method != http.MethodGet {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	f.mu.Lock()
	f.hits[path]++
	h := f.override[path]
	emails := f.emails
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+ghToken {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	switch path {
	case "/user":
		writeJSON(w, http.StatusOK, map[string]any{"login": "Octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==",
			"type": "User", "site_admin": false, "name": "The Octocat", "company": "@github", "email": "public@octocat.example"})
	case "/user/emails":
		writeJSON(w, http.StatusOK, emails)
	case "/user/orgs":
		if r.URL.Query().Get("page") == "2" {
			w.Header().Set("Link", fmt.Sprintf(`<%[1]s/user/orgs?per_page=100&page=1>; rel="prev", <%[1]s/user/orgs?per_page=100&page=1>; rel="first"`, f.linkAPI))
			writeJSON(w, http.StatusOK, []map[string]any{{"login": "octo-labs", "id": 2}})
			return
		}
		w.Header().Set("Link", fmt.Sprintf(`<%[1]s/user/orgs?per_page=100&page=2>; rel="next", <%[1]s/user/orgs?per_page=100&page=2>; rel="last"`, f.linkAPI))
		writeJSON(w, http.StatusOK, []map[string]any{{"login": "Acme-Corp", "id": 1, "description": "A great organization"}})
	case "/user/teams":
		writeJSON(w, http.StatusOK, []map[string]any{
			{"id": 1, "slug": "platform", "name": "Platform", "organization": map[string]any{"login": "Acme-Corp", "id": 1}},
			{"id": 2, "slug": "sre", "name": "SRE", "organization": map[string]any{"login": "octo-labs", "id": 2}},
		})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	}
}

// serveToken answers like GitHub: form-encoded unless JSON is asked for,
// and a bad code is a 200 with an error field.
func (f *fakeGitHub) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.forms = append(f.forms, r.PostForm)
	h := f.override["/login/oauth/access_token"]
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	vals := url.Values{"access_token": {ghToken}, "scope": {"read:org,read:user,user:email"}, "token_type": {"bearer"}}
	if r.PostForm.Get("code") != "code-1" || r.PostForm.Get("client_secret") != testClientSecret {
		vals = url.Values{"error": {"bad_verification_code"}, "error_description": {"The code passed is incorrect or expired."},
			"error_uri": {"https://docs.github.com/apps/troubleshooting"}}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, vals)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w.Write([]byte(vals.Encode()))
}

func (f *fakeGitHub) set(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[path] = h
}

func (f *fakeGitHub) hitCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *fakeGitHub) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// toFake carries calls to github.com and api.github.com to the fake,
// keeping the host they were meant for in r.Host; other hosts pass.
type toFake struct{ fake *url.URL }

func (t toFake) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "github.com" || r.URL.Host == "api.github.com" {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.Host = "http", t.fake.Host, r.URL.Host
		return http.DefaultTransport.RoundTrip(out)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// githubProvider builds a github.com provider (base_url empty) wired to f,
// or a GitHub Enterprise Server one when f serves /api/v3.
func githubProvider(t *testing.T, f *fakeGitHub, edit func(*Config)) *GitHub {
	t.Helper()
	cfg := Config{ID: "gh", Type: "github", ClientID: testClientID, ClientSecret: testClientSecret}
	opts := Options{RedirectURL: testRedirectURL}
	if f.prefix == "" {
		u, _ := url.Parse(f.URL)
		opts.Transport = toFake{u}
	} else {
		cfg.BaseURL = f.URL
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*GitHub)
}

func githubSignIn(t *testing.T, p *GitHub, code string) (*session.Session, Attempt, error) {
	t.Helper()
	a := NewAttempt()
	if _, err := p.AuthCodeURL(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	s, err := p.Redeem(context.Background(), code, a)
	return s, a, err
}

func TestGitHubSignIn(t *testing.T) {
	f := newFakeGitHub(t, false)
	p := githubProvider(t, f, func(c *Config) { c.Orgs = []string{"acme-corp"} })
	a := NewAttempt()
	raw, err := p.AuthCodeURL(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://github.com/login/oauth/authorize" {
		t.Errorf("authorization endpoint = %s", got)
	}
	q := u.Query()
	for _, w := range []struct{ key, want string }{
		{"client_id", testClientID},
		{"redirect_uri", testRedirectURL},
		{"scope", "read:user user:email read:org"},
		{"state", a.State},
		{"code_challenge_method", "S256"},
		{"code_challenge", s256(a.Verifier)},
	} {
		if got := q[w.key]; len(got) != 1 || got[0] != w.want {
			t.Errorf("%s = %q, want [%q]", w.key, got, w.want)
		}
	}
	for _, key := range []string{"nonce", "code_verifier", "client_secret"} {
		if q.Has(key) {
			t.Errorf("authorization URL has %s", key)
		}
	}

	s, err := p.Redeem(context.Background(), "code-1", a)
	if err != nil {
		t.Fatal(err)
	}
	want := session.Identity{
		Issuer: "https://github.com", Subject: "583231", Email: "octocat@example.com", EmailVerified: true,
		Name: "The Octocat", PreferredUsername: "Octocat",
		Groups: []string{"acme-corp", "acme-corp/platform", "octo-labs", "octo-labs/sre"},
	}
	if fmt.Sprint(s.Identity) != fmt.Sprint(want) {
		t.Errorf("identity =\n %+v\nwant\n %+v", s.Identity, want)
	}
	if s.Provider != "gh" || s.AccessToken != ghToken || s.RefreshToken != "" || s.IDToken != "" || s.SID != "" {
		t.Errorf("session = %+v", s)
	}
	if p.Issuer() != "https://github.com" {
		t.Errorf("Issuer() = %s", p.Issuer())
	}

	f.mu.Lock()
	form := f.forms[len(f.forms)-1]
	f.mu.Unlock()
	for _, w := range []struct{ key, want string }{
		{"grant_type", "authorization_code"},
		{"code", "code-1"},
		{"code_verifier", a.Verifier},
		{"redirect_uri", testRedirectURL},
		{"client_id", testClientID},
		{"client_secret", testClientSecret},
	} {
		if got := form.Get(w.key); got != w.want {
			t.Errorf("token request %s = %q, want %q", w.key, got, w.want)
		}
	}
	var paths []string
	for _, r := range f.requests() {
		paths = append(paths, r.Host+r.URL.Path+"?"+r.URL.Query().Get("page"))
		if r.URL.Path == "/login/oauth/access_token" {
			if r.Host != "github.com" {
				t.Errorf("token request went to %s", r.Host)
			}
			continue
		}
		for _, h := range []struct{ key, want string }{
			{"Accept", "application/vnd.github+json"},
			{"X-GitHub-Api-Version", "2022-11-28"},
			{"Authorization", "Bearer " + ghToken},
		} {
			if got := r.Header.Get(h.key); got != h.want {
				t.Errorf("%s %s: %s = %q, want %q", r.Host, r.URL, h.key, got, h.want)
			}
		}
		if r.URL.Query().Get("page") == "" && r.URL.Path != "/user" && r.URL.Query().Get("per_page") != "100" {
			t.Errorf("%s asked without per_page=100", r.URL)
		}
	}
	wantPaths := []string{"github.com/login/oauth/access_token?", "api.github.com/user?", "api.github.com/user/emails?",
		"api.github.com/user/orgs?", "api.github.com/user/orgs?2", "api.github.com/user/teams?"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("requests = %v\nwant %v", paths, wantPaths)
	}
}

// TestGitHubEmail: only the primary address, and only when GitHub has
// verified it; otherwise the identity has no email, and the sign-in goes on.
func TestGitHubEmail(t *testing.T) {
	for _, tt := range []struct {
		name         string
		emails       []map[string]any
		scopes       []string
		wantErr      error
		wantEmail    string
		wantVerified bool
	}{
		{"verified primary", []map[string]any{
			{"email": "old@example.com", "primary": false, "verified": true},
			{"email": "octocat@example.com", "primary": true, "verified": true},
		}, nil, nil, "octocat@example.com", true},
		{"unverified primary, verified other", []map[string]any{
			{"email": "victim@example.com", "primary": true, "verified": false},
			{"email": "octo@work.example", "primary": false, "verified": true},
		}, nil, nil, "", false},
		{"verified but not primary", []map[string]any{
			{"email": "octo@work.example", "primary": false, "verified": true},
		}, nil, nil, "", false},
		{"no addresses", []map[string]any{}, nil, nil, "", false},
		{"verified as a string: GitHub never sends it, the answer is refused", []map[string]any{
			{"email": "octocat@example.com", "primary": true, "verified": "true"},
		}, nil, ErrUnavailable, "", false},
		{"no user:email scope: not asked", []map[string]any{
			{"email": "octocat@example.com", "primary": true, "verified": true},
		}, []string{"read:user"}, nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGitHub(t, false)
			f.mu.Lock()
			f.emails = tt.emails
			f.mu.Unlock()
			p := githubProvider(t, f, func(c *Config) { c.Scopes = tt.scopes })
			s, _, err := githubSignIn(t, p, "code-1")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Redeem = %v, want %v; an unverified email must cost the email, not the sign-in", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s.Email != tt.wantEmail || s.EmailVerified != tt.wantVerified {
				t.Errorf("email = %q verified %v, want %q %v", s.Email, s.EmailVerified, tt.wantEmail, tt.wantVerified)
			}
			if tt.scopes != nil && f.hitCount("/user/emails") != 0 {
				t.Error("/user/emails asked without the scope")
			}
		})
	}
}

func TestGitHubRestriction(t *testing.T) {
	for _, tt := range []struct {
		name       string
		orgs       []string
		teams      []string
		scopes     []string
		wantErr    error
		wantGroups []string // nil: not checked
	}{
		{"no restriction, no read:org", nil, nil, nil, nil, []string{}},
		{"no restriction, read:org asked", nil, nil, []string{"read:user", "user:email", "read:org"}, nil,
			[]string{"acme-corp", "acme-corp/platform", "octo-labs", "octo-labs/sre"}},
		{"org on the first page", []string{"acme-corp"}, nil, nil, nil, nil},
		{"org on the second page, other case", []string{"OCTO-LABS"}, nil, nil, nil, nil},
		{"one of several orgs", []string{"globex", "octo-labs"}, nil, nil, nil, nil},
		{"not a member", []string{"globex"}, nil, nil, ErrNotAdmitted, nil},
		{"lookalike org", []string{"acme"}, nil, nil, ErrNotAdmitted, nil},
		{"team", nil, []string{"acme-corp/platform"}, nil, nil, nil},
		{"team in another case", nil, []string{"Acme-Corp/Platform"}, nil, nil, nil},
		{"team slug of another org", nil, []string{"acme-corp/sre"}, nil, ErrNotAdmitted, nil},
		{"not in the team", nil, []string{"acme-corp/admins"}, nil, ErrNotAdmitted, nil},
		{"org name is not a team", nil, []string{"acme-corp/acme-corp"}, nil, ErrNotAdmitted, nil},
		{"team or org", []string{"globex"}, []string{"octo-labs/sre"}, nil, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGitHub(t, false)
			p := githubProvider(t, f, func(c *Config) { c.Orgs, c.Teams, c.Scopes = tt.orgs, tt.teams, tt.scopes })
			s, _, err := githubSignIn(t, p, "code-1")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Redeem = %v, want %v", err, tt.wantErr)
			}
			if err != nil || tt.wantGroups == nil {
				return
			}
			if !slices.Equal(s.Groups, tt.wantGroups) && !(len(s.Groups) == 0 && len(tt.wantGroups) == 0) {
				t.Errorf("groups = %v, want %v", s.Groups, tt.wantGroups)
			}
			if len(tt.wantGroups) == 0 && f.hitCount("/user/orgs")+f.hitCount("/user/teams") != 0 {
				t.Error("memberships read without read:org")
			}
		})
	}
}

func TestGitHubAPIFailures(t *testing.T) {
	elsewhere, elsewhereHits := countingServer(t)
	reset := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	status := func(code int, headers map[string]string, body any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for k, v := range headers {
				w.Header().Set(k, v)
			}
			writeJSON(w, code, body)
		}
	}
	limited := map[string]any{"message": "API rate limit exceeded for user ID 583231.", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}
	for _, tt := range []struct {
		name     string
		path     string
		h        http.HandlerFunc
		wantErr  error
		wantMsg  string
		wantHits int // of path; 0: not checked
	}{
		{"primary rate limit, 403", "/user", status(http.StatusForbidden, map[string]string{
			"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)}, limited),
			ErrUnavailable, "resets at 2026-03-01T12:30:00Z", 1},
		{"primary rate limit, 429", "/user/teams", status(http.StatusTooManyRequests, map[string]string{
			"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)}, limited),
			ErrUnavailable, "resets at", 1},
		{"secondary rate limit", "/user/orgs", status(http.StatusForbidden, map[string]string{"Retry-After": "60"},
			map[string]any{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
			ErrUnavailable, "Retry-After 60s", 1},
		{"429 without headers", "/user", status(http.StatusTooManyRequests, nil, limited), ErrUnavailable, "429", 1},
		{"500", "/user", status(http.StatusInternalServerError, nil, map[string]any{"message": "Server Error"}), ErrUnavailable, "500", 1},
		{"502 on emails", "/user/emails", status(http.StatusBadGateway, nil, map[string]any{}), ErrUnavailable, "502", 1},
		{"401 bad credentials", "/user", status(http.StatusUnauthorized, nil, map[string]any{"message": "Bad credentials"}), ErrRejected, "401", 1},
		{"403 forbidden, not rate limited", "/user/teams", status(http.StatusForbidden, map[string]string{"X-RateLimit-Remaining": "4000"},
			map[string]any{"message": "Resource not accessible by integration"}), ErrNotAdmitted, "scope", 1},
		{"404 emails without the scope", "/user/emails", status(http.StatusNotFound, nil, map[string]any{"message": "Not Found"}), ErrNotAdmitted, "404", 1},
		{"422", "/user/orgs", status(http.StatusUnprocessableEntity, nil, map[string]any{"message": "Validation Failed"}), ErrRejected, "422", 1},
		{"redirect", "/user", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL, http.StatusMovedPermanently)
		},
			ErrUnavailable, "redirect", 1},
		{"not JSON", "/user", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>unicorn</html>")) }, ErrUnavailable, "decoding", 1},
		{"no id", "/user", status(http.StatusOK, nil, map[string]any{"login": "octocat"}), ErrInvalidToken, "id", 1},
		{"id not an integer", "/user", status(http.StatusOK, nil, map[string]any{"login": "octocat", "id": 1.5}), ErrInvalidToken, "id", 1},
		{"negative id", "/user", status(http.StatusOK, nil, map[string]any{"login": "octocat", "id": -4}), ErrInvalidToken, "id", 1},
		{"no login", "/user", status(http.StatusOK, nil, map[string]any{"id": 583231}), ErrInvalidToken, "login", 1},
		{"control characters in the name", "/user", status(http.StatusOK, nil, map[string]any{"login": "octocat", "id": 1, "name": "Octo\r\nX-Forwarded-Groups: admins"}),
			ErrInvalidToken, "control", 1},
		{"teams not a list", "/user/teams", status(http.StatusOK, nil, map[string]any{"message": "?"}), ErrUnavailable, "decoding", 1},
		{"Link next to another host", "/user/orgs", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", fmt.Sprintf(`<%s/user/orgs?page=2>; rel="next"`, elsewhere.URL))
			writeJSON(w, http.StatusOK, []map[string]any{{"login": "acme-corp"}})
		}, ErrUnavailable, "refusing", 1},
		{"Link next with the API as userinfo", "/user/orgs", func(w http.ResponseWriter, r *http.Request) {
			u, _ := url.Parse(elsewhere.URL)
			w.Header().Set("Link", fmt.Sprintf(`<https://api.github.com@%s/user/orgs?page=2>; rel="next"`, u.Host))
			writeJSON(w, http.StatusOK, []map[string]any{{"login": "acme-corp"}})
		}, ErrUnavailable, "refusing", 1},
		{"Link next over http", "/user/teams", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `<http://api.github.com/user/teams?page=2>; rel="next"`)
			writeJSON(w, http.StatusOK, []map[string]any{})
		}, ErrUnavailable, "refusing", 1},
		{"endless pages", "/user/orgs", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("page"))
			w.Header().Set("Link", fmt.Sprintf(`<https://api.github.com/user/orgs?per_page=100&page=%d>; rel="next"`, n+1))
			writeJSON(w, http.StatusOK, []map[string]any{{"login": fmt.Sprintf("org-%d", n)}})
		}, ErrNotAdmitted, "pages", maxGitHubPages},
		{"a page linking to itself", "/user/teams", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `<https://api.github.com/user/teams?per_page=100>; rel="next"`)
			writeJSON(w, http.StatusOK, []map[string]any{})
		}, ErrNotAdmitted, "pages", maxGitHubPages},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGitHub(t, false)
			f.set(tt.path, tt.h)
			p := githubProvider(t, f, func(c *Config) { c.Orgs = []string{"acme-corp"} })
			_, _, err := githubSignIn(t, p, "code-1")
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("Redeem = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			if tt.wantHits != 0 && f.hitCount(tt.path) != tt.wantHits {
				t.Errorf("%s asked %d times, want %d", tt.path, f.hitCount(tt.path), tt.wantHits)
			}
			if n := elsewhereHits.Load(); n != 0 {
				t.Errorf("another host was called %d times", n)
			}
		})
	}
}

func TestGitHubTokenEndpoint(t *testing.T) {
	elsewhere, elsewhereHits := countingServer(t)
	for _, tt := range []struct {
		name    string
		code    string
		h       http.HandlerFunc // nil: the fake's GitHub-shaped answer
		wantErr error
		wantMsg string
	}{
		{"bad code: 200 with error, form-encoded", "expired", nil, ErrRejected, "bad_verification_code"},
		{"bad code: 200 with error, JSON", "code-1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
		}, ErrRejected, "bad_verification_code"},
		{"wrong PKCE verifier", "code-1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"error": "invalid_grant", "error_description": "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE."})
		}, ErrRejected, "invalid_grant"},
		{"incorrect client credentials", "code-1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"error": "incorrect_client_credentials"})
		}, ErrRejected, "incorrect_client_credentials"},
		{"500", "code-1", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) }, ErrUnavailable, "500"},
		{"200 without a token", "code-1", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"token_type": "bearer"})
		}, ErrBadResponse, "access_token"},
		{"redirect", "code-1", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
		}, ErrBadResponse, "redirect"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGitHub(t, false)
			if tt.h != nil {
				f.set("/login/oauth/access_token", tt.h)
			}
			p := githubProvider(t, f, nil)
			_, _, err := githubSignIn(t, p, tt.code)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("Redeem = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			if n := f.hitCount("/user"); n != 0 {
				t.Errorf("the API was called %d times after a failed exchange", n)
			}
			if n := elsewhereHits.Load(); n != 0 {
				t.Errorf("another host was called %d times", n)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		p, err := New(Config{ID: "gh", Type: "github", BaseURL: closedURL(t), ClientID: testClientID, ClientSecret: testClientSecret},
			Options{RedirectURL: testRedirectURL})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := githubSignIn(t, p.(*GitHub), "code-1"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Redeem = %v, want ErrUnavailable", err)
		}
	})
}

// TestGitHubEnterprise: base_url moves the OAuth endpoints under it and the
// API under base_url/api/v3; the issuer is base_url.
func TestGitHubEnterprise(t *testing.T) {
	f := newFakeGitHub(t, true)
	p := githubProvider(t, f, func(c *Config) { c.BaseURL = f.URL + "/"; c.Teams = []string{"octo-labs/sre"} })
	if p.Issuer() != f.URL {
		t.Errorf("Issuer() = %s, want %s", p.Issuer(), f.URL)
	}
	a := NewAttempt()
	raw, _ := p.AuthCodeURL(context.Background(), a)
	if !strings.HasPrefix(raw, f.URL+"/login/oauth/authorize?") {
		t.Errorf("authorization URL = %s", raw)
	}
	s, err := p.Redeem(context.Background(), "code-1", a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Issuer != f.URL || s.Subject != "583231" || len(s.Groups) != 4 {
		t.Errorf("identity = %+v", s.Identity)
	}
	for _, r := range f.requests() {
		if r.URL.Path != "/login/oauth/access_token" && !strings.HasPrefix(r.URL.Path, "/api/v3/") {
			t.Errorf("request outside /api/v3: %s", r.URL)
		}
	}
	if n := f.hitCount("/user/orgs"); n != 2 {
		t.Errorf("/api/v3/user/orgs asked %d times, want 2 pages", n)
	}

	// A next link on the same host but outside the API is not followed.
	f.set("/user/orgs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", fmt.Sprintf(`<%s/user/orgs?page=2>; rel="next"`, f.URL))
		writeJSON(w, http.StatusOK, []map[string]any{{"login": "octo-labs"}})
	})
	before := len(f.requests())
	if _, _, err := githubSignIn(t, p, "code-1"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/api/v3/") {
		t.Errorf("Redeem = %v, want a refused link", err)
	}
	for _, r := range f.requests()[before:] {
		if r.URL.Path == "/user/orgs" {
			t.Error("followed a link outside /api/v3")
		}
	}
}

func TestGitHubCheckResponse(t *testing.T) {
	p := githubProvider(t, newFakeGitHub(t, false), nil)
	for _, tt := range []struct {
		name string
		q    url.Values
		want error
	}{
		{"no iss, as GitHub sends", url.Values{"code": {"c"}, "state": {"s"}}, nil},
		{"iss of github.com", url.Values{"iss": {"https://github.com"}}, nil},
		{"iss of another issuer", url.Values{"iss": {"https://idp.example.com"}}, ErrMixUp},
		{"iss with a trailing slash", url.Values{"iss": {"https://github.com/"}}, ErrMixUp},
		{"two iss", url.Values{"iss": {"https://github.com", "https://github.com"}}, ErrMixUp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.CheckResponse(context.Background(), tt.q); !errors.Is(err, tt.want) {
				t.Errorf("CheckResponse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGitHubConfig(t *testing.T) {
	base := func() Config {
		return Config{ID: "gh", Type: "github", ClientID: testClientID, ClientSecret: testClientSecret}
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; nil means valid
	}{
		{"github.com", func(c *Config) {}, nil},
		{"GHES", func(c *Config) { c.BaseURL = "https://github.example.com" }, nil},
		{"GHES on loopback http", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080" }, nil},
		{"orgs and teams", func(c *Config) { c.Orgs, c.Teams = []string{"acme"}, []string{"acme/platform"} }, nil},
		{"orgs with admin:org", func(c *Config) { c.Orgs, c.Scopes = []string{"acme"}, []string{"read:user", "admin:org"} }, nil},

		{"issuer_url", func(c *Config) { c.IssuerURL = "https://github.com" }, []string{"issuer_url", "base_url"}},
		{"base_url over http", func(c *Config) { c.BaseURL = "http://github.example.com" }, []string{"base_url", "https"}},
		{"base_url with a query", func(c *Config) { c.BaseURL = "https://github.example.com?x=1" }, []string{"base_url"}},
		{"base_url with userinfo", func(c *Config) { c.BaseURL = "https://u:p@github.example.com" }, []string{"base_url"}},
		{"insecure_allow_unverified_email", func(c *Config) { c.InsecureAllowUnverifiedEmail = true }, []string{"insecure_allow_unverified_email"}},
		{"orgs without read:org", func(c *Config) { c.Orgs, c.Scopes = []string{"acme"}, []string{"read:user", "user:email"} }, []string{"read:org"}},
		{"team without a slug", func(c *Config) { c.Teams = []string{"acme"} }, []string{"teams", "org/team-slug"}},
		{"team with two slashes", func(c *Config) { c.Teams = []string{"acme/a/b"} }, []string{"teams"}},
		{"org with a slash", func(c *Config) { c.Orgs = []string{"acme/platform"} }, []string{"orgs"}},
		{"empty org", func(c *Config) { c.Orgs = []string{""} }, []string{"orgs"}},
		{"entra keys", func(c *Config) { c.Tenant = tenantA }, []string{"tenant", "entra"}},
		{"orgs on an oidc provider", func(c *Config) { c.Type = "oidc"; c.IssuerURL = "https://idp.example.com"; c.Orgs = []string{"acme"} },
			[]string{"orgs", "github"}},
		{"no client secret", func(c *Config) { c.ClientSecret = "" }, []string{"client_secret"}},
		{"user_claim", func(c *Config) { c.UserClaim = "login" }, []string{"user_claim", "github"}},
		{"userinfo", func(c *Config) { c.Userinfo = "always" }, []string{"userinfo", "github"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(&cfg)
			checkNew(t, cfg, tt.want)
		})
	}

	var calls atomic.Int64
	counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("no calls expected")
	})
	newGH := func(edit func(*Config)) *GitHub {
		cfg := base()
		edit(&cfg)
		p, err := New(cfg, Options{RedirectURL: testRedirectURL, Transport: counting})
		if err != nil {
			t.Fatal(err)
		}
		return p.(*GitHub)
	}
	com := newGH(func(c *Config) {})
	ghes := newGH(func(c *Config) { c.BaseURL = "https://github.example.com/"; c.Orgs = []string{"acme"} })
	dotcom := newGH(func(c *Config) { c.BaseURL = "https://github.com/" })
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"issuer", com.Issuer(), "https://github.com"},
		{"api", com.api.String(), "https://api.github.com"},
		{"token URL", com.oauth.Endpoint.TokenURL, "https://github.com/login/oauth/access_token"},
		{"scopes", strings.Join(com.cfg.Scopes, " "), "read:user user:email"},
		{"GHES issuer", ghes.Issuer(), "https://github.example.com"},
		{"GHES api", ghes.api.String(), "https://github.example.com/api/v3"},
		{"GHES authorize", ghes.oauth.Endpoint.AuthURL, "https://github.example.com/login/oauth/authorize"},
		{"GHES scopes with orgs", strings.Join(ghes.cfg.Scopes, " "), "read:user user:email read:org"},
		{"base_url github.com", dotcom.api.String(), "https://api.github.com"},
		{"base_url github.com issuer", dotcom.Issuer(), "https://github.com"},
		{"ready", com.Ready(context.Background()), nil},
		{"no refresh", implements[interface {
			Refresh(context.Context, *session.Session) (*session.Session, error)
		}](com), false},
		{"no end session", implements[interface {
			EndSessionURL(context.Context, string, string, string) (string, error)
		}](com), false},
		{"no logout tokens", implements[interface {
			VerifyLogoutToken(context.Context, string) (*LogoutToken, error)
		}](com), false},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls to GitHub without a sign-in", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNextLink(t *testing.T) {
	for _, tt := range []struct {
		header, want string
	}{
		{`<https://api.github.com/user/orgs?page=2>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last"`, "https://api.github.com/user/orgs?page=2"},
		{`<https://api.github.com/user/orgs?page=1>; rel="prev", <https://api.github.com/user/orgs?page=3>; rel="next"`, "https://api.github.com/user/orgs?page=3"},
		{`<https://a.example/2>; rel=next`, "https://a.example/2"},
		{`<https://a.example/2>; title="x"; REL="Next Last"`, "https://a.example/2"},
		{`<https://api.github.com/user/orgs?page=1>; rel="prev", <https://api.github.com/user/orgs?page=1>; rel="first"`, ""},
		{`<https://a.example/2>; rel="nextpage"`, ""},
		{`https://a.example/2; rel="next"`, ""},
		{`<https://a.example/2>`, ""},
		{``, ""},
	} {
		if got := nextLink(tt.header); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}
