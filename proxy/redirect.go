// redirect.go: the single gate every post-sign-in and post-sign-out redirect
// target goes through. The gateway never sends a browser to a URI taken from a
// request (rd, state, post-logout target) without passing it through
// redirectPolicy.safe; anything doubtful becomes "/" (BCP-1, RFC 9700 §4.11.1:
// "Clients and authorization servers MUST NOT expose URLs that forward the
// user's browser to arbitrary URIs obtained from a query parameter").
//
// The checks are written for the browser's parser (WHATWG URL), not Go's:
// url.Parse and http.Redirect accept or "clean" several forms that a browser
// resolves to another origin (SECURITY.md §2.8-1/2), so every input is
// screened byte by byte before url.Parse is consulted, and url.Parse must then
// agree with our own split of the string.

package proxy

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// redirectFallback is where the browser goes when a target is refused.
	redirectFallback = "/"
	// redirectMaxLen bounds targets; longer ones are refused, not truncated.
	redirectMaxLen = 2048
)

// redirectPolicy decides where the gateway may send a browser after sign-in or sign-out.
// It is immutable after newRedirectPolicy and safe for concurrent use.
type redirectPolicy struct {
	scheme string // gateway's own scheme: "http" or "https"
	host   string // gateway's own host, lowercased; IPv6 without brackets
	ipv6   bool   // host is an IPv6 literal
	port   string // gateway's own effective port, never empty
	hosts  []redirectHost
}

// redirectHost is one validated entry of server.allowed_redirect_hosts.
type redirectHost struct {
	name   string // lowercased; suffix entries keep their leading "."
	suffix bool   // ".example.com": strict subdomains only, at a dot boundary
	port   string // effective port: the listed one, else "443" (https only)
}

// newRedirectPolicy builds the policy from the gateway's external origin and
// the operator's server.allowed_redirect_hosts entries.
//
// publicURL is the gateway's own external origin (scheme://host[:port]); only
// its origin is used, any path is ignored. Each allowed entry is
// "host" (exact host, https default port), "host:port" (exact host and that
// port), ".suffix" (any subdomain of suffix at a dot boundary, never suffix
// itself) or ".suffix:port". Entries are ASCII: internationalised names must be
// written in their xn-- form. Scheme, path, userinfo, wildcard, whitespace,
// non-ASCII, trailing-dot, IP-literal-trick and empty entries are an error that
// names the entry. Hosts are compared case-insensitively and stored lowercased.
func newRedirectPolicy(publicURL *url.URL, allowed []string) (*redirectPolicy, error) {
	if publicURL == nil {
		return nil, errors.New("proxy: redirect policy needs the gateway's public URL")
	}
	scheme := strings.ToLower(publicURL.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("proxy: public URL %q: scheme must be http or https", publicURL.Redacted())
	}
	if publicURL.Opaque != "" || publicURL.User != nil || publicURL.Host == "" {
		return nil, fmt.Errorf("proxy: public URL %q: must be scheme://host[:port] without userinfo", publicURL.Redacted())
	}
	a, err := redirectParseAuthority(strings.ToLower(publicURL.Host))
	if err != nil {
		return nil, fmt.Errorf("proxy: public URL %q: %w", publicURL.Redacted(), err)
	}
	if a.port == "" {
		a.port = redirectDefaultPort(scheme)
	}
	p := &redirectPolicy{scheme: scheme, host: a.host, ipv6: a.ipv6, port: a.port}
	for _, e := range allowed {
		h, err := redirectParseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("proxy: invalid allowed_redirect_hosts entry %q: %w", e, err)
		}
		p.hosts = append(p.hosts, h)
	}
	return p, nil
}

