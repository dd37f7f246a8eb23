package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two replicas × 20 requests refresh one session at once: the provider is
// asked once, everyone gets the refreshed session, no lock is left behind.
func TestRedisRefreshAcrossReplicas(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.KeyPrefix = "refresh:"
	secret := randomSecret(t)
	replicas := []*RedisStore{newRedisStore(t, cfg, nil, secret), newRedisStore(t, cfg, nil, secret)}
	b := signIn(t, replicas[0], demoSession(time.Now()))
	var calls atomic.Int32
	fn := func(ctx context.Context, s *Session) (*Session, error) {
		calls.Add(1)
		time.Sleep(200 * time.Millisecond)
		s.RefreshToken = "rotated"
		s.RefreshedAt = time.Now()
		return s, nil
	}
	const perReplica = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed atomic.Int32
	for _, st := range replicas {
		for range perReplica {
			r := b.request()
			s, err := st.Load(r)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := st.RefreshOnce(r.Context(), httptest.NewRecorder(), r, s, fn)
				if err != nil || got.RefreshToken != "rotated" {
					failed.Add(1)
					t.Errorf("RefreshOnce = %+v, %v; want the refreshed session", got, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times, want once", n)
	}
	locks, _ := replicas[0].client.Keys(context.Background(), "refresh:lock:*").Result()
	if len(locks) != 0 {
		t.Errorf("locks left behind: %v", locks)
	}
	for i, st := range replicas {
		s, err := st.Load(b.request())
		if err != nil || s.RefreshToken != "rotated" {
			t.Errorf("replica %d loads %+v, %v after the refresh", i, s, err)
		}
	}
}

func TestRedisRefreshLock(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.KeyPrefix = "lock:"
	cfg.LockTTL = 600 * time.Millisecond
	cfg.LockWait = 2 * time.Second
	st := newRedisStore(t, cfg, nil, randomSecret(t))
	ctx := context.Background()
	refreshed := func(calls *atomic.Int32) func(context.Context, *Session) (*Session, error) {
		return func(_ context.Context, s *Session) (*Session, error) {
			calls.Add(1)
			s.RefreshToken = "rotated"
			return s, nil // RefreshedAt left alone: RefreshOnce advances it
		}
	}
	load := func(t *testing.T) (*Session, redisNames) {
		b := signIn(t, st, demoSession(time.Now()))
		s, err := st.Load(b.request())
		if err != nil {
			t.Fatal(err)
		}
		return s, st.names(s.handle.tag, s.handle.hash())
	}

	t.Run("dead holder's lock expires", func(t *testing.T) {
		s, n := load(t)
		if err := st.client.Set(ctx, n.lock, "dead-replica", cfg.LockTTL).Err(); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		began := time.Now()
		got, err := st.RefreshOnce(ctx, nil, nil, s, refreshed(&calls))
		waited := time.Since(began)
		if err != nil || got.RefreshToken != "rotated" || calls.Load() != 1 {
			t.Fatalf("RefreshOnce = %+v, %v (fn ran %d times)", got, err, calls.Load())
		}
		if waited < cfg.LockTTL/2 || waited > cfg.LockWait {
			t.Errorf("waited %v for a %v lock", waited, cfg.LockTTL)
		}
		if !got.RefreshedAt.After(s.RefreshedAt) {
			t.Errorf("RefreshedAt not advanced: %v", got.RefreshedAt)
		}
		if n, _ := st.client.Exists(ctx, n.lock).Result(); n != 0 {
			t.Error("lock left behind")
		}
	})

	t.Run("busy past lock_wait", func(t *testing.T) {
		s, n := load(t)
		if err := st.client.Set(ctx, n.lock, "slow-replica", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		defer st.client.Del(ctx, n.lock)
		var calls atomic.Int32
		_, err := st.RefreshOnce(ctx, nil, nil, s, refreshed(&calls))
		if !errors.Is(err, ErrRefreshBusy) || calls.Load() != 0 {
			t.Errorf("RefreshOnce = %v (fn ran %d times), want ErrRefreshBusy", err, calls.Load())
		}
	})

	t.Run("release with the wrong token keeps the lock", func(t *testing.T) {
		_, n := load(t)
		if err := st.client.Set(ctx, n.lock, "owner", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := st.unlock(ctx, n.lock, "intruder"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.client.Get(ctx, n.lock).Result(); got != "owner" {
			t.Errorf("lock = %q after a wrong-token release, want it kept", got)
		}
		if err := st.unlock(ctx, n.lock, "owner"); err != nil {
			t.Fatal(err)
		}
		if n, _ := st.client.Exists(ctx, n.lock).Result(); n != 0 {
			t.Error("owner's release left the lock")
		}
	})

	t.Run("held lock is extended while fn runs", func(t *testing.T) {
		s, n := load(t)
		var calls atomic.Int32
		_, err := st.RefreshOnce(ctx, nil, nil, s, func(ctx context.Context, s *Session) (*Session, error) {
			calls.Add(1)
			time.Sleep(2 * cfg.LockTTL) // outlives the lock unless extended
			if ttl, _ := st.client.PTTL(ctx, n.lock).Result(); ttl <= 0 {
				t.Errorf("lock PTTL = %v while fn runs", ttl)
			}
			s.RefreshToken = "slow"
			return s, nil
		})
		if err != nil || calls.Load() != 1 {
			t.Errorf("RefreshOnce = %v (fn ran %d times)", err, calls.Load())
		}
	})

	t.Run("lost lock refuses the write", func(t *testing.T) {
		s, n := load(t)
		_, err := st.RefreshOnce(ctx, nil, nil, s, func(ctx context.Context, s *Session) (*Session, error) {
			st.client.Set(ctx, n.lock, "thief", time.Minute) // our lock expired and was taken
			s.RefreshToken = "late"
			return s, nil
		})
		st.client.Del(ctx, n.lock)
		if !errors.Is(err, ErrRefreshBusy) {
			t.Errorf("RefreshOnce = %v, want ErrRefreshBusy", err)
		}
		if got, _ := st.reread(ctx, s.handle); got.RefreshToken == "late" {
			t.Error("a refresher without the lock wrote the session")
		}
	})

	t.Run("revoked meanwhile", func(t *testing.T) {
		s, _ := load(t)
		if _, err := st.RevokeUser(ctx, s.Issuer, s.Subject); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		if _, err := st.RefreshOnce(ctx, nil, nil, s, refreshed(&calls)); !errors.Is(err, ErrInvalidSession) || calls.Load() != 0 {
			t.Errorf("RefreshOnce of a revoked session = %v (fn ran %d times)", err, calls.Load())
		}
	})

	t.Run("session not from the store", func(t *testing.T) {
		if _, err := st.RefreshOnce(ctx, nil, nil, demoSession(time.Now()), nil); err == nil {
			t.Error("RefreshOnce accepted a session without a ticket")
		}
	})
}

// Callers that lose the race also get the winner's cookie.
func TestCookieRefreshSharesCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	s, err := st.Load(request(rec))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	release := make(chan struct{})
	var calls atomic.Int32
	recs := make([]*httptest.ResponseRecorder, 5)
	for i := range recs {
		recs[i] = httptest.NewRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.RefreshOnce(context.Background(), recs[i], request(rec), s, func(_ context.Context, s *Session) (*Session, error) {
				calls.Add(1)
				<-release
				s.RefreshToken = "rotated"
				return s, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times", calls.Load())
	}
	for i, r := range recs {
		got, err := st.Load(request(r))
		if err != nil || got.RefreshToken != "rotated" {
			t.Errorf("caller %d's cookie loads %+v, %v", i, got, err)
		}
	}
}
