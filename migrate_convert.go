package main

// migrate_convert.go holds the converters of optionTable's rows that do
// more than copy a value.

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// apply runs the table over the options read, then fills what a
// Portcullis configuration needs and oauth2-proxy left implicit.
func (m *migration) apply() {
	for i := range optionTable {
		o := &optionTable[i]
		if v, ok := m.opts[o.toml]; ok {
			m.applyOne(o, v)
		}
	}
	m.finish()
}

func (m *migration) applyOne(o *option, v optValue) {
	switch {
	case o.conv != nil:
		o.conv(m, o, v)
	case o.cov == covUnsupported:
		m.unsupported(o, v)
	default:
		m.set(o.key, typed(o, v), "from "+v.src)
	}
}

// unsupported reports an option with no equivalent, unless its value
// is one Portcullis behaves like anyway.
func (m *migration) unsupported(o *option, v optValue) {
	if v.str() == o.dflt {
		return
	}
	m.note(noteNoEquivalent, v.src, o.note)
}

// typed is the value as the Portcullis key's type.
func typed(o *option, v optValue) any {
	switch o.typ {
	case tBool:
		return v.on()
	case tList:
		return v.vals
	case tInt:
		n, _ := strconv.Atoi(v.str())
		return n
	}
	return v.str()
}

// secretRef is what is written for a secret: the variable it came from,
// or OAUTH2_PROXY_<KEY>, which the operator must then set.
func (m *migration) secretRef(o *option, v optValue) string {
	if v.env != "" {
		return "${" + v.env + "}"
	}
	m.note(noteManual, v.src, fmt.Sprintf("set %s in Portcullis's environment to that secret (it was not copied)", o.env()))
	return "${" + o.env() + "}"
}

// prov is the path of the migrated provider, made on first use from
// --provider (oauth2-proxy's default: google).
func (m *migration) prov() string {
	if m.providers == 0 {
		m.providers = 1
		v, ok := m.opts["provider"]
		if !ok {
			v = optValue{vals: []string{"google"}, src: "oauth2-proxy's default provider"}
		}
		m.setProviderType("providers.0", v.str(), v.src)
	}
	return "providers.0"
}

// providerTypes maps oauth2-proxy's provider names to Portcullis types.
var providerTypes = map[string]string{
	"oidc": "oidc", "keycloak-oidc": "keycloak", "keycloak": "keycloak", "google": "google",
	"github": "github", "gitlab": "gitlab", "azure": "entra", "entra-id": "entra", "adfs": "oidc",
}

func (m *migration) setProviderType(p, name, src string) {
	t, ok := providerTypes[name]
	switch {
	case !ok:
		t = "oidc"
		m.note(noteNoEquivalent, src, fmt.Sprintf("provider %q has no Portcullis type; written as oidc: give issuer_url if it speaks OpenID Connect", name))
	case name == "keycloak" || name == "azure" || name == "adfs":
		m.note(noteChanged, src, fmt.Sprintf("provider %s becomes type %s (OpenID Connect)", name, t))
	}
	m.set(p+".id", t, "names the provider in sessions and logs")
	m.set(p+".type", t, "from "+src+" ("+name+")")
	if t == "entra" {
		m.set(p+".tenant", "common", "oauth2-proxy's default tenant; set your tenant ID")
		m.note(noteManual, src, "tenant common admits every Entra ID tenant, as oauth2-proxy's default did: set providers[].tenant to yours")
	}
}

func (m *migration) provType() string {
	t, _ := m.lookup(m.prov() + ".type").(string)
	return t
}

func convProvider(m *migration, o *option, v optValue) { m.prov() }

// convProviderKey copies a value to the migrated provider.
func convProviderKey(m *migration, o *option, v optValue) {
	key := strings.TrimPrefix(o.key, "providers[].")
	t := m.provType()
	switch {
	case key == "issuer_url" && t == "github":
		m.note(noteNoEquivalent, v.src, "type github has no issuer (GitHub Enterprise Server: providers[].base_url)")
		return
	case key == "issuer_url" && t == "entra":
		m.setEntraTenant(v)
		return
	case key == "tenant" || key == "tenants":
		if t != "entra" {
			m.note(noteNoEquivalent, v.src, "applies to Entra ID only")
			return
		}
	case key == "insecure_allow_unverified_email" && v.on():
		m.note(noteChanged, v.src, "kept: anyone who can set an unverified email at the provider can claim it")
	case key == "client_secret_file" && m.opts["client_secret"].str() != "":
		m.note(noteChanged, v.src, "not written: oauth2-proxy used --client-secret when both were set, and so does this configuration")
		return
	case (key == "email_claim" || key == "user_claim") && t == "github":
		m.note(noteNoEquivalent, v.src, "type github reads GitHub's /user")
		return
	}
	m.set(m.prov()+"."+key, typed(o, v), "from "+v.src)
}

// setEntraTenant reads the tenant from an Entra issuer URL.
func (m *migration) setEntraTenant(v optValue) {
	u, err := url.Parse(v.str())
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if err != nil || u.Host != "login.microsoftonline.com" || len(parts) == 0 || parts[0] == "" {
		m.note(noteManual, v.src, "not an Entra ID issuer: set providers[].tenant")
		return
	}
	m.set(m.prov()+".tenant", parts[0], "from "+v.src+" (the issuer follows from the tenant)")
	// The tenant is known now: drop the step asking for it.
	m.notes = slices.DeleteFunc(m.notes, func(n note) bool {
		return n.kind == noteManual && strings.HasPrefix(n.text, "tenant common")
	})
}

