package session

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/redis/go-redis/v9"
)

// RedisStore keeps sessions in Redis (standalone, Sentinel or Cluster). The
// cookie carries only a sealed ticket (see ticket.go). Redis holds, per
// session, a HASH with the session sealed under the ticket's own key (field
// d) and admin-list metadata sealed under a server key (field m); per user,
// an index of their sessions; per provider session, an index for
// back-channel logout. A user's keys share one Cluster hash slot, so each
// change to a session and its user index is one Lua script. Each replica
// keeps recently loaded sessions in a local cache (localcache.go) that
// revocations on any replica invalidate at once (invalidate.go).
type RedisStore struct {
	client   redis.UniversalClient
	where    string // "redis at … (topology)", for errors
	jar      cookieJar
	codecs   []*securecookie.SecureCookie
	meta     []cipher.AEAD // metadata keys, one per secret; the first seals
	prefix   string
	lifetime time.Duration
	now      func() time.Time
	cache    *localCache
	tickets  decodeCache[*ticket] // recently opened ticket cookies
	lockTTL  time.Duration
	lockWait time.Duration
	origin   string // this instance, in invalidation messages

	flight flight

	// Invalidation subscription; see invalidate.go.
	healthCheck time.Duration
	subMu       sync.Mutex
	sub         *subscription
	probeSeen   atomic.Uint64 // highest probe token received
	subscribed  atomic.Uint64 // (re)subscriptions so far
	resubscribe atomic.Uint64 // subscriptions replaced because probes stopped arriving
	quit        chan struct{} // closed by Close
	watchDone   chan struct{} // closed when the probe loop has stopped
	closeOnce   sync.Once
	closeErr    error
}

// RedisStoreOptions are the collaborators of a RedisStore. (The CA to
// trust comes in the config: RedisTLSConfig.CAPEM.)
type RedisStoreOptions struct {
	// Cookie configures the session cookie, which is the cookie store's:
	// same name, attributes and chunking.
	Cookie CookieConfig
	// Lifetime is the absolute session lifetime; DefaultLifetime when zero.
	Lifetime time.Duration
	// Now is time.Now unless a test sets it.
	Now func() time.Time
	// Hooks observe every Redis command (main adds one for metrics).
	Hooks []redis.Hook
}

// lastSeenEvery throttles metadata writes: a session's last-seen time is
// written at most once a minute, so a busy user costs no write per request.
const lastSeenEvery = time.Minute

// NewRedisStore connects to Redis as cfg says and returns the store. It
// pings Redis first (for up to cfg.StartupWait) and fails with an error
// naming every configured address and the topology when Redis cannot be
// reached. Close releases the connections.
func NewRedisStore(cfg RedisConfig, keys *KeyRing, opts RedisStoreOptions) (*RedisStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("session: invalid redis config: %w", err)
	}
	if keys == nil {
		return nil, errors.New("session: redis store needs a key ring")
	}
	jar, err := newCookieJar(opts.Cookie)
	if err != nil {
		return nil, err
	}
	if err := checkLifetime(&opts.Lifetime); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	origin := make([]byte, 8)
	if _, err := rand.Read(origin); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	s := &RedisStore{
		where:       cfg.where(),
		jar:         jar,
		codecs:      keys.codecs(PurposeTicket, int((opts.Lifetime+clockSkew)/time.Second), maxTicketCookie, ticketSerializer{}),
		prefix:      cfg.KeyPrefix,
		lifetime:    opts.Lifetime,
		now:         opts.Now,
		cache:       newLocalCache(cfg.CacheTTL, cfg.CacheSize),
		lockTTL:     cfg.LockTTL,
		lockWait:    cfg.LockWait,
		origin:      hex.EncodeToString(origin),
		healthCheck: time.Second,
	}
	for i := range keys.secrets {
		s.meta = append(s.meta, newGCM(keys.derive(i, PurposeRedisMeta, "key", 32)))
	}
	if s.client, err = newRedisClient(&cfg, opts.Hooks); err != nil {
		return nil, err
	}
	if err := connect(s.client, &cfg); err != nil {
		s.client.Close()
		return nil, err
	}
	s.subscribe()
	return s, nil
}

// Name returns the session cookie's name as the browser sees it.
func (s *RedisStore) Name() string { return s.jar.name }

// Lifetime returns the absolute session lifetime.
func (s *RedisStore) Lifetime() time.Duration { return s.lifetime }

