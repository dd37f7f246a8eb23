package providers

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// refreshFixture is a provider for ti with a session to refresh, signed in
// as user-1 with every attribute set.
type refreshFixture struct {
	ti   *testIssuer
	p    *OIDC
	now  time.Time
	base *session.Session
}

func newRefreshFixture(t *testing.T, ti *testIssuer, edit func(*Config)) refreshFixture {
	t.Helper()
	clk := newClock()
	p := ti.provider(t, clk, edit).(*OIDC)
	return refreshFixture{ti: ti, p: p, now: clk.Now(), base: &session.Session{
		Identity: session.Identity{Issuer: ti.URL, Subject: "user-1", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice", PreferredUsername: "alice", Groups: []string{"old"}, Claims: map[string][]string{"team": {"old-team"}}},
		Provider:     "corp",
		TokenExpiry:  clk.Now().Add(30 * time.Second),
		RefreshToken: "rt-1",
	}}
}

// idToken is a refreshed ID token for user-1 with only iss, sub, aud, exp
// and iat, plus what edit adds.
func (f refreshFixture) idToken(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	c := map[string]any{"iss": f.ti.URL, "sub": "user-1", "aud": testClientID, "exp": f.now.Add(5 * time.Minute).Unix(), "iat": f.now.Unix()}
	if edit != nil {
		edit(c)
	}
	return rsaKey.sign(t, c)
}

// refresh answers the refresh with idToken ("" for none) and refreshes.
func (f refreshFixture) refresh(t *testing.T, idToken string) (*session.Session, error) {
	t.Helper()
	f.ti.replyJSON(http.StatusOK, tokenResponse(idToken))
	return f.p.Refresh(context.Background(), f.base)
}

// TestHeaderSafeOnEveryPath: a control character in any value that goes
// into a header refuses the identity, whichever path it came by, with that
// path's error (SECURITY.md HS-*).
func TestHeaderSafeOnEveryPath(t *testing.T) {
	policy := func(c *Config) {}
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, ti *testIssuer) error
		want error
	}{
		{"sign-in: name", func(t *testing.T, ti *testIssuer) error {
			_, _, _, err := idTokenCase{claims: set("name", "Alice\r\nX-Forwarded-Groups: admins")}.run(t)
			return err
		}, ErrInvalidToken},
		{"sign-in: sid", func(t *testing.T, ti *testIssuer) error {
			_, _, _, err := idTokenCase{claims: set("sid", "sid\n1")}.run(t)
			return err
		}, ErrInvalidToken},
		{"sign-in: policy claim", func(t *testing.T, ti *testIssuer) error {
			p, err := New(Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret},
				Options{RedirectURL: testRedirectURL, Now: newClock().Now, Claims: []string{"team"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = signIn(t, ti, p, func(a Attempt) map[string]any {
				c := ti.claims(a, testNow)
				c["groups"], c["team"] = []string{}, "a\x00b"
				return tokenResponse(rsaKey.sign(t, c))
			})
			return err
		}, ErrInvalidToken},
		{"sign-in: userinfo groups", func(t *testing.T, ti *testIssuer) error {
			ti.setUserinfo(map[string]any{"sub": "user-1", "groups": []string{"dev", "ad\x7fmin"}})
			_, err := signIn(t, ti, ti.provider(t, newClock(), policy), func(a Attempt) map[string]any {
				return tokenResponse(rsaKey.sign(t, ti.claims(a, testNow)))
			})
			return err
		}, ErrInvalidToken},
		{"refresh: ID token name", func(t *testing.T, ti *testIssuer) error {
			f := newRefreshFixture(t, ti, func(c *Config) { c.Userinfo = "never" })
			_, err := f.refresh(t, f.idToken(t, set("name", "Alice\n")))
			return err
		}, ErrInvalidToken},
		{"refresh: ID token sid", func(t *testing.T, ti *testIssuer) error {
			f := newRefreshFixture(t, ti, func(c *Config) { c.Userinfo = "never" })
			_, err := f.refresh(t, f.idToken(t, set("sid", "\x01")))
			return err
		}, ErrInvalidToken},
		{"refresh: userinfo groups", func(t *testing.T, ti *testIssuer) error {
			ti.setUserinfo(map[string]any{"sub": "user-1", "groups": []string{"a\tb"}})
			f := newRefreshFixture(t, ti, nil)
			_, err := f.refresh(t, "")
			return err
		}, ErrInvalidToken},
		{"bearer: name", func(t *testing.T, ti *testIssuer) error {
			clk := newClock()
			c := ti.bearerClaims(clk.Now())
			c["name"] = "CI\r"
			_, err := bearerVerifier(t, ti, clk, nil).Verify(context.Background(), rsaKey.sign(t, c))
			return err
		}, ErrInvalidBearer},
		{"bearer: sub", func(t *testing.T, ti *testIssuer) error {
			clk := newClock()
			c := ti.bearerClaims(clk.Now())
			c["sub"] = "bot\n"
			_, err := bearerVerifier(t, ti, clk, nil).Verify(context.Background(), rsaKey.sign(t, c))
			return err
		}, ErrInvalidBearer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t, newTestIssuer(t))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignInUserinfo: at sign-in the userinfo endpoint fills what the ID
// token lacks, profile included (OpenID Connect Core §5.4), for the same
// sub (§5.3.2); the ID token's own values win unless `userinfo: always`.
func TestSignInUserinfo(t *testing.T) {
	alice := session.Identity{Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}
	with := func(edit func(*session.Identity)) session.Identity {
		id := alice
		edit(&id)
		return id
	}
	for _, tt := range []struct {
		name     string
		cfg      func(*Config)
		claims   func(map[string]any) // the ID token's
		userinfo map[string]any       // nil: no userinfo endpoint
		want     session.Identity     // Issuer filled in
		wantErr  error
		wantHits int64
	}{
		{name: "groups and policy claim from userinfo",
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"dev"}, "team": "platform", "email": "other@example.com", "name": "Other"},
			want: with(func(id *session.Identity) {
				id.Groups, id.Claims = []string{"dev"}, map[string][]string{"team": {"platform"}}
			}), wantHits: 1},
		{name: "the ID token's policy claim wins", claims: set("team", "from-token"),
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"dev"}, "team": "platform"},
			want: with(func(id *session.Identity) {
				id.Groups, id.Claims = []string{"dev"}, map[string][]string{"team": {"from-token"}}
			}), wantHits: 1},
		{name: "nothing missing: not asked", claims: func(c map[string]any) {
			c["groups"], c["team"], c["preferred_username"] = []string{"ops"}, "x", "alice"
		},
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"dev"}},
			want: with(func(id *session.Identity) {
				id.Groups, id.Claims, id.PreferredUsername = []string{"ops"}, map[string][]string{"team": {"x"}}, "alice"
			})},
		{name: "profile only at userinfo (Zitadel)", claims: func(c map[string]any) {
			delete(c, "email")
			delete(c, "email_verified")
			delete(c, "name")
		},
			userinfo: map[string]any{"sub": "user-1", "email": "alice@example.com", "email_verified": true, "name": "Alice",
				"preferred_username": "alice", "groups": []string{"dev"}},
			want: with(func(id *session.Identity) { id.PreferredUsername, id.Groups = "alice", []string{"dev"} }), wantHits: 1},
		{name: "userinfo vouches for the token's email", claims: func(c map[string]any) { delete(c, "email_verified") },
			userinfo: map[string]any{"sub": "user-1", "email": "alice@example.com", "email_verified": true},
			want:     alice, wantHits: 1},
		{name: "nobody vouches for the email", claims: func(c map[string]any) { delete(c, "email_verified") },
			userinfo: map[string]any{"sub": "user-1", "email": "alice@example.com"}, wantErr: ErrUnverifiedEmail, wantHits: 1},
		{name: "userinfo always: asked, and its values win", cfg: func(c *Config) { c.Userinfo = "always" },
			claims: func(c map[string]any) {
				c["groups"], c["team"], c["preferred_username"] = []string{"ops"}, "x", "alice"
			},
			userinfo: map[string]any{"sub": "user-1", "name": "Alice Liddell", "groups": []string{"dev"}},
			want: with(func(id *session.Identity) {
				id.Name, id.PreferredUsername, id.Groups, id.Claims = "Alice Liddell", "alice", []string{"dev"}, map[string][]string{"team": {"x"}}
			}), wantHits: 1},
		{name: "user_claim from userinfo", cfg: func(c *Config) { c.UserClaim = "email"; c.Userinfo = "auto" },
			claims:   func(c map[string]any) { delete(c, "email"); delete(c, "email_verified") },
			userinfo: map[string]any{"sub": "user-1", "email": "alice@example.com", "email_verified": true},
			want:     with(func(id *session.Identity) { id.User = "alice@example.com" }), wantHits: 1},
		{name: "user_claim nowhere: refused", cfg: func(c *Config) { c.UserClaim = "uid" },
			userinfo: map[string]any{"sub": "user-1"}, wantErr: ErrInvalidToken, wantHits: 1},
		{name: "userinfo never", cfg: func(c *Config) { c.Userinfo = "never" },
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"dev"}}, want: alice},
		{name: "no userinfo endpoint", want: alice},
		{name: "userinfo for another sub", userinfo: map[string]any{"sub": "user-2", "groups": []string{"admins"}},
			wantErr: ErrInvalidToken, wantHits: 1},
		{name: "userinfo refuses the token", userinfo: map[string]any{}, wantErr: ErrBadResponse, wantHits: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			if tt.userinfo != nil {
				ti.setUserinfo(tt.userinfo)
				if len(tt.userinfo) == 0 {
					ti.setUserinfo(nil) // advertised, but answers 401
				}
			}
			cfg := Config{ID: "corp", IssuerURL: ti.URL, ClientID: testClientID, ClientSecret: testClientSecret}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, err := New(cfg, Options{RedirectURL: testRedirectURL, Now: newClock().Now, Claims: []string{"team"}})
			if err != nil {
				t.Fatal(err)
			}
			s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
				c := ti.claims(a, testNow)
				if tt.claims != nil {
					tt.claims(c)
				}
				return tokenResponse(rsaKey.sign(t, c))
			})
			if got := ti.userinfoHits.Load(); got != tt.wantHits {
				t.Errorf("userinfo asked %d times, want %d", got, tt.wantHits)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || s != nil {
					t.Fatalf("Redeem = %v, %v; want %v", s, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Issuer = ti.URL
			if !reflect.DeepEqual(s.Identity, want) {
				t.Errorf("identity = %+v\nwant       %+v", s.Identity, want)
			}
		})
	}
}

