package providers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/session"
)

// revocationServer is an RFC 7009 revocation endpoint answering status
// and recording what it received.
type revocationServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	reqs   []tokenRequest
}

func newRevocationServer(t *testing.T, status int) *revocationServer {
	rs := &revocationServer{status: status}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusMethodNotAllowed)
			return
		}
		r.ParseForm()
		rs.mu.Lock()
		rs.reqs = append(rs.reqs, tokenRequest{Form: r.PostForm, Auth: r.Header.Get("Authorization")})
		status := rs.status
		rs.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *revocationServer) requests() []tokenRequest {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]tokenRequest(nil), rs.reqs...)
}

// TestRevokeTokensRequest: the refresh token is revoked with
// token_type_hint=refresh_token (the access token when there is none),
// with the client authentication the token endpoint gets (RFC 7009 §2.1).
func TestRevokeTokensRequest(t *testing.T) {
	for _, tt := range []struct {
		name      string
		methods   []string // token_endpoint_auth_methods_supported
		session   session.Session
		wantToken string
		wantHint  string
		wantBasic bool
	}{
		{"refresh token, basic", nil, session.Session{RefreshToken: "rt-1", AccessToken: "at-1"}, "rt-1", "refresh_token", true},
		{"refresh token, post", []string{"client_secret_post"}, session.Session{RefreshToken: "rt-1"}, "rt-1", "refresh_token", false},
		{"access token only", nil, session.Session{AccessToken: "at-1"}, "at-1", "access_token", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			rs := newRevocationServer(t, http.StatusOK)
			ti.setMeta("revocation_endpoint", rs.URL)
			if tt.methods != nil {
				ti.setMeta("token_endpoint_auth_methods_supported", tt.methods)
			}
			p := ti.provider(t, newClock(), nil).(Revoker)
			if err := p.RevokeTokens(context.Background(), &tt.session); err != nil {
				t.Fatalf("RevokeTokens: %v", err)
			}
			reqs := rs.requests()
			if len(reqs) != 1 {
				t.Fatalf("revocation endpoint called %d times, want 1", len(reqs))
			}
			req := reqs[0]
			if got := req.Form["token"]; len(got) != 1 || got[0] != tt.wantToken {
				t.Errorf("token = %q, want %q", got, tt.wantToken)
			}
			if got := req.Form.Get("token_type_hint"); got != tt.wantHint {
				t.Errorf("token_type_hint = %q, want %q", got, tt.wantHint)
			}
			r := http.Request{Header: http.Header{"Authorization": {req.Auth}}}
			user, pass, basic := r.BasicAuth()
			if tt.wantBasic {
				if !basic || user != url.QueryEscape(testClientID) || pass != url.QueryEscape(testClientSecret) || req.Form.Has("client_secret") {
					t.Errorf("Authorization %q, form secret %v: want client_secret_basic only", req.Auth, req.Form.Has("client_secret"))
				}
			} else if req.Auth != "" || req.Form.Get("client_id") != testClientID || req.Form.Get("client_secret") != testClientSecret {
				t.Errorf("Authorization %q, form client_id %q: want client_secret_post", req.Auth, req.Form.Get("client_id"))
			}
		})
	}
}

// TestRevokeTokensOutcomes: 200 is done (RFC 7009 §2.2); 503 is the
// provider unavailable (§2.2.1); 400 is rejected; nothing is sent without
// an endpoint, a token, or with revoke_tokens: never.
func TestRevokeTokensOutcomes(t *testing.T) {
	withRT := session.Session{RefreshToken: "rt-1"}
	for _, tt := range []struct {
		name     string
		endpoint bool
		status   int
		edit     func(*Config)
		session  session.Session
		want     error
		wantSent int
	}{
		{"revoked", true, http.StatusOK, nil, withRT, nil, 1},
		{"unavailable", true, http.StatusServiceUnavailable, nil, withRT, ErrUnavailable, 1},
		{"rejected", true, http.StatusBadRequest, nil, withRT, ErrRejected, 1},
		{"redirected", true, http.StatusFound, nil, withRT, ErrBadResponse, 1},
		{"no endpoint", false, http.StatusOK, nil, withRT, ErrNoRevocation, 0},
		{"no token", true, http.StatusOK, nil, session.Session{}, ErrNoRevocation, 0},
		{"revoke_tokens never", true, http.StatusOK, func(c *Config) { c.RevokeTokens = "never" }, withRT, ErrNoRevocation, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			rs := newRevocationServer(t, tt.status)
			if tt.endpoint {
				ti.setMeta("revocation_endpoint", rs.URL)
			}
			p := ti.provider(t, newClock(), tt.edit).(Revoker)
			err := p.RevokeTokens(context.Background(), &tt.session)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("RevokeTokens = %v, want %v", err, tt.want)
			}
			if got := len(rs.requests()); got != tt.wantSent {
				t.Errorf("requests sent = %d, want %d", got, tt.wantSent)
			}
		})
	}
}

func TestRevokeTokensUnreachable(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setMeta("revocation_endpoint", closedURL(t))
	p := ti.provider(t, newClock(), nil).(Revoker)
	if err := p.RevokeTokens(context.Background(), &session.Session{RefreshToken: "rt"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("RevokeTokens to a closed port = %v, want ErrUnavailable", err)
	}
}

func TestRevokeTokensConfig(t *testing.T) {
	cfg := Config{ID: "corp", IssuerURL: "https://idp.example.com", ClientID: "c", ClientSecret: "s", RevokeTokens: "sometimes"}
	if _, err := New(cfg, Options{RedirectURL: testRedirectURL}); err == nil || !containsAll(err.Error(), "corp", "revoke_tokens") {
		t.Errorf("revoke_tokens: sometimes: %v, want an error naming the provider and the key", err)
	}
	on := true
	gh := Config{ID: "gh", Type: "github", ClientID: "c", ClientSecret: "s", FrontchannelLogout: &on}
	if _, err := New(gh, Options{RedirectURL: testRedirectURL}); err == nil || !containsAll(err.Error(), "gh", "frontchannel_logout") {
		t.Errorf("github with frontchannel_logout: %v, want an error naming the provider and the key", err)
	}
	p, err := New(Config{ID: "corp", IssuerURL: "https://idp.example.com", ClientID: "c", ClientSecret: "s"}, Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if !p.(FrontchannelLogouter).FrontchannelLogout() {
		t.Error("frontchannel_logout is not on by default for an OpenID provider")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
