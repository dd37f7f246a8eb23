package session

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// carry.go keeps a cookie session's newest state on this replica until the
// browser's cookie catches up (issue 16).
//
// Behind a forward-auth proxy the browser gets a re-issued cookie only if
// the proxy copies Set-Cookie from the auth answer to the browser's answer,
// and only every chunk of it: Caddy's forward_auth copies nothing unless
// told, nginx's auth_request_set copies one Set-Cookie, Traefik only the
// names listed in addAuthCookiesToResponse. A refresh or activity mark that
// lives only in a cookie the browser never receives is lost: the next
// request presents the old cookie, whose refresh token a rotating provider
// has rotated away (invalid_grant: signed out), and whose last-seen mark
// ages into the idle timeout.
//
// The design:
//
//   - Every Save also remembers the saved session here, keyed by its ID (a
//     random 96-bit name kept through refreshes). Load, having opened and
//     checked the cookie, takes the remembered state instead when it is the
//     same sign-in (ID, issuer, subject, creation time) and newer (a later
//     refresh or last-seen mark). So refreshes continue from the newest
//     refresh token, and activity is recorded without a new cookie.
//   - Forward-auth answers (ForwardAuthRequest) carry a re-issued cookie
//     only when it is one cookie and replaces one cookie: a partly copied
//     set of chunks (new chunk 0, old chunk 1) opens as nothing and signs
//     the user out, so a chunked session is carried here instead and the
//     browser keeps the chunks it got at sign-in (the callback is answered
//     by the gateway itself, every chunk included).
//
// What this does not cover, by design: another replica does not know this
// memory (cookie sessions behind several replicas need sticky sessions or
// the Redis store, which keeps all of this server-side already), and a
// restart forgets it (the browser's last received cookie counts again).
// The memory is bounded (maxCarried); a session pushed out falls back to
// its cookie.
type carried struct {
	mu sync.Mutex
	m  map[string]carriedState
}

// carriedState is a remembered session and when it was remembered.
type carriedState struct {
	s  *Session
	at time.Time
}

// carryGrace is how long a state is kept after the browser's cookie has
// caught up with it: requests a page sent before it got the new cookie
// may still be on their way with the old one. After that the memory holds
// only sessions whose browsers lag, not every session seen lately.
const carryGrace = time.Minute

// maxCarried bounds the memory: a session with tokens and a hundred groups
// is a few kilobytes, so this is tens of megabytes at worst.
const maxCarried = 20_000

// remember records s as its sign-in's newest state.
func (c *carried) remember(s *Session, now time.Time) {
	if s.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]carriedState{}
	}
	if _, ok := c.m[s.ID]; !ok && len(c.m) >= maxCarried {
		for id, e := range c.m {
			if e.s.Expired(now) {
				delete(c.m, id)
			}
		}
		for id := range c.m { // still full: forget arbitrary ones
			if len(c.m) < maxCarried*3/4 {
				break
			}
			delete(c.m, id)
		}
	}
	c.m[s.ID] = carriedState{s: s.clone(), at: now}
}

// newer returns the remembered state of s's sign-in when it is newer than
// s, nil otherwise. A state the cookie has caught up with is forgotten
// once carryGrace has passed since it was remembered.
func (c *carried) newer(s *Session, now time.Time) *Session {
	if s.ID == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[s.ID]
	e := st.s
	if !ok || e.Issuer != s.Issuer || e.Subject != s.Subject || !e.CreatedAt.Equal(s.CreatedAt) {
		return nil
	}
	if !e.RefreshedAt.After(s.RefreshedAt) && !e.LastSeen.After(s.LastSeen) {
		if now.Sub(st.at) > carryGrace {
			delete(c.m, s.ID) // the browser has it
		}
		return nil
	}
	return e.clone()
}

// forget drops the sign-in named id (sign-out, revocation).
func (c *carried) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

type forwardAuthKey struct{}

// ForwardAuthRequest marks r as a forward-auth call: the proxy, not the
// browser, receives the answer, and may pass on one Set-Cookie only. A
// cookie store then re-issues the session cookie in the answer only when
// it is a single cookie replacing a single cookie, and otherwise carries
// the new state on this replica (see carry.go).
func ForwardAuthRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), forwardAuthKey{}, true))
}

func isForwardAuth(r *http.Request) bool {
	v, _ := r.Context().Value(forwardAuthKey{}).(bool)
	return v
}
