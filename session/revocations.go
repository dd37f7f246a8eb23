package session

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Revocation for the cookie store. A cookie session lives in the browser,
// so ending it early needs a list on the server: "this user (issuer +
// subject) signed out at T" rejects every cookie created before T, and
// "this provider session (issuer + sid) ended at T" every cookie carrying
// that sid. The list is this replica's memory: with several replicas, use
// the Redis store, whose revocations every replica sees. Entries are kept
// for the longest a session can live, then forgotten.

type revocations struct {
	mu    sync.RWMutex
	users map[revKey]time.Time // (issuer, subject) -> revoked at
	sids  map[revKey]time.Time // (issuer, sid) -> revoked at
	ended map[revKey]time.Time // one signed-out session -> its end
}

// revKey names a user (issuer, subject), a provider session (issuer, sid)
// or one sign-in (issuer, subject, session id). A struct rather than a
// joined string: looking one up on every request allocates nothing.
type revKey struct{ issuer, id, session string }

// endedKey names one session.
func endedKey(s *Session) revKey {
	return revKey{s.Issuer, s.Subject, s.ID}
}

const maxRevocations = 1_000_000

func (r *revocations) check(s *Session) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// Fail closed at the boundary: a session not provably created after
	// the revocation ends with it (Back-Channel Logout 1.0 §2.7: all of the
	// user's sessions). CreatedAt is kept in whole seconds, the revocation
	// exactly, so a session of the same second as the revocation ends too.
	if at, ok := r.users[revKey{issuer: s.Issuer, id: s.Subject}]; ok && !s.CreatedAt.After(at) {
		return fmt.Errorf("user's sessions were revoked at %s", at.UTC().Format(time.RFC3339))
	}
	if s.SID != "" {
		if _, ok := r.sids[revKey{issuer: s.Issuer, id: s.SID}]; ok {
			return fmt.Errorf("provider session ended")
		}
	}
	if s.ID != "" {
		if _, ok := r.ended[endedKey(s)]; ok {
			return fmt.Errorf("signed out")
		}
	}
	return nil
}

// end records that one session was signed out, until it would have
// ended anyway: a copy of its cookie replayed later is refused (on this
// replica).
func (r *revocations) end(s *Session, now time.Time) {
	if s.ID == "" {
		return // sealed before sessions had ids: expiring the cookie is all we can do
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended == nil {
		r.ended = map[revKey]time.Time{}
	}
	if len(r.ended) >= maxRevocations {
		for k, until := range r.ended {
			if now.After(until) {
				delete(r.ended, k)
			}
		}
		if len(r.ended) >= maxRevocations {
			return // full of live entries: the cookie is still expired in the browser
		}
	}
	r.ended[endedKey(s)] = s.ExpiresAt
}

func (r *revocations) add(m *map[revKey]time.Time, key revKey, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *m == nil {
		*m = map[revKey]time.Time{}
	}
	if len(*m) >= maxRevocations {
		// Forget entries older than any live session first.
		for k, t := range *m {
			if at.Sub(t) > MaxLifetime {
				delete(*m, k)
			}
		}
	}
	// Exactly, and never earlier than a revocation already recorded: two
	// revocations of one user keep the later.
	if prev, ok := (*m)[key]; !ok || at.After(prev) {
		(*m)[key] = at
	}
}

// RevokeUser ends every cookie session of (issuer, subject) created until
// now, on this replica. It returns -1: cookies cannot be counted.
func (c *CookieStore) RevokeUser(_ context.Context, issuer, subject string) (int, error) {
	c.revoked.add(&c.revoked.users, revKey{issuer: issuer, id: subject}, c.now())
	return -1, nil
}

// RevokeSID ends every cookie session of the provider session (issuer,
// sid), on this replica. It returns -1: cookies cannot be counted.
func (c *CookieStore) RevokeSID(_ context.Context, issuer, sid string) (int, error) {
	c.revoked.add(&c.revoked.sids, revKey{issuer: issuer, id: sid}, c.now())
	return -1, nil
}

// usedKeys remembers keys (back-channel logout jti) until they expire.
type usedKeys struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// FirstUse records key for ttl and reports whether it was new. The cookie
// store keeps the record in this replica's memory.
func (c *CookieStore) FirstUse(_ context.Context, key string, ttl time.Duration) (bool, error) {
	return c.used.first(key, c.now(), ttl), nil
}

func (u *usedKeys) first(key string, now time.Time, ttl time.Duration) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	if exp, ok := u.seen[key]; ok && now.Before(exp) {
		return false
	}
	if len(u.seen) >= 100_000 {
		for k, exp := range u.seen {
			if !now.Before(exp) {
				delete(u.seen, k)
			}
		}
		if len(u.seen) >= 100_000 {
			return false // fail closed rather than forget a live jti
		}
	}
	u.seen[key] = now.Add(ttl)
	return true
}

// FirstUse records key in Redis for ttl (SET NX PX) and reports whether it
// was new, for every replica at once.
func (s *RedisStore) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.prefix+"used:"+key, "1", ttl).Result()
	if err != nil {
		return false, storeErr("recording a used key", err)
	}
	return ok, nil
}
