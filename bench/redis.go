package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/session"
)

// redis.go measures what sessions cost in Redis: the keys of one real
// session, and a Redis holding many.

// redisKey is one key and what MEMORY USAGE says it costs.
type redisKey struct {
	name  string
	kind  string // TYPE
	bytes int64
}

// sessionKeys lists every key in Redis with MEMORY USAGE. Run it when alice
// is the only user signed in, and they are her session, its user index and
// its provider-session index.
func sessionKeys(ctx context.Context, rdb *redis.Client) ([]redisKey, error) {
	var keys []redisKey
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := redisKey{name: iter.Val()}
		var err error
		if k.kind, err = rdb.Type(ctx, k.name).Result(); err != nil {
			return nil, err
		}
		if k.bytes, err = rdb.MemoryUsage(ctx, k.name).Result(); err != nil {
			return nil, fmt.Errorf("MEMORY USAGE %s: %w", k.name, err)
		}
		keys = append(keys, k)
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	return keys, nil
}

// commandCalls is how many times Redis has run cmd (INFO commandstats).
func commandCalls(ctx context.Context, addr, cmd string) (int64, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	return parseCommandCalls(info, cmd)
}

// parseCommandCalls finds "cmdstat_<cmd>:calls=N,..." in INFO output; a
// command never run has no line, and 0 calls.
func parseCommandCalls(info, cmd string) (int64, error) {
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, nil
}

// usedMemory is INFO memory's used_memory, in bytes.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// scaleResult is what storing many sessions cost.
type scaleResult struct {
	sessions    int
	store       time.Duration // to Save them all
	bytesPerSes float64       // used_memory delta / sessions
	keysPerSes  float64
	loads       int
	loadP50     time.Duration // one Load that misses the local cache
	loadP99     time.Duration
}

// scale stores n sessions shaped like alice's (each its own user, so each
// has its own user and provider-session index), straight through the
// session package, then times Loads of random ones with the local cache
// off, so every Load is a Redis round trip plus decryption.
func scale(ctx context.Context, redisAddr, cookieSecret, aliceCookie string, n, loads int) (scaleResult, error) {
	res := scaleResult{sessions: n, loads: loads}
	keys, err := session.NewKeyRing([]string{cookieSecret})
	if err != nil {
		return res, err
	}
	secure := false
	store, err := session.NewRedisStore(
		session.RedisConfig{Addrs: []string{redisAddr}, CacheTTL: -1, PoolSize: 64},
		keys, session.RedisStoreOptions{Cookie: session.CookieConfig{Name: "_portcullis", Secure: &secure}})
	if err != nil {
		return res, err
	}
	defer store.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()

	// alice's session, as the gateway stored it, is the template.
	alice, err := store.Load(sessionRequest(aliceCookie))
	if err != nil {
		return res, fmt.Errorf("loading alice's session from redis: %w", err)
	}
	tmpl, err := alice.MarshalBinary()
	if err != nil {
		return res, err
	}

	memBefore, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	keysBefore, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return res, err
	}
	cookies := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blank := sessionRequest("")
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				s, err := lookAlike(tmpl, i)
				w := httptest.NewRecorder()
				if err == nil {
					err = store.Save(w, blank, s)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				cookies[i] = sessionCookie(w.Result().Cookies(), "_portcullis")
			}
		}()
	}
	wg.Wait()
	res.store = time.Since(start)
	if firstErr != nil {
		return res, fmt.Errorf("saving sessions: %w", firstErr)
	}
	memAfter, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	keysAfter, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return res, err
	}
	res.bytesPerSes = float64(memAfter-memBefore) / float64(n)
	res.keysPerSes = float64(keysAfter-keysBefore) / float64(n)

	times := make([]time.Duration, 0, loads)
	for range loads {
		r := sessionRequest(cookies[rand.IntN(n)])
		t0 := time.Now()
		if _, err := store.Load(r); err != nil {
			return res, fmt.Errorf("loading a stored session: %w", err)
		}
		times = append(times, time.Since(t0))
	}
	if hits, _ := store.CacheStats(); hits != 0 {
		return res, fmt.Errorf("%d loads came from the local cache, which was meant to be off", hits)
	}
	slices.Sort(times)
	res.loadP50 = times[len(times)/2]
	res.loadP99 = times[len(times)*99/100]
	return res, nil
}

// lookAlike is a new session of user number i (decoded from alice's, so
// it has no ticket yet and Save mints one) with alice's tokens, groups and
// timestamps.
func lookAlike(alice []byte, i int) (*session.Session, error) {
	s := new(session.Session)
	if err := s.UnmarshalBinary(alice); err != nil {
		return nil, err
	}
	s.Subject = fmt.Sprintf("u-%07d", i)
	s.Email = fmt.Sprintf("user%07d@example.com", i)
	s.PreferredUsername = fmt.Sprintf("user%07d", i)
	if s.SID != "" {
		s.SID = fmt.Sprintf("%s-%07d", s.SID, i)
	}
	return s, nil
}

// sessionRequest is a request carrying cookie, for Store.Load.
func sessionRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "http://gateway/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// withoutIDToken is what alice's session would cost in Redis with
// session.keep_id_token: false: a copy without the ID token, saved through
// the session package into an empty database (db 1), measured, removed.
func withoutIDToken(ctx context.Context, redisAddr, cookieSecret, aliceCookie string) ([]redisKey, error) {
	keys, err := session.NewKeyRing([]string{cookieSecret})
	if err != nil {
		return nil, err
	}
	secure := false
	open := func(db int) (*session.RedisStore, error) {
		return session.NewRedisStore(session.RedisConfig{Addrs: []string{redisAddr}, DB: db, CacheTTL: -1},
			keys, session.RedisStoreOptions{Cookie: session.CookieConfig{Name: "_portcullis", Secure: &secure}})
	}
	live, err := open(0)
	if err != nil {
		return nil, err
	}
	defer live.Close()
	alice, err := live.Load(sessionRequest(aliceCookie))
	if err != nil {
		return nil, fmt.Errorf("loading alice's session from redis: %w", err)
	}
	if alice.IDToken == "" {
		return nil, fmt.Errorf("alice's session kept no ID token: nothing to compare")
	}
	tmpl, err := alice.MarshalBinary()
	if err != nil {
		return nil, err
	}
	s, err := lookAlike(tmpl, 0)
	if err != nil {
		return nil, err
	}
	s.Subject, s.Email, s.PreferredUsername, s.SID = alice.Subject, alice.Email, alice.PreferredUsername, alice.SID
	s.IDToken = ""
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, DB: 1})
	defer rdb.Close()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		return nil, fmt.Errorf("redis db 1 should be empty: %d keys, %v", n, err)
	}
	scratch, err := open(1)
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	if err := scratch.Save(httptest.NewRecorder(), sessionRequest(""), s); err != nil {
		return nil, err
	}
	defer rdb.FlushDB(ctx)
	return sessionKeys(ctx, rdb)
}

// aliceKeys is sessionKeys on the harness's Redis right after alice signed
// in to the Redis-mode gateway, the only sign-in it sees.
func (h *harness) aliceKeys(ctx context.Context, addr string) ([]redisKey, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	return sessionKeys(ctx, rdb)
}

// cacheHitResult is the Redis-mode gateway's local cache under the rounds.
type cacheHitResult struct {
	requests int64 // responses wrk got from the Redis-mode gateway
	misses   int64 // HMGETs Redis served meanwhile: one per cache miss
}

func (c cacheHitResult) ratio() float64 {
	if c.requests == 0 {
		return 0
	}
	return 1 - float64(c.misses)/float64(c.requests)
}
