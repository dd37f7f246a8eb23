package session

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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

// newCookieJar validates cfg and returns the jar for the session cookie it
// names.
func newCookieJar(cfg CookieConfig) (cookieJar, error) {
	if err := cfg.Validate(); err != nil {
		return cookieJar{}, fmt.Errorf("session: invalid cookie config: %w", err)
	}
	sameSite, _ := sameSiteMode(cfg.SameSite)
	return cookieJar{name: cfg.browserName(), secure: *cfg.Secure, domain: cfg.Domain, sameSite: sameSite}, nil
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
