package session

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options are the collaborators of the store New builds.
type Options struct {
	// Now is time.Now unless a test sets it.
	Now func() time.Time
	// Hooks observe every Redis command (main adds one for metrics).
	Hooks []redis.Hook
}

// New validates cfg and builds the store it names: the cookie store, or the
// Redis store (which connects, and fails naming every address when Redis
// cannot be reached). A Redis store must be closed.
func New(cfg Config, keys *KeyRing, opts Options) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Store {
	case "redis":
		// Checked, not returned directly: a failed NewRedisStore would
		// come back as a non-nil Backend holding a nil *RedisStore.
		s, err := NewRedisStore(cfg.Redis, keys, RedisStoreOptions{
			Cookie: cfg.Cookie, Lifetime: cfg.Lifetime, CACert: cfg.Redis.TLS.CAPEM, Now: opts.Now, Hooks: opts.Hooks,
		})
		if err != nil {
			return nil, err
		}
		return s, nil
	case "cookie":
		s, err := NewCookieStore(cfg.Cookie, keys, CookieStoreOptions{Lifetime: cfg.Lifetime, Now: opts.Now})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("session: store %q: want cookie or redis", cfg.Store)
}