// redirectParseEntry validates one allowed_redirect_hosts entry.
func redirectParseEntry(e string) (redirectHost, error) {
	if e == "" {
		return redirectHost{}, errors.New("empty")
	}
	for _, r := range e {
		switch {
		case r >= utf8.RuneSelf:
			return redirectHost{}, errors.New("non-ASCII host; write internationalised names in their xn-- form")
		case r <= ' ' || r == 0x7f:
			return redirectHost{}, errors.New("contains whitespace or a control character")
		case r == '*':
			return redirectHost{}, errors.New(`wildcards are not supported; use a leading "." for subdomains`)
		case r == '/' || r == '\\' || r == '?' || r == '#':
			return redirectHost{}, errors.New("must be a host[:port], not a URL or path")
		case r == '@':
			return redirectHost{}, errors.New("must not contain userinfo")
		case r == '[' || r == ']':
			return redirectHost{}, errors.New("IPv6 literals are not allowed; only the public URL's own host may be one")
		}
	}
	h := redirectHost{}
	if e[0] == '.' {
		h.suffix = true
		e = e[1:]
	}
	a, err := redirectParseAuthority(strings.ToLower(e))
	if err != nil {
		return redirectHost{}, err
	}
	switch {
	case a.ipv4 && h.suffix:
		return redirectHost{}, errors.New("a suffix entry must be a domain name, not an IP address")
	case h.suffix && !strings.Contains(a.host, "."):
		// ".com" or ".localhost" would allow a whole top-level domain.
		return redirectHost{}, errors.New("a suffix entry needs at least two labels")
	}
	h.name = a.host
	if h.suffix {
		h.name = "." + a.host
	}
	h.port = a.port
	if h.port == "" {
		h.port = "443" // allowed hosts are https only
	}
	return h, nil
}

// safe returns target when it is a same-origin relative path or an absolute URL to the gateway's own
// origin or an allowed host, normalised; otherwise "/". It never returns anything a browser could
// resolve to another origin.
//
// Rules, all fail-closed:
//   - at most 2048 bytes, and only the characters RFC 3986 §2 permits in a URI
//     (unreserved, reserved, well-formed %XX); "[" and "]" only around an IPv6
//     host (§3.2.2). This excludes controls, every kind of whitespace, "\"
//     (browsers read it as "/") and all non-ASCII (homoglyph hosts);
//   - the once-decoded string holds no control byte and no "\" (CRLF injection
//     in a Location header, "/%5Cevil.com");
//   - a relative target is an RFC 3986 §4.2 absolute-path reference: exactly
//     one leading "/", see redirectPathOK for the path rules;
//   - an absolute target is http(s)://host[:port] (RFC 3986 §3), without
//     userinfo (§3.2.1) or opaque forms, to the own origin or an allowed host;
//   - no query value is itself a URL (see redirectQueryOK).
func (p *redirectPolicy) safe(target string) string {
	if p == nil || !redirectCharsOK(target) {
		return redirectFallback
	}
	if target[0] == '/' {
		if p.relativeOK(target) {
			return target
		}
		return redirectFallback
	}
	out, ok := p.absolute(target)
	if !ok || len(out) > redirectMaxLen {
		return redirectFallback
	}
	return out
}

// relativeOK checks a target that starts with "/": an absolute-path reference
// (RFC 3986 §4.2) resolved against the gateway's own origin.
func (p *redirectPolicy) relativeOK(target string) bool {
	path, query, fragment, ok := redirectSplit(target)
	if !ok || strings.ContainsAny(path+query+fragment, "[]") {
		return false
	}
	if !redirectPathOK(path) || !redirectQueryOK(query) {
		return false
	}
	// Belt and braces: the standard library must also see a bare path.
	u, err := url.Parse(target)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}

