package providers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// s256 is the PKCE S256 challenge of verifier (RFC 7636 §4.2), computed here
// rather than with oauth2.S256ChallengeFromVerifier so the test does not
// trust the library it checks.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// countingServer answers every request with 200 and counts them: a place a
// request must never reach.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusOK, tokenResponse(""))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func TestAuthCodeURL(t *testing.T) {
	for _, tt := range []struct {
		name      string
		scopes    []string
		wantScope string
	}{
		{"default scopes", nil, "openid email profile"},
		{"openid added when missing", []string{"email", "groups"}, "openid email groups"},
		{"openid kept where it is", []string{"email", "openid"}, "email openid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			p := ti.provider(t, newClock(), func(c *Config) { c.Scopes = tt.scopes })
			a := NewAttempt()
			raw, err := p.AuthCodeURL(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.Scheme+"://"+u.Host+u.Path, ti.URL+"/authorize"; got != want {
				t.Errorf("endpoint = %s, want %s", got, want)
			}
			q := u.Query()
			for _, w := range []struct{ key, want string }{
				{"response_type", "code"},
				{"client_id", testClientID},
				{"redirect_uri", testRedirectURL},
				{"scope", tt.wantScope},
				{"state", a.State},
				{"nonce", a.Nonce},
				{"code_challenge_method", "S256"},
				{"code_challenge", s256(a.Verifier)},
			} {
				if got := q[w.key]; len(got) != 1 || got[0] != w.want {
					t.Errorf("%s = %q, want [%q]", w.key, got, w.want)
				}
			}
			if got := len(q.Get("code_challenge")); got != 43 {
				t.Errorf("code_challenge has %d characters, want 43", got)
			}
			// The verifier and the secret stay on the back channel
			// (RFC 7636 §4.3; RFC 9700 §2.1.1).
			for _, secret := range []string{a.Verifier, testClientSecret, "plain"} {
				if strings.Contains(raw, secret) || strings.Contains(raw, url.QueryEscape(secret)) {
					t.Errorf("authorization URL contains %q: %s", secret, raw)
				}
			}
			for _, key := range []string{"code_verifier", "client_secret"} {
				if q.Has(key) {
					t.Errorf("authorization URL has %s", key)
				}
			}
		})
	}
}

