package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/redistest"
)

// redistrouble_test.go: a real Redis that is full or slow, beyond the
// outages and failovers of redis_test.go.

// TestRedisFull: Redis at maxmemory with noeviction refuses writes. New
// sign-ins then fail with a clear 503, never a 500; users already signed
// in keep working (their sessions are read, and reads still work); once
// there is room again, sign-ins work without a restart.
func TestRedisFull(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), redisExtra: "    cache_ttl: 1s\n"})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/", "alice"))

	ctx := context.Background()
	rc := rs.Client()
	defer rc.Close()
	fill(t, ctx, rc)

	// Signed in: still served, from the cache and, once that entry is
	// gone, from Redis (a read).
	for _, wait := range []time.Duration{0, 1500 * time.Millisecond} {
		time.Sleep(wait)
		resp, err := alice.Get(w.gateway + "/still-here")
		if err != nil {
			t.Fatal(err)
		}
		if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "u-alice" {
			t.Fatalf("signed-in user with Redis full (after %v): upstream saw %v", wait, seen.Header)
		}
	}

	// A new sign-in cannot store its session: 503, said plainly.
	if code, page := w.signInAnswer(t, "dave"); code != http.StatusServiceUnavailable || !strings.Contains(page, "sessions cannot be stored") {
		t.Errorf("sign-in with Redis full = %d, want the 503 page saying sessions cannot be stored:\n%s", code, page)
	}
	if !w.logs.waitFor("OOM") {
		t.Errorf("the log does not name Redis' OOM refusal:\n%s", w.logs)
	}

	// Room again: the same user signs in.
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, w.signIn(browser(t), "/", "dave"))
	if s := w.logs.String(); strings.Contains(s, "panic") || strings.Contains(s, "status=500") {
		t.Errorf("a panic or a 500 while Redis was full:\n%s", s)
	}
}

// signInAnswer signs user in with a fresh browser and returns what the
// gateway answered the callback with, whatever it is.
func (w *world) signInAnswer(t *testing.T, user string) (int, string) {
	t.Helper()
	c := browser(t)
	resp, err := c.Get(w.gateway + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	final, err := demoSignIn(c, resp.Request.URL.String(), user, w.users[user].Password)
	if err != nil {
		t.Fatal(err)
	}
	return final.StatusCode, readAll(final)
}

// fill makes Redis full as one at its limit with noeviction is: well
// over maxmemory (so writes stay refused whatever small amounts are freed,
// a client's query buffer, an expired key), every write refused with OOM.
func fill(t *testing.T, ctx context.Context, rc *redis.Client) {
	t.Helper()
	junk := strings.Repeat("x", 64<<10)
	for i := range 64 { // 4 MiB
		if err := rc.Set(ctx, fmt.Sprintf("junk:%d", i), junk, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "2mb"}} {
		if err := rc.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Set(ctx, "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("a write to the full Redis: %v, want OOM", err)
	}
}

// TestRedisSlow: a Redis that stops answering (CLIENT PAUSE, as one
// stalled by a long command or a fork would) cannot hold requests: they
// are answered 503 once read_timeout passes, not when Redis wakes up, and
// the session works again afterwards without signing in.
func TestRedisSlow(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), redisExtra: "    cache_ttl: 500ms\n    read_timeout: 200ms\n    write_timeout: 200ms\n"})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/", "alice"))
	time.Sleep(700 * time.Millisecond) // past the cache entry

	ctx := context.Background()
	rc := rs.Client()
	defer rc.Close()
	const pause = 6 * time.Second
	if err := rc.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	resp, err := noFollow(alice).Get(w.gateway + "/during")
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(resp)
	took := time.Since(paused)
	// Had the gateway waited for Redis it would have found the session
	// and answered 200; a 503 means the timeout ended the wait.
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("request while Redis is stalled = %d after %v, want 503 once read_timeout passed:\n%s", resp.StatusCode, took, page)
	}
	t.Logf("stalled Redis: 503 after %v (read_timeout 200ms; Redis paused for %v)", took.Round(time.Millisecond), pause)

	// Redis answers again: the same session, no sign-in.
	time.Sleep(time.Until(paused.Add(pause + 200*time.Millisecond)))
	resp, err = alice.Get(w.gateway + "/after")
	if err != nil {
		t.Fatal(err)
	}
	if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "u-alice" {
		t.Errorf("after Redis woke up: upstream saw %v, want alice's session", seen.Header)
	}
}
