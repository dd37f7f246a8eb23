package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// TestCallbackProviderFailures: what the provider's token endpoint did
// decides the status and the failure reason (a metric label). A garbage
// answer is the provider's fault (502) but not an outage: only
// ErrUnavailable may say provider_unavailable.
func TestCallbackProviderFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"garbage token response", fmt.Errorf("%w: token endpoint: cannot parse json", providers.ErrBadResponse), http.StatusBadGateway, "provider_bad_response"},
		{"redirect from the token endpoint", fmt.Errorf("%w: refusing redirect", providers.ErrBadResponse), http.StatusBadGateway, "provider_bad_response"},
		{"connection refused", fmt.Errorf("%w: token endpoint: dial tcp: connection refused", providers.ErrUnavailable), http.StatusBadGateway, "provider_unavailable"},
		{"invalid_grant", fmt.Errorf("%w: token endpoint: invalid_grant", providers.ErrRejected), http.StatusBadRequest, "code_rejected"},
		{"token fails verification", fmt.Errorf("%w: bad signature", providers.ErrInvalidToken), http.StatusForbidden, "token_invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			e := newEnvOpts(t, nil, func(o *Options) { o.Metrics = m })
			a := e.begin("/x")
			e.idp.redeemErr = tt.err
			resp, _ := e.callback("code=c&state="+url.QueryEscape(a.state), a.login)
			refused(t, e, resp, tt.status)
			if got := counterValue(t, reg, "portcullis_sign_ins_total", "provider", "corp", "result", tt.reason); got != 1 {
				t.Errorf("sign-ins failed with reason %s = %v, want 1", tt.reason, got)
			}
			if tt.reason != "provider_unavailable" {
				if got := counterValue(t, reg, "portcullis_sign_ins_total", "provider", "corp", "result", "provider_unavailable"); got != 0 {
					t.Errorf("a provider answer counted as an outage (%v)", got)
				}
			}
			if ready := e.do(get("https://gw.example.com/ready")); ready.StatusCode != http.StatusOK {
				t.Errorf("/ready = %d after a failed sign-in, want 200", ready.StatusCode)
			}
		})
	}
}

func TestSignInFailureReasons(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{providers.ErrBadResponse, "provider_bad_response"},
		{fmt.Errorf("x: %w", providers.ErrBadResponse), "provider_bad_response"},
		{providers.ErrUnavailable, "provider_unavailable"},
		{providers.ErrInvalidToken, "token_invalid"},
		{errors.New("odd"), "error"},
	} {
		if got := signInFailure(tt.err); got != tt.want {
			t.Errorf("signInFailure(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestRefreshBadResponseKeepsSession: a garbage refresh answer keeps the
// session and backs off like an outage, but is logged as what it is.
func TestRefreshBadResponseKeepsSession(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	e := newEnvOpts(t, nil, func(o *Options) {
		o.IdleTimeout = 10 * time.Minute
		o.RefreshBefore = time.Minute
		o.Metrics = m
	})
	e.idp.refresh = func(*session.Session) (*session.Session, error) {
		return nil, fmt.Errorf("%w: token endpoint: cannot parse json", providers.ErrBadResponse)
	}
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(10 * time.Second) }))
	for i := 0; i < 2; i++ {
		if resp := e.do(get("https://gw.example.com/", "Cookie", due)); resp.StatusCode != 200 {
			t.Fatalf("request %d = %d, want 200 with the old session", i, resp.StatusCode)
		}
	}
	if e.idp.refreshes != 1 {
		t.Errorf("refresh attempts = %d, want 1 (then back off)", e.idp.refreshes)
	}
	if got := counterValue(t, reg, "portcullis_session_refreshes_total", "provider", "corp", "result", "bad_response"); got != 1 {
		t.Errorf("refreshes with result bad_response = %v, want 1", got)
	}
	if got := counterValue(t, reg, "portcullis_session_refreshes_total", "provider", "corp", "result", "unavailable"); got != 0 {
		t.Errorf("a garbage refresh answer counted as unavailable (%v)", got)
	}
	if !strings.Contains(e.logs.String(), "unusable answer; keeping the session") {
		t.Error("the failed refresh was not logged")
	}
}

// TestReadyNamesIssuerMismatch: a provider whose discovery names another
// issuer is a configuration error, and /ready says so; an outage is only
// "unavailable".
func TestReadyNamesIssuerMismatch(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"issuer mismatch", fmt.Errorf("%w: corp: discovery at https://idp.test/: %w", providers.ErrUnavailable,
			fmt.Errorf("%w: issuer in configuration https://idp.test/ differs from discovered \"https://idp.test\": remove the trailing slash", providers.ErrIssuerMismatch)),
			`provider corp misconfigured: issuer in configuration https://idp.test/ differs from discovered \"https://idp.test\": remove the trailing slash`},
		{"outage", fmt.Errorf("%w: corp: dial tcp: connection refused", providers.ErrUnavailable), "provider corp unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.idp.readyErr = tt.err
			resp := e.do(get("https://gw.example.com/ready"))
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), tt.want) {
				t.Errorf("/ready = %d %s, want 503 naming %s", resp.StatusCode, body, tt.want)
			}
		})
	}
}
