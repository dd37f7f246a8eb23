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
	forwardedRFC             string // Forwarded (RFC 7239), every line joined
	realIP                   []string
	protoLines               []string // X-Forwarded-Proto, every line
	err                      error    // a header was present more than once
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
	f.forwardedFor = joinLines(h["X-Forwarded-For"])
	f.forwardedRFC = joinLines(h["Forwarded"])
	f.realIP, f.protoLines = h["X-Real-Ip"], h["X-Forwarded-Proto"]
	return f
}

// joinLines joins the lines of a list header (RFC 9110 §5.3: the same as
// one line with commas).
func joinLines(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return strings.Join(vs, ",")
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

// The headers server.real_client_ip_header may name.
const (
	hdrXForwardedFor = "X-Forwarded-For"
	hdrXRealIP       = "X-Real-Ip"
	hdrForwarded     = "Forwarded"
)

// realClientIPHeader checks server.real_client_ip_header and returns it in
// canonical form; empty is X-Forwarded-For (oauth2-proxy's default is
// X-Real-IP: docs/headers.md says so to migrating users).
func realClientIPHeader(name string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "x-forwarded-for":
		return hdrXForwardedFor, nil
	case "x-real-ip":
		return hdrXRealIP, nil
	case "forwarded":
		return hdrForwarded, nil
	}
	return "", fmt.Errorf("server.real_client_ip_header %q: want X-Forwarded-For, X-Real-Ip or Forwarded", name)
}

// client is who sent a request, as far as the gateway can tell.
type client struct {
	ip string // the client's address: the peer's, or what trusted proxies said
	// addr is ip when it is known for certain, invalid otherwise: a peer
	// that cannot be parsed, a trusted proxy that named nobody or sent an
	// entry that is not an address. Decisions (policy.trusted_ips) read
	// addr; logs and upstreams get ip, which is then the last hop known.
	addr   netip.Addr
	peer   string // the TCP peer's address
	scheme string // http or https, as the client used it
	// chain is the X-Forwarded-For a trusted peer sent, "" from others:
	// the upstream receives it with the peer appended.
	chain string
}

// clientOf works out the client of r. From a peer outside
// server.trusted_proxies (fwd nil) nothing in the request is believed: the
// client is the peer and the scheme that of the connection. From a trusted
// peer, the client is the one server.real_client_ip_header names, read
// right to left past trusted proxies only (RFC 7239 §5.2; the left part
// of a chain is whatever the client wrote), and the scheme what the proxy
// said it used. Logs, upstreams and policy.trusted_ips all read this one
// walk.
func (h *Handler) clientOf(r *http.Request, fwd *forwarded) client {
	c := client{peer: remoteIP(r), scheme: "http"}
	if r.TLS != nil {
		c.scheme = "https"
	}
	c.ip = c.peer
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().Zone() == "" {
		c.addr = ap.Addr().Unmap()
	}
	if fwd == nil {
		return c
	}
	c.chain = fwd.forwardedFor
	var (
		last     netip.Addr
		known    bool
		rfcProto string
	)
	switch h.realIP {
	case hdrXRealIP:
		// One value or none: a second X-Real-Ip is somebody's guess.
		if len(fwd.realIP) == 1 {
			last, known = parseNodeAddr(fwd.realIP[0])
		}
	case hdrForwarded:
		last, known, rfcProto = h.trusted.clientFromForwarded(fwd.forwardedRFC)
	default:
		last, known = h.trusted.clientFromChain(fwd.forwardedFor)
	}
	c.addr = netip.Addr{}
	if known {
		c.addr = last
	}
	if last.IsValid() {
		c.ip = last.String()
	}
	if p, ok := forwardedProto(fwd.protoLines); ok {
		c.scheme = p
	} else if p, ok := schemeOf(rfcProto); ok {
		c.scheme = p
	}
	return c
}

// forwardedProto is the scheme X-Forwarded-Proto names. A proxy that
// appends rather than replaces leaves the client's value on the left, so
// the right-most entry counts: the one the nearest proxy wrote.
func forwardedProto(lines []string) (string, bool) {
	if len(lines) == 0 {
		return "", false
	}
	v := lines[len(lines)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return schemeOf(v)
}

func schemeOf(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "http":
		return "http", true
	case "https":
		return "https", true
	}
	return "", false
}

// clientFromChain reads an X-Forwarded-For chain right to left: every
// address a trusted proxy added is skipped, and the first that is not a
// trusted proxy is the client (known). A chain of trusted proxies only
// ends at its left-most address, the client too. No header, or an entry
// that is not an address, leaves the client unknown: nothing left of it
// can be attributed to a trusted proxy. last is then the last hop known
// (invalid for none: the peer).
func (tp trustedProxies) clientFromChain(xff string) (last netip.Addr, known bool) {
	if strings.TrimSpace(xff) == "" {
		return netip.Addr{}, false
	}
	for rest := xff; ; {
		i := strings.LastIndexByte(rest, ',')
		a, ok := parseNodeAddr(rest[i+1:])
		if !ok {
			return last, false
		}
		last = a
		if !tp.contains(a) || i < 0 {
			return a, true
		}
		rest = rest[:i]
	}
}

