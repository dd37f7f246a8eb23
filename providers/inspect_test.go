package providers

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestInspect: -check -online's report names each defect of a discovery
// document in plain words, and lists only the URIs the provider can use.
func TestInspect(t *testing.T) {
	for _, tt := range []struct {
		name       string
		edit       func(ti *testIssuer, c *Config)
		wantErrors []string // each must appear in one error; none: no errors
		wantReg    Register
	}{
		{"good, no logout support", nil, nil, Register{Redirect: true}},
		{"trailing slash", func(ti *testIssuer, c *Config) { c.IssuerURL = ti.URL + "/" }, []string{"issuer mismatch", "remove the trailing slash"}, Register{Redirect: true}},
		{"pkce plain only", func(ti *testIssuer, c *Config) { ti.setMeta("code_challenge_methods_supported", []string{"plain"}) },
			[]string{"does not support PKCE S256 (code_challenge_methods_supported: plain)"}, Register{Redirect: true}},
		{"no authorization endpoint", func(ti *testIssuer, c *Config) { ti.setMeta("authorization_endpoint", nil) },
			[]string{"no authorization_endpoint"}, Register{Redirect: true}},
		{"no token endpoint", func(ti *testIssuer, c *Config) { ti.setMeta("token_endpoint", nil) },
			[]string{"no token_endpoint"}, Register{Redirect: true}},
		{"no jwks_uri", func(ti *testIssuer, c *Config) { ti.setMeta("jwks_uri", nil) },
			[]string{"no jwks_uri"}, Register{Redirect: true}},
		{"no acceptable alg", func(ti *testIssuer, c *Config) {
			ti.setMeta("id_token_signing_alg_values_supported", []string{"HS256"})
		},
			[]string{"no acceptable ID-token algorithm"}, Register{Redirect: true}},
		{"empty JWKS", func(ti *testIssuer, c *Config) { ti.setKeys() }, []string{"keys (jwks_uri", "no usable public keys"}, Register{Redirect: true}},
		{"JWKS unreachable", func(ti *testIssuer, c *Config) { ti.setMeta("jwks_uri", closedURL(t)) },
			[]string{"keys (jwks_uri", "connection refused"}, Register{Redirect: true}},
		{"discovery 404", func(ti *testIssuer, c *Config) { ti.setDiscoveryStatus(http.StatusNotFound) },
			[]string{"discovery at", "failed: the provider answered 404 Not Found"}, Register{Redirect: true}},
		{"issuer down", func(ti *testIssuer, c *Config) { c.IssuerURL = closedURL(t) }, []string{"connection refused"}, Register{Redirect: true}},
		{"every logout", func(ti *testIssuer, c *Config) {
			ti.setMeta("end_session_endpoint", ti.URL+"/end")
			ti.setMeta("backchannel_logout_supported", true)
			ti.setMeta("frontchannel_logout_supported", true)
			ti.setMeta("frontchannel_logout_session_supported", true)
		}, nil, Register{Redirect: true, PostLogout: true, Backchannel: true, Frontchannel: true}},
		{"end_session never, frontchannel off", func(ti *testIssuer, c *Config) {
			ti.setMeta("end_session_endpoint", ti.URL+"/end")
			ti.setMeta("frontchannel_logout_supported", true)
			ti.setMeta("frontchannel_logout_session_supported", true)
			off := false
			c.EndSession, c.FrontchannelLogout = "never", &off
		}, nil, Register{Redirect: true}},
		{"skip_discovery: no discovery asked, the configured endpoints used", func(ti *testIssuer, c *Config) {
			ti.setDiscoveryStatus(http.StatusNotFound)
			c.SkipDiscovery, c.AuthorizationEndpoint, c.TokenEndpoint, c.JWKSURI = true, ti.URL+"/authorize", ti.URL+"/token", ti.URL+"/jwks"
			c.EndSessionEndpoint = ti.URL + "/end"
		}, nil, Register{Redirect: true, PostLogout: true}},
		{"skip_discovery, keys unreachable", func(ti *testIssuer, c *Config) {
			c.SkipDiscovery, c.AuthorizationEndpoint, c.TokenEndpoint, c.JWKSURI = true, ti.URL+"/authorize", ti.URL+"/token", closedURL(t)
		}, []string{"keys (jwks_uri", "connection refused"}, Register{Redirect: true}},
		{"client_auth the provider does not take", func(ti *testIssuer, c *Config) {
			ti.setMeta("token_endpoint_auth_methods_supported", []string{"client_secret_basic", "private_key_jwt"})
			c.ClientAuth = "client_secret_post"
		}, []string{"client authentication client_secret_post is not among", "client_secret_basic, private_key_jwt"}, Register{Redirect: true}},
		{"frontchannel without sid", func(ti *testIssuer, c *Config) { ti.setMeta("frontchannel_logout_supported", true) }, nil, Register{Redirect: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			cfg := Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret}
			if tt.edit != nil {
				tt.edit(ti, &cfg)
			}
			rep, err := Inspect(context.Background(), cfg, Options{})
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			all := strings.Join(rep.Errors, "\n")
			if len(tt.wantErrors) == 0 && len(rep.Errors) > 0 {
				t.Errorf("errors %q, want none", rep.Errors)
			}
			if len(tt.wantErrors) > 0 && len(rep.Errors) == 0 {
				t.Errorf("no errors, want %q", tt.wantErrors)
			}
			for _, w := range tt.wantErrors {
				if !strings.Contains(all, w) {
					t.Errorf("errors %q lack %q", rep.Errors, w)
				}
			}
			if rep.Register != tt.wantReg {
				t.Errorf("Register = %+v, want %+v", rep.Register, tt.wantReg)
			}
		})
	}
}

// TestInspectSupports: what discovery advertises is reported as such.
func TestInspectSupports(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setMeta("revocation_endpoint", ti.URL+"/revoke")
	ti.setMeta("userinfo_endpoint", ti.URL+"/userinfo")
	ti.setMeta("authorization_response_iss_parameter_supported", true)
	ti.setMeta("backchannel_logout_supported", true)
	rep, err := Inspect(context.Background(), Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Support{Backchannel: true, Revocation: true, Userinfo: true, IssParameter: true}
	if !rep.Discovered || rep.Supports != want {
		t.Errorf("Discovered %v, Supports %+v, want %+v", rep.Discovered, rep.Supports, want)
	}
	if _, err := Inspect(context.Background(), Config{ID: "corp", IssuerURL: ti.URL}, Options{}); err == nil {
		t.Error("Inspect of an invalid configuration: no error")
	}
}

// TestCause: the plain words for why a provider cannot be used.
func TestCause(t *testing.T) {
	ti := newTestIssuer(t)
	p := ti.provider(t, newClock(), func(c *Config) { c.IssuerURL = ti.URL + "/" })
	if got := Cause(p.Ready(context.Background())); !strings.Contains(got, "remove the trailing slash") || strings.HasPrefix(got, "identity provider") {
		t.Errorf("Cause(trailing slash) = %q", got)
	}
	down := ti.provider(t, newClock(), func(c *Config) { c.IssuerURL = closedURL(t) })
	if got := Cause(down.Ready(context.Background())); !strings.HasPrefix(got, "connection refused") {
		t.Errorf("Cause(closed port) = %q, want connection refused", got)
	}
	ti.setMeta("code_challenge_methods_supported", []string{"plain"})
	plain := ti.provider(t, newClock(), nil)
	if got := Cause(plain.Ready(context.Background())); !strings.HasPrefix(got, "provider does not support PKCE S256") {
		t.Errorf("Cause(PKCE plain) = %q", got)
	}
}
