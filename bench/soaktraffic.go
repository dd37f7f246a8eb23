package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// soaktraffic.go is the soak's mixed traffic against one gateway, from Go
// clients in the harness: proxied GETs by long-lived sessions (which the
// gateway refreshes as their tokens near expiry), new sign-ins through
// the provider's login page, sign-outs with a check that the old cookie no
// longer works, and websocket streams. Every answer is checked; anything
// unexpected is a failure.

// soakCounts are what the traffic did, in an interval or in all.
type soakCounts struct {
	proxied, signIns, signOuts, wsStreams, wsMessages, failures int64
}

// soakLoad is the traffic of one gateway.
type soakLoad struct {
	gw      *gateway
	idpURL  string
	users   []demo.User
	tr      *http.Transport // every client of this gateway's traffic
	ctx     context.Context // ends only when the soak is interrupted
	streams atomic.Int64    // websocket streams open now

	mu     sync.Mutex
	lat    []time.Duration // proxied GETs of the current interval
	now    soakCounts      // the current interval
	total  soakCounts
	failed map[string]int // what went wrong, by message
}

func newSoakLoad(ctx context.Context, g *gateway, idpURL string, users []demo.User) *soakLoad {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &soakLoad{gw: g, idpURL: idpURL, users: users, tr: tr, ctx: ctx, failed: map[string]int{}}
}

// count adds to the interval's counts and the totals.
func (l *soakLoad) count(f func(*soakCounts)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.now)
	f(&l.total)
}

// fail records a failed request, unless the soak was interrupted (which
// cuts requests short).
func (l *soakLoad) fail(what string, err error) {
	if l.ctx.Err() != nil {
		return
	}
	msg, _, _ := strings.Cut(fmt.Sprintf("%s: %v", what, err), "\n")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	l.count(func(c *soakCounts) { c.failures++ })
	l.mu.Lock()
	l.failed[msg]++
	l.mu.Unlock()
}

// interval returns the current interval's counts and latencies and starts
// the next.
func (l *soakLoad) interval() (soakCounts, []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, lat := l.now, l.lat
	l.now, l.lat = soakCounts{}, nil
	return c, lat
}

// soakSession is one signed-in browser.
type soakSession struct {
	l    *soakLoad
	jar  *cookiejar.Jar
	c    *http.Client // with the jar; redirects are answers to check, not to follow
	base *url.URL
}