// TestRefreshIdentity: what a refresh does to each attribute. A refreshed
// ID token need not repeat every claim (OpenID Connect Core §12.2): the
// profile attributes it omits keep their values, while groups and policy
// claims are re-read every time, from the token or else from userinfo.
func TestRefreshIdentity(t *testing.T) {
	old := session.Identity{Subject: "user-1", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice", PreferredUsername: "alice", Groups: []string{"old"}, Claims: map[string][]string{"team": {"old-team"}}}
	with := func(edit func(*session.Identity)) session.Identity {
		id := old
		id.Claims = map[string][]string{"team": {"old-team"}}
		edit(&id)
		return id
	}
	for _, tt := range []struct {
		name     string
		userinfo map[string]any // nil: userinfo never
		idToken  func(map[string]any)
		noToken  bool // the provider sends no new ID token
		want     session.Identity
		wantErr  error
	}{
		{name: "bare token: profile kept, groups and claims gone", idToken: func(map[string]any) {},
			want: with(func(id *session.Identity) { id.Groups, id.Claims = nil, map[string][]string{} })},
		{name: "bare token, userinfo: groups and claims from userinfo", idToken: func(map[string]any) {},
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"new"}, "team": "new-team", "name": "Not Alice"},
			want: with(func(id *session.Identity) {
				id.Groups, id.Claims = []string{"new"}, map[string][]string{"team": {"new-team"}}
			})},
		{name: "new values", idToken: func(c map[string]any) {
			c["email"], c["email_verified"], c["name"], c["preferred_username"] = "alice@corp.example", true, "Alice B", "ab"
			c["groups"], c["team"] = []string{"g"}, []any{"t1", 2.0}
		}, want: session.Identity{Subject: "user-1", Email: "alice@corp.example", EmailVerified: true, Name: "Alice B",
			PreferredUsername: "ab", Groups: []string{"g"}, Claims: map[string][]string{"team": {"t1", "2"}}}},
		{name: "empty values clear", idToken: func(c map[string]any) { c["email"], c["name"], c["preferred_username"] = "", "", "" },
			want: with(func(id *session.Identity) {
				id.Email, id.EmailVerified, id.Name, id.PreferredUsername = "", false, "", ""
				id.Groups, id.Claims = nil, map[string][]string{}
			})},
		{name: "unverified email", idToken: func(c map[string]any) { c["email"] = "mallory@example.com" }, wantErr: ErrUnverifiedEmail},
		{name: "email_verified alone changes nothing", idToken: func(c map[string]any) { c["email_verified"] = false },
			want: with(func(id *session.Identity) { id.Groups, id.Claims = nil, map[string][]string{} })},
		{name: "no ID token, userinfo: groups and claims replaced, profile updated", noToken: true,
			userinfo: map[string]any{"sub": "user-1", "groups": []string{"new"}, "email": "x@example.com", "email_verified": true},
			want: with(func(id *session.Identity) {
				id.Groups, id.Claims, id.Email = []string{"new"}, nil, "x@example.com"
			})},
		{name: "no ID token, userinfo: an address nobody vouches for ends it", noToken: true,
			userinfo: map[string]any{"sub": "user-1", "email": "x@example.com"}, wantErr: ErrUnverifiedEmail},
		{name: "no ID token, userinfo never: all kept", noToken: true, want: old},
		{name: "no ID token, userinfo for another sub", noToken: true,
			userinfo: map[string]any{"sub": "user-2"}, wantErr: ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			if tt.userinfo != nil {
				ti.setUserinfo(tt.userinfo)
			}
			f := newRefreshFixture(t, ti, func(c *Config) {
				if tt.userinfo == nil {
					c.Userinfo = "never"
				}
			})
			f.p.opts.Claims = []string{"team"}
			raw := ""
			if !tt.noToken {
				raw = f.idToken(t, tt.idToken)
			}
			got, err := f.refresh(t, raw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("Refresh = %v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Issuer = ti.URL
			if !reflect.DeepEqual(got.Identity, want) {
				t.Errorf("identity = %+v\nwant       %+v", got.Identity, want)
			}
		})
	}
}

