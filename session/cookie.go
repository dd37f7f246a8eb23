package session

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieConfig is the `session.cookie` section.
type CookieConfig struct {
	// Name of the session cookie. With Secure and no Domain the browser sees
	// it as "__Host-" + Name (RFC 6265bis §4.1.3.2): host-only, so a sibling
	// subdomain cannot toss or shadow it.
	Name string `yaml:"name"`
	// Secrets are base64 of at least 32 random bytes each; the first seals,
	// all open, so keys rotate without signing anyone out.
	Secrets []string `yaml:"secrets" secret:"true"`
	// Secure marks cookies Secure. Default true; false only for plain-http
	// development, where browsers would otherwise drop the cookies.
	Secure *bool `yaml:"secure"`
	// Domain shares the cookie with every host under it. Empty (the default)
	// keeps it host-only. Every host under Domain can then read and overwrite
	// the session, so only set it for single sign-on across subdomains.
	Domain string `yaml:"domain"`
	// SameSite is lax (default) or strict. Strict makes the first visit from
	// an external link look signed-out.
	SameSite string `yaml:"same_site"`
}

// Cookie limits. Browsers drop a cookie whose name plus value exceeds 4096
// bytes (RFC 6265bis §5.6); Go's http.SetCookie does not warn. We stay under
// that with room for attributes.
const (
	cookieBudget = 4000
	maxChunks    = 4
)

// cookieJar sets, reads and expires one logical cookie that may span chunks
// name_0 … name_3 when its value is too long for one.
type cookieJar struct {
	name     string // as sent to the browser, prefix included
	secure   bool
	domain   string
	sameSite http.SameSite
}

func newCookieJar(cfg CookieConfig, defaultName string) (cookieJar, error) {
	j := cookieJar{name: cfg.Name, secure: cfg.Secure == nil || *cfg.Secure, domain: cfg.Domain, sameSite: http.SameSiteLaxMode}
	if j.name == "" {
		j.name = defaultName
	}
	if !validCookieName(j.name) {
		return j, fmt.Errorf("session: cookie name %q has characters a cookie name cannot carry", j.name)
	}
	switch strings.ToLower(cfg.SameSite) {
	case "", "lax":
	case "strict":
		j.sameSite = http.SameSiteStrictMode
	default:
		return j, fmt.Errorf("session: cookie same_site %q: want lax or strict", cfg.SameSite)
	}
	if j.domain != "" {
		if strings.ContainsAny(j.domain, "/:; ") {
			return j, fmt.Errorf("session: cookie domain %q is not a host name", j.domain)
		}
		if strings.HasPrefix(j.name, "__Host-") {
			return j, fmt.Errorf("session: cookie %q: a __Host- cookie cannot have a domain", j.name)
		}
	}
	if j.secure && j.domain == "" && !strings.HasPrefix(j.name, "__Host-") && !strings.HasPrefix(j.name, "__Secure-") {
		j.name = "__Host-" + j.name
	}
	if !j.secure && (strings.HasPrefix(j.name, "__Host-") || strings.HasPrefix(j.name, "__Secure-")) {
		return j, fmt.Errorf("session: cookie %q needs secure: true (browsers reject prefixed cookies without Secure)", j.name)
	}
	return j, nil
}

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

func (j cookieJar) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   j.domain,
		Secure:   j.secure,
		HttpOnly: true,
		SameSite: j.sameSite,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// write sets value under j.name, split into chunks when needed, and expires
