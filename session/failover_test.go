package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// The Redis store on Sentinel: the conformance suite, revocation, and a
// failover under load.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	set := redistest.Sentinel(t)
	cfg := RedisConfig{Addrs: set.SentinelAddrs(), MasterName: set.MasterName()}
	t.Run("conformance", func(t *testing.T) { runConformance(t, redisStores(cfg)) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, cfg) })
	t.Run("failover under load", func(t *testing.T) { testFailover(t, set, cfg, set.Failover) })
	t.Run("master crash under load", func(t *testing.T) { testFailover(t, set, cfg, set.KillMaster) })
}

// testFailover saves sessions, waits until the replica has them, then
// triggers a failover while several goroutines keep loading them (cache
// off, so every Load asks Redis). Every session must survive; Loads may fail
// while the master changes, but only as ErrUnavailable, never as "signed
// out". A second replica's cache must not serve a session revoked after
// the failover.
func testFailover(t *testing.T, set *redistest.SentinelSet, cfg RedisConfig, failover func(context.Context) error) {
	cfg.KeyPrefix = fmt.Sprintf("failover%d:", storeSeq.Add(1))
	secret := randomSecret(t)
	cached := cfg
	cached.CacheTTL = time.Hour // only invalidations can drop its entries
	cfg.CacheTTL = -1
	st := newRedisStore(t, cfg, nil, secret)
	watcher := newRedisStore(t, cached, nil, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	const sessions = 50
	browsers := make([]browser, sessions)
	for i := range browsers {
		browsers[i] = signIn(t, st, userSession(i, ""))
	}
	if err := set.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	var loads, unavailable, absent, other atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := st.Load(browsers[rand.IntN(sessions)].request())
				loads.Add(1)
				switch {
				case err == nil:
				case errors.Is(err, ErrUnavailable):
					unavailable.Add(1)
					lastErr.Store(err.Error())
				case IsAbsent(err):
					absent.Add(1)
					lastErr.Store(err.Error())
				default:
					other.Add(1)
					lastErr.Store(err.Error())
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // load before the failover
	subscribed := watcher.subscribed.Load()
	began := time.Now()
	if err := failover(ctx); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	took := time.Since(began)
	time.Sleep(300 * time.Millisecond) // and after
	close(stop)
	wg.Wait()
	t.Logf("failover took %v; %d of %d Loads failed during it (%d unavailable, %d absent, %d other; last: %v)",
		took.Round(time.Millisecond), unavailable.Load()+absent.Load()+other.Load(), loads.Load(),
		unavailable.Load(), absent.Load(), other.Load(), lastErr.Load())
	if absent.Load() > 0 || other.Load() > 0 {
		t.Errorf("Loads failed other than as ErrUnavailable during the failover")
	}
	// Every session is there. After a crash go-redis probes the dead
	// address at most once a second before dialing the new master, so give
	// it a moment.
	promoted := time.Now()
	for i, b := range browsers {
		for {
			_, err := st.Load(b.request())
			if err == nil {
				break
			}
			if !errors.Is(err, ErrUnavailable) || time.Since(promoted) > 5*time.Second {
				t.Fatalf("session %d after the failover: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("all %d sessions load %v after the new master took writes", sessions, time.Since(promoted).Round(time.Millisecond))

	// The new master takes writes.
	b := signIn(t, st, userSession(0, ""))
	if _, err := st.Load(b.request()); err != nil {
		t.Errorf("session saved after the failover: %v", err)
	}

	// Invalidations reach the other replica again: it resubscribes (to the
	// new master) and then hears about a revocation at once.
	for watcher.subscribed.Load() == subscribed {
		if time.Since(promoted) > 10*time.Second {
			t.Fatal("the other replica never resubscribed after the failover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the other replica resubscribed %v after the failover began (%d by probe)",
		time.Since(began).Round(time.Millisecond), watcher.resubscribe.Load())
	if _, err := watcher.Load(browsers[2].request()); err != nil {
		t.Fatal(err)
	}
	if n, err := st.RevokeUser(ctx, "https://idp.example.com", "user-2"); err != nil || n != 1 {
		t.Errorf("RevokeUser after the failover = %d, %v", n, err)
	}
	revoked := time.Now()
	for {
		_, err := watcher.Load(browsers[2].request())
		if errors.Is(err, ErrInvalidSession) {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("the other replica still serves a session revoked after the failover: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