// Ready pings Redis, for /ready. Its error wraps ErrUnavailable.
func (s *RedisStore) Ready(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return storeErr("pinging "+s.where, err)
	}
	return nil
}

// CacheStats returns how many loads this replica answered from its local
// cache and how many went to Redis.
func (s *RedisStore) CacheStats() (hits, misses uint64) {
	return s.cache.hits.Load(), s.cache.misses.Load()
}

// Close stops the invalidation listener and closes the connections.
func (s *RedisStore) Close() error {
	s.closeOnce.Do(func() {
		s.unsubscribe()
		s.closeErr = s.client.Close()
	})
	return s.closeErr
}

// ticketFrom opens the ticket the request's cookie carries.
func (s *RedisStore) ticketFrom(r *http.Request) (*ticket, error) {
	t, _, err := s.ticketAndKey(r, s.now())
	return t, err
}

// ticketAndKey also reports whether the cookie was sealed with an old key.
func (s *RedisStore) ticketAndKey(r *http.Request, now time.Time) (*ticket, bool, error) {
	value, ok, err := s.jar.read(r)
	if !ok {
		return nil, false, ErrNoSession
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	if t, oldKey, ok := s.tickets.get(value, now); ok {
		return t, oldKey, nil
	}
	t := new(ticket)
	for i, codec := range s.codecs {
		if err = codec.Decode(s.jar.name, value, t); err == nil {
			s.tickets.put(value, t, i > 0, now)
			return t, i > 0, nil
		}
	}
	return nil, false, fmt.Errorf("%w: %v", ErrInvalidSession, err)
}

// Load implements Store. A session in the local cache costs no Redis round
// trip. When Redis cannot be reached, the error wraps ErrUnavailable, never
// ErrNoSession: a blink of Redis must not send users to sign in again.
func (s *RedisStore) Load(r *http.Request) (*Session, error) {
	now := s.now()
	t, oldKey, err := s.ticketAndKey(r, now)
	if err != nil {
		return nil, err
	}
	sess, err := s.loadTicket(r.Context(), t, now)
	if err != nil {
		return nil, err
	}
	sess.oldKey = oldKey
	return sess, nil
}

// loadTicket returns t's session, from the local cache or from Redis.
func (s *RedisStore) loadTicket(ctx context.Context, t *ticket, now time.Time) (*Session, error) {
	hash := t.hash()
	if c := s.cache.get(hash, now); c != nil {
		if subtle.ConstantTimeCompare(c.handle.key[:], t.key[:]) != 1 {
			return nil, fmt.Errorf("%w: ticket key mismatch", ErrInvalidSession)
		}
		if c.Expired(now) {
			return nil, fmt.Errorf("%w: expired", ErrInvalidSession)
		}
		return c, nil
	}
	epoch := s.cache.currentEpoch()
	sess, meta, err := s.read(ctx, t, now)
	if err != nil {
		return nil, err
	}
	s.cache.add(hash, t.tag, sess, now, epoch)
	s.touch(ctx, t, meta, now)
	return sess, nil
}

// read fetches and opens t's record from Redis, bypassing the cache. It
// also returns the sealed metadata, for touch.
func (s *RedisStore) read(ctx context.Context, t *ticket, now time.Time) (*Session, []byte, error) {
	n := s.names(t.tag, t.hash())
	vals, err := s.client.HMGet(ctx, n.session, "d", "m").Result()
	if err != nil {
		return nil, nil, storeErr("loading session", err)
	}
	d, _ := vals[0].(string)
	m, _ := vals[1].(string)
	if d == "" {
		return nil, nil, fmt.Errorf("%w: session ended or was revoked", ErrInvalidSession)
	}
	sess, err := t.openRecord([]byte(d), n.session)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	if err := s.check(sess, t, now); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	sess.handle = t
	return sess, []byte(m), nil
}

// check enforces the absolute lifetime and that the record belongs to the
// ticket's user, as CookieStore.check does for cookies.
func (s *RedisStore) check(sess *Session, t *ticket, now time.Time) error {
	switch {
	case sess.Subject == "" || sess.Issuer == "":
		return errors.New("no identity")
	case userTag(sess.Issuer, sess.Subject) != t.tag:
		return errors.New("record does not belong to the ticket's user")
	case sess.CreatedAt.IsZero() || sess.ExpiresAt.IsZero():
		return errors.New("no lifetime")
	case sess.CreatedAt.After(now.Add(clockSkew)):
		return errors.New("created in the future")
	case sess.Expired(now):
		return errors.New("expired")
	case sess.ExpiresAt.Sub(sess.CreatedAt) > s.lifetime+clockSkew:
		return errors.New("lifetime longer than configured")
	}
	return nil
}

// touch records the last-seen time, at most once per lastSeenEvery. It is
// best effort: a failure costs only an older last-seen in the admin list.
func (s *RedisStore) touch(ctx context.Context, t *ticket, sealed []byte, now time.Time) {
	if len(sealed) == 0 {
		return
	}
	n := s.names(t.tag, t.hash())
	m, err := s.openMeta(sealed, n.session)
	if err != nil || now.Sub(m.LastSeen) < lastSeenEvery {
		return
	}
	m.LastSeen = now
	if b, err := s.sealMeta(m, n.session); err == nil {
		_ = touchScript.Run(ctx, s.client, []string{n.session}, b).Err()
	}
}

// Save implements Store. A session that did not come from this store (no
// ticket yet: a sign-in) gets a fresh ticket and a new cookie, so no session
// id survives a sign-in (no fixation); the session the request's old cookie
// named, if any, is deleted. A session that came from Load is updated in
// place: same ticket, no Set-Cookie. Saving a session revoked meanwhile
// fails with ErrInvalidSession instead of bringing it back.
func (s *RedisStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	return s.save(r.Context(), w, r, sess, "")
}

// save writes sess; with lockToken set it writes only while that refresh
// lock is still held.
func (s *RedisStore) save(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *Session, lockToken string) error {
	now := s.now()
	ttl, err := s.bound(sess, now)
	if err != nil {
		return err
	}
	tag := userTag(sess.Issuer, sess.Subject)
	t := sess.handle
	fresh := t == nil || t.tag != tag // a new identity is a new sign-in
	if fresh {
		if lockToken != "" {
			return errors.New("session: a refresh may not change the session's identity")
		}
		if t, err = newTicket(tag); err != nil {
			return err
		}
	}
	hash := t.hash()
	n := s.names(tag, hash)
	ua := ""
	if r != nil {
		ua = truncateUA(r.UserAgent())
	}
	data, meta, err := s.seal(sess, t, n, ua, now)
	if err != nil {
		return err
	}
	if sess.SID != "" {
		if err := s.claimSID(ctx, sess, n); err != nil {
			return err
		}
	}
	if fresh {
		if err := s.dropPrevious(ctx, r, t); err != nil {
			return err
		}
	}
	epoch := s.cache.currentEpoch()
	if err := s.writeRecord(ctx, n, data, meta, ttl, sess.CreatedAt, sess.ExpiresAt, now, !fresh, lockToken); err != nil {
		return err
	}
	if sess.SID != "" {
		// A RevokeSID that ran between claimSID and the script above found
		// no record to delete; its tombstone tells us to delete it now.
		if err := s.checkSID(ctx, sess, n, t); err != nil {
			return err
		}
	}
	if fresh || sess.oldKey {
		if err := s.issueCookie(w, r, sess, t, ttl); err != nil {
			return err
		}
	}
	if !fresh {
		s.publish(ctx, [][16]byte{hash}, nil) // the new version replaces ours below
	}
	s.cache.add(hash, tag, sess, now, epoch)
	return nil
}

// bound checks that sess has an identity, fills its creation time, caps its
// expiry at the store's lifetime, and returns how long it has left (the
// record's TTL and the cookie's Max-Age).
func (s *RedisStore) bound(sess *Session, now time.Time) (time.Duration, error) {
	if sess.Issuer == "" || sess.Subject == "" {
		return 0, errors.New("session: saving a session without issuer and subject")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	if sess.ExpiresAt.IsZero() || sess.ExpiresAt.Sub(sess.CreatedAt) > s.lifetime {
		sess.ExpiresAt = sess.CreatedAt.Add(s.lifetime)
	}
	ttl := sess.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return 0, errors.New("session: saving an expired session")
	}
	return ttl, nil
}

// seal returns the record's two fields: the session sealed under the
// ticket's key (d) and the admin-list metadata sealed under the server's
// (m), each bound to the record's key.
func (s *RedisStore) seal(sess *Session, t *ticket, n redisNames, ua string, now time.Time) (data, meta []byte, err error) {
	if data, err = t.sealRecord(sess, n.session); err != nil {
		return nil, nil, fmt.Errorf("session: sealing session: %w", err)
	}
	meta, err = s.sealMeta(&sessionMeta{CreatedAt: sess.CreatedAt, LastSeen: now, ExpiresAt: sess.ExpiresAt, UserAgent: ua}, n.session)
	if err != nil {
		return nil, nil, fmt.Errorf("session: sealing metadata: %w", err)
	}
	return data, meta, nil
}

// dropPrevious deletes the session the request's cookie names, when a
// sign-in is about to replace it with t: the browser is about to forget
// that session; nobody else should be able to use it either.
func (s *RedisStore) dropPrevious(ctx context.Context, r *http.Request, t *ticket) error {
	if prev, err := s.ticketFrom(r); err == nil && prev.id != t.id {
		if _, err := s.deleteTicket(ctx, prev.tag, prev.hash()); err != nil {
			return err
		}
	}
	return nil
}

// writeRecord runs saveScript: the record and its user-index entry, written
// only if the record still exists when mustExist (an update) and only while
// lockToken holds the refresh lock when it is set.
func (s *RedisStore) writeRecord(ctx context.Context, n redisNames, data, meta []byte, ttl time.Duration,
	created, expires, now time.Time, mustExist bool, lockToken string) error {
	exist := "0"
	if mustExist {
		exist = "1"
	}
	res, err := saveScript.Run(ctx, s.client, []string{n.session, n.index, n.lock, n.revoked},
		data, meta, ttl.Milliseconds(), expires.UnixMilli(), now.UnixMilli(), n.hash, exist, lockToken, created.UnixMilli()).Int()
	switch {
	case err != nil:
		return storeErr("saving session", err)
	case res == 0:
		return fmt.Errorf("%w: session was revoked", ErrInvalidSession)
	case res == -1:
		return fmt.Errorf("%w: lost the refresh lock", ErrRefreshBusy)
	}
	return nil
}

// issueCookie sets the ticket cookie: for a new ticket, or one sealed with
// a retiring secret, (re)issued under the current secret.
func (s *RedisStore) issueCookie(w http.ResponseWriter, r *http.Request, sess *Session, t *ticket, ttl time.Duration) error {
	value, err := s.codecs[0].Encode(s.jar.name, t)
	if err != nil {
		return fmt.Errorf("session: sealing ticket cookie: %w", err)
	}
	if err := s.jar.write(w, r, value, ttl); err != nil {
		return err
	}
	sess.handle, sess.oldKey = t, false
	return nil
}

// Clear implements Store: it expires every cookie chunk and deletes the
// session and its index entry. The cookies are expired even when Redis
// fails; the error (wrapping ErrUnavailable) then says the record lives on
// until it expires.
func (s *RedisStore) Clear(w http.ResponseWriter, r *http.Request) error {
	s.jar.expire(w, r)
	t, err := s.ticketFrom(r)
	if err != nil {
		return nil // nothing of ours to delete
	}
	_, err = s.deleteTicket(r.Context(), t.tag, t.hash())
	return err
}

// deleteTicket deletes one session and its user-index entry and tells every
// replica. It returns how many records it deleted (0 or 1).
func (s *RedisStore) deleteTicket(ctx context.Context, tag [8]byte, hash [16]byte) (int, error) {
	n := s.names(tag, hash)
	deleted, err := deleteScript.Run(ctx, s.client, []string{n.session, n.index}, n.hash).Int()
	if err != nil {
		return 0, storeErr("deleting session", err)
	}
	s.invalidate(ctx, [][16]byte{hash}, nil)
	return deleted, nil
}

// The scripts below touch one user's keys only: one hash slot.
var (
	// saveScript writes a session and its user-index entry.
	// KEYS: session, user index, refresh lock, the user's revocation time.
	// ARGV: sealed session, sealed meta, ttl ms, expiry ms, now ms, ticket
	// hash, "1" when the record must exist already (an update must not
	// resurrect a revoked session), lock token ("" for none), created ms
	// (a session created no later than the user's last revocation is
	// revoked, even when it is written after it).
	// Returns 1, or 0 (revoked), or -1 (the lock is no longer ours).
	saveScript = redis.NewScript(`
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local revoked = redis.call('GET', KEYS[4])
if revoked and tonumber(ARGV[9]) <= tonumber(revoked) then return 0 end
if ARGV[8] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[8] then return -1 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(last[2]) - tonumber(ARGV[5])))
return 1`)

	// deleteScript deletes a session and its user-index entry.
	// KEYS: session, user index. ARGV: ticket hash. Returns records deleted.
	deleteScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n`)

	// touchScript replaces the metadata of a session that still exists.
	touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[1])
return 1`)
)
