package session

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

var storeSeq atomic.Int64

// newRedisStore returns a store on cfg's Redis with a 1h lifetime, closed
// when the test ends. An empty KeyPrefix gets one of its own.
func newRedisStore(t testing.TB, cfg RedisConfig, now func() time.Time, secrets ...string) *RedisStore {
	t.Helper()
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = fmt.Sprintf("t%d:", storeSeq.Add(1))
	}
	st, err := NewRedisStore(cfg, mustKeys(t, secrets...), RedisStoreOptions{
		Cookie: CookieConfig{Name: "_portcullis"}, Lifetime: time.Hour, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// redisStores returns a newStoreFunc whose stores share one key prefix on
// cfg's Redis.
func redisStores(cfg RedisConfig) newStoreFunc {
	cfg.KeyPrefix = fmt.Sprintf("conf%d:", storeSeq.Add(1))
	return func(t *testing.T, now func() time.Time, secrets ...string) Backend {
		return newRedisStore(t, cfg, now, secrets...)
	}
}

func standalone(t testing.TB) (*redistest.Server, RedisConfig) {
	srv := redistest.Standalone(t)
	return srv, RedisConfig{Addrs: []string{srv.Addr()}}
}

// recordTTL returns the PTTL of the record the browser's ticket names.
func recordTTL(t testing.TB, st *RedisStore, b browser) time.Duration {
	t.Helper()
	tk, err := st.ticketFrom(b.request())
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := st.client.PTTL(context.Background(), st.names(tk.tag, tk.hash()).session).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ttl
}

func TestCookieStoreConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, now func() time.Time, secrets ...string) Backend {
		s, err := NewCookieStore(CookieConfig{Name: "_portcullis"}, mustKeys(t, secrets...),
			CookieStoreOptions{Lifetime: time.Hour, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRedisStandaloneConformance(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	runConformance(t, redisStores(cfg))
}

// A dump of Redis (every key name and DUMP of every value) shows none of
// what a session holds.
func TestRedisDumpRevealsNothing(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	now := time.Now()
	st := newRedisStore(t, cfg, nil, randomSecret(t))
	s := demoSession(now)
	s.AccessToken = "access-token-0123456789"
	s.IDToken = "eyJhbGciOiJSUzI1NiJ9.id-token-payload.signature"
	s.Claims = map[string][]string{"department": {"site-reliability"}}
	b := signIn(t, st, s)
	if _, err := st.Load(b.request()); err != nil {
		t.Fatal(err)
	}
	if n, err := st.RevokeSID(context.Background(), s.Issuer, "another-sid"); err != nil || n != 0 {
		t.Fatalf("RevokeSID = %d, %v", n, err)
	}
	needles := []string{s.Issuer, s.Subject, s.Email, s.Name, s.PreferredUsername, s.SID,
		s.RefreshToken, s.AccessToken, s.IDToken, "site-reliability", "conformance", "Mozilla", "another-sid"}
	needles = append(needles, s.Groups...)
	ctx := context.Background()
	keys, err := st.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 3 {
		t.Fatalf("dump has %d keys, want the session, the user index and the sid index: %v", len(keys), keys)
	}
	var dump strings.Builder
	for _, k := range keys {
		v, err := st.client.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		dump.WriteString(k + "\n" + v + "\n")
	}
	for _, n := range needles {
		if strings.Contains(strings.ToLower(dump.String()), strings.ToLower(n)) {
			t.Errorf("the dump reveals %q", n)
		}
	}
}

func TestRedisUpdateInPlace(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.KeyPrefix = "inplace:"
	a := newRedisStore(t, cfg, nil, randomSecret(t))
	b := signIn(t, a, demoSession(time.Now()))
	cookie := b.clone()
	s, err := a.Load(b.request())
	if err != nil {
		t.Fatal(err)
	}
	s.Groups = []string{"auditors"}
	rec := httptest.NewRecorder()
	if err := a.Save(rec, b.request(), s); err != nil {
		t.Fatal(err)
	}
	if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
		t.Errorf("an in-place update set cookies: %v", h)
	}
	keys, _ := a.client.Keys(context.Background(), "inplace:s:*").Result()
	if len(keys) != 1 {
		t.Errorf("records after update = %v, want one", keys)
	}
	got, err := a.Load(cookie.request())
	if err != nil || strings.Join(got.Groups, ",") != "auditors" {
		t.Errorf("Load after update = %v, %v", got, err)
	}
}

// Revocations reach a second replica's warm cache within a second.
func TestRedisInvalidationAcrossReplicas(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.KeyPrefix = "inv:"
	cfg.CacheTTL = time.Hour // only invalidation can drop entries
	secret := randomSecret(t)
	a := newRedisStore(t, cfg, nil, secret)
	b := newRedisStore(t, cfg, nil, secret)
	ctx := context.Background()
	alice := demoSession(time.Now())
	for _, tt := range []struct {
		name   string
		revoke func(br browser) error
	}{
		{"clear", func(br browser) error { return a.Clear(httptest.NewRecorder(), br.request()) }},
		{"revoke user", func(browser) error { _, err := a.RevokeUser(ctx, alice.Issuer, alice.Subject); return err }},
		{"revoke sid", func(browser) error { _, err := a.RevokeSID(ctx, alice.Issuer, alice.SID); return err }},
		{"revoke ticket", func(br browser) error {
			list, err := a.ListUser(ctx, alice.Issuer, alice.Subject)
			if err != nil || len(list) != 1 {
				return fmt.Errorf("ListUser = %v, %v", list, err)
			}
			return a.RevokeTicket(ctx, alice.Issuer, alice.Subject, list[0].ID)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Sign in fresh; RevokeSID leaves a tombstone, so use a new sid.
			s := demoSession(time.Now())
			s.SID = alice.SID
			if tt.name != "revoke sid" {
				s.SID = "sid-" + tt.name
			}
			br := signIn(t, a, s)
			if _, err := b.Load(br.request()); err != nil { // warms b's cache
				t.Fatal(err)
			}
			if _, err := b.Load(br.request()); err != nil {
				t.Fatal(err)
			}
			if err := tt.revoke(br); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for {
				_, err := b.Load(br.request())
				if errors.Is(err, ErrInvalidSession) {
					t.Logf("replica b dropped the session after %v", time.Since(start).Round(time.Microsecond))
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("replica b still serves a revoked session after 1s (err %v)", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	hits, misses := b.CacheStats()
	if hits == 0 || misses == 0 {
		t.Errorf("CacheStats = %d hits, %d misses; want both counted", hits, misses)
	}
}

// While Redis is down, cached sessions keep working until their entry
// expires; everything else fails with ErrUnavailable, never as "signed out";
// when Redis is back on the same port everything recovers without restart.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv, cfg := standalone(t)
	cfg.CacheTTL = 700 * time.Millisecond
	cfg.KeyPrefix = "outage:"
	secret := randomSecret(t)
	st := newRedisStore(t, cfg, nil, secret)
	other := newRedisStore(t, cfg, nil, secret)
	cached := signIn(t, st, demoSession(time.Now()))
	uncached := signIn(t, other, demoSession(time.Now()))
	if _, err := st.Load(cached.request()); err != nil {
		t.Fatal(err)
	}
	// A replica with a long cache: only a resubscription can empty it.
	longCfg := cfg
	longCfg.CacheTTL = time.Hour
	long := newRedisStore(t, longCfg, nil, secret)
	if _, err := long.Load(cached.request()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	srv.Kill()
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnavailable) || IsAbsent(err) {
			t.Errorf("%s during the outage: %v; want ErrUnavailable and not absent", what, err)
		}
	}
	if _, err := st.Load(cached.request()); err != nil {
		t.Errorf("cached session during the outage: %v", err)
	}
	began := time.Now()
	_, err := st.Load(uncached.request())
	t.Logf("a Load that needs Redis failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
	unavailable("Load", err)
	unavailable("Save", st.Save(httptest.NewRecorder(), browser{}.request(), demoSession(time.Now())))
	rec := httptest.NewRecorder()
	unavailable("Clear", st.Clear(rec, uncached.request()))
	if len(rec.Result().Cookies()) == 0 {
		t.Error("Clear did not expire the cookie while Redis was down")
	}
	_, err = st.RevokeUser(ctx, "https://idp.example.com", "248289761001")
	unavailable("RevokeUser", err)
	unavailable("Ready", st.Ready(ctx))
	time.Sleep(cfg.CacheTTL)
	_, err = st.Load(cached.request())
	unavailable("Load after the cache entry expired", err)

	subscribed, longSubscribed := st.subscribed.Load(), long.subscribed.Load()
	restarted := time.Now()
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for st.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store not ready 10s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ready %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// Redis lost its data (no persistence): the old sessions are gone, and
	// say so as invalid, not unavailable.
	if _, err := st.Load(uncached.request()); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Load of a session Redis lost = %v, want ErrInvalidSession", err)
	}
	fresh := signIn(t, st, demoSession(time.Now()))
	if _, err := other.Load(fresh.request()); err != nil {
		t.Errorf("Load after recovery: %v", err)
	}
	for st.subscribed.Load() == subscribed {
		if time.Now().After(deadline) {
			t.Fatal("invalidation subscription not re-established")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("resubscribed %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// Invalidations may have been missed while disconnected: the cache is
	// dropped, and the session the restarted Redis lost is gone everywhere.
	for long.subscribed.Load() == longSubscribed {
		if time.Now().After(deadline) {
			t.Fatal("long-cache replica did not resubscribe")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := long.Load(cached.request()); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("a replica's cache outlived the reconnect: Load = %v, want ErrInvalidSession", err)
	}
	// And invalidations flow again.
	if _, err := other.RevokeUser(ctx, "https://idp.example.com", "248289761001"); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Load(fresh.request()); errors.Is(err, ErrInvalidSession) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revocation after recovery did not reach the other replica")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewRedisStoreUnreachable(t *testing.T) {
	t.Parallel()
	redistest.Require(t)
	keys := mustKeys(t, randomSecret(t))
	dead := func() string {
		srv := redistest.Standalone(t)
		srv.Kill()
		return srv.Addr()
	}
	a, b, c := dead(), dead(), dead()
	for _, tt := range []struct {
		name string
		cfg  RedisConfig
		want []string
	}{
		{"standalone", RedisConfig{Addrs: []string{a}}, []string{a, "(standalone)", "unreachable"}},
		{"cluster", RedisConfig{Addrs: []string{a, b, c}}, []string{a, b, c, "(cluster)", "unreachable"}},
		{"sentinel", RedisConfig{Addrs: []string{a, b}, MasterName: "mymaster"}, []string{`"mymaster"`, a, b, "(sentinel)", "unreachable"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := NewRedisStore(tt.cfg, keys, RedisStoreOptions{})
			if err == nil {
				st.Close()
				t.Fatal("NewRedisStore succeeded against dead addresses")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the session: prefix", err)
			}
		})
	}
}

// With startup_wait the store waits for Redis to come up.
func TestNewRedisStoreStartupWait(t *testing.T) {
	t.Parallel()
	srv, cfg := standalone(t)
	srv.Kill()
	go func() {
		time.Sleep(500 * time.Millisecond)
		srv.Restart()
	}()
	cfg.StartupWait = 10 * time.Second
	began := time.Now()
	st := newRedisStore(t, cfg, nil, randomSecret(t))
	if err := st.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("store came up %v after start", time.Since(began).Round(time.Millisecond))
}

func TestRedisConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     RedisConfig
		wantErr string
	}{
		{"standalone", RedisConfig{Addrs: []string{"127.0.0.1:6379"}}, ""},
		{"cluster", RedisConfig{Addrs: []string{"a:1", "b:2", "c:3"}}, ""},
		{"sentinel", RedisConfig{Addrs: []string{"a:26379"}, MasterName: "m", SentinelPassword: "x"}, ""},
		{"tls with ca", RedisConfig{Addrs: []string{"a:1"}, TLS: RedisTLSConfig{Enabled: true, CAFile: "/ca.pem"}}, ""},
		{"no addrs", RedisConfig{}, "addrs"},
		{"no port", RedisConfig{Addrs: []string{"localhost"}}, "host:port"},
		{"bad port", RedisConfig{Addrs: []string{"a:99999"}}, "port"},
		{"duplicate", RedisConfig{Addrs: []string{"a:1", "a:1"}}, "twice"},
		{"db in cluster", RedisConfig{Addrs: []string{"a:1", "b:1"}, DB: 2}, "db"},
		{"negative db", RedisConfig{Addrs: []string{"a:1"}, DB: -1}, "db"},
		{"sentinel password without sentinel", RedisConfig{Addrs: []string{"a:1"}, SentinelPassword: "x"}, "sentinel_"},
		{"ca without tls", RedisConfig{Addrs: []string{"a:1"}, TLS: RedisTLSConfig{CAFile: "/ca.pem"}}, "tls.enabled"},
		{"insecure and ca", RedisConfig{Addrs: []string{"a:1"}, TLS: RedisTLSConfig{Enabled: true, CAFile: "/ca.pem", InsecureSkipVerify: true}}, "insecure_skip_verify"},
		{"brace in prefix", RedisConfig{Addrs: []string{"a:1"}, KeyPrefix: "app{1}:"}, "key_prefix"},
		{"negative timeout", RedisConfig{Addrs: []string{"a:1"}, ReadTimeout: -time.Second}, "read_timeout"},
		{"tiny lock ttl", RedisConfig{Addrs: []string{"a:1"}, LockTTL: time.Millisecond}, "lock_ttl"},
		{"negative cache size", RedisConfig{Addrs: []string{"a:1"}, CacheSize: -1}, "cache_size"},
		{"negative pool", RedisConfig{Addrs: []string{"a:1"}, PoolSize: -1}, "pool_size"},
		{"negative startup wait", RedisConfig{Addrs: []string{"a:1"}, StartupWait: -1}, "startup_wait"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	c := RedisConfig{Addrs: []string{"127.0.0.1:6379"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := RedisConfig{Addrs: c.Addrs, KeyPrefix: "portcullis:", DialTimeout: 2 * time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, CacheTTL: 5 * time.Second, CacheSize: 100000, LockTTL: 10 * time.Second, LockWait: 5 * time.Second}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	disabled := RedisConfig{Addrs: []string{"a:1"}, CacheTTL: -1}
	if disabled.Validate(); disabled.CacheTTL >= 0 {
		t.Errorf("negative cache_ttl became %v; it must stay negative (disabled)", disabled.CacheTTL)
	}
	session := Config{Store: "redis", Redis: RedisConfig{Addrs: []string{"a:1"}}}
	if err := session.Validate(); err != nil || session.Redis.KeyPrefix != DefaultRedisKeyPrefix {
		t.Errorf("Config.Validate with store redis = %v (prefix %q)", err, session.Redis.KeyPrefix)
	}
	if err := (&Config{Store: "redis"}).Validate(); err == nil {
		t.Error("store redis without addrs accepted")
	}
}

func TestHandleIsNotEncoded(t *testing.T) {
	s := demoSession(time.Unix(1_800_000_000, 0))
	plain, _ := s.MarshalBinary()
	tk, err := newTicket(userTag(s.Issuer, s.Subject))
	if err != nil {
		t.Fatal(err)
	}
	s.handle = tk
	withHandle, _ := s.MarshalBinary()
	if string(plain) != string(withHandle) {
		t.Error("MarshalBinary encodes the ticket handle")
	}
	var back Session
	if err := back.UnmarshalBinary(withHandle); err != nil || back.handle != nil {
		t.Errorf("decoded handle = %v, %v", back.handle, err)
	}
}