// TestClaimMappingApply: the one mapping, for each way a source is used.
func TestClaimMappingApply(t *testing.T) {
	m := claimMapping{groups: "groups", policy: []string{"team", "level"}}
	full := map[string]any{"email": "a@example.com", "email_verified": true, "name": "A", "preferred_username": "a",
		"groups": []any{"g"}, "team": "t", "level": 3.0}
	old := session.Identity{Subject: "s", Email: "old@example.com", EmailVerified: true, Name: "Old", PreferredUsername: "old",
		Groups: []string{"old"}, Claims: map[string][]string{"team": {"old"}}}
	signIn := claimUse{profile: true}
	refresh := claimUse{profile: true, keepAbsent: true}
	userinfo := claimUse{fillOnly: true}
	bearer := claimUse{profile: true, email: reportEmail}
	for _, tt := range []struct {
		name    string
		base    session.Identity
		all     map[string]any
		use     claimUse
		want    session.Identity
		wantErr error
	}{
		{"sign-in", session.Identity{Subject: "s"}, full, signIn, session.Identity{Subject: "s", Email: "a@example.com", EmailVerified: true,
			Name: "A", PreferredUsername: "a", Groups: []string{"g"}, Claims: map[string][]string{"team": {"t"}, "level": {"3"}}}, nil},
		{"sign-in, nothing", session.Identity{Subject: "s"}, map[string]any{}, signIn, session.Identity{Subject: "s"}, nil},
		{"sign-in, unverified", session.Identity{Subject: "s"}, map[string]any{"email": "a@example.com", "email_verified": "true"}, signIn,
			session.Identity{}, ErrUnverifiedEmail},
		{"sign-in, unverified trusted", session.Identity{Subject: "s"}, map[string]any{"email": "a@example.com"},
			claimUse{profile: true, email: trustEmail}, session.Identity{Subject: "s", Email: "a@example.com", EmailVerified: true}, nil},
		{"sign-in, Email_Verified is not email_verified", session.Identity{Subject: "s"},
			map[string]any{"email": "a@example.com", "Email_Verified": true}, signIn, session.Identity{}, ErrUnverifiedEmail},
		{"refresh, nothing: profile kept, groups and claims gone", old, map[string]any{}, refresh,
			session.Identity{Subject: "s", Email: "old@example.com", EmailVerified: true, Name: "Old", PreferredUsername: "old",
				Claims: map[string][]string{}}, nil},
		{"refresh, null name clears it", old, map[string]any{"name": nil}, refresh,
			session.Identity{Subject: "s", Email: "old@example.com", EmailVerified: true, PreferredUsername: "old",
				Claims: map[string][]string{}}, nil},
		{"refresh, unverified new email", old, map[string]any{"email": "new@example.com"}, refresh, session.Identity{}, ErrUnverifiedEmail},
		{"userinfo fills gaps only", session.Identity{Subject: "s", Claims: map[string][]string{"team": {"mine"}}}, full, userinfo,
			session.Identity{Subject: "s", Groups: []string{"g"}, Claims: map[string][]string{"team": {"mine"}, "level": {"3"}}}, nil},
		{"userinfo keeps groups the token had", old, full, userinfo,
			session.Identity{Subject: "s", Email: "old@example.com", EmailVerified: true, Name: "Old", PreferredUsername: "old",
				Groups: []string{"old"}, Claims: map[string][]string{"team": {"old"}, "level": {"3"}}}, nil},
		{"userinfo as a profile source fills an empty name only", session.Identity{Subject: "s", Email: "mine@example.com", EmailVerified: true},
			full, claimUse{profile: true, fillOnly: true}, session.Identity{Subject: "s", Email: "mine@example.com", EmailVerified: true,
				Name: "A", PreferredUsername: "a", Groups: []string{"g"}, Claims: map[string][]string{"team": {"t"}, "level": {"3"}}}, nil},
		{"userinfo vouches for the ID token's email", session.Identity{Subject: "s", Email: "a@example.com"},
			full, claimUse{profile: true, fillOnly: true}, session.Identity{Subject: "s", Email: "a@example.com", EmailVerified: true,
				Name: "A", PreferredUsername: "a", Groups: []string{"g"}, Claims: map[string][]string{"team": {"t"}, "level": {"3"}}}, nil},
		{"userinfo does not vouch for another address", session.Identity{Subject: "s", Email: "other@example.com"},
			full, claimUse{profile: true, fillOnly: true}, session.Identity{}, ErrUnverifiedEmail},
		{"userinfo always: its values win, what it omits stays", old,
			map[string]any{"email": "a@example.com", "email_verified": true, "groups": []any{"g"}}, claimUse{profile: true, overlay: true},
			session.Identity{Subject: "s", Email: "a@example.com", EmailVerified: true, Name: "Old", PreferredUsername: "old",
				Groups: []string{"g"}, Claims: map[string][]string{"team": {"old"}}}, nil},
		{"userinfo always: an unverified address replaces a verified one and is refused", old,
			map[string]any{"email": "new@example.com"}, claimUse{profile: true, overlay: true}, session.Identity{}, ErrUnverifiedEmail},
		{"bearer, unverified kept as such", session.Identity{Subject: "s"}, map[string]any{"email": "a@example.com", "email_verified": false},
			bearer, session.Identity{Subject: "s", Email: "a@example.com"}, nil},
		{"bearer, verified", session.Identity{Subject: "s"}, map[string]any{"email": "a@example.com", "email_verified": true},
			bearer, session.Identity{Subject: "s", Email: "a@example.com", EmailVerified: true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.base
			got.Groups = slices.Clone(tt.base.Groups)
			got.Claims = maps.Clone(tt.base.Claims)
			m.apply(&got, tt.all, tt.use)
			err := checkEmailVouched(&got, tt.use.email)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("apply = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

// TestClaimMappingNames: email_claim, username_claim and user_claim pick
// the claims read, dotted names included; email_verified still vouches.
func TestClaimMappingNames(t *testing.T) {
	m := claimMapping{groups: "groups", email: "mail", username: "login", user: "ext.uid"}
	all := map[string]any{"email": "ignored@example.com", "mail": "a@example.com", "email_verified": true,
		"preferred_username": "ignored", "login": "alice", "ext": map[string]any{"uid": "u-42"}}
	var got session.Identity
	m.apply(&got, all, claimUse{profile: true})
	want := session.Identity{Email: "a@example.com", EmailVerified: true, PreferredUsername: "alice", User: "u-42"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v\nwant       %+v", got, want)
	}
	if !m.lacks(&session.Identity{Email: "a@example.com", EmailVerified: true, Name: "A", PreferredUsername: "a", Groups: []string{}},
		claimUse{profile: true}) {
		t.Error("an identity without its user claim does not lack it")
	}
	if m := (claimMapping{}); m.emailClaim() != "email" || m.usernameClaim() != "preferred_username" {
		t.Errorf("defaults = %q, %q", m.emailClaim(), m.usernameClaim())
	}
}

func TestCheckHeaderSafe(t *testing.T) {
	for _, tt := range []struct {
		name  string
		id    session.Identity
		extra []string
		ok    bool
	}{
		{"clean", session.Identity{Subject: "s", Email: "a@example.com", Name: "Zoë Ünal", Groups: []string{"a b"},
			Claims: map[string][]string{"c": {"x"}}}, []string{"sid"}, true},
		{"sub", session.Identity{Subject: "s\n"}, nil, false},
		{"email", session.Identity{Email: "a@example.com\r"}, nil, false},
		{"name", session.Identity{Name: "\x00"}, nil, false},
		{"preferred_username", session.Identity{PreferredUsername: "\x1f"}, nil, false},
		{"group", session.Identity{Groups: []string{"ok", "\x7f"}}, nil, false},
		{"policy claim", session.Identity{Claims: map[string][]string{"c": {"ok", "a\tb"}}}, nil, false},
		{"sid", session.Identity{}, []string{"\n"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkHeaderSafe(ErrInvalidBearer, &tt.id, tt.extra...)
			if got := err == nil; got != tt.ok {
				t.Fatalf("checkHeaderSafe = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidBearer) {
				t.Errorf("err = %v, want the sentinel passed in", err)
			}
		})
	}
}

func TestLookupClaim(t *testing.T) {
	claims := map[string]any{
		"groups":       []any{"a"},
		"realm_access": map[string]any{"roles": []any{"r"}, "deeper": map[string]any{"x": "y"}},
		"a.b":          "dotted name",
		"a":            map[string]any{"b": "nested"},
		"scalar":       "s",
	}
	for _, tt := range []struct {
		name string
		path string
		want any
	}{
		{"top level", "groups", []any{"a"}},
		{"nested", "realm_access.roles", []any{"r"}},
		{"two levels", "realm_access.deeper.x", "y"},
		{"own name with a dot wins", "a.b", "dotted name"},
		{"missing", "nope", nil},
		{"missing nested", "realm_access.nope", nil},
		{"through a non-object", "scalar.x", nil},
		{"empty path", "", nil},
		{"trailing dot", "realm_access.", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := lookupClaim(claims, tt.path); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lookupClaim(%q) = %#v, want %#v", tt.path, got, tt.want)
			}
		})
	}
}

func TestStringList(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   any
		want []string
	}{
		{"nil", nil, nil},
		{"string", "admins", []string{"admins"}},
		{"empty string", "", nil},
		{"list", []any{"a", "b"}, []string{"a", "b"}},
		{"list drops non-strings and empties", []any{"a", 1.0, true, nil, "", map[string]any{}, "b"}, []string{"a", "b"}},
		{"empty list", []any{}, []string{}},
		{"number", 42.0, nil},
		{"bool", true, nil},
		{"object", map[string]any{"a": "b"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := stringList(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("stringList(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}
