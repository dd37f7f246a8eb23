package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Token refresh, at most once at a time per session: a page that fires
// twenty requests just as the access token expires must cause one refresh
// at the provider, not twenty (with rotating refresh tokens, all but the
// first would fail and sign the user out).

// ErrRefreshBusy means another replica kept refreshing the session for
// longer than lock_wait. Callers go on with the session they have.
var ErrRefreshBusy = errors.New("session: refresh in progress elsewhere")

// flight runs fn once per key at a time; callers that arrive while it runs
// wait and share its result (a single-flight group).
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	s    *Session // never handed out; callers get clones
	err  error
}

// do returns a copy of fn's result, and whether it came from another
// caller's run.
func (f *flight) do(key string, fn func() (*Session, error)) (*Session, bool, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.result(true)
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	func() {
		defer func() {
			if p := recover(); p != nil {
				c.err = fmt.Errorf("session: refresh panicked: %v", p)
			}
		}()
		c.s, c.err = fn()
	}()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.result(false)
}

func (c *flightCall) result(shared bool) (*Session, bool, error) {
	if c.err != nil {
		return nil, shared, c.err
	}
	return c.s.clone(), shared, nil
}

// refreshKey names a session for single-flight: one sign-in of one user.
func refreshKey(s *Session) string {
	return s.Issuer + "\x00" + s.Subject + "\x00" + strconv.FormatInt(s.CreatedAt.UnixNano(), 10)
}

// RefreshOnce implements Refresher. Within this replica one caller runs fn
// and saves the result, setting the new cookie on its w; the others wait,
// get a copy of that result, and have the same cookie set on their own w.
//
// The result is also remembered for a minute: requests that were already
// on their way with the old cookie when the refresh finished (a page's
// parallel asset loads) get the refreshed session too, instead of
// refreshing again with a refresh token the provider has just rotated away
// and being signed out by the invalid_grant. (Across replicas cookie
// sessions cannot coordinate: use the Redis store, or sticky sessions,
// with providers that rotate refresh tokens.)
func (c *CookieStore) RefreshOnce(ctx context.Context, w http.ResponseWriter, r *http.Request, s *Session,
	fn func(ctx context.Context, s *Session) (*Session, error)) (*Session, error) {
	// The key names the state refreshed from. Nanoseconds, and the token
	// expiry too: a session carried on this replica (carry.go) keeps
	// sub-second times, and two refreshes within one second (short-lived
	// tokens) must not share a key, or the second state would be answered
	// with the first's result until recentRefreshTTL, its last-seen mark
	// frozen into the idle timeout.
	key := refreshKey(s) + "\x00" + strconv.FormatInt(s.RefreshedAt.UnixNano(), 10) +
		"\x00" + strconv.FormatInt(s.TokenExpiry.UnixNano(), 10)
	if done := c.recent.get(key, c.now()); done != nil {
		return done, c.Save(w, r, done)
	}
	res, shared, err := c.flight.do(key, func() (*Session, error) {
		// Look again now that we lead: a flight that finished between the
		// check above and flight.do has put its result in recent before
		// leaving the flight, and the provider has rotated the refresh
		// token it used.
		if done := c.recent.get(key, c.now()); done != nil {
			return done, c.Save(w, r, done)
		}
		ns, err := fn(ctx, s.clone())
		if err != nil {
			return nil, err
		}
		if ns == nil {
			return nil, errors.New("session: refresh returned no session")
		}
		if err := c.Save(w, r, ns); err != nil {
			return nil, err
		}
		c.recent.put(key, ns, c.now())
		return ns, nil
	})
	if err != nil {
		return nil, err
	}
	if shared {
		if err := c.Save(w, r, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// recentRefreshes remembers refresh results for a minute, keyed by the
// session as it was before the refresh. Bounded; old entries go first.
type recentRefreshes struct {
	mu      sync.Mutex
	entries map[string]recentRefresh
	swept   time.Time // the last sweep of expired entries
}

type recentRefresh struct {
	s  *Session
	at time.Time
}

const recentRefreshTTL = time.Minute

func (rr *recentRefreshes) get(key string, now time.Time) *Session {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	e, ok := rr.entries[key]
	if !ok || now.Sub(e.at) > recentRefreshTTL {
		return nil
	}
	return e.s.clone()
}

func (rr *recentRefreshes) put(key string, s *Session, now time.Time) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.entries == nil {
		rr.entries = map[string]recentRefresh{}
	}
	if len(rr.entries) >= 10_000 || now.Sub(rr.swept) > recentRefreshTTL {
		for k, e := range rr.entries {
			if now.Sub(e.at) > recentRefreshTTL {
				delete(rr.entries, k)
			}
		}
		rr.swept = now
		if len(rr.entries) >= 10_000 {
			rr.entries = map[string]recentRefresh{} // a burst of refreshes: start over
		}
	}
	rr.entries[key] = recentRefresh{s: s.clone(), at: now}
}

// RefreshOnce implements Refresher for a session that came from Load or
// Save on a RedisStore. Within this replica callers share one run; across
// replicas a lock in Redis (SET NX PX lock_ttl, in the user's hash slot)
// admits one refresher at a time. The holder re-reads the record first: if
// another replica refreshed it meanwhile (its RefreshedAt is newer than
// s.RefreshedAt) that result is returned and fn is not called. Otherwise fn
// runs on the current record while the lock is extended every lock_ttl/3,
// and the result is written in place only if the lock is still held.
// Callers that find the lock taken wait for it to go (for up to lock_wait)
// and return the refreshed record; if none appears in time the error wraps
// ErrRefreshBusy.
//
// fn should set RefreshedAt; if it does not advance it, RefreshOnce does,
// since that is how the other replicas recognise the refresh.
func (s *RedisStore) RefreshOnce(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *Session,
	fn func(ctx context.Context, s *Session) (*Session, error)) (*Session, error) {
	t := sess.handle
	if t == nil {
		return nil, errors.New("session: RefreshOnce needs a session loaded from or saved to this store")
	}
	hash := t.hash()
	res, _, err := s.flight.do(string(hash[:]), func() (*Session, error) {
		return s.refresh(ctx, r, sess, t, fn)
	})
	return res, err
}

// lockPoll is how often a waiting replica looks whether the lock is gone.
const lockPoll = 20 * time.Millisecond

func (s *RedisStore) refresh(ctx context.Context, r *http.Request, sess *Session, t *ticket,
	fn func(ctx context.Context, s *Session) (*Session, error)) (*Session, error) {
	n := s.names(t.tag, t.hash())
	token, err := lockToken()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(s.lockWait)
	for {
		ok, err := s.client.SetNX(ctx, n.lock, token, s.lockTTL).Result()
		if err != nil {
			return nil, storeErr("taking the refresh lock", err)
		}
		if ok {
			return s.refreshLocked(ctx, r, sess, t, n, token, fn)
		}
		gone, err := s.waitUnlocked(ctx, n.lock, deadline)
		if err != nil {
			return nil, err
		}
		cur, err := s.reread(ctx, t)
		if err != nil {
			return nil, err
		}
		if cur.RefreshedAt.After(sess.RefreshedAt) {
			return cur, nil
		}
		if !gone || !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w: waited %v", ErrRefreshBusy, s.lockWait)
		}
		// The holder gave up without refreshing (its fn failed, or it
		// died and the lock expired): try ourselves.
	}
}

// refreshLocked runs fn while holding the lock.
func (s *RedisStore) refreshLocked(ctx context.Context, r *http.Request, sess *Session, t *ticket, n redisNames, token string,
	fn func(ctx context.Context, s *Session) (*Session, error)) (*Session, error) {
	stop := s.keepLock(n.lock, token)
	defer func() {
		stop()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = s.unlock(uctx, n.lock, token)
	}()
	cur, err := s.reread(ctx, t)
	if err != nil {
		return nil, err
	}
	if cur.RefreshedAt.After(sess.RefreshedAt) {
		return cur, nil // another replica was faster
	}
	ns, err := fn(ctx, cur.clone())
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, errors.New("session: refresh returned no session")
	}
	if ns.Issuer != cur.Issuer || ns.Subject != cur.Subject {
		return nil, errors.New("session: a refresh may not change the session's identity")
	}
	// Records keep whole seconds: make the refresh visible in them, since
	// that is how the other replicas recognise it.
	ns.RefreshedAt = ns.RefreshedAt.Truncate(time.Second)
	if !ns.RefreshedAt.After(cur.RefreshedAt) {
		ns.RefreshedAt = s.now().Truncate(time.Second)
	}
	if !ns.RefreshedAt.After(cur.RefreshedAt) {
		ns.RefreshedAt = cur.RefreshedAt.Add(time.Second)
	}
	ns.handle = t
	if err := s.save(ctx, nil, r, ns, token); err != nil {
		return nil, err
	}
	return ns, nil
}

