package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/session"
)

// HeadersConfig is the `headers` section: what upstreams are told.
type HeadersConfig struct {
	// User picks the X-Forwarded-User (and X-Auth-Request-User) value:
	// subject (default, the only stable identifier: OpenID Connect Core
	// §5.7), preferred_username or email. The latter two fall back to
	// subject when absent.
	User string `yaml:"user"`
	// AuthRequestAccessToken adds X-Auth-Request-Access-Token to
	// forward-auth answers.
	AuthRequestAccessToken bool `yaml:"auth_request_access_token"`
	// AuthRequestAuthorization adds Authorization: Bearer <access token>
	// to forward-auth answers.
	AuthRequestAuthorization bool `yaml:"auth_request_authorization"`
	// PassUserHeaders sends X-Forwarded-User, -Email, -Groups and
	// -Preferred-Username to upstreams (default true, as oauth2-proxy's
	// pass_user_headers). false sends none of them; the signed assertion
	// still goes unless an upstream disables it.
	PassUserHeaders *bool `yaml:"pass_user_headers"`
	// SetXAuthRequest also sends the X-Auth-Request-User, -Email, -Groups
	// and -Preferred-Username copies (and X-Auth-Request-Access-Token with
	// pass_access_token) to upstreams in reverse-proxy mode, for apps
	// written against an nginx auth_request setup. Forward-auth answers
	// always carry them. Default false.
	SetXAuthRequest bool `yaml:"set_xauthrequest"`
}

// Identity headers the gateway sets on upstream requests.
const (
	hdrUser              = "X-Forwarded-User"
	hdrEmail             = "X-Forwarded-Email"
	hdrGroups            = "X-Forwarded-Groups"
	hdrPreferredUsername = "X-Forwarded-Preferred-Username"
	hdrAccessToken       = "X-Forwarded-Access-Token"
	hdrRequestID         = "X-Request-Id"
)

// managedHeaders are removed from every incoming request before anything
// looks at it, in every spelling: an upstream (or a framework mapping
// X_Forwarded_Email to HTTP_X_FORWARDED_EMAIL) must only ever see values the
// gateway set (RFC 9700 §4.13; oauth2-proxy CVE-2025-64484). The list covers
// what we set, what forward-auth sets, and what common apps trust from an
// auth proxy (Grafana's X-WEBAUTH-USER, REMOTE_USER-style headers), plus
// the URL-override headers some frameworks honour.
var managedHeaders = []string{
	hdrUser, hdrEmail, hdrGroups, hdrPreferredUsername, hdrAccessToken,
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username", "X-Auth-Request-Access-Token", "X-Auth-Request-Redirect",
	"X-Portcullis-Assertion", "X-Forwarded-Name",
	"Remote-User", "X-Remote-User", "X-Webauth-User", "X-Webauth-Email", "X-Auth-User",
	"X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-For", "X-Forwarded-Server", "X-Forwarded-Ssl",
	"X-Real-Ip", "Forwarded", "X-Request-Id",
}

// targetOverrideHeaders name another request target, host or scheme than
// the one the gateway judged, and some frameworks and proxies believe them
// over the request line: Symfony and Zend (X-Original-URL, X-Rewrite-URL),
// IIS URL Rewrite, Envoy, Spring's ForwardedHeaderFilter (X-Forwarded-
// Prefix), Rack and Django (X-Forwarded-Scheme, X-Url-Scheme, Front-End-
// Https). The gateway sets none of them, so they are removed from every
// client request, in every spelling, like the identity headers
// (RFC 9700 §4.13). X-Original-Method is here too: nothing reads it as an
// override the gateway could judge, so no client may send it.
var targetOverrideHeaders = []string{
	"X-Original-Url", "X-Original-Uri", "X-Original-Path", "X-Original-Request-Uri",
	"X-Rewrite-Url", "X-Override-Url", "X-Http-Destinationurl", "X-Proxy-Url",
	"X-Forwarded-Prefix", "X-Forwarded-Path", "X-Envoy-Original-Path", "X-Envoy-Original-Url",
	"X-Original-Host", "X-Host", "X-Http-Host-Override", "X-Forwarded-Scheme",
	"X-Forwarded-Protocol", "X-Url-Scheme", "X-Scheme", "Front-End-Https", "X-Original-Method",
}

// methodOverrideHeaders turn one HTTP method into another in many
// frameworks (Express method-override, Laravel, Symfony, Rails). A request
// carrying one is judged for every method it names: a POST that may pass
// with X-HTTP-Method-Override: DELETE passes only if a DELETE may. In
// reverse-proxy mode they are then removed before the upstream sees the
// request; in forward-auth mode the ingress forwards the client's request
// itself, so judging every method named is the whole defence there.
var methodOverrideHeaders = newHeaderSet("X-Http-Method-Override", "X-Http-Method", "X-Method-Override")

// headerSet matches header names after normalisation: lower case, "_" as
// "-". Built once; matching a name allocates nothing, and most names a
// request carries (Accept, Cookie, User-Agent) are ruled out by their
// first byte and length before any lookup.
type headerSet struct {
	names map[string]struct{}
	// lengths[c] has bit n set when a name of length n starts with the
	// normalised byte c; names of 64 bytes or more are always looked up.
	lengths [256]uint64
}

