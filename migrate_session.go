package main

// migrate_session.go converts oauth2-proxy's cookie and Redis options to
// the session section.

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// cookieSecretVar is the variable the new cookie secret is read from.
const cookieSecretVar = "PORTCULLIS_COOKIE_SECRET"

func convCookieSecret(m *migration, o *option, v optValue) {
	m.set("session.cookie.secrets", []string{"${" + cookieSecretVar + "}"}, "replaces "+v.src+" (not copied)")
}

func convCookieName(m *migration, o *option, v optValue) {
	name := strings.TrimPrefix(strings.TrimPrefix(v.str(), "__Host-"), "__Secure-")
	c := "from " + v.src
	if name != v.str() {
		c += " without its prefix: Portcullis adds __Host- itself when secure and host-only"
	}
	m.set("session.cookie.name", name, c)
}

func convCookieDomain(m *migration, o *option, v optValue) {
	switch len(v.vals) {
	case 0:
	case 1:
		m.set("session.cookie.domain", v.vals[0], "from "+v.src)
	default:
		// oauth2-proxy's cookie_domains: the longest one the request
		// host is under; session.cookie.domains picks the same way.
		m.set("session.cookie.domains", v.vals, "from "+v.src+": the longest one the request host is under")
	}
}

func convSameSite(m *migration, o *option, v optValue) {
	switch s := strings.ToLower(v.str()); s {
	case "lax", "strict":
		m.set("session.cookie.same_site", s, "from "+v.src)
	case "none":
		m.set("session.cookie.same_site", "lax", "from "+v.src+"=none; Portcullis refuses none")
		m.note(noteChanged, v.src, "SameSite=None becomes Lax: cross-site requests no longer carry the session")
	default:
		m.note(noteChanged, v.src, "oauth2-proxy's default sent no SameSite; Portcullis sends Lax")
	}
}

func convStoreType(m *migration, o *option, v optValue) {
	switch v.str() {
	case "redis", "cookie":
		m.set("session.store", v.str(), "from "+v.src)
	default:
		m.note(noteManual, v.src, fmt.Sprintf("session store %q: cookie or redis", v.str()))
	}
}

func convRedisNoop(m *migration, o *option, v optValue) {}

// convRedisURL keeps a URL without a password as it is; one with a
// password (or with --redis-password) becomes addrs/db/tls and a
// password from a variable, so that no secret is copied.
func convRedisURL(m *migration, o *option, v optValue) {
	u, err := url.Parse(v.str())
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		m.note(noteManual, v.src, "not a redis:// or rediss:// URL: set session.redis")
		return
	}
	_, hasPass := u.User.Password()
	_, sep := m.opts["redis_password"]
	switch {
	case !hasPass && !sep:
		m.set("session.redis.url", v.str(), "from "+v.src)
		return
	case !sep && v.env != "": // the same variable holds it, password and all
		m.set("session.redis.url", "${"+v.env+"}", "from "+v.src+" (not copied: it holds a password)")
		return
	}
	m.set("session.redis.addrs", []string{u.Host}, "from "+v.src)
	if db, err := strconv.Atoi(strings.Trim(u.Path, "/")); err == nil && db != 0 {
		m.set("session.redis.db", db, "from "+v.src)
	}
	if u.User.Username() != "" {
		m.set("session.redis.username", u.User.Username(), "from "+v.src)
	}
	if u.Scheme == "rediss" {
		m.set("session.redis.tls.enabled", true, "from "+v.src+" (rediss://)")
	}
	if hasPass && !sep {
		m.set("session.redis.password", "${"+o.env()+"_PASSWORD}", "the password in "+v.src+" (not copied)")
		m.note(noteManual, v.src, "set "+o.env()+"_PASSWORD in Portcullis's environment to the URL's password (it was not copied)")
	}
}

func convRedisSecret(m *migration, o *option, v optValue) {
	if o.toml == "redis_sentinel_password" && !m.opts["redis_use_sentinel"].on() {
		m.note(noteChanged, v.src, "not written: --redis-use-sentinel is not set")
		return
	}
	m.set(o.key, m.secretRef(o, v), "from "+v.src+" (not copied)")
}

// redisAddrs turns redis://host:port URLs into host:port.
func redisAddrs(m *migration, v optValue) []string {
	var out []string
	for _, s := range v.vals {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			m.note(noteManual, v.src, fmt.Sprintf("%q is not a redis:// URL: set session.redis.addrs", s))
			continue
		}
		out = append(out, u.Host)
		if u.Scheme == "rediss" {
			m.set("session.redis.tls.enabled", true, "from "+v.src+" (rediss://)")
		}
	}
	return out
}

func convRedisSentinel(m *migration, o *option, v optValue) {
	if !m.opts["redis_use_sentinel"].on() {
		m.note(noteChanged, v.src, "not written: --redis-use-sentinel is not set")
		return
	}
	if o.toml == "redis_sentinel_master_name" {
		m.set("session.redis.master_name", v.str(), "from "+v.src)
		return
	}
	m.set("session.redis.addrs", redisAddrs(m, v), "from "+v.src+" (the sentinels)")
}

func convRedisCluster(m *migration, o *option, v optValue) {
	if !m.opts["redis_use_cluster"].on() {
		m.note(noteChanged, v.src, "not written: --redis-use-cluster is not set")
		return
	}
	addrs := redisAddrs(m, v)
	m.set("session.redis.addrs", addrs, "from "+v.src)
	if len(addrs) == 1 {
		m.set("session.redis.cluster", true, "from --redis-use-cluster (one configuration endpoint)")
	}
}
