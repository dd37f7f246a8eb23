// path.go: one canonical request path for routing, policy and the upstream.
//
// Go's server leaves many ambiguities in r.URL.Path (SECURITY.md §2.8-3): a
// raw "#" stays in the path, "%2F" and "%2e%2e" decode to "/" and "..", "//",
// "\" and ";" are not cleaned, and "%2561" decodes only once. Backends resolve
// each of these in their own way, so a rule matched against one reading of the
// path can be bypassed by a request that the backend reads differently
// (CVE-2025-54576, CVE-2026-41059 in oauth2-proxy). Rather than guess, the
// gateway refuses every path that could be read two ways and hands routing,
// policy and the upstream the same, unambiguous path.
//
// The path keeps its case ("/ADMIN" reaches the upstream as "/ADMIN"), but
// routes also match it case-insensitively, the stricter route governing
// (Routes.Match), because many backends fold case.

package proxy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// errAmbiguousPath (a sentinel, wrapped with the reason) is returned for any path the gateway refuses to interpret.
var errAmbiguousPath = errors.New("ambiguous request path")

// pathMaxLen bounds both the path as received and the escaped path sent upstream.
const pathMaxLen = 8192

// canonicalPath takes the request's escaped path (r.URL.EscapedPath(), or RawPath/Path as received) and
// returns the decoded path used for matching routes and policy, and the escaped form to send upstream
// (which decodes to exactly that path), or an error wrapping errAmbiguousPath naming the reason.
//
// Refused, each with its own reason: a path not starting with "/"; more than
// 8192 bytes (before or after escaping); control bytes, raw or encoded; "\";
// ";" (RFC 3986 §3.3 path parameters, Tomcat's "..;/"); a raw "#" or "?"
// inside the path value (they delimit fragment and query, §3.4, §3.5); a
// percent-encoded "/", "\", ".", ";", "#", "?" or "%" (§2.2: encoding a
// reserved character changes its meaning; "%25" is double encoding); malformed
// escapes (§2.1); bytes that are not UTF-8 once decoded (this includes
// overlong forms such as "%C0%AE"); Unicode characters that normalise (NFKC) or
// look like a path delimiter; empty segments ("//"); "." and ".." segments,
// and segments ending in a dot or a space (which Windows ignores),
// anywhere including the end (§3.3, §5.2.4).
//
// Percent-encoded unreserved characters (§2.3: ALPHA DIGIT "-" "_" "~"; "."
// is refused above) are decoded in both outputs, as §6.2.2.2 says is
// equivalent, so "/%61dmin" cannot dodge a rule for "/admin". Other escapes
// stay escaped in rawPath with uppercase hex (§6.2.2.1); raw non-ASCII bytes
// and ASCII characters that are not allowed in a path segment are escaped. A
// trailing "/" is preserved. canonicalPath(rawPath) returns the same result.
func canonicalPath(escaped string) (path, rawPath string, err error) {
	reason := ""
	switch {
	case len(escaped) > pathMaxLen:
		reason = "longer than 8192 bytes"
	case escaped == "" || escaped[0] != '/':
		reason = `does not start with "/"`
	case plainPath(escaped):
		// The common case: nothing escaped, nothing to refuse byte by
		// byte, all ASCII. The path is its own canonical form.
		path, rawPath = escaped, escaped
	default:
		path, rawPath, reason = decodePath(escaped)
	}
	if reason == "" {
		reason = checkSegments(path)
	}
	if reason != "" {
		return "", "", fmt.Errorf("%w: %s", errAmbiguousPath, reason)
	}
	return path, rawPath, nil
}

// decodePath decodes an escaped path byte by byte into the path and its
// canonical escaped form, or names why it is refused.
func decodePath(escaped string) (path, rawPath, reason string) {
	var p, raw strings.Builder
	p.Grow(len(escaped))
	raw.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", "", "invalid percent-encoding"
			}
			b := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			if reason := pathEncodedReason(b); reason != "" {
				return "", "", reason
			}
			p.WriteByte(b)
			if pathUnreserved(b) {
				raw.WriteByte(b)
			} else {
				pathWriteEscaped(&raw, b)
			}
		case c < 0x20 || c == 0x7f:
			return "", "", "control character"
		case c == '\\':
			return "", "", "backslash"
		case c == ';':
			return "", "", "semicolon (path parameter)"
		case c == '#':
			return "", "", `raw "#" (fragment delimiter) in path`
		case c == '?':
			return "", "", `raw "?" (query delimiter) in path`
		case c == '/' || pathUnreserved(c) || c == '.' || pathSubDelim(c):
			p.WriteByte(c)
			raw.WriteByte(c)
		default: // non-ASCII bytes and ASCII not allowed in a segment: " <>[]^`{|}
			p.WriteByte(c)
			pathWriteEscaped(&raw, c)
		}
	}
	path, rawPath = p.String(), raw.String()
	if len(rawPath) > pathMaxLen {
		return "", "", "longer than 8192 bytes once escaped"
	}
	if !utf8.ValidString(path) {
		return "", "", "not UTF-8 once decoded"
	}
	for _, r := range path {
		if pathDelimiterLookalike(r) {
			return "", "", "Unicode look-alike of a path delimiter"
		}
		if foldsToASCII(r) {
			return "", "", "non-ASCII character that case-folds to an ASCII letter"
		}
	}
	return path, rawPath, ""
}

