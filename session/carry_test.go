package session

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestCarryForwardAuthChunked: a refresh saved in a forward-auth answer
// sets no chunks the proxy could pass on in part; the browser's old chunks
// then open as the refreshed session on this replica.
func TestCarryForwardAuthChunked(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	s := demoSession(now)
	for i := 0; i < 150; i++ {
		s.Groups = append(s.Groups, "group-with-a-longish-name-"+strconv.Itoa(i))
	}
	signIn := httptest.NewRecorder()
	if err := st.Save(signIn, httptest.NewRequest("GET", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	if n := len(signIn.Result().Cookies()); n < 2 {
		t.Fatalf("sign-in set %d cookies, want chunks", n)
	}

	now = now.Add(time.Minute)
	loaded, err := st.Load(request(signIn))
	if err != nil {
		t.Fatal(err)
	}
	loaded.RefreshToken, loaded.RefreshedAt, loaded.LastSeen = "rotated-2", now, now
	auth := httptest.NewRecorder()
	if err := st.Save(auth, ForwardAuthRequest(request(signIn)), loaded); err != nil {
		t.Fatal(err)
	}
	if got := auth.Result().Header["Set-Cookie"]; len(got) != 0 {
		t.Fatalf("forward-auth answer set %d cookies, want none for a chunked session", len(got))
	}

	again, err := st.Load(request(signIn)) // the browser's sign-in chunks
	if err != nil {
		t.Fatal(err)
	}
	if again.RefreshToken != "rotated-2" || !again.LastSeen.Equal(now) {
		t.Errorf("old cookie loaded refresh token %q, last seen %v; want the carried refresh", again.RefreshToken, again.LastSeen)
	}

	// Signing out forgets the carried state and revokes the cookie.
	st.Clear(httptest.NewRecorder(), request(signIn))
	if _, err := st.Load(request(signIn)); err == nil {
		t.Error("the cookie still opens after sign-out")
	}
}

// TestCarryForwardAuthSingle: a session that fits in one cookie is still
// re-issued in a forward-auth answer (proxies that pass Set-Cookie keep the
// browser current across restarts), and a proxied request outside
// forward-auth re-issues chunks as before.
func TestCarryForwardAuthSingle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	signIn := httptest.NewRecorder()
	if err := st.Save(signIn, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	loaded, err := st.Load(request(signIn))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	loaded.LastSeen = now
	auth := httptest.NewRecorder()
	if err := st.Save(auth, ForwardAuthRequest(request(signIn)), loaded); err != nil {
		t.Fatal(err)
	}
	if got := auth.Result().Cookies(); len(got) != 1 || got[0].Name != st.Name() {
		t.Fatalf("forward-auth answer set %v, want the one session cookie", got)
	}
}

// TestCarryOtherSignIn: the memory is keyed by session ID but never lends
// one sign-in's state to another (a different creation time or subject).
func TestCarryOtherSignIn(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	first := demoSession(now)
	first.ID = "same-id"
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), first); err != nil {
		t.Fatal(err)
	}
	other := demoSession(now.Add(-time.Second))
	other.ID, other.Subject, other.RefreshedAt = "same-id", "someone-else", now
	st.carry.remember(other, now)
	got, err := st.Load(request(rec))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != first.Subject {
		t.Errorf("Load took subject %q from another sign-in", got.Subject)
	}
}

// TestCookieDomains: with session.cookie.domains the cookie is set for the
// longest configured domain the request's host is under, for domain when
// none is, and with the configured path; login cookies stay on "/".
func TestCookieDomains(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := CookieConfig{Name: "gw", Domain: "fallback.example", Domains: []string{"example.com", ".Apps.Example.com"}, Path: "/app"}
	st, err := NewCookieStore(cfg, mustKeys(t, randomSecret(t)), CookieStoreOptions{Lifetime: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"x.apps.example.com:8443": "apps.example.com",
		"apps.example.com":        "apps.example.com",
		"www.example.com":         "example.com",
		"badexample.com":          "fallback.example",
		"other.org":               "fallback.example",
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		if err := st.Save(rec, r, demoSession(now)); err != nil {
			t.Fatal(err)
		}
		c := rec.Result().Cookies()
		if len(c) != 1 || c[0].Domain != want || c[0].Path != "/app" {
			t.Errorf("host %s: cookies %v, want one with Domain=%s Path=/app", host, c, want)
		}
	}
	login, err := NewLoginCookies(cfg, mustKeys(t, randomSecret(t)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if login.jar.path != "/" || login.jar.domains != nil {
		t.Errorf("login cookies get path %q and domains %v, want / and none", login.jar.path, login.jar.domains)
	}
}

// TestCarryForgetsCaughtUp: once the browser's cookie is as new as the
// remembered state, the memory lets it go after carryGrace (so it holds
// the sessions whose browsers lag, not every one seen); a lagging cookie
// keeps getting the newer state however long it lags.
func TestCarryForgetsCaughtUp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var c carried
	cookie := demoSession(now)
	cookie.ID = "sign-in-1"
	c.remember(cookie, now)
	if n := c.newer(cookie, now.Add(time.Second)); n != nil {
		t.Fatal("the same state came back as newer")
	}
	if len(c.m) != 1 {
		t.Fatal("forgotten within carryGrace: a page's older parallel request would lose it")
	}
	if c.newer(cookie, now.Add(carryGrace+time.Second)); len(c.m) != 0 {
		t.Error("a caught-up state is still remembered after carryGrace")
	}

	refreshed := cookie.clone()
	refreshed.RefreshedAt = now.Add(time.Minute)
	refreshed.RefreshToken = "rotated"
	c.remember(refreshed, now)
	if n := c.newer(cookie, now.Add(10*carryGrace)); n == nil || n.RefreshToken != "rotated" {
		t.Errorf("a lagging cookie after %v got %v, want the refreshed state", 10*carryGrace, n)
	}
}

// TestCachesSweepExpired: the decode cache and the recent refreshes drop
// expired entries within a minute or so of their expiry, not only once
// full.
func TestCachesSweepExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var dc decodeCache[*ticket]
	var rr recentRefreshes
	for i := range 100 {
		k := strconv.Itoa(i)
		dc.put(k, new(ticket), false, now)
		rr.put(k, demoSession(now), now)
	}
	later := now.Add(3 * time.Minute)
	dc.put("fresh", new(ticket), false, later)
	rr.put("fresh", demoSession(later), later)
	if len(dc.entries) != 1 || len(rr.entries) != 1 {
		t.Errorf("after the entries expired: decode cache %d, recent refreshes %d entries, want 1 each", len(dc.entries), len(rr.entries))
	}
}
