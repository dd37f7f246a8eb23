package session

import (
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedisConfig is the `session.redis` section: where the Redis store keeps
// sessions and how it talks to Redis. One address means a standalone server,
// several mean a Cluster, and master_name means Sentinel (the addresses are
// then the sentinels').
type RedisConfig struct {
	// URL gives the connection in one line instead of addrs, username,
	// password, db, master_name, cluster and tls.enabled: redis://,
	// rediss://, redis+sentinel://…/master, redis+cluster:// (redisurl.go).
	// It may hold the password, so it is a secret (url_file works).
	URL string `yaml:"url" secret:"true"`
	// fromURL: Validate has filled the settings from URL (validating
	// again must not see them as given twice).
	fromURL bool
	// Addrs are host:port pairs. One: standalone. Several: Cluster seed
	// nodes. With MasterName: the sentinels.
	Addrs []string `yaml:"addrs"`
	// Cluster selects Redis Cluster with a single address, a Cluster's
	// configuration endpoint (ElastiCache, Memorystore); several addrs
	// mean Cluster anyway.
	Cluster bool `yaml:"cluster"`
	// MasterName selects Sentinel: the name the sentinels monitor the master
	// under. Empty (the default) means standalone or Cluster.
	MasterName string `yaml:"master_name"`
	// Username and Password authenticate to Redis (AUTH / ACL).
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// when they require it (Sentinel only).
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword string `yaml:"sentinel_password" secret:"true"`
	// DB is the database number (standalone and Sentinel; Cluster has only 0).
	DB  int            `yaml:"db"`
	TLS RedisTLSConfig `yaml:"tls"`
	// KeyPrefix starts every key the store writes, so several deployments can
	// share one Redis. Default "portcullis:". It may not contain braces: they
	// would change the Cluster hash slot of the keys.
	KeyPrefix string `yaml:"key_prefix"`

	// DialTimeout bounds connecting to Redis. Default 2s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound one command's socket I/O. Default
	// 1s each: a request waits for Redis at most about that long before it
	// is answered 503.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolSize is the number of connections per Redis node; 0 (the default)
	// keeps go-redis's default of 10 per CPU.
	PoolSize int `yaml:"pool_size"`

	// CacheTTL is how long a replica keeps a loaded session in memory before
	// asking Redis again. Revocations reach every replica at once through
	// pub/sub; this bounds staleness if a message is lost, and is how long
	// sessions keep working while Redis is unreachable. Default 5s (0 keeps
	// the default); negative disables the cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the cache's entries per replica; the oldest go first.
	// Default 100000.
	CacheSize int `yaml:"cache_size"`
	// LockTTL is how long a token refresh may hold its lock before another
	// replica may take over, should the holder die. The holder extends it
	// every LockTTL/3 while it works. Default 10s.
	LockTTL time.Duration `yaml:"lock_ttl"`
	// LockWait is how long a request waits for another replica's refresh of
	// the same session before it gives up and goes on with the old session.
	// Default 5s.
	LockWait time.Duration `yaml:"lock_wait"`
	// StartupWait is how long startup keeps trying to reach Redis. Default 0:
	// fail at once, so a wrong address is reported immediately; set it when
	// the gateway may start before Redis (compose files, sidecars).
	StartupWait time.Duration `yaml:"startup_wait"`
}

// RedisTLSConfig is `session.redis.tls`.
type RedisTLSConfig struct {
	// Enabled turns on TLS to Redis (and to the sentinels).
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that may sign the server's
	// certificate. Empty: the system roots. main reads the file into CAPEM
	// (before Validate, which then checks that it holds a certificate); the
	// store never touches the file system.
	CAFile string `yaml:"ca_file"`
	CAPEM  []byte `yaml:"-"`
	// InsecureSkipVerify accepts any certificate Redis presents, so anyone
	// on the network path can impersonate Redis, read every session and
	// plant their own. It MUST NOT be used outside a test setup; give the
	// server's CA in ca_file instead.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Redis defaults, as documented on RedisConfig.
const (
	DefaultRedisKeyPrefix = "portcullis:"
	defaultDialTimeout    = 2 * time.Second
	defaultIOTimeout      = time.Second
	defaultCacheTTL       = 5 * time.Second
	defaultCacheSize      = 100000
	defaultLockTTL        = 10 * time.Second
	defaultLockWait       = 5 * time.Second
	minLockTTL            = 100 * time.Millisecond
)

// Validate fills defaults and checks the section, reporting every problem
// at once; each message names its key. Validating again changes nothing.
func (c *RedisConfig) Validate() error {
	p := problems{prefix: "session.redis."}
	c.applyURL(&p)
	c.checkAddrs(&p)
	c.checkTopology(&p)
	c.TLS.check(&p)
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultRedisKeyPrefix
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \t\r\n") {
		p.add("key_prefix %q: no braces or spaces (braces would change Cluster hash slots)", c.KeyPrefix)
	}
	c.checkTimeouts(&p)
	c.checkSizes(&p)
	return p.err()
}

// checkAddrs checks that addrs holds distinct host:port pairs.
func (c *RedisConfig) checkAddrs(p *problems) {
	if len(c.Addrs) == 0 {
		p.add("addrs: at least one host:port is needed")
	}
	seen := map[string]bool{}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "":
			p.add("addrs: %q is not host:port", a)
		case perr != nil || n < 1 || n > 65535:
			p.add("addrs: %q has no valid port", a)
		case seen[a]:
			p.add("addrs: %q is listed twice", a)
		}
		seen[a] = true
	}
}