// chunks or the unchunked cookie the request still carries from before.
func (j cookieJar) write(w http.ResponseWriter, r *http.Request, value string, maxAge time.Duration) error {
	size := cookieBudget - len(j.name) - 2 // room for "_N"
	h := w.Header()
	if len(j.name)+len(value) <= cookieBudget {
		h.Add("Set-Cookie", j.cookie(j.name, value, maxAge).String())
		for _, n := range j.present(r) {
			if n != j.name {
				h.Add("Set-Cookie", j.cookie(n, "", -1).String())
			}
		}
		return nil
	}
	chunks := (len(value) + size - 1) / size
	if chunks > maxChunks {
		return fmt.Errorf("%w: %d-byte cookie needs more than %d chunks; use the redis session store", ErrTooLarge, len(value), maxChunks)
	}
	written := make(map[string]bool, chunks)
	for i := 0; i < chunks; i++ {
		part := value[i*size : min((i+1)*size, len(value))]
		n := j.name + "_" + strconv.Itoa(i)
		written[n] = true
		h.Add("Set-Cookie", j.cookie(n, part, maxAge).String())
	}
	for _, n := range j.present(r) {
		if !written[n] {
			h.Add("Set-Cookie", j.cookie(n, "", -1).String())
		}
	}
	return nil
}

// expire expires every chunk of j the request carries (or the plain name if
// it carries none, so a client that lost track is cleaned up too).
func (j cookieJar) expire(w http.ResponseWriter, r *http.Request) {
	names := j.present(r)
	if len(names) == 0 {
		names = []string{j.name}
	}
	for _, n := range names {
		w.Header().Add("Set-Cookie", j.cookie(n, "", -1).String())
	}
}

var errTooManyChunks = errors.New("too many cookie chunks")

// ErrTooLarge means a session does not fit in the cookie store's chunks.
var ErrTooLarge = errors.New("session: too large for cookies")

// read returns the value of j from the request, joining chunks. It reports
// false when the request carries no part of it. Only the first cookie of each
// name counts; more than maxChunks chunks is an error, whatever the number
// sent, and costs one pass over the header.
func (j cookieJar) read(r *http.Request) (string, bool, error) {
	var plain string
	var hasPlain bool
	var parts [maxChunks]string
	var have [maxChunks]bool
	tooMany := false
	found := false
	eachCookie(r, func(name, value string) bool {
		if !strings.HasPrefix(name, j.name) {
			return true
		}
		rest := name[len(j.name):]
		if rest == "" {
			if !hasPlain {
				plain, hasPlain, found = value, true, true
			}
			return true
		}
		if len(rest) < 2 || rest[0] != '_' {
			return true
		}
		i, err := strconv.Atoi(rest[1:])
		if err != nil || rest[1] == '+' || rest[1] == '-' {
			return true
		}
		found = true
		if i < 0 || i >= maxChunks {
			tooMany = true
			return false
		}
		if !have[i] {
			parts[i], have[i] = value, true
		}
		return true
	})
	if !found {
		return "", false, nil
	}
	if tooMany {
		return "", true, errTooManyChunks
	}
	if hasPlain {
		return plain, true, nil
	}
	var b strings.Builder
	for i := 0; i < maxChunks && have[i]; i++ {
		b.WriteString(parts[i])
	}
	return b.String(), true, nil
}

// present lists the names of j's cookies in the request (plain and chunks).
func (j cookieJar) present(r *http.Request) []string {
	var names []string
	eachCookie(r, func(name, _ string) bool {
		if name == j.name || (strings.HasPrefix(name, j.name+"_") && isDigits(name[len(j.name)+1:])) {
			names = append(names, name)
		}
		return len(names) < 64
	})
	return names
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// eachCookie calls fn for every name=value pair in the request's Cookie
// headers, in order, until fn returns false. Unlike r.Cookie it parses the
// headers once for all names and allocates nothing. Values keep their bytes;
// surrounding double quotes are removed.
func eachCookie(r *http.Request, fn func(name, value string) bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			name, value, ok := strings.Cut(part, "=")
			if !ok || name == "" {
				continue
			}
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if !fn(name, value) {
				return
			}
		}
	}
}

// IsGatewayCookie reports whether a cookie named name belongs to the gateway
// (session chunks, login cookies) and must not reach an upstream. Matching
// ignores case, so a miscapitalised copy is removed too.
func IsGatewayCookie(base, name string) bool {
	return len(name) >= len(base) && strings.EqualFold(name[:len(base)], base)
}