// signIn signs user in to the gateway through the provider's login page.
func (l *soakLoad) signIn(user demo.User) (*soakSession, error) {
	jar, err := signInAs(l.ctx, l.tr, l.idpURL, l.gw, user)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(l.gw.url)
	s := &soakSession{l: l, jar: jar, base: base, c: &http.Client{Jar: jar, Transport: l.tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if s.cookie() == "" {
		return nil, fmt.Errorf("portcullis-%s set no session cookie", l.gw.name)
	}
	return s, nil
}

// cookie is the session's Cookie header as the jar holds it now.
func (s *soakSession) cookie() string {
	return sessionCookie(s.jar.Cookies(s.base), "_portcullis")
}

// proxied makes one GET through the gateway, insists on the upstream's
// 200 and page, and records its latency.
func (s *soakSession) proxied() {
	l := s.l
	req, err := http.NewRequestWithContext(l.ctx, "GET", l.gw.url+"/", nil)
	if err != nil {
		l.fail("proxied GET", err)
		return
	}
	start := time.Now()
	resp, err := s.c.Do(req)
	if err != nil {
		l.fail("proxied GET", err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	d := time.Since(start)
	switch {
	case err != nil:
		l.fail("proxied GET", err)
	case resp.StatusCode != http.StatusOK || string(body) != string(upstreamBody):
		l.fail("proxied GET", fmt.Errorf("answered %s %.40q (Location %q), want 200 and the upstream's page",
			resp.Status, body, withoutQuery(resp.Header.Get("Location"))))
	default:
		l.mu.Lock()
		l.lat = append(l.lat, d)
		l.now.proxied++
		l.total.proxied++
		l.mu.Unlock()
	}
}

// signOut posts the sign-out as the gateway's own page would (from its
// origin), follows it through the provider's end-session endpoint back to
// the gateway's signed-out page, and then replays the old cookie, which
// must now be sent to sign in again.
func (s *soakSession) signOut() error {
	l := s.l
	old := s.cookie()
	req, err := http.NewRequestWithContext(l.ctx, "POST", l.gw.url+"/oauth2/sign_out", strings.NewReader(""))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", l.gw.url)
	follow := &http.Client{Jar: s.jar, Transport: l.tr, Timeout: 10 * time.Second}
	resp, err := follow.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != s.base.Host || resp.Request.URL.Path != "/oauth2/signed_out" {
		return fmt.Errorf("ended at %s (%s), want the gateway's /oauth2/signed_out page", withoutQuery(resp.Request.URL.String()), resp.Status)
	}
	if c := s.cookie(); c != "" {
		return fmt.Errorf("the session cookie is still set after signing out")
	}
	replay, err := http.NewRequestWithContext(l.ctx, "GET", l.gw.url+"/", nil)
	if err != nil {
		return err
	}
	replay.Header.Set("Cookie", old)
	resp, err = s.c.Transport.RoundTrip(replay)
	if err != nil {
		return fmt.Errorf("replaying the signed-out cookie: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, l.idpURL+"/") {
		return fmt.Errorf("the signed-out cookie, replayed, got %s (Location %q), want 302 to the provider", resp.Status, withoutQuery(loc))
	}
	return nil
}

// withoutQuery is a URL without its query, which differs every time
// (state, nonce): failures are counted by message.
func withoutQuery(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return u
}

// dial opens a websocket through the gateway with the session, keeping
// any cookie the upgrade's answer set.
func (s *soakSession) dial() (*wsClient, error) {
	ws, resp, err := dialWebsocket(s.l.gw.url, s.cookie())
	if resp != nil {
		s.jar.SetCookies(s.base, resp.Cookies())
	}
	if err != nil {
		return nil, err
	}
	s.l.streams.Add(1)
	s.l.count(func(c *soakCounts) { c.wsStreams++ })
	return ws, nil
}

// hangUp closes ws, with the closing handshake when clean is true.
func (s *soakSession) hangUp(ws *wsClient, clean bool) {
	defer s.l.streams.Add(-1)
	if !clean {
		ws.conn.Close()
		return
	}
	if err := ws.close(); err != nil {
		s.l.fail("websocket close", err)
	}
}

// every runs f every period until stop closes, the first time after
// delay.
func every(stop <-chan struct{}, delay, period time.Duration, f func(n int)) {
	select {
	case <-stop:
		return
	case <-time.After(delay):
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for n := 0; ; n++ {
		f(n)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// churn signs a new session in every period (users in turn), makes a
// few proxied GETs with it, and signs every other one out; the rest are
// left, as a closed browser leaves them.
func (l *soakLoad) churn(stop <-chan struct{}, users []demo.User, period time.Duration) {
	every(stop, period/2, period, func(n int) {
		s, err := l.signIn(users[n%len(users)])
		if err != nil {
			l.fail("sign-in", err)
			return
		}
		l.count(func(c *soakCounts) { c.signIns++ })
		for range 3 {
			s.proxied()
		}
		if n%2 == 1 {
			return
		}
		if err := s.signOut(); err != nil {
			l.fail("sign-out", err)
			return
		}
		l.count(func(c *soakCounts) { c.signOuts++ })
	})
}

// longStream keeps a websocket open through the whole soak, a message a
// second; a stream that breaks is a failure, and is opened again.
func (l *soakLoad) longStream(stop <-chan struct{}, s *soakSession, id int) {
	var ws *wsClient
	defer func() {
		if ws != nil {
			s.hangUp(ws, true)
		}
	}()
	every(stop, 0, time.Second, func(n int) {
		if ws == nil {
			var err error
			if ws, err = s.dial(); err != nil {
				l.fail("websocket open", err)
				return
			}
		}
		if err := ws.echo(fmt.Sprintf("long stream %d, message %d", id, n)); err != nil {
			l.fail("websocket message", err)
			s.hangUp(ws, false)
			ws = nil
			return
		}
		l.count(func(c *soakCounts) { c.wsMessages++ })
	})
}

// shortStreams opens a websocket every period, sends five messages and
// closes it.
func (l *soakLoad) shortStreams(stop <-chan struct{}, s *soakSession, period time.Duration) {
	every(stop, period/3, period, func(n int) {
		ws, err := s.dial()
		if err != nil {
			l.fail("websocket open", err)
			return
		}
		for m := range 5 {
			if err := ws.echo(fmt.Sprintf("short stream %d, message %d", n, m)); err != nil {
				l.fail("websocket message", err)
				s.hangUp(ws, false)
				return
			}
			l.count(func(c *soakCounts) { c.wsMessages++ })
		}
		s.hangUp(ws, true)
	})
}
