package providers

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{ID: "corp", IssuerURL: "https://idp.example.com", ClientID: testClientID, ClientSecret: testClientSecret}
}

// TestNewValidatesConfig: New refuses a bad provider entry, and every error
// names the provider and the offending key so the operator can find it.
func TestNewValidatesConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; nil means valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"explicit type oidc", func(c *Config) { c.Type = "oidc" }, nil},
		{"http loopback 127.0.0.1", func(c *Config) { c.IssuerURL = "http://127.0.0.1:5556/dex" }, nil},
		{"http localhost", func(c *Config) { c.IssuerURL = "http://localhost:8080" }, nil},
		{"http [::1]", func(c *Config) { c.IssuerURL = "http://[::1]:8080" }, nil},
		{"issuer with a path", func(c *Config) { c.IssuerURL = "https://idp.example.com/realms/corp" }, nil},
		{"id with - and _", func(c *Config) { c.ID = "corp-sso_2" }, nil},
		{"asymmetric signing_algs", func(c *Config) { c.SigningAlgs = []string{"RS256", "ES256", "PS256", "EdDSA"} }, nil},
		{"timeout of 1m", func(c *Config) { c.Timeout = time.Minute }, nil},
		{"userinfo always", func(c *Config) { c.Userinfo = "always" }, nil},
		{"claim names", func(c *Config) { c.EmailClaim, c.UsernameClaim, c.UserClaim = "mail", "login", "email" }, nil},
		{"userinfo sometimes", func(c *Config) { c.Userinfo = "sometimes" }, []string{"corp", "userinfo", "auto, always or never"}},

		{"missing id", func(c *Config) { c.ID = "" }, []string{"?", "id is required"}},
		{"missing issuer_url", func(c *Config) { c.IssuerURL = "" }, []string{"corp", "issuer_url"}},
		{"missing client_id", func(c *Config) { c.ClientID = "" }, []string{"corp", "client_id"}},
		{"missing client_secret", func(c *Config) { c.ClientSecret = "" }, []string{"corp", "client_secret"}},
		{"all credentials missing", func(c *Config) { c.ClientID, c.ClientSecret = "", "" }, []string{"corp", "client_id", "client_secret"}},
		{"http issuer", func(c *Config) { c.IssuerURL = "http://idp.example.com" }, []string{"corp", "issuer_url", "https"}},
		{"http issuer on a loopback-looking name", func(c *Config) { c.IssuerURL = "http://127.0.0.1.nip.io" }, []string{"corp", "issuer_url"}},
		{"http issuer under localhost", func(c *Config) { c.IssuerURL = "http://localhost.evil.com" }, []string{"corp", "issuer_url"}},
		{"ftp issuer", func(c *Config) { c.IssuerURL = "ftp://idp.example.com" }, []string{"corp", "issuer_url"}},
		{"issuer without scheme", func(c *Config) { c.IssuerURL = "idp.example.com" }, []string{"corp", "issuer_url"}},
		{"issuer without host", func(c *Config) { c.IssuerURL = "https:///realms/corp" }, []string{"corp", "issuer_url"}},
		{"issuer with query", func(c *Config) { c.IssuerURL = "https://idp.example.com?tenant=a" }, []string{"corp", "issuer_url"}},
		{"issuer with fragment", func(c *Config) { c.IssuerURL = "https://idp.example.com#x" }, []string{"corp", "issuer_url"}},
		{"issuer with userinfo", func(c *Config) { c.IssuerURL = "https://user:pw@idp.example.com" }, []string{"corp", "issuer_url"}},
		{"issuer with a space", func(c *Config) { c.IssuerURL = "https://idp example.com" }, []string{"corp", "issuer_url"}},
		{"unknown type", func(c *Config) { c.Type = "saml" }, []string{"corp", "type", "saml"}},
		{"signing_algs HS256", func(c *Config) { c.SigningAlgs = []string{"RS256", "HS256"} }, []string{"corp", "signing_algs", "HS256"}},
		{"signing_algs none", func(c *Config) { c.SigningAlgs = []string{"none"} }, []string{"corp", "signing_algs", "none"}},
		{"signing_algs lower case", func(c *Config) { c.SigningAlgs = []string{"rs256"} }, []string{"corp", "signing_algs", "rs256"}},
		{"id with a space", func(c *Config) { c.ID = "my corp" }, []string{"my corp", "id"}},
		{"id with a slash", func(c *Config) { c.ID = "corp/../x" }, []string{"corp/../x", "id"}},
		{"id with a dot", func(c *Config) { c.ID = "corp.example" }, []string{"corp.example", "id"}},
		{"id with a newline", func(c *Config) { c.ID = "corp\n" }, []string{"id"}},
		{"id not ASCII", func(c *Config) { c.ID = "cörp" }, []string{"cörp", "id"}},
		{"timeout too long", func(c *Config) { c.Timeout = 2 * time.Minute }, []string{"corp", "timeout"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"corp", "timeout"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			checkNew(t, cfg, tt.want)
		})
	}
}

