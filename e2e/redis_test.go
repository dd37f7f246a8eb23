package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// TestReplicasShareSessions: two gateway processes on one Redis serve the
// same user interchangeably; signing out on B is enforced on A within a
// second, though A had the session in its local cache.
func TestReplicasShareSessions(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), replicas: 2})
	a, b := w.replicas[0].url, w.replicas[1].url
	c := browser(t) // cookies for 127.0.0.1 reach both ports, as behind a load balancer

	decodeSeen(t, w.signIn(c, "/on-a", "alice"))
	for _, base := range []string{b, a, b} {
		resp, err := c.Get(base + "/x")
		if err != nil {
			t.Fatal(err)
		}
		if seen := decodeSeen(t, resp); seen.Header.Get("X-Forwarded-User") != "u-alice" {
			t.Fatalf("%s did not recognise the session: %v", base, seen.Header)
		}
	}
	// The cookie carries a ticket, not the session.
	for _, ck := range c.Jar.Cookies(mustURL(a)) {
		if ck.Name == "_portcullis" && len(ck.Value) > 400 {
			t.Errorf("redis-mode cookie is %d bytes; it should hold only a ticket", len(ck.Value))
		}
	}
	// Nothing readable in Redis: no email, no subject, no name.
	dump := redisDump(t, rs)
	for _, secret := range []string{"alice@example.com", "u-alice", "Alice", "admins"} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("Redis holds %q in clear", secret)
		}
	}

	// Sign out on B, keeping a copy of the cookie to replay.
	saved := c.Jar.Cookies(mustURL(a))
	resp, err := c.PostForm(b+"/oauth2/sign_out", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out on B = %d", resp.StatusCode)
	}
	// Replay the old cookie at A: rejected within a second.
	replay := browser(t)
	replay.Jar.SetCookies(mustURL(a), saved)
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := noFollow(replay).Get(a + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A still serves the signed-out session after 1s (status %d)", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func redisDump(t *testing.T, rs *redistest.Server) []byte {
	t.Helper()
	ctx := context.Background()
	cl := rs.Client()
	keys, err := cl.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, k := range keys {
		out.WriteString(k + "\n")
		switch cl.Type(ctx, k).Val() {
		case "hash":
			for f, v := range cl.HGetAll(ctx, k).Val() {
				out.WriteString(f + "=" + v + "\n")
			}
		case "zset":
			for _, m := range cl.ZRange(ctx, k, 0, -1).Val() {
				out.WriteString(m + "\n")
			}
		case "set":
			for _, m := range cl.SMembers(ctx, k).Val() {
				out.WriteString(m + "\n")
			}
		case "string":
			out.WriteString(cl.Get(ctx, k).Val() + "\n")
		}
	}
	return out.Bytes()
}

// TestRedisOutage: while Redis is down, a session in the replica's cache
// keeps working, new sign-ins get a clear 503, /ready says not ready, and
// nobody is sent to sign in because Redis blinked; when Redis returns,
// everything works again without a restart.
func TestRedisOutage(t *testing.T) {
	rs := redistest.Standalone(t)
	w := newWorld(t, worldOptions{redis: rs.Addr(), redisExtra: "    cache_ttl: 3s\n"})
	alice := browser(t)
	decodeSeen(t, w.signIn(alice, "/", "alice"))

	rs.Kill()
	resp, err := alice.Get(w.gateway + "/cached")
	if err != nil {
		t.Fatal(err)
	}
	decodeSeen(t, resp) // served from the local cache

	resp, err = http.Get(w.gateway + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready with Redis down = %d, want 503", resp.StatusCode)
	}

	// A new sign-in cannot store its session: 503, said plainly.
	if code, page := w.signInAnswer(t, "dave"); code != http.StatusServiceUnavailable || !strings.Contains(page, "sessions cannot be stored") {
		t.Errorf("sign-in with Redis down = %d %s", code, page)
	}

	// Once the cache entry is gone, the request waits for Redis and gets a
	// 503, not a redirect to sign in.
	time.Sleep(3500 * time.Millisecond)
	resp, err = noFollow(alice).Get(w.gateway + "/uncached")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("uncached request with Redis down = %d, want 503", resp.StatusCode)
	}

	rs.Restart()
	w.replicas[0].waitReady(t)
	// The restarted Redis kept nothing (no persistence): sign in again.
	decodeSeen(t, w.signIn(browser(t), "/", "dave"))
	if strings.Contains(w.logs.String(), "panic") {
		t.Error("the gateway panicked")
	}
}

// TestRedisUnreachableAtStart: the gateway refuses to start and names the
// address it could not reach.
func TestRedisUnreachableAtStart(t *testing.T) {
	dead := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
server: {listen: `+freeAddr(t)+`, public_url: "http://127.0.0.1:1"}
providers: [{id: corp, issuer_url: "http://127.0.0.1:1", client_id: x, client_secret: y}]
session:
  store: redis
  redis: {addrs: [`+dead+`]}
  cookie: {secrets: [`+randomSecret()+`], secure: false}
upstreams: [{path: /, url: "http://127.0.0.1:1"}]
policy: {email_domains: ["*"]}
`), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "-config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("the gateway started with Redis unreachable:\n%s", out)
	}
	if !strings.Contains(string(out), dead) {
		t.Errorf("the error does not name %s:\n%s", dead, out)
	}
}
