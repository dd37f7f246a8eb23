package session

import (
	"strings"
	"sync"
	"time"
)

// decodeCache remembers recently opened cookie values by their exact
// value, so a busy user's requests skip the MAC, the decryption and the
// decoding: a third of a request's CPU in cookie mode, and nearly all of a
// Redis-mode Load that hits the local cache. Only a value that was opened
// and checked is ever stored; the lifetime, idle and revocation checks
// still run on every request, and entries live a minute. T is what the
// value opened to: a *Session (cloned on the way in and out, since
// requests change their copy) or an immutable *ticket.
type decodeCache[T any] struct {
	mu      sync.RWMutex
	entries map[string]decoded[T]
	swept   time.Time // the last sweep of expired entries
}

type decoded[T any] struct {
	v      T
	oldKey bool
	until  time.Time
}

const (
	decodeCacheTTL  = time.Minute
	decodeCacheSize = 4096
)

func (c *decodeCache[T]) get(value string, now time.Time) (v T, oldKey, ok bool) {
	c.mu.RLock()
	e, ok := c.entries[value]
	c.mu.RUnlock()
	if !ok || now.After(e.until) {
		return v, false, false
	}
	return e.v, e.oldKey, true
}

func (c *decodeCache[T]) put(value string, v T, oldKey bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]decoded[T], 64)
	}
	if now.Sub(c.swept) > decodeCacheTTL {
		// Once a minute, expired entries go: the memory follows the
		// cookies in use, not every one seen until the cap (the soak).
		for k, e := range c.entries {
			if now.After(e.until) {
				delete(c.entries, k)
			}
		}
		c.swept = now
	}
	if len(c.entries) >= decodeCacheSize {
		// Full: drop the expired entries, or, if none, about half (map
		// order is random), rather than track recency on every hit.
		n := 0
		for k, e := range c.entries {
			if now.After(e.until) || n%2 == 0 {
				delete(c.entries, k)
			}
			n++
		}
	}
	// A copy: value is a piece of the request's Cookie header, which
	// would otherwise stay in memory as long as the entry.
	c.entries[strings.Clone(value)] = decoded[T]{v: v, oldKey: oldKey, until: now.Add(decodeCacheTTL)}
}
