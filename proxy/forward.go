package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// forward.go reconstructs the request a forward-auth call is about. The
// headers that carry it (X-Forwarded-*, X-Original-*) are believed only
// from server.trusted_proxies (RFC 9700 §4.13; oauth2-proxy CVE-2026-40575
// trusted them from anyone). From anyone else they are ignored, and the
// decision is about a fixed target nobody can steer: GET / on the
// gateway's own host.

// trustedProxies is the parsed server.trusted_proxies.
type trustedProxies []netip.Prefix

func parseTrustedProxies(entries []string) (trustedProxies, error) {
	var out trustedProxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %q is not an IP address or CIDR", e)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// trusts reports whether the request's direct peer is a trusted proxy.
func (tp trustedProxies) trusts(r *http.Request) bool {
	if len(tp) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwarded is what a trusted proxy told us, read before the headers are
// stripped from the request.
type forwarded struct {
	method, proto, host, uri string // X-Forwarded-Method/-Proto/-Host/-Uri
	originalURL              string // X-Original-URL (ingress-nginx), absolute
	originalURI              string // X-Original-URI (nginx), request-target
	originalMethod           string // X-Original-Method
	redirect                 string // X-Auth-Request-Redirect: where /start and /sign_in return to
	forwardedFor             string // X-Forwarded-For, the client chain
	err                      error  // a header was present more than once
}

// forwarded reads what the request's peer forwarded, when the peer is a
// trusted proxy; nil otherwise.
func (h *Handler) forwarded(r *http.Request) *forwarded {
	if !h.trusted.trusts(r) {
		return nil
	}
	f := readForwarded(r.Header)
	return &f
}

func readForwarded(h http.Header) forwarded {
	var f forwarded
	// The names are canonical already: index the map directly rather than
	// canonicalise every name on every request.
	one := func(name string) string {
		vs := h[name]
		if len(vs) > 1 {
			f.err = fmt.Errorf("%s sent %d times", name, len(vs))
		}
		if len(vs) == 0 {
			return ""
		}
		return vs[0]
	}
	f.method = one("X-Forwarded-Method")
	f.proto = one("X-Forwarded-Proto")
	f.host = one("X-Forwarded-Host")
	f.uri = one("X-Forwarded-Uri")
	f.originalURL = one("X-Original-Url")
	f.originalURI = one("X-Original-Uri")
	f.originalMethod = one("X-Original-Method")
	f.redirect = one("X-Auth-Request-Redirect")
	if vs := h["X-Forwarded-For"]; len(vs) == 1 {
		f.forwardedFor = vs[0]
	} else {
		f.forwardedFor = strings.Join(vs, ",")
	}
	return f
}

var errBadForwarded = errors.New("malformed forwarded request headers")

// forwardedTarget builds the target of a forward-auth call from what a
// trusted proxy sent; f is nil when the peer is not trusted.
func (h *Handler) forwardedTarget(f *forwarded) (Target, error) {
	t := Target{Method: http.MethodGet, Scheme: h.public.Scheme, HostPort: h.public.Host, Host: normHost(h.public.Host), Path: "/", RawPath: "/"}
	if f == nil {
		return t, nil
	}
	if f.err != nil {
		return t, fmt.Errorf("%w: %v", errBadForwarded, f.err)
	}
	// Several headers may name the same thing (nginx sets X-Original-URI,
	// Traefik X-Forwarded-Uri, ingress-nginx X-Original-URL). A proxy passes
	// on what the client sent for the ones it does not set itself, so when
	// two are present they must agree; otherwise a client could pick the one
	// we believe.
	uris := []string{f.uri, f.originalURI}
	hosts := []string{f.host}
	protos := []string{f.proto}
	if f.originalURL != "" {
		u, err := url.Parse(f.originalURL)
		if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" {
			return t, fmt.Errorf("%w: X-Original-URL %q", errBadForwarded, truncate(f.originalURL, 128))
		}
		uris = append(uris, u.RequestURI())
		hosts = append(hosts, u.Host)
		protos = append(protos, u.Scheme)
	}
	uri, ok1 := agree(uris, false)
	host, ok2 := agree(hosts, true)
	proto, ok3 := agree(protos, true)
	method, ok4 := agree([]string{f.method, f.originalMethod}, true)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return t, fmt.Errorf("%w: the forwarded headers name different requests", errBadForwarded)
	}
	f.proto, f.host = proto, host
	if m := method; m != "" {
		if !isToken(m) {
			return t, fmt.Errorf("%w: method %q", errBadForwarded, truncate(m, 32))
		}
		t.Method = strings.ToUpper(m)
	}
	if f.proto != "" {
		p := strings.ToLower(strings.TrimSpace(f.proto))
		if p != "http" && p != "https" {
			return t, fmt.Errorf("%w: proto %q", errBadForwarded, truncate(f.proto, 32))
		}
		t.Scheme = p
	}
	if f.host != "" {
		if !validHostPort(f.host) {
			return t, fmt.Errorf("%w: host %q", errBadForwarded, truncate(f.host, 128))
		}
		t.HostPort, t.Host = strings.ToLower(f.host), normHost(f.host)
	}
	if uri != "" {
		path, query, _ := strings.Cut(uri, "?")
		if i := strings.IndexByte(query, '#'); i >= 0 {
			query = query[:i]
		}
		p, raw, err := h.routes.canonicalFor(t.Host, path)
		if err != nil {
			return t, err
		}
		t.Path, t.RawPath, t.Query = p, raw, query
	}
	return t, nil
}

// agree returns the one value the non-empty entries share, or false when
// they differ (ignoring case when fold is set: hosts, schemes, methods).
func agree(vs []string, fold bool) (string, bool) {
	out := ""
	for _, v := range vs {
		switch {
		case v == "":
		case out == "":
			out = v
		case v != out && !(fold && strings.EqualFold(v, out)):
			return "", false
		}
	}
	return out, true
}

// isToken reports whether s is an HTTP method token (RFC 9110 §5.6.2),
// restricted to letters as real methods are.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// validHostPort accepts host[:port] with an ASCII DNS name, an IPv4
// address or a bracketed IPv6 address; nothing that could smuggle a path,
// userinfo or whitespace.
func validHostPort(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if _, err := netip.ParseAddr(s[1:end]); err != nil {
			return false
		}
		host, port = "", strings.TrimPrefix(s[end+1:], ":")
		if s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":") {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' || i >= 5 {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
