package main

// migrate_upstream.go converts oauth2-proxy's upstream, server and
// policy options, and fills what Portcullis needs that oauth2-proxy left
// implicit.

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func convUpstreams(m *migration, o *option, v optValue) {
	if m.alpha {
		m.note(noteNoEquivalent, v.src, "ignored: the alpha configuration gives the upstreams")
		return
	}
	for _, raw := range v.vals {
		m.addUpstream(raw, v.src)
	}
}

// addUpstream writes one http(s) upstream: its URL's path is the prefix
// it serves, and the request path goes to the host unchanged.
func (m *migration) addUpstream(raw, src string) bool {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		m.note(noteManual, src, fmt.Sprintf("upstream %q is not a URL", raw))
		return false
	case u.Scheme == "static" && strings.Trim(u.Path, "/") == "" && strings.HasPrefix(u.Host, "2"):
		m.note(noteChanged, src, fmt.Sprintf("upstream %s (forward-auth only): Portcullis needs no upstream for /oauth2/auth; other paths get 404, not %s", raw, u.Host))
		return false
	case u.Scheme == "file" || u.Scheme == "static" || u.Scheme == "unix":
		m.note(noteNoEquivalent, src, fmt.Sprintf("upstream %s: Portcullis proxies to http(s) only; serve it from a web server behind it", raw))
		return false
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		m.note(noteManual, src, fmt.Sprintf("upstream %q is not an http(s) URL", raw))
		return false
	case u.User != nil:
		m.note(noteManual, src, fmt.Sprintf("upstream %s carries credentials: Portcullis refuses them in the URL", u.Redacted()))
		return false
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	p := "upstreams." + strconv.Itoa(m.upstreams)
	m.upstreams++
	m.set(p+".path", path, "from "+src+" ("+u.Redacted()+")")
	m.set(p+".url", u.Scheme+"://"+u.Host, "the request path is kept, as oauth2-proxy did")
	if !strings.HasSuffix(path, "/") {
		m.note(noteChanged, src, fmt.Sprintf("upstream path %s matched only %s exactly in oauth2-proxy; here it is a prefix (%s/…)", path, path, path))
	}
	return true
}

// convEachUpstream sets the row's key on every upstream written.
func convEachUpstream(m *migration, o *option, v optValue) {
	key := strings.TrimPrefix(o.key, "upstreams[].")
	for i := range m.upstreams {
		m.set("upstreams."+strconv.Itoa(i)+"."+key, typed(o, v), "from "+v.src)
	}
}

func convPassAccessToken(m *migration, o *option, v optValue) {
	convEachUpstream(m, o, v)
	if v.on() && m.opts["set_xauthrequest"].on() {
		m.set("headers.auth_request_access_token", true, "from "+v.src+" with --set-xauthrequest")
	}
}

// hostPort drops an address's http:// or https://.
func hostPort(s string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(s), "http://"), "https://")
}

func convListen(m *migration, o *option, v optValue) {
	s := strings.ToLower(v.str())
	switch {
	case strings.HasPrefix(s, "unix://") || strings.HasPrefix(s, "fd:"):
		m.note(noteNoEquivalent, v.src, "Portcullis listens on TCP only")
	case m.opts["tls_cert_file"].str() != "":
		if !m.opts["force_https"].on() {
			m.note(noteNoEquivalent, v.src, "with a certificate Portcullis serves HTTPS only; the plain listener is dropped")
		}
	default:
		m.set("server.listen", hostPort(s), "from "+v.src)
	}
}

func convHTTPSAddress(m *migration, o *option, v optValue) {
	if m.opts["tls_cert_file"].str() == "" {
		return
	}
	m.set("server.listen", hostPort(v.str()), "from "+v.src)
}

func convTLSMin(m *migration, o *option, v optValue) {
	s := strings.TrimPrefix(strings.ToUpper(v.str()), "TLS")
	if s != "1.2" && s != "1.3" {
		m.note(noteManual, v.src, "TLS1.2 or TLS1.3")
		return
	}
	m.set("server.tls.min_version", s, "from "+v.src)
}

func convForceHTTPS(m *migration, o *option, v optValue) {
	if !v.on() {
		return
	}
	if m.opts["tls_cert_file"].str() == "" {
		m.note(noteChanged, v.src, "TLS ends before Portcullis: let that proxy redirect HTTP to HTTPS")
		return
	}
	addr := ":80"
	if h, ok := m.opts["http_address"]; ok {
		addr = hostPort(h.str())
	}
	m.set("server.tls.redirect_http", addr, "from "+v.src)
}

// convRedirectURL: public_url is the redirect URL without prefix/callback.
func convRedirectURL(m *migration, o *option, v optValue) {
	prefix := "/oauth2"
	if p, ok := m.opts["proxy_prefix"]; ok {
		prefix = p.str()
	}
	u, err := url.Parse(v.str())
	base, ok := "", false
	if err == nil && u.Host != "" {
		base, ok = strings.CutSuffix(u.Path, prefix+"/callback")
	}
	if !ok || (u.Scheme != "https" && u.Scheme != "http") {
		m.note(noteManual, v.src, "not an absolute URL ending in "+prefix+"/callback: set server.public_url")
		return
	}
	if base != "" {
		m.note(noteManual, v.src, "public_url has a path: Portcullis serves the prefix at the root; check it")
	}
	m.set("server.public_url", u.Scheme+"://"+u.Host+base, fmt.Sprintf("from %s (register %s as the redirect URI, as before)", v.src, v.str()))
}