func newHeaderSet(names ...string) headerSet {
	s := headerSet{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		n = normHeader(n)
		s.names[n] = struct{}{}
		if n != "" && len(n) < 64 {
			s.lengths[n[0]] |= 1 << len(n)
		}
	}
	return s
}

// normByte is one byte of a normalised header name.
func normByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

func normHeader(n string) string {
	return strings.ReplaceAll(strings.ToLower(n), "_", "-")
}

func (s headerSet) has(name string) bool {
	var buf [64]byte
	if len(name) >= len(buf) {
		_, ok := s.names[normHeader(name)]
		return ok
	}
	if name == "" || s.lengths[normByte(name[0])]&(1<<len(name)) == 0 {
		return false
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		b[i] = normByte(name[i])
	}
	_, ok := s.names[string(b)] // the compiler does not allocate for this lookup
	return ok
}

// strip deletes every header whose normalised name is in s.
func (s headerSet) strip(h http.Header) {
	for k := range h {
		if s.has(k) {
			delete(h, k)
		}
	}
}

// identityHeaders writes the identity of s onto h (already stripped).
func (h *Handler) identityHeaders(ctx context.Context, out http.Header, s *session.Session, up *upstream) {
	vals := make(headerValues, 0, 6)
	set := func(name, v string) { out[name] = vals.one(v) }
	if *h.cfg.Headers.PassUserHeaders {
		h.identityValues(s, set, nil, hdrUser, hdrEmail, hdrGroups, hdrPreferredUsername)
	}
	if up.cfg.PassAccessToken && s.AccessToken != "" {
		out[hdrAccessToken] = vals.one(s.AccessToken)
	}
	if h.cfg.Headers.SetXAuthRequest {
		h.identityValues(s, set, nil, hdrAuthUser, hdrAuthEmail, hdrAuthGroups, hdrAuthPreferredUsername)
		if up.cfg.PassAccessToken && s.AccessToken != "" {
			out[hdrAuthAccessToken] = vals.one(s.AccessToken)
		}
	}
	if up.cfg.PassAccessTokenBearer && s.AccessToken != "" {
		out["Authorization"] = vals.one("Bearer " + s.AccessToken)
	}
	if up.cfg.PassAuthorizationHeader {
		if tok, why := h.liveIDToken(s); why != "" {
			h.log.LogAttrs(ctx, slog.LevelDebug, "pass_authorization_header: no Authorization header sent",
				slog.String("upstream", up.prefix), slog.String("provider", s.Provider), slog.String("why", why))
		} else {
			out["Authorization"] = vals.one("Bearer " + tok)
		}
	}
}

// liveIDToken is the session's ID token if it may still be sent as a
// bearer: present and its exp (RFC 7519 §4.1.4, "MUST NOT be accepted for
// processing" on or after it) in the future. Not verified again: it was
// verified at sign-in or refresh (OpenID Connect Core §3.1.3.7, §12.2)
// and comes from the sealed session. Otherwise why says what is missing.
// oauth2-proxy sends an expired one; we fail closed.
func (h *Handler) liveIDToken(s *session.Session) (tok, why string) {
	if s.IDToken == "" {
		return "", "the session has no ID token (the provider sent none, or it is not OpenID Connect)"
	}
	exp, ok := jwtExpiry(s.IDToken)
	if !ok {
		return "", "the ID token carries no readable exp"
	}
	if !h.now().Before(exp) {
		return "", "the ID token has expired (a refresh renews it when the provider returns a new one)"
	}
	return s.IDToken, ""
}

// jwtExpiry reads the exp claim of a compact JWS (RFC 7515 §7.1) without
// checking its signature: a NumericDate, seconds since the epoch, possibly
// with a fraction (RFC 7519 §2).
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"` // a JSON number, never a string
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f := *claims.Exp
	if f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true
}

// identityValues calls set for each identity header of s under the given
// names (user, email, groups, preferred username), leaving out every value
// an upstream could read as something else (see ambiguous): a single value
// is then not sent at all, a group is left out of the list. dropped, when
// not nil, hears of each value left out ("user", "email",
// "preferred_username", "group"): at sign-in and refresh they are logged
// and counted (noteAmbiguous). The signed assertion carries the groups as
// a JSON array and is not affected.
func (h *Handler) identityValues(s *session.Session, set, dropped func(name, v string), user, email, groups, preferred string) {
	single := func(name, field, v string) {
		switch {
		case !ambiguous(v, false):
			set(name, v)
		case dropped != nil:
			dropped(field, v)
		}
	}
	single(user, "user", h.userValue(s))
	if s.Email != "" && s.EmailVerified { // an address the provider did not verify is not an identity (OpenID Connect Core §5.1)
		single(email, "email", s.Email)
	}
	if v := groupList(s.Groups, dropped); v != "" {
		set(groups, v)
	}
	if s.PreferredUsername != "" {
		single(preferred, "preferred_username", s.PreferredUsername)
	}
}

