package session

import (
	"sync"
	"time"
)

// decodeCache remembers recently opened session cookies by their exact
// value, so a busy user's requests skip the MAC, the decryption and the
// decoding (a third of a request's CPU in the gateway). Only a value that
// was opened and checked is ever stored; the lifetime, idle and revocation
// checks still run on every request, and entries live a minute.
type decodeCache struct {
	mu      sync.RWMutex
	entries map[string]decoded
}

type decoded struct {
	s      *Session
	oldKey bool
	until  time.Time
}

const (
	decodeCacheTTL  = time.Minute
	decodeCacheSize = 4096
)

func (c *decodeCache) get(value string, now time.Time) (*Session, bool, bool) {
	c.mu.RLock()
	e, ok := c.entries[value]
	c.mu.RUnlock()
	if !ok || now.After(e.until) {
		return nil, false, false
	}
	return e.s.clone(), e.oldKey, true
}

func (c *decodeCache) put(value string, s *Session, oldKey bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]decoded, 64)
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
	c.entries[value] = decoded{s: s.clone(), oldKey: oldKey, until: now.Add(decodeCacheTTL)}
}