// trustedProxyPlaceholder is written for --reverse-proxy: the narrowest
// address, so that nothing is trusted that oauth2-proxy's operator did not.
const trustedProxyPlaceholder = "127.0.0.1/32"

func convReverseProxy(m *migration, o *option, v optValue) {
	if !v.on() {
		return
	}
	m.set("server.trusted_proxies", []string{trustedProxyPlaceholder}, "PLACEHOLDER from "+v.src+": list your proxies' CIDRs")
	m.note(noteManual, v.src, "oauth2-proxy trusted any sender's X-Forwarded-*; list the proxies' addresses in server.trusted_proxies (a placeholder, "+trustedProxyPlaceholder+", is written)")
}

func convWhitelist(m *migration, o *option, v optValue) {
	var hosts []string
	for _, d := range v.vals {
		h := strings.TrimPrefix(d, "*")
		if base, ok := strings.CutSuffix(h, ":*"); ok {
			h = base
			m.note(noteChanged, v.src, d+": any port has no equivalent; written without a port (the default port only)")
		}
		hosts = append(hosts, h)
	}
	m.set("server.allowed_redirect_hosts", hosts, "from "+v.src)
}

// convRealClientIP carries real_client_ip_header over when Portcullis
// knows the header (X-ProxyUser-IP and CF-Connecting-IP it does not).
func convRealClientIP(m *migration, o *option, v optValue) {
	switch strings.ToLower(v.str()) {
	case "x-forwarded-for", "x-real-ip", "forwarded":
		m.set(o.key, v.str(), "from "+v.src)
	default:
		m.note(noteNoEquivalent, v.src, v.str()+": Portcullis reads X-Forwarded-For, X-Real-IP or Forwarded")
	}
}

// finish fills what Portcullis needs and oauth2-proxy left implicit.
func (m *migration) finish() {
	if m.providers == 0 {
		m.prov()
	}
	m.finishPolicy()
	if m.lookup("server.public_url") == nil {
		m.set("server.public_url", "https://portcullis.example.com", "PLACEHOLDER: no --redirect-url; where browsers reach Portcullis")
		m.note(noteManual, "server.public_url", "set it to the URL browsers reach Portcullis at (oauth2-proxy guessed it from each request)")
	}
	if m.lookup("session.cookie.secrets") == nil {
		m.set("session.cookie.secrets", []string{"${" + cookieSecretVar + "}"}, "oauth2-proxy had no --cookie-secret")
	}
	m.note(noteManual, "session.cookie.secrets", "set "+cookieSecretVar+" to a new secret: openssl rand -base64 32 (users sign in once more)")
}

// finishPolicy writes who may pass. oauth2-proxy required the email
// domain AND (when given) a group; Portcullis admits on any entry, so
// both are only written when one of them admits everybody.
func (m *migration) finishPolicy() {
	var domains, groups []string
	src := "--email-domain"
	for _, d := range m.opts["email_domains"].vals {
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			d = "." + rest
		}
		domains = append(domains, d)
	}
	if v, ok := m.opts["email_domains"]; ok {
		src = v.src
	}
	gsrc := ""
	for _, k := range []string{"allowed_groups", "gitlab_groups"} {
		if v, ok := m.opts[k]; ok {
			groups, gsrc = append(groups, v.vals...), v.src
		}
	}
	anyone := slices.Contains(domains, "*")
	switch {
	case len(domains) == 0 && len(groups) == 0:
		m.note(noteManual, "policy", "no --email-domain: oauth2-proxy refused to start; Portcullis admits nobody until policy names who may pass")
	case len(groups) == 0:
		c := "from " + src
		if anyone {
			c += ": \"*\" admits every signed-in user, as oauth2-proxy did"
		}
		m.set("policy.email_domains", domains, c)
	case len(domains) == 0 || anyone:
		m.set("policy.groups", groups, "from "+gsrc+" (with --email-domain=*: members of these groups)")
		m.addGroupsScope(gsrc)
	default:
		m.set("policy.groups", []string{}, "NOT MIGRATED: see the manual steps")
		m.note(noteManual, gsrc, fmt.Sprintf("oauth2-proxy admitted members of %v whose email is in %v; Portcullis admits on any one entry, so neither is written: choose policy.groups or policy.email_domains (or per-route rules)", groups, domains))
	}
}

// addGroupsScope: oauth2-proxy's oidc provider asked for the groups
// scope with --allowed-group when --scope was not given.
func (m *migration) addGroupsScope(src string) {
	if _, ok := m.opts["scope"]; ok || m.provType() != "oidc" {
		return
	}
	m.set(m.prov()+".scopes", []string{"openid", "email", "profile", "groups"}, "oauth2-proxy added groups for "+src)
}
