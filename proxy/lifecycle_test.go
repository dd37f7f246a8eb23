package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

func lifecycleEnv(t *testing.T) *env {
	return newEnvOpts(t, nil, func(o *Options) {
		o.IdleTimeout = 10 * time.Minute
		o.RefreshBefore = time.Minute
	})
}

// cookieFor seals s as the browser would carry it.
func (e *env) cookieFor(s *session.Session) string {
	e.t.Helper()
	v, err := e.store.Seal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

func (e *env) baseSession(edit func(*session.Session)) *session.Session {
	now := e.clock()
	s := &session.Session{
		Identity: session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"old"}},
		Provider: "corp", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(59 * time.Minute), LastSeen: now.Add(-10 * time.Second),
		TokenExpiry: now.Add(10 * time.Minute), RefreshToken: "rt-1",
	}
	if edit != nil {
		edit(s)
	}
	return s
}

// loadFrom returns the session in the response's Set-Cookie, if any.
func (e *env) loadFrom(resp *http.Response) *session.Session {
	e.t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == e.store.Name() && c.MaxAge > 0 {
			r := get("/", "Cookie", c.Name+"="+c.Value)
			s, err := e.store.Load(r)
			if err != nil {
				e.t.Fatalf("re-issued cookie does not load: %v", err)
			}
			return s
		}
	}
	return nil
}

func expired(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

func TestRefreshBeforeExpiry(t *testing.T) {
	e := lifecycleEnv(t)
	e.idp.refresh = func(s *session.Session) (*session.Session, error) {
		n := *s
		n.Groups, n.RefreshToken, n.TokenExpiry, n.RefreshedAt = []string{"new"}, "rt-2", e.clock().Add(5*time.Minute), e.clock()
		return &n, nil
	}
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(30 * time.Second) }))
	resp := e.do(get("https://gw.example.com/", "Cookie", due))
	if resp.StatusCode != 200 || e.idp.refreshes != 1 {
		t.Fatalf("status %d, refreshes %d", resp.StatusCode, e.idp.refreshes)
	}
	if g := e.last().Header.Get("X-Forwarded-Groups"); g != "new" {
		t.Errorf("upstream groups = %q, want the refreshed ones", g)
	}
	s := e.loadFrom(resp)
	if s == nil || s.RefreshToken != "rt-2" || strings.Join(s.Groups, ",") != "new" {
		t.Errorf("re-issued session = %+v, want the rotated refresh token and new groups", s)
	}

	notDue := e.cookieFor(e.baseSession(nil))
	if resp := e.do(get("https://gw.example.com/", "Cookie", notDue)); resp.StatusCode != 200 || e.idp.refreshes != 1 {
		t.Errorf("a session far from expiry was refreshed (%d calls)", e.idp.refreshes)
	}
}

func TestRefreshRejectedEndsSession(t *testing.T) {
	e := lifecycleEnv(t)
	e.idp.refresh = func(*session.Session) (*session.Session, error) { return nil, providers.ErrRejected }
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(-time.Second) }))
	resp := e.do(get("https://gw.example.com/", "Cookie", due, "Accept", "text/html"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.test/") {
		t.Errorf("after invalid_grant: %d to %q, want a new sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !expired(resp, e.store.Name()) {
		t.Error("the ended session's cookie was not expired")
	}
	if e.count() != 0 {
		t.Error("the upstream was reached with a revoked session")
	}
}

func TestRefreshOutageKeepsSessionWithBackoff(t *testing.T) {
	e := lifecycleEnv(t)
	e.idp.refresh = func(*session.Session) (*session.Session, error) { return nil, providers.ErrUnavailable }
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(10 * time.Second) }))
	for i := 0; i < 3; i++ {
		if resp := e.do(get("https://gw.example.com/", "Cookie", due)); resp.StatusCode != 200 {
			t.Fatalf("request %d during a provider outage = %d, want 200 with the old session", i, resp.StatusCode)
		}
	}
	if e.idp.refreshes != 1 {
		t.Errorf("refresh attempts = %d, want 1 (then back off)", e.idp.refreshes)
	}
	e.advance(6 * time.Second)
	e.do(get("https://gw.example.com/", "Cookie", due))
	if e.idp.refreshes != 2 {
		t.Errorf("refresh attempts after the backoff = %d, want 2", e.idp.refreshes)
	}
	if !strings.Contains(e.logs.String(), "session refresh failed; keeping the session") {
		t.Error("the failed refresh was not logged")
	}
}

