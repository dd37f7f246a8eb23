package session

import (
	"testing"
	"time"
)

func TestLocalCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice, bob := [8]byte{1}, [8]byte{2}
	key := func(i byte) [16]byte { return [16]byte{i} }
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, c *localCache)
	}{
		{"hit returns a copy", func(t *testing.T, c *localCache) {
			c.add(key(1), alice, demoSession(now), now, c.currentEpoch())
			got := c.get(key(1), now)
			got.Groups = []string{"mutated"} // replaced whole, as Identity says
			got.Email = "mallory@example.com"
			if again := c.get(key(1), now); again.Groups[0] != "admins" || again.Email != "alice@example.com" {
				t.Errorf("cache entry changed through a returned copy: %v %s", again.Groups, again.Email)
			}
		}},
		{"entries expire", func(t *testing.T, c *localCache) {
			c.add(key(1), alice, demoSession(now), now, c.currentEpoch())
			if c.get(key(1), now.Add(5*time.Second)) == nil {
				t.Error("miss within ttl")
			}
			if c.get(key(1), now.Add(5*time.Second+time.Millisecond)) != nil {
				t.Error("hit after ttl")
			}
		}},
		{"oldest evicted", func(t *testing.T, c *localCache) {
			for i := byte(1); i <= 4; i++ {
				c.add(key(i), alice, demoSession(now), now, c.currentEpoch())
			}
			if c.get(key(1), now) != nil || c.get(key(4), now) == nil || c.len() != 3 {
				t.Errorf("after 4 adds to a 3-entry cache: len %d", c.len())
			}
		}},
		{"drop and drop user", func(t *testing.T, c *localCache) {
			c.add(key(1), alice, demoSession(now), now, c.currentEpoch())
			c.add(key(2), alice, demoSession(now), now, c.currentEpoch())
			c.add(key(3), bob, demoSession(now), now, c.currentEpoch())
			c.drop(key(1))
			if c.get(key(1), now) != nil {
				t.Error("dropped entry still served")
			}
			c.dropUser(alice)
			if c.get(key(2), now) != nil || c.get(key(3), now) == nil {
				t.Error("dropUser removed the wrong entries")
			}
			c.clear()
			if c.len() != 0 {
				t.Error("clear left entries")
			}
		}},
		{"no stale put after an invalidation", func(t *testing.T, c *localCache) {
			epoch := c.currentEpoch() // a Redis read begins
			c.drop(key(1))            // an invalidation arrives meanwhile
			c.add(key(1), alice, demoSession(now), now, epoch)
			if c.get(key(1), now) != nil {
				t.Error("a read older than the invalidation was cached")
			}
		}},
		{"stats", func(t *testing.T, c *localCache) {
			c.get(key(9), now)
			c.add(key(1), alice, demoSession(now), now, c.currentEpoch())
			c.get(key(1), now)
			if c.hits.Load() != 1 || c.misses.Load() != 1 {
				t.Errorf("hits %d misses %d, want 1 and 1", c.hits.Load(), c.misses.Load())
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newLocalCache(5*time.Second, 3)) })
	}

	off := newLocalCache(-1, 100)
	off.add(key(1), alice, demoSession(now), now, off.currentEpoch())
	if off.get(key(1), now) != nil || off.misses.Load() != 1 {
		t.Error("a disabled cache served an entry")
	}
}

func TestApplyInvalidation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &RedisStore{cache: newLocalCache(time.Minute, 10), origin: "me"}
	put := func() {
		s.cache.add([16]byte{0xab}, [8]byte{0xcd}, demoSession(now), now, s.cache.currentEpoch())
	}
	for _, tt := range []struct {
		payload string
		dropped bool
	}{
		{"o:other t:ab000000000000000000000000000000", true},
		{"o:other u:cd00000000000000", true},
		{"o:me t:ab000000000000000000000000000000", false}, // our own, applied already
		{"o:other t:ab", false},
		{"o:other t:zz000000000000000000000000000000", false},
		{"", false},
		{"garbage without colons", false},
		{"o:other x:ab000000000000000000000000000000 t:", false},
	} {
		put()
		s.applyInvalidation(tt.payload)
		if got := s.cache.get([16]byte{0xab}, now) == nil; got != tt.dropped {
			t.Errorf("applyInvalidation(%q): dropped = %v, want %v", tt.payload, got, tt.dropped)
		}
	}
}