// absolute checks an absolute URI (RFC 3986 §4.3) and rebuilds it from its
// parts: lowercase scheme and host, default port dropped, path "/" if empty.
func (p *redirectPolicy) absolute(target string) (string, bool) {
	// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
	colon := strings.IndexByte(target, ':')
	if colon <= 0 || !redirectIsScheme(target[:colon]) {
		return "", false // "evil.com", "dashboard", "?x", "%2F%2Fevil.com"
	}
	scheme := strings.ToLower(target[:colon])
	if scheme != "http" && scheme != "https" {
		return "", false // javascript:, data:, vbscript:, ftp:, file: ...
	}
	// RFC 3986 §3.2: the authority is introduced by exactly "//". Browsers
	// read "https:evil.com", "https:/evil.com" and "https:///evil.com" as
	// host evil.com; url.Parse sees an opaque or empty-host URL.
	rest := target[colon+1:]
	if !strings.HasPrefix(rest, "//") {
		return "", false
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	// RFC 3986 §3.2.1: no userinfo ("https://app.example.com@evil.com");
	// no percent-encoded host bytes (§3.2.2 allows them, browsers decode them).
	if strings.ContainsAny(authority, "@%") {
		return "", false
	}
	a, err := redirectParseAuthority(strings.ToLower(authority))
	if err != nil {
		return "", false
	}
	path, query, fragment, ok := redirectSplit(rest[end:])
	if !ok || strings.ContainsAny(path+query+fragment, "[]") {
		return "", false
	}
	if path != "" && !redirectPathOK(path) || !redirectQueryOK(query) {
		return "", false
	}
	// url.Parse must agree with our split, so that whatever later handles
	// the URL with the standard library sees the same origin.
	u, err := url.Parse(target)
	if err != nil || u.Opaque != "" || u.User != nil ||
		strings.ToLower(u.Scheme) != scheme || strings.ToLower(u.Host) != strings.ToLower(authority) ||
		u.EscapedPath() != path || u.RawQuery != query || u.EscapedFragment() != fragment {
		return "", false
	}
	port := a.port
	if port == "" {
		port = redirectDefaultPort(scheme)
	}
	if !p.hostAllowed(scheme, a, port) {
		return "", false
	}

	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if a.ipv6 {
		b.WriteString("[" + a.host + "]")
	} else {
		b.WriteString(a.host)
	}
	if port != redirectDefaultPort(scheme) {
		b.WriteString(":" + port)
	}
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	if query != "" {
		b.WriteString("?" + query)
	}
	if fragment != "" {
		b.WriteString("#" + fragment)
	}
	return b.String(), true
}

// hostAllowed reports whether scheme://host:port is the gateway's own origin
// or matches an allowlist entry. Plain http is only accepted for the own
// origin, and only when the gateway itself is served over http (development).
func (p *redirectPolicy) hostAllowed(scheme string, a redirectAuthority, port string) bool {
	if scheme == p.scheme && a.host == p.host && a.ipv6 == p.ipv6 && port == p.port {
		return true
	}
	if scheme != "https" || a.ipv6 {
		return false
	}
	for _, h := range p.hosts {
		if port != h.port {
			continue
		}
		if !h.suffix {
			if a.host == h.name {
				return true
			}
			continue
		}
		// Dot-boundary suffix match (CVE-2021-21291: "evilbar.foo" is not
		// under ".bar.foo"); h.name starts with "." and a.host has no empty
		// label, so the apex itself never matches.
		if a.ipv4 || !strings.HasSuffix(a.host, h.name) {
			continue
		}
		// Punycode labels are homoglyph territory: allowed only where the
		// entry itself spells them out.
		sub := strings.TrimSuffix(a.host, h.name)
		if !redirectHasACELabel(sub) {
			return true
		}
	}
	return false
}

// redirectSplit splits a path-abempty [ "?" query ] [ "#" fragment ] string
// (RFC 3986 §3). A second "#" is not valid in a fragment (§3.5).
func redirectSplit(s string) (path, query, fragment string, ok bool) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, fragment = s[:i], s[i+1:]
		if strings.IndexByte(fragment, '#') >= 0 {
			return "", "", "", false
		}
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	return s, query, fragment, true
}

