package session

import (
	"net/http"
	"strings"
)

// CookieConfig is the `session.cookie` section. Validate fills its defaults
// and checks it; every cookie the gateway sets (session, login) takes its
// name and attributes from the validated section.
type CookieConfig struct {
	// Name of the session cookie. Default "_portcullis". With Secure and no
	// Domain the browser sees it as "__Host-" + Name (RFC 6265bis
	// §4.1.3.2): host-only, so a sibling subdomain cannot toss or shadow it.
	Name string `yaml:"name"`
	// Secrets are base64 of at least 32 random bytes each; the first seals,
	// all open, so keys rotate without signing anyone out. NewKeyRing
	// checks them.
	Secrets []string `yaml:"secrets" secret:"true"`
	// Secure marks cookies Secure. Default true; false only for plain-http
	// development, where browsers would otherwise drop the cookies.
	Secure *bool `yaml:"secure"`
	// Domain shares the cookie with every host under it. Empty (the default)
	// keeps it host-only. Every host under Domain can then read and overwrite
	// the session, so only set it for single sign-on across subdomains.
	Domain string `yaml:"domain"`
	// Domains are several cookie domains (oauth2-proxy's cookie_domains):
	// the cookie is set for the longest one the request's host
	// domain-matches (RFC 6265bis §5.1.3), for Domain when none does, and
	// host-only when Domain is empty too. Every host under each can read
	// and overwrite the session, as with Domain.
	Domains []string `yaml:"domains"`
	// Path is the cookie's Path attribute (oauth2-proxy's cookie_path).
	// Default "/". A __Host- cookie must have Path=/ (RFC 6265bis
	// §4.1.3.2), so another path needs a domain, or secure: false.
	Path string `yaml:"path"`
	// SameSite is lax (default) or strict, in any case. Strict makes the
	// first visit from an external link look signed-out.
	SameSite string `yaml:"same_site"`
}

// Cookie defaults, as documented on CookieConfig.
const (
	defaultCookieName     = "_portcullis"
	defaultCookieSameSite = "lax"
)

// Cookie name prefixes browsers enforce (RFC 6265bis §4.1.3): both need
// Secure; __Host- also needs no Domain and Path=/.
const (
	hostPrefix   = "__Host-"
	securePrefix = "__Secure-"
)

// Validate fills the defaults (name _portcullis, secure true, same_site lax)
// and checks the section, reporting every problem at once; each message
// names its key. Validating again changes nothing.
func (c *CookieConfig) Validate() error {
	if c.Name == "" {
		c.Name = defaultCookieName
	}
	if c.Secure == nil {
		secure := true
		c.Secure = &secure
	}
	if c.SameSite == "" {
		c.SameSite = defaultCookieSameSite
	}
	if c.Path == "" {
		c.Path = "/"
	}
	p := problems{prefix: "session.cookie."}
	if !validCookieName(c.Name) {
		p.add("name %q has characters a cookie name cannot carry (RFC 6265 §4.1.1)", c.Name)
	}
	if _, ok := sameSiteMode(c.SameSite); !ok {
		p.add("same_site %q: want lax or strict", c.SameSite)
	}
	if c.Domain != "" {
		if strings.ContainsAny(c.Domain, "/:; ") {
			p.add("domain %q is not a host name", c.Domain)
		}
		if strings.HasPrefix(c.Name, hostPrefix) {
			p.add("domain %q: a %s cookie (name %q) cannot have a domain (RFC 6265bis §4.1.3.2)", c.Domain, hostPrefix, c.Name)
		}
	}
	for i, d := range c.Domains {
		// A leading dot is ignored (RFC 6265bis §5.6.3); hosts compare
		// case-insensitively.
		d = strings.ToLower(strings.TrimPrefix(d, "."))
		c.Domains[i] = d
		switch {
		case d == "" || strings.ContainsAny(d, "/:; "):
			p.add("domains[%d] %q is not a host name", i, d)
		case strings.HasPrefix(c.Name, hostPrefix):
			p.add("domains[%d] %q: a %s cookie (name %q) cannot have a domain (RFC 6265bis §4.1.3.2)", i, d, hostPrefix, c.Name)
		}
	}
	if !validCookiePath(c.Path) {
		p.add("path %q: want an absolute path without ';' or control characters (RFC 6265bis §4.1.1)", c.Path)
	} else if c.Path != "/" && strings.HasPrefix(c.browserName(), hostPrefix) {
		p.add("path %q: the cookie is %q, and a %s cookie must have path / (RFC 6265bis §4.1.3.2); set domain or domains, or keep path /",
			c.Path, c.browserName(), hostPrefix)
	}
	if !*c.Secure && hasCookiePrefix(c.Name) {
		p.add("secure: cookie %q needs secure: true (browsers reject prefixed cookies without Secure, RFC 6265bis §4.1.3)", c.Name)
	}
	return p.err()
}

// browserName is the session cookie's name as browsers see it: a Secure
// host-only cookie gets the __Host- prefix unless it has a prefix already.
// c must be validated.
func (c *CookieConfig) browserName() string {
	if *c.Secure && c.Domain == "" && len(c.Domains) == 0 && !hasCookiePrefix(c.Name) {
		return hostPrefix + c.Name
	}
	return c.Name
}

func hasCookiePrefix(name string) bool {
	return strings.HasPrefix(name, hostPrefix) || strings.HasPrefix(name, securePrefix)
}

// sameSiteMode maps same_site to the attribute; ok is false for a value
// Validate refuses.
func sameSiteMode(s string) (mode http.SameSite, ok bool) {
	switch strings.ToLower(s) {
	case "lax":
		return http.SameSiteLaxMode, true
	case "strict":
		return http.SameSiteStrictMode, true
	}
	return http.SameSiteDefaultMode, false
}

// validCookiePath reports whether s is an absolute path a Path attribute
// can carry (RFC 6265bis §4.1.1 path-value: no controls, no ';').
func validCookiePath(s string) bool {
	if !strings.HasPrefix(s, "/") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f || s[i] == ';' {
			return false
		}
	}
	return true
}

// validCookieName reports whether s is a token (RFC 6265 §4.1.1, RFC 9110
// §5.6.2): no controls, spaces or separators.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