// clientFromForwarded is clientFromChain for the for= parameters of a
// Forwarded header (RFC 7239 §5.2), and also returns the proto= of the
// element that names the client: written by the proxy the client talked
// to, it says which scheme the client used (§5.4). An obfuscated
// identifier or "unknown" (§6.2, §6.3) is a client whose address is
// withheld: unknown, as an entry that is not an address is.
func (tp trustedProxies) clientFromForwarded(v string) (last netip.Addr, known bool, proto string) {
	elems := splitForwarded(v)
	for i := len(elems) - 1; i >= 0; i-- {
		proto = elems[i]["proto"]
		a, ok := parseNodeAddr(elems[i]["for"])
		if !ok {
			return last, false, proto
		}
		last = a
		if !tp.contains(a) {
			return a, true, proto
		}
	}
	return last, last.IsValid(), proto
}

// parseNodeAddr reads a node address as proxies write it: an IP address,
// optionally with a port, IPv6 in brackets when it has one (RFC 7239 §6:
// "[2001:db8::1]:4711"). Obfuscated identifiers and "unknown" are not
// addresses.
func parseNodeAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (tp trustedProxies) contains(a netip.Addr) bool {
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// splitForwarded parses a Forwarded value (RFC 7239 §4): elements
// separated by commas, pairs by semicolons, each value a token or a
// quoted-string (RFC 9110 §5.6.4, which may hold commas and semicolons).
// Parameter names are case-insensitive (§4); a repeated one, or a
// malformed pair, voids its element (an empty map, which names no
// address and so stops any walk there).
func splitForwarded(v string) []map[string]string {
	var out []map[string]string
	elem, bad := map[string]string{}, false
	for i := 0; i <= len(v); {
		// One pair, or an empty one, up to ';', ',' or the end.
		j := i
		for j < len(v) && v[j] != '=' && v[j] != ';' && v[j] != ',' {
			j++
		}
		name := strings.ToLower(strings.TrimSpace(v[i:j]))
		val := ""
		if j < len(v) && v[j] == '=' {
			var ok bool
			val, j, ok = forwardedValue(v, j+1)
			if !ok || name == "" {
				bad = true
			} else if _, dup := elem[name]; dup {
				bad = true
			}
			elem[name] = val
		} else if name != "" {
			bad = true
		}
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		if j >= len(v) || v[j] == ',' {
			if bad {
				elem = map[string]string{}
			}
			out = append(out, elem)
			elem, bad = map[string]string{}, false
		} else if v[j] != ';' {
			bad = true // stray byte after a value
			for j < len(v) && v[j] != ',' && v[j] != ';' {
				j++
			}
			i = j // the next round ends the pair there
			continue
		}
		i = j + 1
	}
	return out
}

// forwardedValue reads a token or quoted-string starting at v[i] and
// returns it and where it ended.
func forwardedValue(v string, i int) (string, int, bool) {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	if i < len(v) && v[i] == '"' {
		var b strings.Builder
		for i++; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if i+1 >= len(v) {
					return "", i + 1, false
				}
				i++
				b.WriteByte(v[i])
			case '"':
				return b.String(), i + 1, true
			default:
				b.WriteByte(v[i])
			}
		}
		return "", i, false // unterminated
	}
	j := i
	for j < len(v) && v[j] != ';' && v[j] != ',' && v[j] != ' ' && v[j] != '\t' {
		if !isTchar(v[j]) {
			return "", j, false
		}
		j++
	}
	return v[i:j], j, j > i
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// setForwardedHeaders tells an upstream who the client is (out already
// stripped of every client copy): X-Forwarded-For is the chain a trusted
// proxy sent with the peer appended (the peer alone from anyone else),
// X-Real-Ip the client, X-Forwarded-Proto the scheme the client used, and
// Forwarded (RFC 7239 §4) one element saying the same: the gateway's
// verified view of the original request, not the chain it was told.
func setForwardedHeaders(out http.Header, c client, host string) {
	xff := c.peer
	if strings.TrimSpace(c.chain) != "" {
		xff = c.chain + ", " + c.peer
	}
	out[hdrXForwardedFor] = []string{xff}
	out["X-Forwarded-Host"] = []string{host}
	out["X-Forwarded-Proto"] = []string{c.scheme}
	out[hdrXRealIP] = []string{c.ip}
	out[hdrForwarded] = []string{"for=" + forwardedNode(c.ip) + ";host=" + forwardedQuote(host) + ";proto=" + c.scheme}
}

// forwardedNode writes an address as a Forwarded node (RFC 7239 §6): an
// IPv6 address in brackets, and so quoted.
func forwardedNode(ip string) string {
	if strings.IndexByte(ip, ':') >= 0 {
		return `"[` + ip + `]"`
	}
	return forwardedQuote(ip)
}

// forwardedQuote is v as a token when it is one, else as a quoted-string
// (RFC 9110 §5.6.4).
func forwardedQuote(v string) string {
	token := v != ""
	for i := 0; i < len(v) && token; i++ {
		token = isTchar(v[i])
	}
	if token {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