func TestConcurrentRefreshOnce(t *testing.T) {
	e := lifecycleEnv(t)
	release := make(chan struct{})
	e.idp.refresh = func(s *session.Session) (*session.Session, error) {
		<-release
		n := *s
		n.RefreshToken, n.TokenExpiry, n.RefreshedAt = "rt-2", e.clock().Add(5*time.Minute), e.clock()
		return &n, nil
	}
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(10 * time.Second) }))
	var wg sync.WaitGroup
	codes := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.do(get("https://gw.example.com/", "Cookie", due)).StatusCode
		}()
	}
	close(release) // early or late, every request must share the one refresh
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("status %d", c)
		}
	}
	if e.idp.refreshes != 1 {
		t.Errorf("refreshes = %d, want 1 for 10 concurrent requests", e.idp.refreshes)
	}
	// A request that was on its way with the old cookie when the refresh
	// finished must not refresh again: the provider rotated the refresh
	// token, and a second refresh would get invalid_grant.
	if resp := e.do(get("https://gw.example.com/", "Cookie", due)); resp.StatusCode != 200 || e.idp.refreshes != 1 {
		t.Errorf("late request with the old cookie: %d, refreshes %d", resp.StatusCode, e.idp.refreshes)
	}
	if s := e.loadFrom(e.do(get("https://gw.example.com/", "Cookie", due))); s == nil || s.RefreshToken != "rt-2" {
		t.Errorf("late request did not get the refreshed cookie: %+v", s)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := lifecycleEnv(t)
	idle := e.cookieFor(e.baseSession(func(s *session.Session) { s.LastSeen = e.clock().Add(-11 * time.Minute) }))
	resp := e.do(get("https://gw.example.com/", "Cookie", idle, "Accept", "application/json"))
	if resp.StatusCode != http.StatusUnauthorized || !expired(resp, e.store.Name()) {
		t.Errorf("idle session: %d, cookie expired %v; want 401 and the cookie cleared", resp.StatusCode, expired(resp, e.store.Name()))
	}

	// Used two minutes ago: still valid, and the last-seen mark moves.
	recent := e.cookieFor(e.baseSession(func(s *session.Session) { s.LastSeen = e.clock().Add(-2 * time.Minute) }))
	resp = e.do(get("https://gw.example.com/", "Cookie", recent))
	s := e.loadFrom(resp)
	if resp.StatusCode != 200 || s == nil || e.clock().Sub(s.LastSeen) > 5*time.Second {
		t.Errorf("recently used session: %d, re-issued %+v", resp.StatusCode, s)
	}
	// Used seconds ago: no cookie churn.
	fresh := e.cookieFor(e.baseSession(nil))
	if resp := e.do(get("https://gw.example.com/", "Cookie", fresh)); e.loadFrom(resp) != nil {
		t.Error("a session seen seconds ago was re-issued")
	}
}

// TestRefreshOutageBacksOffPerProvider: once a refresh finds the provider
// unreachable, other sessions of that provider do not each try (and wait)
// until the provider's backoff is over; all keep working; the first
// success clears the backoff.
func TestRefreshOutageBacksOffPerProvider(t *testing.T) {
	e := lifecycleEnv(t)
	down := true
	e.idp.refresh = func(s *session.Session) (*session.Session, error) {
		if down {
			return nil, providers.ErrUnavailable
		}
		n := *s
		n.TokenExpiry, n.RefreshedAt = e.clock().Add(30*time.Minute), e.clock()
		return &n, nil
	}
	due := func(sub string) string {
		return e.cookieFor(e.baseSession(func(s *session.Session) { s.Subject, s.TokenExpiry = sub, e.clock().Add(10*time.Second) }))
	}
	alice, bob, carol := due("alice"), due("bob"), due("carol")
	for _, c := range []string{alice, bob, carol} {
		if resp := e.do(get("https://gw.example.com/", "Cookie", c)); resp.StatusCode != 200 {
			t.Fatalf("during the outage: %d, want 200 with the session as it is", resp.StatusCode)
		}
	}
	if e.idp.refreshes != 1 {
		t.Errorf("refresh attempts for three sessions during the outage = %d, want 1 (the provider backs off)", e.idp.refreshes)
	}
	e.advance(6 * time.Second)
	down = false
	e.do(get("https://gw.example.com/", "Cookie", bob))
	if e.idp.refreshes != 2 {
		t.Errorf("refresh attempts after the provider's backoff = %d, want 2", e.idp.refreshes)
	}
	// bob's success cleared the provider's backoff: carol refreshes at once.
	e.do(get("https://gw.example.com/", "Cookie", carol))
	if e.idp.refreshes != 3 {
		t.Errorf("refresh attempts after a success = %d, want 3", e.idp.refreshes)
	}
}

// TestRefreshStoreUnavailable: a refresh whose result the store cannot
// keep (Redis down or full) keeps the session and backs off that session
// only: the provider is not to blame, so other sessions still refresh.
func TestRefreshStoreUnavailable(t *testing.T) {
	e := lifecycleEnv(t)
	e.idp.refresh = func(*session.Session) (*session.Session, error) {
		return nil, fmt.Errorf("%w: saving the refreshed session: OOM command not allowed", session.ErrUnavailable)
	}
	due := func(sub string) string {
		return e.cookieFor(e.baseSession(func(s *session.Session) { s.Subject, s.TokenExpiry = sub, e.clock().Add(10*time.Second) }))
	}
	alice, bob := due("alice"), due("bob")
	for _, c := range []string{alice, alice, bob} {
		if resp := e.do(get("https://gw.example.com/", "Cookie", c)); resp.StatusCode != 200 {
			t.Fatalf("refresh not stored: %d, want 200 with the session as it is", resp.StatusCode)
		}
	}
	if e.idp.refreshes != 2 {
		t.Errorf("refresh attempts = %d, want 2 (alice once, then backed off; bob not held back)", e.idp.refreshes)
	}
	if !strings.Contains(e.logs.String(), "session refresh could not be stored; keeping the session") {
		t.Errorf("not logged as a store failure:\n%s", e.logs)
	}
}