// checkTopology checks the settings that only some topologies have.
func (c *RedisConfig) checkTopology(p *problems) {
	if c.DB < 0 {
		p.add("db %d: want 0 or more", c.DB)
	}
	if c.topology() == "cluster" && c.DB != 0 {
		p.add("db %d: Redis Cluster has only db 0 (several addrs, or cluster: true, mean Cluster)", c.DB)
	}
	if c.Cluster && c.MasterName != "" {
		p.add("cluster and master_name: a Cluster has no sentinels; set one of them")
	}
	if c.MasterName == "" && (c.SentinelUsername != "" || c.SentinelPassword != "") {
		p.add("sentinel_username/sentinel_password: only used with master_name (Sentinel)")
	}
}

// check checks the tls subsection, including that CAPEM (main's reading of
// ca_file) holds a certificate.
func (t *RedisTLSConfig) check(p *problems) {
	if !t.Enabled && (t.CAFile != "" || len(t.CAPEM) > 0 || t.InsecureSkipVerify) {
		p.add("tls.enabled is false, but ca_file or insecure_skip_verify is set: they need tls.enabled: true")
	}
	if t.CAFile != "" && t.InsecureSkipVerify {
		p.add("tls: insecure_skip_verify ignores ca_file; set only ca_file")
	}
	_, err := t.rootCAs()
	p.also(err)
}

// rootCAs returns the CAs in CAPEM, or nil (the system roots) when there
// are none.
func (t *RedisTLSConfig) rootCAs() (*x509.CertPool, error) {
	if len(t.CAPEM) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.CAPEM) {
		return nil, fmt.Errorf("session.redis.tls.ca_file %q holds no PEM certificate", t.CAFile)
	}
	return pool, nil
}

// checkTimeouts fills the default timeouts and checks them.
func (c *RedisConfig) checkTimeouts(p *problems) {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"dial_timeout", &c.DialTimeout, defaultDialTimeout},
		{"read_timeout", &c.ReadTimeout, defaultIOTimeout},
		{"write_timeout", &c.WriteTimeout, defaultIOTimeout},
		{"lock_ttl", &c.LockTTL, defaultLockTTL},
		{"lock_wait", &c.LockWait, defaultLockWait},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			p.add("%s %v: want a positive duration", d.name, *d.v)
		}
	}
	if c.LockTTL > 0 && c.LockTTL < minLockTTL {
		p.add("lock_ttl %v: want at least %v", c.LockTTL, minLockTTL)
	}
	if c.StartupWait < 0 {
		p.add("startup_wait %v: want 0 or more", c.StartupWait)
	}
}

// checkSizes fills the cache defaults and checks the cache and pool sizes.
func (c *RedisConfig) checkSizes(p *problems) {
	if c.CacheTTL == 0 {
		c.CacheTTL = defaultCacheTTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.CacheSize < 0 {
		p.add("cache_size %d: want 0 (default) or more", c.CacheSize)
	}
	if c.PoolSize < 0 {
		p.add("pool_size %d: want 0 (go-redis default) or more", c.PoolSize)
	}
}

// topology is how NewUniversalClient will read the addresses.
func (c *RedisConfig) topology() string {
	switch {
	case c.MasterName != "":
		return "sentinel"
	case len(c.Addrs) > 1 || c.Cluster:
		return "cluster"
	default:
		return "standalone"
	}
}

// where names the configured Redis for error messages: every address and
// the topology, so an operator sees at once what was tried.
func (c *RedisConfig) where() string {
	addrs := strings.Join(c.Addrs, ", ")
	if c.MasterName != "" {
		return fmt.Sprintf("redis master %q via sentinels %s (sentinel)", c.MasterName, addrs)
	}
	return fmt.Sprintf("redis at %s (%s)", addrs, c.topology())
}
