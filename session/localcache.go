package session

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// localCache keeps recently loaded sessions of one replica in memory, so a
// busy user costs no Redis round trip per request. Entries live for ttl and
// at most size of them are kept, the oldest evicted first. Revocations on
// any replica reach it through pub/sub (see invalidate.go).
//
// A read from Redis that started before an invalidation must not put a
// stale copy back after it: every invalidation bumps epoch, and put is
// refused when the epoch moved since the read began.
type localCache struct {
	ttl  time.Duration // ≤ 0: disabled
	size int

	mu      sync.Mutex
	entries map[[16]byte]*list.Element // of *cacheEntry
	order   *list.List                 // front: newest
	epoch   uint64

	hits, misses atomic.Uint64
}

type cacheEntry struct {
	key   [16]byte // ticket hash
	tag   [8]byte  // user tag, for whole-user invalidation
	s     *Session // never handed out; callers get clones
	until time.Time
}

func newLocalCache(ttl time.Duration, size int) *localCache {
	return &localCache{ttl: ttl, size: size, entries: map[[16]byte]*list.Element{}, order: list.New()}
}

// get returns a copy of the session cached under key, or nil.
func (c *localCache) get(key [16]byte, now time.Time) *Session {
	if c.ttl <= 0 {
		c.misses.Add(1)
		return nil
	}
	c.mu.Lock()
	el, ok := c.entries[key]
	if ok && now.After(el.Value.(*cacheEntry).until) {
		c.removeLocked(el)
		ok = false
	}
	var s *Session
	if ok {
		s = el.Value.(*cacheEntry).s.clone()
	}
	c.mu.Unlock()
	if s == nil {
		c.misses.Add(1)
	} else {
		c.hits.Add(1)
	}
	return s
}

// currentEpoch is taken before reading Redis and handed to put.
func (c *localCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// add caches a copy of s under key unless an invalidation happened since
// epoch was taken.
func (c *localCache) add(key [16]byte, tag [8]byte, s *Session, now time.Time, epoch uint64) {
	if c.ttl <= 0 || c.size <= 0 {
		return
	}
	s = s.clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
	for c.order.Len() >= c.size {
		c.removeLocked(c.order.Back())
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, tag: tag, s: s, until: now.Add(c.ttl)})
}

func (c *localCache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).key)
	c.order.Remove(el)
}

// drop removes the given sessions.
func (c *localCache) drop(keys ...[16]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, k := range keys {
		if el, ok := c.entries[k]; ok {
			c.removeLocked(el)
		}
	}
}

// dropUser removes every session of the user with tag.
func (c *localCache) dropUser(tag [8]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).tag == tag {
			c.removeLocked(el)
		}
		el = next
	}
}

// clear empties the cache: invalidations may have been missed.
func (c *localCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	c.order.Init()
}

func (c *localCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// clone returns a copy of s: callers may set its fields without touching
// the cache or each other. Groups and Claims are shared, not copied: no
// code changes them in place (they are only ever replaced whole), and
// sparing the copies keeps a cache hit to one allocation.
func (s *Session) clone() *Session {
	c := *s
	return &c
}
