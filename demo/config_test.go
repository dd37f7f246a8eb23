package demo

import (
	"strings"
	"testing"
	"time"
)

func TestNewValidatesConfig(t *testing.T) {
	client := Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://127.0.0.1/cb"}}
	user := User{Username: "u", Password: "p"}
	for _, tt := range []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" for success
	}{
		{"minimal", Config{Issuer: "http://127.0.0.1:1"}, ""},
		{"no issuer", Config{}, "needs an issuer"},
		{"relative issuer", Config{Issuer: "/idp"}, "absolute"},
		{"issuer with query", Config{Issuer: "http://127.0.0.1:1/?x=1"}, "query"},
		{"ftp issuer", Config{Issuer: "ftp://127.0.0.1"}, "absolute http"},
		{"user without password", Config{Issuer: "http://h", Users: []User{{Username: "u"}}}, "password"},
		{"duplicate username", Config{Issuer: "http://h", Users: []User{user, {ID: "other", Username: "u", Password: "q"}}}, "duplicate username"},
		{"duplicate user ID", Config{Issuer: "http://h", Users: []User{user, {ID: "u", Username: "v", Password: "q"}}}, "duplicate user ID"},
		{"reserved extra claim", Config{Issuer: "http://h", Users: []User{{Username: "u", Password: "p", ExtraClaims: map[string]any{"iss": "x"}}}}, `"iss"`},
		{"client without secret", Config{Issuer: "http://h", Clients: []Client{{ID: "c", RedirectURIs: client.RedirectURIs}}}, "secret"},
		{"client without redirect", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Secret: "s"}}}, "redirect"},
		{"relative redirect", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}}}}, "absolute"},
		{"duplicate client", Config{Issuer: "http://h", Clients: []Client{client, client}}, "duplicate client"},
		{"machine client without redirect", Config{Issuer: "http://h", Clients: []Client{{ID: "m", Secret: "s", ClientCredentials: true, ServiceGroups: []string{"g"}}}}, ""},
		{"service groups without client credentials", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: client.RedirectURIs, ServiceGroups: []string{"g"}}}}, "ServiceGroups"},
		{"service email without client credentials", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: client.RedirectURIs, ServiceEmail: "m@example.com"}}}, "ServiceEmail"},
		{"empty audience", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: client.RedirectURIs, Audience: []string{""}}}}, "audience"},
		{"public client", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Public: true, RedirectURIs: client.RedirectURIs}}}, ""},
		{"public client with a secret", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Public: true, Secret: "s", RedirectURIs: client.RedirectURIs}}}, "no secret"},
		{"key client", Config{Issuer: "http://h", Clients: []Client{{ID: "c", PublicKey: sharedKey(t).Public(), RedirectURIs: client.RedirectURIs}}}, ""},
		{"key client with a secret", Config{Issuer: "http://h", Clients: []Client{{ID: "c", PublicKey: sharedKey(t).Public(), Secret: "s", RedirectURIs: client.RedirectURIs}}}, "no secret"},
		{"public and key", Config{Issuer: "http://h", Clients: []Client{{ID: "c", Public: true, PublicKey: sharedKey(t).Public(), RedirectURIs: client.RedirectURIs}}}, "not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SigningKey = sharedKey(t)
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p, err := New(Config{Issuer: "http://127.0.0.1:1", Users: []User{{Username: "carol", Password: "pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	key, kid := p.SigningKey()
	carol := p.store.users["carol"]
	for _, c := range []struct {
		what string
		got  any
		want any
	}{
		{"generated key size", key.N.BitLen(), 2048},
		{"kid is a thumbprint", len(kid), 43},
		{"access token lifetime", p.store.accessTTL, 5 * time.Minute},
		{"ID token lifetime", p.store.idTTL, 5 * time.Minute},
		{"refresh token lifetime", p.store.refreshTTL, 24 * time.Hour},
		{"user ID from username", carol != nil, true},
		{"preferred_username from username", carol.PreferredUsername, "carol"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestControls(t *testing.T) {
	p, err := New(Config{Issuer: "http://127.0.0.1:1", SigningKey: sharedKey(t), Users: testUsers()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		do      func() error
		wantErr bool
	}{
		{"SetClaim", func() error { return p.SetClaim("u-alice", "department", "Ops") }, false},
		{"SetClaim nil removes", func() error { return p.SetClaim("u-alice", "hd", nil) }, false},
		{"SetClaim reserved", func() error { return p.SetClaim("u-alice", "email", "x@evil.example") }, true},
		{"SetClaim unknown user", func() error { return p.SetClaim("nobody", "department", "Ops") }, true},
		{"SetGroups", func() error { return p.SetGroups("u-bob", []string{"ops"}) }, false},
		{"SetGroups unknown user", func() error { return p.SetGroups("nobody", nil) }, true},
		{"AddUser", func() error { return p.AddUser(User{Username: "dave", Password: "pw"}) }, false},
		{"AddUser duplicate", func() error { return p.AddUser(User{Username: "alice", Password: "pw"}) }, true},
		{"AddClient", func() error {
			return p.AddClient(Client{ID: "c2", Secret: "s", RedirectURIs: []string{"http://127.0.0.1/cb"}})
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	alice, bob := p.store.users["u-alice"], p.store.users["u-bob"]
	if got, want := alice.ExtraClaims["department"], "Ops"; got != want {
		t.Errorf("alice department = %v, want %v", got, want)
	}
	if _, ok := alice.ExtraClaims["hd"]; ok {
		t.Errorf("alice still has hd after SetClaim(nil)")
	}
	if got := bob.Groups; len(got) != 1 || got[0] != "ops" {
		t.Errorf("bob groups = %v, want [ops]", got)
	}
}

// TestSweep checks that expired protocol state does not pile up.
func TestSweep(t *testing.T) {
	clk := &clock{now: time.Now()}
	p := startRP(t, func(c *Config) { c.Now = clk.Now })
	for range 3 {
		p.signIn(t, "alice", alicePass)
	}
	p.authorize(t, browser(t)) // abandoned at the login page

	clk.advance(25 * time.Hour)
	p.authorize(t, browser(t)) // any write sweeps

	s := p.idp.store
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range []struct {
		what string
		got  int
		want int
	}{
		{"auth requests", len(s.authRequests), 1},
		{"codes", len(s.codes), 0},
		{"access tokens", len(s.accessTokens), 0},
		{"refresh tokens", len(s.refreshTokens), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s left = %d, want %d", c.what, c.got, c.want)
		}
	}
}