// redirectPathOK checks the path of a target. It must be "/" or start with
// one "/", and contain no empty segment ("//" anywhere: RFC 3986 §4.2 makes a
// leading "//" an authority), no "." or ".." segment (§3.3, §5.2.4: dot
// segments are removed during resolution and can collapse "/./\evil" or
// "/..//evil" into a scheme-relative reference; we refuse them rather than
// reason about the result), and no "%25" (double encoding). The same holds for
// the once-decoded path with whitespace and invisible format characters
// removed, as a browser or a backend might ("/%09/evil.com",
// "/%2F%2Fevil.com", "/%2e%2e/"), and no "/" there is followed by a character
// that some user agents have treated as a slash ("/%EF%BC%8Fevil.com").
func redirectPathOK(path string) bool {
	if path == "" || path[0] != '/' || strings.Contains(path, "%25") {
		return false
	}
	if !redirectSegmentsOK(path) {
		return false
	}
	dec, err := url.PathUnescape(path)
	if err != nil || !utf8.ValidString(dec) {
		return false
	}
	stripped := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, dec)
	if stripped == "" || stripped[0] != '/' || !redirectSegmentsOK(stripped) {
		return false
	}
	for i := 0; i < len(stripped); i++ {
		if stripped[i] != '/' {
			continue
		}
		if r, _ := utf8.DecodeRuneInString(stripped[i+1:]); redirectSlashLike(r) {
			return false
		}
	}
	return true
}

// redirectSegmentsOK reports whether path has no empty interior segment and no
// dot segment. A trailing "/" is fine. A segment's ";params" are ignored when
// looking for dot segments, as some servers do ("/..;/").
func redirectSegmentsOK(path string) bool {
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if seg == "" && i != len(segs)-1 {
			return false
		}
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// redirectSlashLike lists "\" and the characters that user agents or
// normalisers have turned into "/" after a slash (mod_auth_openidc refuses
// "/〱", "/〵", "/ゝ", "/ー", "/ｰ"; fullwidth and small solidus forms
// normalise to "/" or "\" under NFKC).
func redirectSlashLike(r rune) bool {
	switch r {
	case '/', '\\',
		'\u3031', '\u3035', '\u309D', '\u30FC', '\uFF70',
		'\uFF0F', '\uFF3C', '\uFE68', '\u2215', '\u2044', '\u29F5', '\u29F8', '\u29F9':
		return true
	}
	return false
}

// redirectQueryOK refuses a query in which any value (or key) is itself a URL or a
// script: "/login?next=https://evil.com". Such a target is on an allowed
// origin, but the application there may have its own open redirect, and the
// gateway would be the first hop of the chain (Vouch Proxy's badStrings
// defence, SECURITY.md §2.2). Values are checked once decoded ("+" as space)
// and, when that is still a valid escape, decoded twice, with whitespace and
// controls removed as a browser would, case-insensitively.
func redirectQueryOK(query string) bool {
	if query == "" {
		return true
	}
	for _, pair := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		// The key is checked too: some applications read "?https://x" whole.
		k, v, _ := strings.Cut(pair, "=")
		for _, s := range []string{k, v} {
			dec, err := url.PathUnescape(strings.ReplaceAll(s, "+", " "))
			if err != nil || redirectLooksLikeURL(dec) {
				return false
			}
			if dec2, err := url.PathUnescape(dec); err == nil && redirectLooksLikeURL(dec2) {
				return false
			}
		}
	}
	return true
}