// TestDiscoveryAccepts: metadata a real provider may publish that must not
// keep the provider from becoming ready.
func TestDiscoveryAccepts(t *testing.T) {
	for _, tt := range []struct {
		name  string
		key   string
		value any
	}{
		{"no code_challenge_methods_supported", "code_challenge_methods_supported", nil},
		{"plain and S256", "code_challenge_methods_supported", []string{"plain", "S256"}},
		{"no id_token_signing_alg_values_supported", "id_token_signing_alg_values_supported", nil},
		{"HS256 next to RS256", "id_token_signing_alg_values_supported", []string{"HS256", "RS256"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			ti.setMeta(tt.key, tt.value)
			p := ti.provider(t, newClock(), nil)
			if err := p.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			a := NewAttempt()
			raw, err := p.AuthCodeURL(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			if got := u.Query().Get("code_challenge_method"); got != "S256" {
				t.Errorf("code_challenge_method = %q, want S256", got)
			}
		})
	}
}

// TestDiscoveryFailures: a provider whose discovery fails is not ready and
// serves no step of a sign-in.
func TestDiscoveryFailures(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, ti *testIssuer) (issuerURL string) // "" keeps ti.URL
		cfg   func(*Config)
	}{
		{name: "issuer unreachable", setup: func(t *testing.T, ti *testIssuer) string { return closedURL(t) }},
		{name: "discovery answers 500", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setDiscoveryStatus(http.StatusInternalServerError)
			return ""
		}},
		{name: "discovered issuer differs", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("issuer", "https://other.example.com")
			return ""
		}},
		{name: "discovered issuer has a trailing slash", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("issuer", ti.URL+"/")
			return ""
		}},
		{name: "PKCE plain only", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("code_challenge_methods_supported", []string{"plain"})
			return ""
		}},
		{name: "HS256 only", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("id_token_signing_alg_values_supported", []string{"HS256"})
			return ""
		}},
		{name: "none only", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("id_token_signing_alg_values_supported", []string{"none"})
			return ""
		}},
		{name: "no advertised alg in signing_algs", cfg: func(c *Config) { c.SigningAlgs = []string{"ES256"} }},
		{name: "no jwks_uri", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("jwks_uri", nil)
			return ""
		}},
		{name: "metadata over 1 MiB", setup: func(t *testing.T, ti *testIssuer) string {
			ti.setMeta("x_padding", strings.Repeat("a", maxResponseBytes))
			return ""
		}},
		{name: "discovery redirects", setup: func(t *testing.T, ti *testIssuer) string {
			// The redirector sends discovery to ti, whose metadata names
			// the redirector: following the redirect would succeed.
			r := httptest.NewServer(http.RedirectHandler(ti.URL+"/.well-known/openid-configuration", http.StatusFound))
			t.Cleanup(r.Close)
			ti.setMeta("issuer", r.URL)
			return r.URL
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			issuer := ""
			if tt.setup != nil {
				issuer = tt.setup(t, ti)
			}
			p := ti.provider(t, newClock(), func(c *Config) {
				if issuer != "" {
					c.IssuerURL = issuer
				}
				if tt.cfg != nil {
					tt.cfg(c)
				}
			})
			ctx := context.Background()
			err := p.Ready(ctx)
			t.Logf("Ready: %v", err)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("Ready = %v, want %v", err, ErrUnavailable)
			}
			if err != nil && !strings.Contains(err.Error(), "corp") {
				t.Errorf("Ready error %q does not name the provider", err)
			}
			if u, err := p.AuthCodeURL(ctx, NewAttempt()); err == nil || u != "" {
				t.Errorf("AuthCodeURL = %q, %v; want an error", u, err)
			}
			if err := p.CheckResponse(ctx, url.Values{"iss": {p.Issuer()}}); err == nil {
				t.Error("CheckResponse succeeded")
			}
			if s, err := p.Redeem(ctx, "code-1", NewAttempt()); err == nil || s != nil {
				t.Errorf("Redeem = %v, %v; want an error", s, err)
			}
			if got := ti.tokenHits.Load(); got != 0 {
				t.Errorf("token endpoint called %d times", got)
			}
		})
	}
}

// TestDiscoveryRetry: while the provider is down, discovery is tried at
// most every 5 s; once it succeeded it is never fetched again.
func TestDiscoveryRetry(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setDiscoveryStatus(http.StatusServiceUnavailable)
	clk := newClock()
	p := ti.provider(t, clk, nil)
	ctx := context.Background()

	for _, step := range []struct {
		name      string
		advance   time.Duration
		up        bool
		wantReady bool
		wantHits  int64
	}{
		{"first try fails", 0, false, false, 1},
		{"1 s later: remembered failure", time.Second, false, false, 1},
		{"4.9 s after the try: still remembered", 3900 * time.Millisecond, false, false, 1},
		{"5 s after the try: tried again", 100 * time.Millisecond, false, false, 2},
		{"provider back, 1 s later: still remembered", time.Second, true, false, 2},
		{"provider back, 5 s after the try", 4 * time.Second, true, true, 3},
		{"an hour later: not fetched again", time.Hour, true, true, 3},
		{"provider down again: still ready", time.Hour, false, true, 3},
	} {
		t.Run(step.name, func(t *testing.T) {
			clk.Advance(step.advance)
			if step.up {
				ti.setDiscoveryStatus(0)
			} else {
				ti.setDiscoveryStatus(http.StatusServiceUnavailable)
			}
			err := p.Ready(ctx)
			if got := err == nil; got != step.wantReady {
				t.Errorf("Ready = %v, want ready %v", err, step.wantReady)
			}
			if !step.wantReady && !errors.Is(err, ErrUnavailable) {
				t.Errorf("Ready = %v, want %v", err, ErrUnavailable)
			}
			if got := ti.discoveryHits.Load(); got != step.wantHits {
				t.Errorf("discovery fetched %d times, want %d", got, step.wantHits)
			}
		})
	}
	if _, err := p.AuthCodeURL(ctx, NewAttempt()); err != nil {
		t.Fatal(err)
	}
	if got := ti.discoveryHits.Load(); got != 3 {
		t.Errorf("AuthCodeURL fetched discovery again: %d fetches", got)
	}
}

