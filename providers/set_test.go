package providers

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/session"
)

func TestNewSet(t *testing.T) {
	oidc := func(id, issuer string) Config {
		return Config{ID: id, IssuerURL: issuer, ClientID: testClientID, ClientSecret: testClientSecret}
	}
	github := func(id string, edit func(*Config)) Config {
		c := Config{ID: id, Type: "github", ClientID: testClientID, ClientSecret: testClientSecret}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	for _, tt := range []struct {
		name     string
		cfgs     []Config
		wantIDs  []string
		wantErr  []string // substrings of the error, each problem at once
		wantWarn []string
	}{
		{name: "one", cfgs: []Config{oidc("corp", "https://idp.example.com")}, wantIDs: []string{"corp"}},
		{name: "in configuration order", cfgs: []Config{
			oidc("b", "https://b.example.com"), oidc("a", "https://a.example.com"), github("gh", nil),
		}, wantIDs: []string{"b", "a", "gh"}},
		{name: "github.com and an Enterprise Server", cfgs: []Config{
			github("gh", nil), github("ghes", func(c *Config) { c.BaseURL = "https://github.corp.example" }),
		}, wantIDs: []string{"gh", "ghes"}},
		{name: "insecure email warns", cfgs: []Config{
			oidc("corp", "https://idp.example.com"),
			func() Config {
				c := oidc("lax", "https://lax.example.com")
				c.InsecureAllowUnverifiedEmail = true
				return c
			}(),
		}, wantIDs: []string{"corp", "lax"}, wantWarn: []string{"lax", "insecure_allow_unverified_email"}},

		{name: "no providers", wantErr: []string{"at least one"}},
		{name: "duplicate id", cfgs: []Config{oidc("corp", "https://a.example.com"), oidc("corp", "https://b.example.com")},
			wantErr: []string{`id "corp" is used twice`}},
		{name: "duplicate issuer", cfgs: []Config{oidc("a", "https://idp.example.com"), oidc("b", "https://idp.example.com")},
			wantErr: []string{"a and b have the same issuer https://idp.example.com"}},
		{name: "two github entries share github.com", cfgs: []Config{github("gh1", nil), github("gh2", nil)},
			wantErr: []string{"gh1 and gh2 have the same issuer https://github.com"}},
		{name: "github.com spelled as base_url is github.com", cfgs: []Config{
			github("gh1", nil), github("gh2", func(c *Config) { c.BaseURL = "https://github.com/" }),
		}, wantErr: []string{"gh1 and gh2 have the same issuer https://github.com"}},
		{name: "two google entries share accounts.google.com", cfgs: []Config{
			{ID: "g1", Type: "google", ClientID: "x", ClientSecret: "y"}, {ID: "g2", Type: "google", ClientID: "x", ClientSecret: "y"},
		}, wantErr: []string{"same issuer https://accounts.google.com"}},
		{name: "several problems at once", cfgs: []Config{
			oidc("corp", "https://a.example.com"),
			oidc("corp", "https://b.example.com"),
			{ID: "broken", IssuerURL: "https://c.example.com"},
			oidc("twin", "https://a.example.com"),
		}, wantErr: []string{`id "corp" is used twice`, "broken: client_id is required", "corp and twin have the same issuer"}},
		{name: "a duplicate id with a bad config reports both", cfgs: []Config{
			oidc("corp", "https://a.example.com"), {ID: "corp", IssuerURL: "http://b.example.com", ClientID: "x", ClientSecret: "y"},
		}, wantErr: []string{`id "corp" is used twice`, "must use https"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSet(tt.cfgs, Options{RedirectURL: testRedirectURL})
			if tt.wantErr != nil {
				if err == nil || s != nil {
					t.Fatalf("NewSet = %v, %v; want an error", s, err)
				}
				checkMentions(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.IDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("IDs = %v, want %v", got, tt.wantIDs)
			}
			for i, p := range s.All() {
				if p.ID() != tt.wantIDs[i] || s.Get(p.ID()) != p {
					t.Errorf("All()[%d] = %s, Get = %v", i, p.ID(), s.Get(p.ID()))
				}
			}
			if s.Get("nope") != nil {
				t.Error("Get of an unknown id is not nil")
			}
			if only := s.Only(); (len(tt.wantIDs) == 1) != (only != nil) {
				t.Errorf("Only = %v with %d providers", only, len(tt.wantIDs))
			}
			warnings := strings.Join(s.Warnings(), "\n")
			for _, w := range tt.wantWarn {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings %q do not mention %q", warnings, w)
				}
			}
			if tt.wantWarn == nil && warnings != "" {
				t.Errorf("warnings = %q, want none", warnings)
			}
		})
	}
}

// checkMentions asserts that err mentions every string in want: every
// problem is reported at once.
func checkMentions(t *testing.T, err error, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// stubProvider is a Provider built elsewhere, for SetOf.
type stubProvider struct{ id, issuer string }

func (p stubProvider) ID() string                                           { return p.id }
func (p stubProvider) Name() string                                         { return p.id }
func (p stubProvider) Issuer() string                                       { return p.issuer }
func (p stubProvider) AuthCodeURL(context.Context, Attempt) (string, error) { return "", nil }
func (p stubProvider) CheckResponse(context.Context, url.Values) error      { return nil }
func (p stubProvider) Redeem(context.Context, string, Attempt) (*session.Session, error) {
	return nil, errors.New("stub")
}
func (p stubProvider) Ready(context.Context) error { return nil }

func TestSetOf(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ps      []Provider
		wantIDs []string
		wantErr []string
	}{
		{name: "two", ps: []Provider{stubProvider{"a", "https://a"}, stubProvider{"b", "https://b"}}, wantIDs: []string{"a", "b"}},
		{name: "none", wantErr: []string{"at least one"}},
		{name: "duplicate id", ps: []Provider{stubProvider{"a", "https://a"}, stubProvider{"a", "https://b"}},
			wantErr: []string{`id "a" is used twice`}},
		{name: "duplicate issuer", ps: []Provider{stubProvider{"a", "https://x"}, stubProvider{"b", "https://x"}},
			wantErr: []string{"a and b have the same issuer https://x"}},
		{name: "every problem at once", ps: []Provider{
			stubProvider{"a", "https://x"}, stubProvider{"a", "https://y"}, stubProvider{"b", "https://x"},
		}, wantErr: []string{`id "a" is used twice`, "a and b have the same issuer"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SetOf(tt.ps...)
			if tt.wantErr != nil {
				if err == nil || s != nil {
					t.Fatalf("SetOf = %v, %v; want an error", s, err)
				}
				checkMentions(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.IDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("IDs = %v, want %v", got, tt.wantIDs)
			}
		})
	}
}

// TestSetVerifyLogoutToken: a logout token goes to the provider whose
// issuer it names, and only one that accepts logout tokens; only iss is
// read before that provider checks the signature.
func TestSetVerifyLogoutToken(t *testing.T) {
	a, b := newTestIssuer(t), newTestIssuer(t)
	b.setKeys(rsaOther.jwk())
	clk := newClock()
	cfg := func(id, issuer string) Config {
		return Config{ID: id, IssuerURL: issuer, ClientID: testClientID, ClientSecret: testClientSecret}
	}
	s, err := NewSet([]Config{
		cfg("a", a.URL),
		cfg("b", b.URL),
		{ID: "gh", Type: "github", ClientID: testClientID, ClientSecret: testClientSecret},
	}, Options{RedirectURL: testRedirectURL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	for _, tt := range []struct {
		name       string
		token      func(t *testing.T) string
		wantIssuer string
		wantErr    error
	}{
		{"a's token", func(t *testing.T) string { return signLogout(t, rsaKey, "logout+jwt", a.logoutClaims(now)) }, a.URL, nil},
		{"b's token", func(t *testing.T) string { return signLogout(t, rsaOther, "logout+jwt", b.logoutClaims(now)) }, b.URL, nil},
		{"a's claims under b's key", func(t *testing.T) string { return signLogout(t, rsaOther, "logout+jwt", a.logoutClaims(now)) }, "", ErrInvalidLogoutToken},
		{"b's claims under a's key", func(t *testing.T) string { return signLogout(t, rsaKey, "logout+jwt", b.logoutClaims(now)) }, "", ErrInvalidLogoutToken},
		{"unknown issuer", func(t *testing.T) string {
			c := a.logoutClaims(now)
			c["iss"] = "https://evil.example"
			return signLogout(t, rsaKey, "logout+jwt", c)
		}, "", ErrInvalidLogoutToken},
		{"github accepts no logout tokens", func(t *testing.T) string {
			c := a.logoutClaims(now)
			c["iss"] = githubDotCom
			return signLogout(t, rsaKey, "logout+jwt", c)
		}, "", ErrInvalidLogoutToken},
		{"no iss", func(t *testing.T) string {
			c := a.logoutClaims(now)
			delete(c, "iss")
			return signLogout(t, rsaKey, "logout+jwt", c)
		}, "", ErrInvalidLogoutToken},
		{"not a JWT", func(*testing.T) string { return "garbage" }, "", ErrInvalidLogoutToken},
		{"over 16 KiB", func(t *testing.T) string {
			c := a.logoutClaims(now)
			c["padding"] = strings.Repeat("a", 16<<10)
			return signLogout(t, rsaKey, "logout+jwt", c)
		}, "", ErrInvalidLogoutToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lt, err := s.VerifyLogoutToken(context.Background(), tt.token(t))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || lt != nil {
					t.Fatalf("VerifyLogoutToken = %+v, %v; want %v", lt, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lt.Issuer != tt.wantIssuer || lt.Subject != "user-1" || lt.SessionID != "sid-1" || lt.ID != "jti-1" {
				t.Errorf("logout token = %+v, want issuer %s", lt, tt.wantIssuer)
			}
		})
	}
}
