package session

import (
	"fmt"
	"time"
)

// Config is the `session` section.
type Config struct {
	// Store is "cookie" (the default: the whole session in an encrypted
	// cookie) or "redis".
	Store string `yaml:"store"`
	// Lifetime is the absolute session lifetime from sign-in, whatever the
	// tokens say. Default 12h, at most 168h.
	Lifetime time.Duration `yaml:"lifetime"`
	Cookie   CookieConfig  `yaml:"cookie"`
	// Redis configures the Redis store; used only with store: redis.
	Redis RedisConfig `yaml:"redis"`
}

// Validate fills defaults and checks the section.
func (c *Config) Validate() error {
	switch c.Store {
	case "", "cookie":
		c.Store = "cookie"
	case "redis":
		if err := c.Redis.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("session.store %q: want cookie or redis", c.Store)
	}
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Lifetime < time.Minute || c.Lifetime > MaxLifetime {
		return fmt.Errorf("session.lifetime %v: want between 1m and %v", c.Lifetime, MaxLifetime)
	}
	return nil
}
