package session

import (
	"fmt"
	"time"
)

// DefaultIdleTimeout ends sessions unused for an hour (SECURITY.md §4.1).
const DefaultIdleTimeout = time.Hour

// Config is the `session` section.
type Config struct {
	// Store is "cookie" (the default: the whole session in an encrypted
	// cookie) or "redis".
	Store string `yaml:"store"`
	// Lifetime is the absolute session lifetime from sign-in, whatever the
	// tokens say. Default 12h, at most 168h.
	Lifetime time.Duration `yaml:"lifetime"`
	// IdleTimeout ends a session unused for this long, whatever its
	// lifetime says. Default 1h; 0 keeps the default, a negative value
	// turns it off (and stays negative through Validate: anything not
	// positive means off).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// RefreshBefore refreshes the tokens (with the refresh token, when the
	// provider issued one) this long before the access token expires, and
	// re-reads groups and claims then. Default 1m.
	RefreshBefore time.Duration `yaml:"refresh_before"`
	// KeepIDToken keeps the raw ID token in the session, to send as
	// id_token_hint when sign-out continues at the provider (OpenID
	// Connect RP-Initiated Logout 1.0 §2); without it the gateway sends
	// client_id. Default: true with store redis, false with cookie, where
	// it would add about a kilobyte to every request. It costs about as
	// much per session in Redis. Some providers (Okta) require the hint.
	KeepIDToken *bool        `yaml:"keep_id_token"`
	Cookie      CookieConfig `yaml:"cookie"`
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
	switch {
	case c.IdleTimeout == 0:
		c.IdleTimeout = DefaultIdleTimeout
	case c.IdleTimeout < 0:
		// Off. It stays negative: turned into 0, a second Validate would
		// read it as unset and turn the idle timeout back on.
	case c.IdleTimeout < time.Second:
		return fmt.Errorf("session.idle_timeout %v: want at least 1s (or negative to turn it off)", c.IdleTimeout)
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = time.Minute
	}
	if c.RefreshBefore < 0 || c.RefreshBefore > time.Hour {
		return fmt.Errorf("session.refresh_before %v: want between 0 and 1h", c.RefreshBefore)
	}
	if c.KeepIDToken == nil {
		keep := c.Store == "redis"
		c.KeepIDToken = &keep
	}
	return nil
}