// checkNew asserts that New builds a provider from cfg when want is nil,
// and otherwise refuses it with an error that starts with the package name
// and mentions every string in want.
func checkNew(t *testing.T, cfg Config, want []string) {
	t.Helper()
	p, err := New(cfg, Options{RedirectURL: testRedirectURL})
	if want == nil {
		if err != nil || p == nil {
			t.Fatalf("New = %v, %v; want a provider", p, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("New accepted %+v", cfg)
	}
	if p != nil {
		t.Error("New returned a provider with its error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if !strings.HasPrefix(err.Error(), "providers: ") {
		t.Errorf("error %q does not start with the package name", err)
	}
}

// TestNewRefusesEmptyIssuerQuery: "https://idp.example.com?" has an empty
// query (url.URL.ForceQuery) and "…#" an empty fragment; both make go-oidc
// fetch another URL than IssuerURL/.well-known/openid-configuration, so the
// provider can never become ready. Config load should say so.
func TestNewRefusesEmptyIssuerQuery(t *testing.T) {
	for _, issuer := range []string{"https://idp.example.com?", "https://idp.example.com#"} {
		t.Run(issuer, func(t *testing.T) {
			cfg := validConfig()
			cfg.IssuerURL = issuer
			if _, err := New(cfg, Options{RedirectURL: testRedirectURL}); err == nil {
				t.Errorf("New accepted issuer_url %q", issuer)
			}
		})
	}
}

func TestNewNeedsRedirectURL(t *testing.T) {
	_, err := New(validConfig(), Options{})
	if err == nil || !strings.Contains(err.Error(), "corp") || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("New without RedirectURL = %v, want an error naming corp and the redirect URL", err)
	}
}

// TestNewDefaults: what an entry that sets only the required keys gets.
func TestNewDefaults(t *testing.T) {
	p, err := New(validConfig(), Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	o := p.(*OIDC)
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"type", o.cfg.Type, "oidc"},
		{"name", o.Name(), "corp"},
		{"scopes", strings.Join(o.cfg.Scopes, " "), "openid email profile"},
		{"groups claim", o.cfg.GroupsClaim, "groups"},
		{"timeout", o.cfg.Timeout, 10 * time.Second},
		{"unverified email", o.cfg.InsecureAllowUnverifiedEmail, false},
		{"issuer", p.Issuer(), "https://idp.example.com"},
		{"id", p.ID(), "corp"},
		{"now", o.opts.Now != nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	// The defaults are copied, not shared.
	o.cfg.Scopes[0] = "changed"
	if DefaultScopes[0] != "openid" {
		t.Errorf("DefaultScopes changed through a provider's config: %v", DefaultScopes)
	}
}

// TestNewAttempt: state, nonce and verifier are 32 random bytes each,
// base64url (RFC 7636 §4.1, OpenID Connect Core §15.5.2), and never repeat.
func TestNewAttempt(t *testing.T) {
	b64url43 := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 100 {
		a := NewAttempt()
		for _, v := range []string{a.State, a.Nonce, a.Verifier} {
			if !b64url43.MatchString(v) {
				t.Fatalf("attempt value %q is not 43 base64url characters", v)
			}
			if seen[v] {
				t.Fatalf("attempt value %q repeated", v)
			}
			seen[v] = true
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d distinct values, want 300", len(seen))
	}
}
