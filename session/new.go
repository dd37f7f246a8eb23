package session

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// Options are the collaborators of the store New builds.
type Options struct {
	// Now is time.Now unless a test sets it.
	Now func() time.Time
	// Hooks observe every Redis command (main adds one for metrics); the
	// cookie store has none to observe.
	Hooks []redis.Hook
}

// New validates cfg (returning Config.Validate's error as it is, before
// anything connects) and builds the store it names: the cookie store, or
// the Redis store (which connects, and fails naming every address when
// Redis cannot be reached). A Redis store must be closed.
func New(cfg Config, keys *KeyRing, opts Options) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Validate leaves Store "cookie" or "redis".
	if cfg.Store == "redis" {
		// Checked, not returned directly: a failed NewRedisStore would
		// come back as a non-nil Backend holding a nil *RedisStore.
		s, err := NewRedisStore(cfg.Redis, keys, RedisStoreOptions{
			Cookie: cfg.Cookie, Lifetime: cfg.Lifetime, Now: opts.Now, Hooks: opts.Hooks,
		})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := NewCookieStore(cfg.Cookie, keys, CookieStoreOptions{Lifetime: cfg.Lifetime, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	return s, nil
}
