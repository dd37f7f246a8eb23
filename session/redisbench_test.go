package session

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// typicalSession is alice with two groups and a 26-character refresh token.
func typicalSession(now time.Time) *Session {
	s := demoSession(now)
	s.RefreshToken = strings.Repeat("r", 26)
	return s
}

func benchRedisStore(b *testing.B, cacheTTL time.Duration) (*RedisStore, browser) {
	_, cfg := standalone(b)
	cfg.CacheTTL = cacheTTL
	st := newRedisStore(b, cfg, nil, randomSecret(b))
	return st, signIn(b, st, typicalSession(time.Now()))
}

func BenchmarkRedisLoadCacheHit(b *testing.B) {
	st, br := benchRedisStore(b, time.Hour)
	r := br.request()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Load(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(r.Header.Get("Cookie"))), "cookie-bytes") // after the loop, which resets metrics
	if hits, _ := st.CacheStats(); hits < uint64(b.N) {
		b.Fatalf("%d cache hits for %d loads", hits, b.N)
	}
}

func BenchmarkRedisLoadCacheMiss(b *testing.B) {
	st, br := benchRedisStore(b, -1)
	r := br.request()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisSave(b *testing.B) {
	b.Run("sign-in", func(b *testing.B) {
		st, _ := benchRedisStore(b, time.Hour)
		r := browser{}.request()
		s := typicalSession(time.Now())
		b.ReportAllocs()
		for b.Loop() {
			s.handle = nil // a new session every time
			if err := st.Save(httptest.NewRecorder(), r, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		st, br := benchRedisStore(b, time.Hour)
		r := br.request()
		s, err := st.Load(r)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := st.Save(httptest.NewRecorder(), r, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRedisFootprint reports what one typical session costs: Redis memory
// (MEMORY USAGE of each key) and the cookie.
func TestRedisFootprint(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	st := newRedisStore(t, cfg, nil, randomSecret(t))
	s := typicalSession(time.Now())
	br := signIn(t, st, s)
	ctx := context.Background()
	tk, err := st.ticketFrom(br.request())
	if err != nil {
		t.Fatal(err)
	}
	n := st.names(tk.tag, tk.hash())
	var total int64
	for _, k := range []string{n.session, n.index, st.sidIndex(s.Issuer, s.SID)} {
		bytes, err := st.client.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += bytes
		t.Logf("MEMORY USAGE %s = %d bytes", k, bytes)
	}
	fields, _ := st.client.HGetAll(ctx, n.session).Result()
	t.Logf("record: %d-byte sealed session, %d-byte sealed metadata; %d bytes per session in all", len(fields["d"]), len(fields["m"]), total)
	cookie := len(st.Name()) + 1 + len(br[st.Name()])
	t.Logf("cookie: %s, %d bytes (name=value)", st.Name(), cookie)
	if cookie > 300 {
		t.Errorf("the ticket cookie is %d bytes; it should stay small", cookie)
	}
	if total > 2048 {
		t.Errorf("a typical session costs %d bytes of Redis memory", total)
	}
}
