package main

// migrate_alpha.go reads oauth2-proxy's alpha configuration (the YAML
// given with --alpha-config): upstreamConfig, injectRequestHeaders,
// injectResponseHeaders, providers, server and metricsServer.

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// amap is a YAML mapping with lower-cased keys (oauth2-proxy's own docs
// spell server keys BindAddress and bindAddress both).
type amap map[string]any

func lowerKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := amap{}
		for k, e := range t {
			out[strings.ToLower(k)] = lowerKeys(e)
		}
		return out
	case []any:
		for i := range t {
			t[i] = lowerKeys(t[i])
		}
	}
	return v
}

func (a amap) m(k string) amap     { x, _ := a[k].(amap); return x }
func (a amap) list(k string) []any { x, _ := a[k].([]any); return x }
func (a amap) s(k string) string {
	if x, ok := a[k]; ok && x != nil {
		return fmt.Sprint(x)
	}
	return ""
}

func (a amap) strs(k string) []string {
	var out []string
	for _, e := range a.list(k) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

var alphaSections = map[string]bool{
	"upstreamconfig": true, "injectrequestheaders": true, "injectresponseheaders": true,
	"providers": true, "server": true, "metricsserver": true,
}

func (m *migration) applyAlpha(path string, data []byte) error {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%s is not YAML: %w", path, err)
	}
	a, _ := lowerKeys(raw).(amap)
	path = filepath.Base(path)
	m.alpha, m.alphaSrc = true, path
	for k := range a {
		if !alphaSections[k] {
			m.note(noteNoEquivalent, path+": "+k, "not an alpha section this version knows; ignored")
		}
	}
	for i, u := range a.m("upstreamconfig").list("upstreams") {
		up, _ := u.(amap)
		m.alphaUpstream(fmt.Sprintf("%s: upstreams[%d]", path, i), up)
	}
	for i, p := range a.list("providers") {
		pr, _ := p.(amap)
		m.alphaProvider(fmt.Sprintf("%s: providers[%d]", path, i), pr)
	}
	m.alphaHeaders(path+": injectRequestHeaders", a.list("injectrequestheaders"), false)
	m.alphaHeaders(path+": injectResponseHeaders", a.list("injectresponseheaders"), true)
	m.alphaServer(path, a.m("server"), a.m("metricsserver"))
	return nil
}

func (m *migration) alphaUpstream(src string, up amap) {
	if up.s("static") == "true" {
		m.note(noteNoEquivalent, src, "a static response: Portcullis proxies to http(s) only")
		return
	}
	if !m.addUpstream(up.s("uri"), src+".uri") {
		return
	}
	p := "upstreams." + strconv.Itoa(m.upstreams-1)
	if path := up.s("path"); path != "" {
		m.set(p+".path", path, "from "+src+".path")
	}
	if up.s("rewritetarget") != "" {
		m.note(noteNoEquivalent, src+".rewriteTarget", "paths are not rewritten; the path above is a prefix, not a regex")
	}
	for k, key := range map[string]string{"passhostheader": "pass_host_header", "flushinterval": "flush_interval", "timeout": "timeout"} {
		if v := up.s(k); v != "" {
			var val any = v
			if k == "passhostheader" {
				val = v == "true"
			}
			m.set(p+"."+key, val, "from "+src)
		}
	}
	if up.s("insecureskiptlsverify") == "true" {
		m.note(noteNoEquivalent, src+".insecureSkipTLSVerify", "refused: certificate checks stay on; give upstreams[].tls.ca_file")
	}
	if up.s("proxywebsockets") == "false" {
		m.note(noteChanged, src+".proxyWebSockets", "Portcullis proxies WebSocket upgrades always")
	}
}

// alphaProviderKeys are copied as they are: alpha key → Portcullis key.
var alphaProviderKeys = [][3]string{
	{"", "name", "name"}, {"", "clientid", "client_id"}, {"", "clientsecretfile", "client_secret_file"},
	{"oidcconfig", "issuerurl", "issuer_url"}, {"oidcconfig", "emailclaim", "email_claim"},
	{"oidcconfig", "groupsclaim", "groups_claim"}, {"oidcconfig", "useridclaim", "user_claim"},
}