// TestDiscoveryConcurrent: many first requests at once share one discovery.
func TestDiscoveryConcurrent(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := p.Ready(context.Background()); err != nil {
				t.Errorf("Ready: %v", err)
			}
		})
	}
	wg.Wait()
	if got := ti.discoveryHits.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}
}

// TestCheckResponse is RFC 9207 §2.4 (SECURITY.md ISS-1..3).
func TestCheckResponse(t *testing.T) {
	ti := newTestIssuer(t)
	iss := ti.URL
	for _, tt := range []struct {
		name       string
		advertised bool // authorization_response_iss_parameter_supported
		q          url.Values
		want       error
	}{
		{"iss equal", false, url.Values{"code": {"c"}, "iss": {iss}}, nil},
		{"iss equal, advertised", true, url.Values{"code": {"c"}, "iss": {iss}}, nil},
		{"iss different", false, url.Values{"code": {"c"}, "iss": {"https://evil.example.com"}}, ErrMixUp},
		{"iss different, advertised", true, url.Values{"code": {"c"}, "iss": {"https://evil.example.com"}}, ErrMixUp},
		{"iss with a trailing slash", true, url.Values{"code": {"c"}, "iss": {iss + "/"}}, ErrMixUp},
		{"iss in upper case", true, url.Values{"code": {"c"}, "iss": {strings.ToUpper(iss)}}, ErrMixUp},
		{"iss empty", false, url.Values{"code": {"c"}, "iss": {""}}, ErrMixUp},
		{"two iss values, both ours", true, url.Values{"code": {"c"}, "iss": {iss, iss}}, ErrMixUp},
		{"two iss values, ours first", false, url.Values{"code": {"c"}, "iss": {iss, "https://evil.example.com"}}, ErrMixUp},
		{"two iss values, ours last", false, url.Values{"code": {"c"}, "iss": {"https://evil.example.com", iss}}, ErrMixUp},
		{"missing iss, advertised", true, url.Values{"code": {"c"}}, ErrMixUp},
		{"missing iss, not advertised", false, url.Values{"code": {"c"}}, nil},
		{"error response without iss, advertised", true, url.Values{"error": {"access_denied"}}, ErrMixUp},
		{"error response from another issuer", false, url.Values{"error": {"access_denied"}, "iss": {"https://evil.example.com"}}, ErrMixUp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti.setMeta("authorization_response_iss_parameter_supported", tt.advertised)
			p := ti.provider(t, newClock(), nil)
			err := p.CheckResponse(context.Background(), tt.q)
			if !errors.Is(err, tt.want) {
				t.Errorf("CheckResponse(%v) = %v, want %v", tt.q, err, tt.want)
			}
		})
	}
}