func convSecretProvider(m *migration, o *option, v optValue) {
	m.set(m.prov()+".client_secret", m.secretRef(o, v), "from "+v.src+" (not copied)")
}

func convScope(m *migration, o *option, v optValue) {
	m.set(m.prov()+".scopes", strings.Fields(v.str()), "from "+v.src)
}

func convPKCE(m *migration, o *option, v optValue) {
	if v.str() != "S256" && v.str() != "" {
		m.note(noteChanged, v.src, "Portcullis always uses PKCE with S256")
	}
}

func convEndpoint(m *migration, o *option, v optValue) {
	if !m.opts["skip_oidc_discovery"].on() {
		m.note(noteChanged, v.src, "not written: Portcullis takes the endpoints from discovery unless skip_discovery is set")
		return
	}
	convProviderKey(m, o, v)
}

func convSkipProfile(m *migration, o *option, v optValue) {
	if v.on() && m.provType() != "github" {
		m.set(m.prov()+".userinfo", "never", "from "+v.src)
	}
}

func convCAFile(m *migration, o *option, v optValue) {
	if len(v.vals) == 0 {
		return
	}
	m.set(m.prov()+".ca_file", v.vals[0], "from "+v.src)
	if len(v.vals) > 1 {
		m.note(noteManual, v.src, "only the first CA file is written: concatenate the PEM files into it")
	}
}

func convSystemTrust(m *migration, o *option, v optValue) {
	if v.on() && len(m.opts["provider_ca_files"].vals) > 0 {
		m.note(noteChanged, v.src, "with ca_file Portcullis trusts only that file, not the system roots too: add them to it if needed")
	}
}

func convSkipButton(m *migration, o *option, v optValue) {
	if !v.on() {
		m.note(noteChanged, v.src, "with one provider Portcullis goes straight to it, without a button")
	}
}

// convGitHubOrg: --github-org alone → orgs; with --github-team → teams
// org/slug, since oauth2-proxy then admitted members of those teams only.
func convGitHubOrg(m *migration, o *option, v optValue) {
	if o.toml == "github_team" {
		return // read with github_org
	}
	if m.provType() != "github" {
		m.note(noteNoEquivalent, v.src, "applies to type github only")
		return
	}
	org := v.str()
	team, ok := m.opts["github_team"]
	if !ok {
		m.set(m.prov()+".orgs", []string{org}, "from "+v.src)
		return
	}
	var teams []string
	for _, t := range splitList(team.str()) {
		teams = append(teams, org+"/"+t)
	}
	m.set(m.prov()+".teams", teams, "from "+v.src+" and "+team.src)
}

func convEmailDomains(m *migration, o *option, v optValue) {} // finishPolicy reads them
func convGroups(m *migration, o *option, v optValue) { // finishPolicy reads them
	if o.toml == "gitlab_groups" && m.provType() != "gitlab" {
		m.note(noteNoEquivalent, v.src, "applies to type gitlab only")
		delete(m.opts, o.toml)
	}
}

func convWebsockets(m *migration, o *option, v optValue) {
	if !v.on() {
		m.note(noteChanged, v.src, "Portcullis proxies WebSocket upgrades always")
	}
}

func convRefuseInsecure(m *migration, o *option, v optValue) {
	if v.on() {
		m.note(noteNoEquivalent, v.src, "refused: certificate checks stay on; "+o.note)
	}
}

func convPreferEmail(m *migration, o *option, v optValue) {
	if v.on() {
		m.set("headers.user", "email", "from "+v.src)
	}
}

func convLogo(m *migration, o *option, v optValue) {
	s := v.str()
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "data:image/") {
		m.set("ui.logo_url", s, "from "+v.src)
		return
	}
	if s != "-" && s != "" {
		m.note(noteNoEquivalent, v.src, "a file path: ui.logo_url takes an https: or data:image URL")
	}
}

// parseDuration reads a duration the way oauth2-proxy's flags do.
func parseDuration(v optValue) (time.Duration, error) {
	s := v.str()
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

func convCookieExpire(m *migration, o *option, v optValue) {
	d, err := parseDuration(v)
	switch {
	case err != nil:
		m.note(noteManual, v.src, "not a duration: set session.lifetime")
	case d == 0:
		m.note(noteNoEquivalent, v.src, "0 (a cookie that ends with the browser): session.lifetime is left at its 12h default")
	case d > 168*time.Hour:
		m.set("session.lifetime", "168h", fmt.Sprintf("from %s=%s; Portcullis allows at most 168h", v.src, v.str()))
		m.note(noteChanged, v.src, "sessions end after 168h at the latest")
	default:
		m.set("session.lifetime", v.str(), "from "+v.src)
	}
}

func convCookieRefresh(m *migration, o *option, v optValue) {
	if d, err := parseDuration(v); err == nil && d > 0 {
		m.note(noteChanged, v.src, "Portcullis refreshes tokens session.refresh_before (default 1m) they expire, not at a fixed age")
	}
}