// foldsToASCII reports non-ASCII characters that a case-folding backend
// may read as an ASCII letter: "İ" (U+0130) lowercases to "i", "ı" and
// "ſ" uppercase to "I" and "S", the Kelvin sign folds with "k". Routes are
// also matched case-insensitively (Routes.foldedRow) on ASCII only, so
// these must not reach a backend as "/admin" while matching "/ADMİN".
func foldsToASCII(r rune) bool {
	if r < utf8.RuneSelf {
		return false
	}
	if unicode.ToLower(r) < utf8.RuneSelf || unicode.ToUpper(r) < utf8.RuneSelf {
		return true
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return true
		}
	}
	return false
}

// checkSegments names what is wrong with a decoded path's segments, or
// returns "".
func checkSegments(path string) string {
	for rest := path[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "" && more:
			return `empty segment ("//")`
		case seg == "." || seg == "..":
			return "dot segment"
		case seg != "" && (seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' '):
			// Windows file systems and IIS ignore trailing dots and
			// spaces: "/admin./x" and "/admin%20/x" would be "/admin/x"
			// there while a rule for "/admin/" did not apply here.
			return "segment ends in a dot or a space"
		}
		if !more {
			return ""
		}
		rest = tail
	}
}

// pathHasPrefix reports whether path is under prefix at a segment boundary: prefix "/api/" matches
// "/api/" and "/api/x"; prefix "/api" matches "/api", "/api/" and "/api/x" but not "/apis"; prefix "/" matches everything.
// Both are canonical paths from canonicalPath; the comparison is byte-wise and
// case-sensitive. A prefix that does not start with "/" matches nothing.
func pathHasPrefix(path, prefix string) bool {
	if prefix == "" || prefix[0] != '/' {
		return false
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// plainBytes marks the bytes canonicalPath copies unchanged into both
// forms: "/", ".", RFC 3986 unreserved and sub-delims other than ";".
var plainBytes = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = b == '/' || b == '.' || pathUnreserved(b) || (pathSubDelim(b) && b != ';')
	}
	return t
}()

// plainPath reports whether every byte of escaped is one canonicalPath
// would copy unchanged.
func plainPath(escaped string) bool {
	for i := 0; i < len(escaped); i++ {
		if !plainBytes[escaped[i]] {
			return false
		}
	}
	return true
}

// pathEncodedReason names why the percent-encoded byte b is refused, or
// returns "" when it is acceptable.
func pathEncodedReason(b byte) string {
	switch {
	case b == '/':
		return `encoded "/" (%2F)`
	case b == '\\':
		return `encoded backslash (%5C)`
	case b == '.':
		return `encoded "." (%2E)`
	case b == ';':
		return `encoded ";" (%3B)`
	case b == '#':
		return `encoded "#" (%23)`
	case b == '?':
		return `encoded "?" (%3F)`
	case b == '%':
		return `encoded "%" (%25, double encoding)`
	case b < 0x20 || b == 0x7f:
		return "encoded control character"
	}
	return ""
}

// pathUnreserved reports whether c is an RFC 3986 §2.3 unreserved character
// other than ".", which is handled separately.
func pathUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '~'
}

// pathSubDelim reports whether c may appear raw in a segment besides the
// unreserved characters (RFC 3986 §3.3 pchar: sub-delims, ":" and "@";
// ";" is refused before this is consulted).
func pathSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,=:@", c) >= 0
}

// pathDelimiterLookalike reports Unicode characters whose NFKC form is or
// contains ".", "/", "\", ";", "#", "?" or "%" in a way that can rebuild a
// delimiter or a dot segment, or that are visually a slash. Backends that
// normalise Unicode (or humans reading logs) would see a different path.
func pathDelimiterLookalike(r rune) bool {
	switch r {
	case '\u2024', '\u2025', '\u2026', '\uFE30', '\uFE52', '\uFF0E', // ․ ‥ … ︰ ﹒ ．
		'\uFF0F', '\u2215', '\u2044', '\u29F8', // ／ ∕ ⁄ ⧸
		'\uFF3C', '\uFE68', '\u29F5', '\u29F9', // ＼ ﹨ ⧵ ⧹
		'\u2100', '\u2101', '\u2105', '\u2106', // ℀ ℁ ℅ ℆
		'\uFF1B', '\uFE54', '\u037E', // ； ﹔ ;
		'\uFF03', '\uFE5F', // ＃ ﹟
		'\uFF1F', '\uFE56', // ？ ﹖
		'\uFF05', '\uFE6A': // ％ ﹪
		return true
	}
	return false
}

func pathWriteEscaped(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&0xf])
}

// isHex and unhex read a percent-encoding's digits (RFC 3986 §2.1).
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