// ambiguous reports whether v would not reach an upstream as itself in a
// header field, or, with inList, as one element of a comma-separated
// list: empty; a control byte (net/http refuses or rewrites those); a
// leading or trailing space or tab, which every HTTP parser trims
// (RFC 9110 §5.5: "admin " arrives as "admin"); and in a list a comma or
// a double quote, the list delimiter and the quoted-string that would
// hide one (RFC 9110 §5.6.1, §5.6.4): "eng,admins" must not arrive as
// "eng" and "admins".
func ambiguous(v string, inList bool) bool {
	if v == "" {
		return true
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return true
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return true
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || inList && (c == ',' || c == '"') {
			return true
		}
	}
	return false
}

// groupList is the X-Forwarded-Groups value: the groups joined with ","
// and nothing else, every ambiguous one left out (and told to dropped,
// when not nil); "" when none is left.
func groupList(groups []string, dropped func(field, v string)) string {
	for i, g := range groups {
		if ambiguous(g, true) {
			kept := slices.Clone(groups[:i])
			for _, g := range groups[i:] {
				switch {
				case !ambiguous(g, true):
					kept = append(kept, g)
				case dropped != nil:
					dropped("group", g)
				}
			}
			return strings.Join(kept, ",")
		}
	}
	return strings.Join(groups, ",")
}

// noteAmbiguous logs and counts, once per sign-in or refresh, the identity
// values of s that upstreams will not receive in headers.
func (h *Handler) noteAmbiguous(ctx context.Context, rq *request, s *session.Session, event string) {
	var fields, groups []string
	h.identityValues(s, func(string, string) {}, func(field, v string) {
		if field == "group" {
			groups = append(groups, strconv.Quote(truncate(v, 64)))
			if len(groups) > 1 {
				return
			}
		}
		fields = append(fields, field)
	}, "", "", "", "")
	if len(fields) == 0 {
		return
	}
	for _, f := range fields {
		h.metrics.identityDropped(f)
	}
	h.log.LogAttrs(ctx, slog.LevelWarn, "identity values left out of the upstream headers: they would be read as other values (see docs/headers.md)",
		slog.String("id", rq.id), slog.String("event", event), slog.String("provider", s.Provider), slog.String("sub", s.Subject),
		slog.Any("fields", fields), slog.Any("groups", groups))
}

// headerValues hands out one-value header slices carved from one backing
// array, one allocation for all of a request's identity headers. Each
// slice is capped at its one element, so an append elsewhere copies
// rather than writing into its neighbour.
type headerValues []string

func (hv *headerValues) one(v string) []string {
	*hv = append(*hv, v)
	n := len(*hv)
	return (*hv)[n-1 : n : n]
}

// userValue is the X-Forwarded-User value: the provider's user_claim
// when it has one, else the claim headers.user picks.
func (h *Handler) userValue(s *session.Session) string {
	if s.User != "" {
		return s.User
	}
	switch h.cfg.Headers.User {
	case "email":
		if s.Email != "" {
			return s.Email
		}
	case "preferred_username":
		if s.PreferredUsername != "" {
			return s.PreferredUsername
		}
	}
	return s.Subject
}

// stripGatewayCookies removes the gateway's own cookies (session chunks and
// login cookies) from the Cookie headers, keeping every other pair byte for
// byte, and reports whether it removed any. The session is the gateway's
// credential, not the app's.
func stripGatewayCookies(h http.Header, bases []string) bool {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return false
	}
	found := false
	for _, line := range lines {
		for _, base := range bases {
			if containsFold(line, base) {
				found = true
			}
		}
	}
	if !found {
		return false
	}
	var kept []string
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if isGatewayCookie(bases, strings.TrimSpace(name)) {
				continue
			}
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return true
	}
	joined := strings.Join(kept, "; ")
	changed := len(lines) != 1 || joined != lines[0]
	h["Cookie"] = []string{joined}
	return changed
}

// upstreamCookie is the Cookie header an application behind ext_authz
// should receive for a request whose headers are in: the client's minus
// the gateway's cookies, and whether that differs from what the client
// sent (kept "" then means: remove the header).
func (h *Handler) upstreamCookie(in http.Header) (kept string, changed bool) {
	lines := in["Cookie"]
	if len(lines) == 0 {
		return "", false
	}
	c := http.Header{"Cookie": lines}
	if !stripGatewayCookies(c, h.cookieBases) {
		return "", false
	}
	return c.Get("Cookie"), true
}

func containsFold(s, sub string) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func isGatewayCookie(bases []string, name string) bool {
	for _, b := range bases {
		if session.IsGatewayCookie(b, name) {
			return true
		}
	}
	return false
}

// dropGatewaySetCookies removes Set-Cookie lines from an upstream response
// that name one of the gateway's cookies.
func dropGatewaySetCookies(h http.Header, bases []string) {
	lines := h["Set-Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, l := range lines {
		name, _, _ := strings.Cut(l, "=")
		if !isGatewayCookie(bases, strings.TrimSpace(name)) {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(lines) {
		return
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