func (m *migration) alphaProvider(src string, pr amap) {
	p := "providers." + strconv.Itoa(m.providers)
	m.providers++
	m.setProviderType(p, pr.s("provider"), src+".provider")
	if id := pr.s("id"); id != "" {
		m.set(p+".id", strings.NewReplacer(".", "-", "/", "-", " ", "-").Replace(id), "from "+src+".id")
	}
	for _, k := range alphaProviderKeys {
		sec := pr
		if k[0] != "" {
			sec = pr.m(k[0])
		}
		if v := sec.s(k[1]); v != "" {
			m.set(p+"."+k[2], v, "from "+src+"."+k[1])
		}
	}
	if tenant := pr.m("azureconfig").s("tenant"); tenant != "" {
		if t, _ := m.lookup(p + ".type").(string); t == "entra" {
			m.set(p+".tenant", tenant, "from "+src+".azureConfig.tenant")
		} else {
			m.note(noteNoEquivalent, src+".azureConfig", "applies to Entra ID only")
		}
	}
	if pr.s("clientsecret") != "" {
		env := "OAUTH2_PROXY_" + strings.ToUpper(strings.ReplaceAll(pr.s("id"), "-", "_")) + "_CLIENT_SECRET"
		m.set(p+".client_secret", "${"+env+"}", "from "+src+".clientSecret (not copied)")
		m.note(noteManual, src+".clientSecret", "set "+env+" in Portcullis's environment to that secret (it was not copied)")
	}
	if s := pr.s("scope"); s != "" {
		m.set(p+".scopes", strings.Fields(s), "from "+src+".scope")
	}
	oc := pr.m("oidcconfig")
	if aud := oc.strs("extraaudiences"); len(aud) > 0 {
		m.set(p+".audiences", aud, "from "+src+".oidcConfig.extraAudiences")
	}
	if oc.s("insecureallowunverifiedemail") == "true" {
		m.set(p+".insecure_allow_unverified_email", true, "from "+src+".oidcConfig.insecureAllowUnverifiedEmail")
		m.note(noteChanged, src, "kept insecureAllowUnverifiedEmail: anyone who can set an unverified email can claim it")
	}
	if oc.s("insecureskipissuerverification") == "true" {
		m.note(noteNoEquivalent, src+".oidcConfig.insecureSkipIssuerVerification", "refused: the issuer is always checked")
	}
	if g := pr.strs("allowedgroups"); len(g) > 0 {
		v := m.opts["allowed_groups"]
		v.vals, v.src = append(v.vals, g...), src+".allowedGroups"
		m.opts["allowed_groups"] = v
		m.note(noteChanged, v.src, "Portcullis's policy.groups applies to every provider's users, not only this one's: users of a provider without allowedGroups now need one of these groups too")
	}
	if ca := pr.strs("cafiles"); len(ca) > 0 {
		m.set(p+".ca_file", ca[0], "from "+src+".caFiles")
	}
}

// standardRequestHeaders are the identity headers Portcullis sends
// upstream itself.
var standardRequestHeaders = map[string]bool{
	"x-forwarded-user": true, "x-forwarded-email": true, "x-forwarded-groups": true,
	"x-forwarded-preferred-username": true, "x-auth-request-user": true, "x-auth-request-email": true,
	"x-auth-request-groups": true, "x-auth-request-preferred-username": true,
}

func (m *migration) alphaHeaders(src string, hs []any, response bool) {
	for _, h := range hs {
		hm, _ := h.(amap)
		name := strings.ToLower(hm.s("name"))
		claim := ""
		if vals := hm.list("values"); len(vals) > 0 {
			v0, _ := vals[0].(amap)
			claim = v0.s("claim")
		}
		switch {
		case standardRequestHeaders[name]:
			m.note(noteChanged, src+": "+hm.s("name"), "Portcullis sets it itself (docs/headers.md)")
		case name == "x-forwarded-access-token" && !response:
			for i := range m.upstreams {
				m.set("upstreams."+strconv.Itoa(i)+".pass_access_token", true, "from "+src+": X-Forwarded-Access-Token")
			}
		case name == "x-auth-request-access-token" && response:
			m.set("headers.auth_request_access_token", true, "from "+src+": X-Auth-Request-Access-Token")
		case name == "authorization" && claim == "id_token" && !response:
			for i := range m.upstreams {
				m.set("upstreams."+strconv.Itoa(i)+".pass_authorization_header", true, "from "+src+": Authorization: Bearer <ID token>")
			}
		case name == "authorization" && claim == "id_token":
			m.note(noteNoEquivalent, src+": Authorization", "forward-auth answers carry the access token (headers.auth_request_authorization), not the ID token")
		default:
			m.note(noteNoEquivalent, src+": "+hm.s("name"), "custom headers have no equivalent; the signed assertion (X-Portcullis-Assertion) carries the claims")
		}
	}
}

func (m *migration) alphaServer(path string, srv, metrics amap) {
	if a := srv.s("bindaddress"); a != "" && srv.s("securebindaddress") == "" {
		m.set("server.listen", hostPort(a), "from "+path+": server.bindAddress")
	}
	if a := srv.s("securebindaddress"); a != "" {
		m.set("server.listen", hostPort(a), "from "+path+": server.secureBindAddress")
		tls := srv.m("tls")
		for k, key := range map[string]string{"cert": "cert_file", "key": "key_file"} {
			if f := tls.m(k).s("fromfile"); f != "" {
				m.set("server.tls."+key, f, "from "+path+": server.tls."+k+".fromFile")
			} else {
				m.note(noteManual, path+": server.tls."+k, "give the PEM as a file: server.tls."+key)
			}
		}
		if srv.s("bindaddress") != "" {
			m.note(noteNoEquivalent, path+": server.bindAddress", "with a certificate Portcullis serves HTTPS only")
		}
	}
	if a := metrics.s("bindaddress"); a != "" {
		m.set("metrics.listen", hostPort(a), "from "+path+": metricsServer.bindAddress")
	}
	if metrics.s("securebindaddress") != "" {
		m.note(noteNoEquivalent, path+": metricsServer.secureBindAddress", "metrics are plain HTTP on a private listener")
	}
}
