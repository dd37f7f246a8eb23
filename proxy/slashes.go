package proxy

import (
	"errors"
	"fmt"
	"strings"
)

// slashes.go is policy.routes[].pass_encoded_slashes. canonicalPath
// refuses "%2F" everywhere: a backend that decodes it sees another path
// than the rules judged ("/public/..%2Fadmin"). Some applications use it
// as data, though: RabbitMQ's management API names the default vhost "/"
// as "%2F" in "/api/queues/%2F/q1". Under a route that opts in, "%2F" is
// kept: the canonical path holds it as the three characters "%2F" (a
// decoded canonical path holds no other "%", so this reads one way only),
// routes and regexes match that, and the upstream receives "%2F" as sent.
// What a decoding backend could still misread is refused: "." or ".."
// between encoded slashes, pieces ending in a dot or a space, and any
// "%2F" whose decoding would move the request to another row of the route
// table.

// hasEncodedSlash reports whether an escaped path holds "%2F" in either case.
func hasEncodedSlash(escaped string) bool {
	for i := 0; i+2 < len(escaped); i++ {
		if escaped[i] == '%' && escaped[i+1] == '2' && (escaped[i+2] == 'F' || escaped[i+2] == 'f') {
			return true
		}
	}
	return false
}

// canonicalPathSlashes is canonicalPath with "%2F" admitted: every piece
// between encoded slashes is decoded and checked as canonicalPath does,
// the pieces are joined with "%2F" in both forms, and the segments are
// checked as canonicalPath checks them, and again with "%2F" read as "/"
// (empty pieces allowed: "%2F" alone is RabbitMQ's default vhost).
func canonicalPathSlashes(escaped string) (path, rawPath string, err error) {
	refuse := func(reason string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %s", errAmbiguousPath, reason)
	}
	switch {
	case len(escaped) > pathMaxLen:
		return refuse("longer than 8192 bytes")
	case escaped == "" || escaped[0] != '/':
		return refuse(`does not start with "/"`)
	}
	var p, raw strings.Builder
	for rest := escaped; ; {
		piece, tail, more := cutEncodedSlash(rest)
		dp, dr, reason := decodePath(piece)
		if reason != "" {
			return refuse(reason)
		}
		p.WriteString(dp)
		raw.WriteString(dr)
		if !more {
			break
		}
		p.WriteString("%2F")
		raw.WriteString("%2F")
		rest = tail
	}
	path, rawPath = p.String(), raw.String()
	if len(rawPath) > pathMaxLen {
		return refuse("longer than 8192 bytes once escaped")
	}
	if reason := checkSegments(path); reason != "" {
		return refuse(reason)
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if !strings.Contains(seg, "%2F") {
			continue
		}
		for _, piece := range strings.Split(seg, "%2F") {
			switch {
			case piece == "." || piece == "..":
				return refuse(`dot segment between encoded slashes ("%2F")`)
			case piece != "" && (piece[len(piece)-1] == '.' || piece[len(piece)-1] == ' '):
				return refuse(`piece between encoded slashes ("%2F") ends in a dot or a space`)
			}
		}
	}
	return path, rawPath, nil
}

// cutEncodedSlash cuts s at its first "%2F" (either case).
func cutEncodedSlash(s string) (before, after string, found bool) {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'F' || s[i+2] == 'f') {
			return s[:i], s[i+3:], true
		}
	}
	return s, "", false
}

// upstreamPath is a canonical path as the upstream request's URL.Path
// holds it: decoded, the kept "%2F" as "/" (URL.RawPath keeps "%2F").
func upstreamPath(path string) string {
	if strings.IndexByte(path, '%') < 0 {
		return path
	}
	return strings.ReplaceAll(path, "%2F", "/")
}

// passesEncodedSlashes reports whether path, canonical with kept "%2F",
// may be served at host: its row's routes opt in with
// pass_encoded_slashes, and reading "%2F" as "/" lands on the same row,
// as spelled and as a case-folding backend reads it.
func (rt *Routes) passesEncodedSlashes(host, path string) bool {
	rw := rt.lookup(host, path)
	if !rw.encodedSlashes {
		return false
	}
	decoded := upstreamPath(path)
	if rt.lookup(host, decoded) != rw {
		return false
	}
	if rt.foldable {
		return lookupIn(rt.foldHosts, rt.foldAny, host, lowerASCII(path)) == lookupIn(rt.foldHosts, rt.foldAny, host, lowerASCII(decoded))
	}
	return true
}

// canonicalFor is canonicalPath for a request to host: "%2F" is admitted
// where a route with pass_encoded_slashes governs the path, and refused,
// as canonicalPath refuses it, everywhere else.
func (rt *Routes) canonicalFor(host, escaped string) (path, rawPath string, err error) {
	path, rawPath, err = canonicalPath(escaped)
	if err == nil || rt == nil || !rt.slashes || !hasEncodedSlash(escaped) {
		return path, rawPath, err
	}
	p, r, err2 := canonicalPathSlashes(escaped)
	switch {
	case err2 != nil:
		return "", "", err2
	case !rt.passesEncodedSlashes(normHost(host), p):
		return "", "", fmt.Errorf("%w (no route with pass_encoded_slashes governs this path)", err)
	}
	return p, r, nil
}

// ParseTarget is the package's ParseTarget with this table's
// pass_encoded_slashes routes: what the gateway accepts, and as it reads it.
func (rt *Routes) ParseTarget(method, host, escapedPath string, proxied bool) (Target, error) {
	if !rt.slashes || !hasEncodedSlash(escapedPath) {
		return ParseTarget(method, host, escapedPath, proxied)
	}
	t, err := ParseTarget(method, host, "/", proxied) // the method and host
	if err != nil {
		return t, err
	}
	t.Path, t.RawPath, err = rt.canonicalFor(host, escapedPath)
	return t, err
}

var errEncodedSlashConflict = errors.New("pass_encoded_slashes differs between routes with the same host and path")
