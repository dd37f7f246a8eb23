package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// postClock is a settable now for keepers under test.
type postClock struct{ t time.Time }

func (c *postClock) now() time.Time { return c.t }

// newKeeper returns a keeper in memory or in a fresh Redis.
func newKeeper(t *testing.T, where string, c *postClock, keys *KeyRing) *Posts {
	t.Helper()
	var store Backend
	if where == "redis" {
		_, cfg := standalone(t)
		store = newRedisStore(t, cfg, c.now, randomSecret(t))
	}
	ps, err := NewPosts(PreserveConfig{}, keys, store, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestPostsKeepTake: a kept post comes back once, whole; not after
// LoginTTL; not under another id; and is stored sealed.
func TestPostsKeepTake(t *testing.T) {
	ctx := context.Background()
	for _, where := range []string{"memory", "redis"} {
		t.Run(where, func(t *testing.T) {
			c := &postClock{t: time.Now()}
			ps := newKeeper(t, where, c, mustKeys(t, randomSecret(t)))
			post := &Post{URL: "/notes?x=1", Enctype: "multipart/form-data", Size: 42,
				Fields: []Field{{Name: "b", Value: "secret-value"}, {Name: "a", Value: `"<>&`}, {Name: "b", Value: ""}}}
			id, err := ps.Keep(ctx, post)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ps.Take(ctx, id+"x"); !errors.Is(err, ErrPostGone) {
				t.Errorf("Take(other id) = %v, want ErrPostGone", err)
			}
			got, err := ps.Take(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.URL != post.URL || got.Enctype != post.Enctype || got.Size != 42 || fmt.Sprint(got.Fields) != fmt.Sprint(post.Fields) {
				t.Errorf("Take = %+v, want %+v", got, post)
			}
			if _, err := ps.Take(ctx, id); !errors.Is(err, ErrPostGone) {
				t.Errorf("second Take = %v, want ErrPostGone", err)
			}
			id, _ = ps.Keep(ctx, post)
			c.t = c.t.Add(LoginTTL + time.Second)
			if _, err := ps.Take(ctx, id); !errors.Is(err, ErrPostGone) {
				t.Errorf("Take after LoginTTL = %v, want ErrPostGone", err)
			}
		})
	}
}

// TestPostsSealed: the memory holds ciphertext bound to its name; a
// record moved under another name, or opened with other secrets, is gone;
// a rotated-in secret still opens what the old one sealed.
func TestPostsSealed(t *testing.T) {
	ctx := context.Background()
	old, next := randomSecret(t), randomSecret(t)
	ps, _ := NewPosts(PreserveConfig{}, mustKeys(t, old), nil, nil)
	idA, _ := ps.Keep(ctx, &Post{URL: "/a", Fields: []Field{{Name: "f", Value: "secret-value"}}})
	idB, _ := ps.Keep(ctx, &Post{URL: "/b"})
	mem := ps.kv.(*memPosts)
	for _, e := range mem.m {
		if bytes.Contains(e.sealed, []byte("secret-value")) || bytes.Contains(e.sealed, []byte("/a")) {
			t.Fatal("a kept post is stored in the clear")
		}
	}
	mem.m[postName(idB)] = mem.m[postName(idA)] // A's record under B's name
	if _, err := ps.Take(ctx, idB); !errors.Is(err, ErrPostGone) {
		t.Errorf("moved record = %v, want ErrPostGone", err)
	}
	rotated, _ := NewPosts(PreserveConfig{}, mustKeys(t, next, old), nil, nil)
	rotated.kv = ps.kv
	if got, err := rotated.Take(ctx, idA); err != nil || got.URL != "/a" {
		t.Errorf("after rotation Take = %v, %v; want /a", got, err)
	}
	stranger, _ := NewPosts(PreserveConfig{}, mustKeys(t, next), nil, nil)
	stranger.kv = ps.kv
	idC, _ := ps.Keep(ctx, &Post{URL: "/c"})
	if _, err := stranger.Take(ctx, idC); !errors.Is(err, ErrPostGone) {
		t.Errorf("other secrets Take = %v, want ErrPostGone", err)
	}
}

// TestPostsMemoryBound: the memory keeper refuses once full, pushes out
// nothing kept, and takes posts again when the old ones expired.
func TestPostsMemoryBound(t *testing.T) {
	ctx := context.Background()
	c := &postClock{t: time.Now()}
	ps, _ := NewPosts(PreserveConfig{}, mustKeys(t, randomSecret(t)), nil, c.now)
	var first string
	for i := 0; i < maxKeptPosts; i++ {
		id, err := ps.Keep(ctx, &Post{URL: "/"})
		if err != nil {
			t.Fatalf("Keep #%d: %v", i, err)
		}
		if i == 0 {
			first = id
		}
	}
	if _, err := ps.Keep(ctx, &Post{URL: "/"}); !errors.Is(err, ErrPostNotKept) {
		t.Fatalf("Keep when full = %v, want ErrPostNotKept", err)
	}
	if _, err := ps.Take(ctx, first); err != nil {
		t.Errorf("the first post was pushed out: %v", err)
	}
	big := &Post{URL: "/", Fields: []Field{{Name: "v", Value: strings.Repeat("x", maxPreserveMaxBytes)}}}
	c.t = c.t.Add(LoginTTL + time.Second)
	kept := 0
	for ; kept < 100; kept++ {
		if _, err := ps.Keep(ctx, big); err != nil {
			break
		}
	}
	if mem := ps.kv.(*memPosts); kept == 100 || mem.bytes > maxKeptBytes || len(mem.m) != kept {
		t.Errorf("kept %d posts of 1 MiB (%d bytes, %d records): want the byte bound to stop it below %d", kept, mem.bytes, len(mem.m), maxKeptBytes)
	}
}

func TestPreserveConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg     PreserveConfig
		want    int
		wantErr bool
	}{
		{PreserveConfig{}, DefaultPreserveMaxBytes, false},
		{PreserveConfig{MaxBytes: 1024}, 1024, false},
		{PreserveConfig{MaxBytes: -1}, 0, true},
		{PreserveConfig{MaxBytes: maxPreserveMaxBytes + 1}, 0, true},
	} {
		ps, err := NewPosts(tt.cfg, mustKeys(t, randomSecret(t)), nil, nil)
		if (err != nil) != tt.wantErr || (err == nil && ps.MaxBytes() != tt.want) {
			t.Errorf("NewPosts(%+v) = %v, %v; want max %d, error %v", tt.cfg, ps, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "session.preserve_post.max_bytes") {
			t.Errorf("error %q does not name its key", err)
		}
	}
	if ps, err := NewPosts(PreserveConfig{Disabled: true}, mustKeys(t, randomSecret(t)), nil, nil); ps != nil || err != nil {
		t.Errorf("disabled = %v, %v; want nil, nil", ps, err)
	}
	c := Config{Cookie: CookieConfig{Name: "_portcullis"}}
	if err := c.Validate(); err != nil || c.PreservePost.MaxBytes != DefaultPreserveMaxBytes {
		t.Errorf("Config.Validate: %v, max_bytes %d", err, c.PreservePost.MaxBytes)
	}
}