// reread loads t's record from Redis, past the local cache.
func (s *RedisStore) reread(ctx context.Context, t *ticket) (*Session, error) {
	now := s.now()
	epoch := s.cache.currentEpoch()
	cur, _, err := s.read(ctx, t, now)
	if err != nil {
		return nil, err
	}
	s.cache.add(t.hash(), t.tag, cur, now, epoch)
	return cur, nil
}

// waitUnlocked polls until the lock is gone (true) or deadline passes.
func (s *RedisStore) waitUnlocked(ctx context.Context, lock string, deadline time.Time) (bool, error) {
	for {
		n, err := s.client.Exists(ctx, lock).Result()
		if err != nil {
			return false, storeErr("waiting for the refresh lock", err)
		}
		if n == 0 {
			return true, nil
		}
		if !time.Now().Add(lockPoll).Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// keepLock extends the lock every lock_ttl/3 until stop is called or the
// lock turns out to be someone else's.
func (s *RedisStore) keepLock(lock, token string) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.lockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
				held, err := extendScript.Run(ctx, s.client, []string{lock}, token, s.lockTTL.Milliseconds()).Int()
				cancel()
				if err == nil && held == 0 {
					return // lost: the save will notice and refuse
				}
			}
		}
	}()
	return func() { close(quit); <-done }
}

// unlock deletes the lock if it still holds token.
func (s *RedisStore) unlock(ctx context.Context, lock, token string) error {
	if err := unlockScript.Run(ctx, s.client, []string{lock}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return storeErr("releasing the refresh lock", err)
	}
	return nil
}

func lockToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return hex.EncodeToString(b), nil
}

var (
	// unlockScript is compare-and-delete: a holder whose lock expired and
	// was taken by another must not delete the other's lock.
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

	// extendScript is compare-and-pexpire. ARGV: token, ttl ms.
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
)