// TestRedeemTokenRequest checks what the gateway sends the token endpoint:
// the code, the PKCE verifier (RFC 7636 §4.5) and one client authentication
// method chosen from the metadata.
func TestRedeemTokenRequest(t *testing.T) {
	for _, tt := range []struct {
		name      string
		methods   []string // token_endpoint_auth_methods_supported
		wantBasic bool
	}{
		{"not advertised: basic", nil, true},
		{"both: basic", []string{"client_secret_post", "client_secret_basic"}, true},
		{"basic only", []string{"client_secret_basic"}, true},
		{"post only", []string{"client_secret_post"}, false},
		{"neither: basic", []string{"private_key_jwt"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			if tt.methods != nil {
				ti.setMeta("token_endpoint_auth_methods_supported", tt.methods)
			}
			p := ti.provider(t, newClock(), nil)
			a := NewAttempt()
			raw, err := p.AuthCodeURL(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			challenge := u.Query().Get("code_challenge")
			ti.replyIDToken(rsaKey.sign(t, ti.claims(a, testNow)))
			if _, err := p.Redeem(context.Background(), "code-1", a); err != nil {
				t.Fatalf("Redeem: %v", err)
			}
			req := ti.lastTokenRequest(t)
			for _, w := range []struct{ key, want string }{
				{"grant_type", "authorization_code"},
				{"code", "code-1"},
				{"redirect_uri", testRedirectURL},
				{"code_verifier", a.Verifier},
			} {
				if got := req.Form[w.key]; len(got) != 1 || got[0] != w.want {
					t.Errorf("%s = %q, want [%q]", w.key, got, w.want)
				}
			}
			if got := s256(req.Form.Get("code_verifier")); got != challenge {
				t.Errorf("S256(code_verifier) = %s, want the code_challenge sent: %s", got, challenge)
			}
			r := http.Request{Header: http.Header{"Authorization": {req.Auth}}}
			user, pass, basic := r.BasicAuth()
			if tt.wantBasic {
				// RFC 6749 §2.3.1: id and secret are form-urlencoded first.
				if !basic || user != url.QueryEscape(testClientID) || pass != url.QueryEscape(testClientSecret) {
					t.Errorf("Authorization = %q, want client_secret_basic", req.Auth)
				}
				if req.Form.Has("client_secret") {
					t.Error("client_secret sent in the form as well")
				}
			} else {
				if req.Auth != "" {
					t.Errorf("Authorization = %q, want none with client_secret_post", req.Auth)
				}
				if req.Form.Get("client_id") != testClientID || req.Form.Get("client_secret") != testClientSecret {
					t.Errorf("form client_id/client_secret = %q/%q, want client_secret_post", req.Form.Get("client_id"), req.Form.Get("client_secret"))
				}
			}
			if got := ti.tokenHits.Load(); got != 1 {
				t.Errorf("token endpoint called %d times, want 1", got)
			}
		})
	}
}

// TestRedeemTokenEndpointErrors sorts what can go wrong at the token
// endpoint into "said no" and "could not be asked".
func TestRedeemTokenEndpointErrors(t *testing.T) {
	elsewhere, elsewhereHits := countingServer(t)
	bigString := strings.Repeat("a", 2*maxResponseBytes)
	for _, tt := range []struct {
		name  string
		reply http.HandlerFunc
		want  error
	}{
		{"invalid_grant", jsonReply(http.StatusBadRequest, map[string]any{"error": "invalid_grant"}), ErrRejected},
		{"invalid_client with 401", jsonReply(http.StatusUnauthorized, map[string]any{"error": "invalid_client"}), ErrRejected},
		{"error in a 200 answer", jsonReply(http.StatusOK, map[string]any{"error": "invalid_grant"}), ErrRejected},
		{"form-encoded error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("error=invalid_grant"))
		}, ErrRejected},
		{"400 with an empty body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }, ErrRejected},
		{"500", jsonReply(http.StatusInternalServerError, map[string]any{"error": "server_error"}), ErrUnavailable},
		{"502 with invalid_grant", jsonReply(http.StatusBadGateway, map[string]any{"error": "invalid_grant"}), ErrUnavailable},
		{"503", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }, ErrUnavailable},
		{"200 that is not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hi</html>")) }, ErrBadResponse},
		{"200 without access_token", jsonReply(http.StatusOK, map[string]any{"id_token": "x"}), ErrBadResponse},
		{"307 to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
		}, ErrBadResponse},
		{"302 to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/token", http.StatusFound)
		}, ErrBadResponse},
		{"body over 1 MiB", jsonReply(http.StatusOK, map[string]any{"access_token": "a", "padding": bigString}), ErrBadResponse},
		{"429", jsonReply(http.StatusTooManyRequests, map[string]any{"error": "slow_down"}), ErrUnavailable},
		{"200 JSON sent as text/plain", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(`{"access_token":"a","token_type":"Bearer"}`))
		}, ErrBadResponse},
		{"200 truncated JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"a","tok`))
		}, ErrBadResponse},
		{"200 access_token a number", jsonReply(http.StatusOK, map[string]any{"access_token": 5}), ErrBadResponse},
		{"error body over 1 MiB", jsonReply(http.StatusBadRequest, map[string]any{"error": "invalid_grant", "padding": bigString}), ErrRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			p := ti.provider(t, newClock(), nil)
			ti.reply(tt.reply)
			s, err := p.Redeem(context.Background(), "code-1", NewAttempt())
			t.Logf("Redeem: %v", err)
			if !errors.Is(err, tt.want) {
				t.Errorf("Redeem error = %v, want %v", err, tt.want)
			}
			if tt.want != ErrUnavailable && errors.Is(err, ErrUnavailable) {
				t.Errorf("Redeem error = %v: an answer is not an outage", err)
			}
			if s != nil {
				t.Error("Redeem returned a session")
			}
			if got := ti.tokenHits.Load(); got != 1 {
				t.Errorf("token endpoint called %d times, want 1 (no retry with another auth style)", got)
			}
			if got := elsewhereHits.Load(); got != 0 {
				t.Errorf("redirect target contacted %d times", got)
			}
		})
	}
}

func jsonReply(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, v) }
}

func TestRedeemTokenEndpointUnreachable(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setMeta("token_endpoint", closedURL(t)+"/token")
	p := ti.provider(t, newClock(), nil)
	s, err := p.Redeem(context.Background(), "code-1", NewAttempt())
	if !errors.Is(err, ErrUnavailable) || s != nil {
		t.Errorf("Redeem = %v, %v; want no session and %v", s, err, ErrUnavailable)
	}
}

// TestRedeemTimeout: Config.Timeout bounds a token endpoint that never
// answers.
func TestRedeemTimeout(t *testing.T) {
	ti := newTestIssuer(t)
	release := make(chan struct{})
	defer close(release)
	ti.reply(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	p := ti.provider(t, newClock(), func(c *Config) { c.Timeout = 300 * time.Millisecond })
	if err := p.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := p.Redeem(context.Background(), "code-1", NewAttempt())
	if !errors.Is(err, ErrUnavailable) || s != nil {
		t.Errorf("Redeem = %v, %v; want no session and %v", s, err, ErrUnavailable)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Redeem took %v with a 300ms timeout", d)
	}
}

// TestDiscoveryIgnoresCallerCancellation: a caller that goes away (a
// browser closing /oauth2/start, a /ready probe timing out) must not be
// remembered as the provider being down.
func TestDiscoveryIgnoresCallerCancellation(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), nil)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	p.Ready(gone)
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready after another caller gave up = %v, want nil (discovery fetched %d times)", err, ti.discoveryHits.Load())
	}
}

// TestDiscoveryIssuerMismatchNamesTheCause: an issuer that differs from the
// discovered one only by a trailing slash is still refused (Discovery
// §4.3), and the error says which way to fix the configuration.
func TestDiscoveryIssuerMismatchNamesTheCause(t *testing.T) {
	for _, tt := range []struct {
		name       string
		discovered func(url string) string
		configured func(url string) string
		want       string
	}{
		{"discovered with a trailing slash", func(u string) string { return u + "/" }, func(u string) string { return u }, "add the trailing slash"},
		{"configured with a trailing slash", func(u string) string { return u }, func(u string) string { return u + "/" }, "remove the trailing slash"},
		{"another issuer", func(string) string { return "https://other.example.com" }, func(u string) string { return u }, "must be identical"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			ti.setMeta("issuer", tt.discovered(ti.URL))
			p := ti.provider(t, newClock(), func(c *Config) { c.IssuerURL = tt.configured(ti.URL) })
			err := p.Ready(context.Background())
			if !errors.Is(err, ErrIssuerMismatch) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ready = %v, want %v and %v", err, ErrIssuerMismatch, ErrUnavailable)
			}
			if !strings.Contains(err.Error(), "issuer in configuration "+tt.configured(ti.URL)+" differs from discovered") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ready = %v, want it to name both issuers and %q", err, tt.want)
			}
		})
	}
}
