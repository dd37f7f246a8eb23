package session

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `session` section. Validate fills its defaults and checks
// it, subsections included; the constructors validate what they are given
// again, so every default and bound below has one home that all of them
// use.
type Config struct {
	// Store is "cookie" (the default: the whole session in an encrypted
	// cookie) or "redis".
	Store string `yaml:"store"`
	// Lifetime is the absolute session lifetime from sign-in, whatever the
	// tokens say. Default 12h, at least 1m, at most 168h.
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
	// Connect RP-Initiated Logout 1.0 §2, §6); without it the gateway
	// sends client_id only, which Ory Hydra and Okta refuse and Keycloak
	// answers with a confirmation page. Default true, in both stores; it is
	// kept only for providers that advertise an end_session_endpoint, so
	// sessions of the others cost nothing more. false sends no hint; the
	// token is then kept only when an upstream has pass_authorization_header.
	KeepIDToken *bool        `yaml:"keep_id_token"`
	Cookie      CookieConfig `yaml:"cookie"`
	// Redis configures the Redis store; used only with store: redis.
	Redis RedisConfig `yaml:"redis"`
	// PreservePost keeps a form post that arrives without a session and
	// re-submits it after the sign-in (preserve.go). On by default.
	PreservePost PreserveConfig `yaml:"preserve_post"`
}

// Session timing defaults and bounds. The lifetime default follows
// SECURITY.md §4.1; its cap keeps a stolen cookie from being useful for
// long and stays far under the 400-day cap browsers apply (RFC 6265bis
// §5.5).
const (
	DefaultLifetime = 12 * time.Hour
	MaxLifetime     = 7 * 24 * time.Hour
	minLifetime     = time.Minute
	// DefaultIdleTimeout ends sessions unused for an hour (SECURITY.md
	// §4.1).
	DefaultIdleTimeout   = time.Hour
	minIdleTimeout       = time.Second
	defaultRefreshBefore = time.Minute
	maxRefreshBefore     = time.Hour
)

// Validate fills defaults and checks the whole section, the cookie and
// (with store: redis) the redis subsections included, without building a
// store. It reports every problem at once, each message naming its key.
// Validating again changes nothing. Cookie secrets are NewKeyRing's to
// check.
func (c *Config) Validate() error {
	p := problems{prefix: "session."}
	switch c.Store {
	case "", "cookie":
		c.Store = "cookie"
	case "redis":
		p.also(c.Redis.Validate())
	default:
		p.add("store %q: want cookie or redis", c.Store)
	}
	p.also(c.Cookie.Validate())
	if err := checkLifetime(&c.Lifetime); err != nil {
		p.add("%w", err)
	}
	switch {
	case c.IdleTimeout == 0:
		c.IdleTimeout = DefaultIdleTimeout
	case c.IdleTimeout < 0:
		// Off. It stays negative: turned into 0, a second Validate would
		// read it as unset and turn the idle timeout back on.
	case c.IdleTimeout < minIdleTimeout:
		p.add("idle_timeout %v: want at least %v (or negative to turn it off)", c.IdleTimeout, minIdleTimeout)
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = defaultRefreshBefore
	}
	if c.RefreshBefore < 0 || c.RefreshBefore > maxRefreshBefore {
		p.add("refresh_before %v: want between 0 and %v", c.RefreshBefore, maxRefreshBefore)
	}
	if c.KeepIDToken == nil {
		keep := true
		c.KeepIDToken = &keep
	}
	c.PreservePost.validate(&p)
	return p.err()
}

// checkLifetime fills the default lifetime into *d and checks its bounds.
// Config.Validate and both store constructors use it; the error names no
// key, so each caller says where the value came from.
func checkLifetime(d *time.Duration) error {
	if *d == 0 {
		*d = DefaultLifetime
	}
	if *d < minLifetime || *d > MaxLifetime {
		return fmt.Errorf("lifetime %v: want between %v and %v", *d, minLifetime, MaxLifetime)
	}
	return nil
}

// problems collects what is wrong with a configuration section, so that
// one run reports all of it. Every message starts with the section's YAML
// path (prefix).
type problems struct {
	prefix string
	errs   []error
}

// add records a problem; format continues the key path.
func (p *problems) add(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(p.prefix+format, args...))
}

// also records the problems of a subsection, which name their own keys.
func (p *problems) also(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// err joins the problems; nil when there are none.
func (p *problems) err() error { return errors.Join(p.errs...) }
