package session

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// redisurl.go reads session.redis.url, the one-line form migrating users
// know from oauth2-proxy's redis-connection-url and from go-redis:
//
//	redis://[user[:password]@]host[:port][/db]            standalone
//	rediss://…                                            the same over TLS
//	redis+sentinel://[user[:password]@]s1[:port],s2…/master[/db]
//	redis+cluster://[user[:password]@]node[:port][,node…] Cluster, one
//	                                                      configuration
//	                                                      endpoint enough
//
// with rediss+sentinel and rediss+cluster for TLS. The credentials are the
// Redis server's (the sentinels' are sentinel_username/sentinel_password).
// Ports default to 6379, and 26379 for sentinels. A query is refused: the
// other settings have keys of their own.

// redisScheme is what a URL scheme says.
type redisScheme struct {
	tls         bool
	topology    string // standalone, sentinel or cluster
	defaultPort string
}

var redisSchemes = map[string]redisScheme{
	"redis":           {false, "standalone", "6379"},
	"rediss":          {true, "standalone", "6379"},
	"redis+sentinel":  {false, "sentinel", "26379"},
	"rediss+sentinel": {true, "sentinel", "26379"},
	"redis+cluster":   {false, "cluster", "6379"},
	"rediss+cluster":  {true, "cluster", "6379"},
}

// applyURL fills the connection settings from c.URL. It refuses a URL
// given together with the keys it replaces: one of them would be ignored.
// Messages show the URL without its password.
func (c *RedisConfig) applyURL(p *problems) {
	if c.URL == "" || c.fromURL {
		return
	}
	if len(c.Addrs) > 0 || c.MasterName != "" || c.Username != "" || c.Password != "" || c.DB != 0 || c.Cluster {
		p.add("url: give either url or addrs/master_name/username/password/db/cluster, not both")
		return
	}
	u, err := parseRedisURL(c.URL)
	if err != nil {
		p.add("url %s: %v", redactRedisURL(c.URL), err)
		return
	}
	if c.TLS.Enabled && !u.scheme.tls {
		p.add("url %s: tls.enabled is true but the scheme is not TLS: use rediss://", redactRedisURL(c.URL))
	}
	c.Addrs, c.Username, c.Password, c.MasterName, c.DB = u.addrs, u.username, u.password, u.master, u.db
	c.Cluster = u.scheme.topology == "cluster"
	c.TLS.Enabled = c.TLS.Enabled || u.scheme.tls
	c.fromURL = true
}

// redisURL is a parsed session.redis.url.
type redisURL struct {
	scheme             redisScheme
	addrs              []string
	username, password string
	master             string
	db                 int
}

func parseRedisURL(raw string) (*redisURL, error) {
	name, rest, ok := strings.Cut(raw, "://")
	scheme, known := redisSchemes[strings.ToLower(name)]
	if !ok || !known {
		return nil, fmt.Errorf("want redis://, rediss://, redis+sentinel:// or redis+cluster:// (and rediss+ for TLS)")
	}
	if strings.ContainsAny(rest, "?#") {
		return nil, fmt.Errorf("no query or fragment: the other settings have keys of their own")
	}
	authority, path, _ := strings.Cut(rest, "/")
	out := &redisURL{scheme: scheme}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if err := out.credentials(authority[:at]); err != nil {
			return nil, err
		}
		authority = authority[at+1:]
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := redisAddr(h, scheme.defaultPort)
		if err != nil {
			return nil, err
		}
		out.addrs = append(out.addrs, addr)
	}
	if len(out.addrs) > 1 && scheme.topology == "standalone" {
		return nil, fmt.Errorf("several hosts: use redis+cluster:// for Cluster or redis+sentinel:// for sentinels")
	}
	if err := out.path(path); err != nil {
		return nil, err
	}
	return out, nil
}

// credentials reads user[:password], percent-decoded.
func (u *redisURL) credentials(userinfo string) error {
	user, pass, _ := strings.Cut(userinfo, ":")
	var err1, err2 error
	u.username, err1 = url.PathUnescape(user)
	u.password, err2 = url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("the credentials are not valid percent-encoding")
	}
	return nil
}

// path reads /db, /master or /master/db as the topology has them.
func (u *redisURL) path(path string) error {
	segs := []string{}
	if path != "" {
		segs = strings.Split(path, "/")
	}
	if u.scheme.topology == "sentinel" {
		if len(segs) == 0 || segs[0] == "" {
			return fmt.Errorf("name the master: redis+sentinel://sentinel:26379/<master>[/db]")
		}
		master, err := url.PathUnescape(segs[0])
		if err != nil {
			return fmt.Errorf("master %q is not valid percent-encoding", segs[0])
		}
		u.master, segs = master, segs[1:]
	}
	switch {
	case len(segs) == 0 || len(segs) == 1 && segs[0] == "":
		return nil
	case len(segs) > 1:
		return fmt.Errorf("path %q: want at most a database number", "/"+path)
	case u.scheme.topology == "cluster":
		return fmt.Errorf("Redis Cluster has only db 0: no database in the path")
	}
	db, err := strconv.Atoi(segs[0])
	if err != nil || db < 0 {
		return fmt.Errorf("database %q is not a number 0 or more", segs[0])
	}
	u.db = db
	return nil
}

// redisAddr is host[:port] as host:port; IPv6 literals in brackets.
func redisAddr(h, defaultPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("a host is missing")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the whole is the host (a bracketed IPv6 literal loses its brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
	}
	if host == "" || strings.ContainsAny(host, "[]@ ") || strings.Contains(host, ":") && !strings.HasPrefix(h, "[") {
		return "", fmt.Errorf("%q is not host[:port]", h)
	}
	return net.JoinHostPort(host, port), nil
}

// redactRedisURL is raw with the password replaced, for messages.
func redactRedisURL(raw string) string {
	name, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(not a URL)"
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, _, hasPass := strings.Cut(authority[:at], ":")
		if hasPass {
			user += ":xxxxx"
		}
		authority = user + "@" + authority[at+1:]
	}
	if hasPath {
		authority += "/" + path
	}
	return strconv.Quote(name + "://" + authority)
}
