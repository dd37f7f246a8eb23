package session

import (
	"errors"
	"fmt"
	"net"
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
	domain   string   // the Domain attribute; see forRequest
	domains  []string // session.cookie.domains, lower case, no leading dot
	path     string
	sameSite http.SameSite
}

// newCookieJar validates cfg and returns the jar for the session cookie it
// names.
func newCookieJar(cfg CookieConfig) (cookieJar, error) {
	if err := cfg.Validate(); err != nil {
		return cookieJar{}, fmt.Errorf("session: invalid cookie config: %w", err)
	}
	sameSite, _ := sameSiteMode(cfg.SameSite)
	return cookieJar{name: cfg.browserName(), secure: *cfg.Secure, domain: cfg.Domain, domains: cfg.Domains,
		path: cfg.Path, sameSite: sameSite}, nil
}

// forRequest returns j with the Domain attribute for r's host: the
// longest of j.domains the host domain-matches (RFC 6265bis §5.1.3: the
// host is the domain, or ends with "." and the domain), else j.domain
// (empty: host-only).
func (j cookieJar) forRequest(r *http.Request) cookieJar {
	if len(j.domains) == 0 || r == nil {
		return j
	}
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	best := ""
	for _, d := range j.domains {
		if (host == d || strings.HasSuffix(host, "."+d)) && len(d) > len(best) {
			best = d
		}
	}
	if best != "" {
		j.domain = best
	}
	return j
}

func (j cookieJar) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     j.path,
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
	j = j.forRequest(r)
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

// single reports whether writing value takes one Set-Cookie: it fits in
// one cookie, and the request carries no chunks to expire.
func (j cookieJar) single(r *http.Request, value string) bool {
	if len(j.name)+len(value) > cookieBudget {
		return false
	}
	for _, n := range j.present(r) {
		if n != j.name {
			return false
		}
	}
	return true
}

// expire expires every chunk of j the request carries (or the plain name if
// it carries none, so a client that lost track is cleaned up too).
func (j cookieJar) expire(w http.ResponseWriter, r *http.Request) {
	j = j.forRequest(r)
	names := j.present(r)
	if len(names) == 0 {
		names = []string{j.name}
	}
	for _, n := range names {
		w.Header().Add("Set-Cookie", j.cookie(n, "", -1).String())
	}
}

var (
	errTooManyChunks = errors.New("too many cookie chunks")
	errChunkGap      = errors.New("cookie chunks are not numbered 0, 1, … without a gap")
)

// ErrTooLarge means a session does not fit in the cookie store's chunks.
var ErrTooLarge = errors.New("session: too large for cookies")

// ErrAmbiguousCookie means the request carries the same cookie name twice
// with different values, or the plain cookie and chunks of it together.
// A browser sends every cookie whose domain and path match, so a sibling
// host (plain http, or a configured cookie domain: no __Host- prefix) can
// add its own copy next to ours ("cookie tossing", RFC 6265bis §8.6), and
// the order a browser sends them in is not a guarantee the server may rely
// on (RFC 6265bis §5.8.3: ordering is a SHOULD, by path length and creation
// time). So no copy is chosen: the request is not signed in. Errors that
// wrap it never carry a cookie value.
var ErrAmbiguousCookie = errors.New("session: ambiguous cookie: one name sent with different values")

// read returns the value of j from the request, joining chunks. It reports
// false when the request carries no part of it. Ambiguity is refused
// (ErrAmbiguousCookie): one name with two different values, or the plain
// cookie next to chunks. Identical copies of one name count as one: they
// say the same thing, whichever a server would pick, and a browser can end
// up holding a host-only and a domain copy of one value. Chunks must be
// numbered from 0 without a gap. More than maxChunks chunks is an error,
// whatever the number sent, and costs one pass over the header.
func (j cookieJar) read(r *http.Request) (string, bool, error) {
	var parts [maxChunks + 1]string // parts[maxChunks] is the plain cookie
	var have [maxChunks + 1]bool
	var err error
	found := false
	eachCookie(r, func(name, value string) bool {
		i, ok := j.slot(name)
		if !ok {
			return true
		}
		found = true
		switch {
		case i < 0:
			err = errTooManyChunks
		case have[i] && parts[i] != value:
			err = ErrAmbiguousCookie
		default:
			parts[i], have[i] = value, true
			return true
		}
		return false
	})
	if !found {
		return "", false, nil
	}
	if err != nil {
		return "", true, err
	}
	if have[maxChunks] {
		for i := 0; i < maxChunks; i++ {
			if have[i] {
				return "", true, fmt.Errorf("%w: the plain cookie and chunks of it", ErrAmbiguousCookie)
			}
		}
		return parts[maxChunks], true, nil
	}
	var b strings.Builder
	n := 0
	for n < maxChunks && have[n] {
		b.WriteString(parts[n])
		n++
	}
	for i := n; i < maxChunks; i++ {
		if have[i] {
			return "", true, errChunkGap
		}
	}
	return b.String(), true, nil
}

// slot says where a cookie named name goes in read: maxChunks for the
// plain cookie, 0 … maxChunks-1 for a chunk, -1 for a chunk out of range;
// ok is false for a cookie that is not j's.
func (j cookieJar) slot(name string) (int, bool) {
	if !strings.HasPrefix(name, j.name) {
		return 0, false
	}
	rest := name[len(j.name):]
	if rest == "" {
		return maxChunks, true
	}
	if len(rest) < 2 || rest[0] != '_' || rest[1] == '+' || rest[1] == '-' {
		return 0, false
	}
	i, err := strconv.Atoi(rest[1:])
	if err != nil {
		return 0, false
	}
	if i < 0 || i >= maxChunks {
		return -1, true
	}
	return i, true
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