// redirectLooksLikeURL reports whether a query value starts with an absolute
// or scheme-relative URL or a script scheme.
func redirectLooksLikeURL(v string) bool {
	v = strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v))
	for _, bad := range []string{"http:", "https:", "//", `/\`, `\`, "javascript:", "data:", "vbscript:", "ftp:"} {
		if strings.HasPrefix(v, bad) {
			return true
		}
	}
	return false
}

// redirectCharsOK screens the raw target: non-empty, at most redirectMaxLen
// bytes, only RFC 3986 §2 characters (ALPHA DIGIT "-._~" gen-delims
// sub-delims and well-formed "%" HEXDIG HEXDIG, §2.1), and a once-decoded form
// without control bytes or "\".
func redirectCharsOK(s string) bool {
	if s == "" || len(s) > redirectMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if d < 0x20 || d == 0x7f || d == '\\' {
				return false
			}
			i += 2
			continue
		}
		if !redirectURIChar(c) {
			return false
		}
	}
	return true
}

// redirectURIChar reports whether c may appear literally in a URI (RFC 3986
// §2.2 reserved and §2.3 unreserved characters; "%" is handled by the caller).
func redirectURIChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0
}

// redirectIsScheme reports whether s matches RFC 3986 §3.1 scheme.
func redirectIsScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// redirectAuthority is a validated, lowercased host[:port].
type redirectAuthority struct {
	host string // DNS name, dotted-quad IPv4, or IPv6 without brackets
	ipv4 bool
	ipv6 bool
	port string // as written (validated), "" if absent
}

// redirectParseAuthority validates a lowercased host[:port] (RFC 3986 §3.2.2,
// §3.2.3) more strictly than RFC 3986 and url.Parse do: the host is an LDH
// DNS name without trailing dot, a canonical dotted-quad IPv4 address, or a
// canonical bracketed IPv6 address without zone. Browsers read hosts whose
// last label is numeric as IPv4 (WHATWG "ends in a number"), so "0x7f000001",
// "2130706433" and "127.1" are refused instead of being compared as names.
// The port, when present, is decimal 1-65535 without leading zeros.
func redirectParseAuthority(s string) (redirectAuthority, error) {
	var a redirectAuthority
	hostport := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return a, errors.New("unterminated IPv6 literal")
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" || ip.String() != s[1:end] {
			return a, errors.New("IPv6 literal must be canonical, without zone")
		}
		a.host, a.ipv6 = s[1:end], true
		hostport = s[end+1:]
		if hostport != "" && hostport[0] != ':' {
			return a, errors.New("junk after IPv6 literal")
		}
	} else {
		if strings.Count(s, ":") > 1 {
			return a, errors.New("too many colons")
		}
		a.host, hostport, _ = strings.Cut(s, ":")
		if hostport != "" || strings.HasSuffix(s, ":") {
			hostport = ":" + hostport
		}
		if err := redirectCheckName(a.host); err != nil {
			return a, err
		}
		a.ipv4 = redirectEndsInNumber(a.host)
	}
	if hostport != "" {
		port := hostport[1:]
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || strconv.Itoa(n) != port {
			return a, errors.New("port must be a decimal number 1-65535 without leading zeros")
		}
		a.port = port
	}
	return a, nil
}

// redirectCheckName validates a lowercased host name (RFC 1123 §2.1 LDH labels,
// RFC 1035 §2.3.4 lengths) or a canonical dotted-quad IPv4 address.
func redirectCheckName(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("host must be 1-253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return errors.New("host has an empty label or a trailing dot")
		}
		if len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("host has an invalid label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return errors.New("host may only contain letters, digits, hyphens and dots")
			}
		}
	}
	if redirectEndsInNumber(h) {
		ip, err := netip.ParseAddr(h)
		if err != nil || !ip.Is4() || ip.String() != h {
			return errors.New("numeric host must be a canonical dotted-quad IPv4 address")
		}
	}
	return nil
}

// redirectEndsInNumber reports whether a browser would parse host as an IPv4
// address (WHATWG URL "ends in a number": the last label is all digits or
// starts with "0x").
func redirectEndsInNumber(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return last != ""
}

// redirectHasACELabel reports whether any label of the dot-separated name s
// is punycode (RFC 5890 §2.3.2.1 "xn--" ACE prefix).
func redirectHasACELabel(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if strings.HasPrefix(label, "xn--") {
			return true
		}
	}
	return false
}

func redirectDefaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// found sends a 302 to target exactly as given. http.Redirect would "clean"
// a relative target's path (and treat a fragment as part of it), turning
// "/x#/../..//%2F%2Fevil.com" into "/%2F%2Fevil.com": not the target
// safe() approved. Callers pass targets that are already validated.
func found(w http.ResponseWriter, target string) {
	h := w.Header()
	h.Set("Location", target)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusFound)
	// A short body for clients that do not follow redirects; the target is
	// escaped, never interpreted.
	fmt.Fprintf(w, "<a href=\"%s\">Found</a>.\n", html.EscapeString(target))
}
