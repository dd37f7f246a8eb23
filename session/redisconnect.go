package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisConfig is the `session.redis` section: where the Redis store keeps
// sessions and how it talks to Redis. One address means a standalone server,
// several mean a Cluster, and master_name means Sentinel (the addresses are
// then the sentinels').
type RedisConfig struct {
	// Addrs are host:port pairs. One: standalone. Several: Cluster seed
	// nodes. With MasterName: the sentinels.
	Addrs []string `yaml:"addrs"`
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
	// certificate. Empty: the system roots. main reads the file into CAPEM;
	// the store never touches the file system.
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

// Validate fills defaults and checks the section. Messages name the key.
func (c *RedisConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("session.redis."+format, args...)) }
	if len(c.Addrs) == 0 {
		bad("addrs: at least one host:port is needed")
	}
	seen := map[string]bool{}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "":
			bad("addrs: %q is not host:port", a)
		case perr != nil || n < 1 || n > 65535:
			bad("addrs: %q has no valid port", a)
		case seen[a]:
			bad("addrs: %q is listed twice", a)
		}
		seen[a] = true
	}
	if c.DB < 0 {
		bad("db %d: want 0 or more", c.DB)
	}
	if c.topology() == "cluster" && c.DB != 0 {
		bad("db %d: Redis Cluster has only db 0 (several addrs mean Cluster)", c.DB)
	}
	if c.MasterName == "" && (c.SentinelUsername != "" || c.SentinelPassword != "") {
		bad("sentinel_username/sentinel_password: only used with master_name (Sentinel)")
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.InsecureSkipVerify) {
		bad("tls: ca_file and insecure_skip_verify need tls.enabled: true")
	}
	if c.TLS.CAFile != "" && c.TLS.InsecureSkipVerify {
		bad("tls: insecure_skip_verify ignores ca_file; set only ca_file")
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultRedisKeyPrefix
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \t\r\n") {
		bad("key_prefix %q: no braces or spaces (braces would change Cluster hash slots)", c.KeyPrefix)
	}
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
			bad("%s %v: want a positive duration", d.name, *d.v)
		}
	}
	if c.LockTTL > 0 && c.LockTTL < minLockTTL {
		bad("lock_ttl %v: want at least %v", c.LockTTL, minLockTTL)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = defaultCacheTTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.CacheSize < 0 {
		bad("cache_size %d: want 0 (default) or more", c.CacheSize)
	}
	if c.PoolSize < 0 {
		bad("pool_size %d: want 0 (go-redis default) or more", c.PoolSize)
	}
	if c.StartupWait < 0 {
		bad("startup_wait %v: want 0 or more", c.StartupWait)
	}
	return errors.Join(errs...)
}

// topology is how NewUniversalClient will read the addresses.
func (c *RedisConfig) topology() string {
	switch {
	case c.MasterName != "":
		return "sentinel"
	case len(c.Addrs) > 1:
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

// newRedisClient builds the go-redis client for cfg. caPEM is the content of
// tls.ca_file, read by main.
func newRedisClient(cfg *RedisConfig, caPEM []byte, hooks []redis.Hook) (redis.UniversalClient, error) {
	var tlsConf *tls.Config
	if cfg.TLS.Enabled {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
		switch {
		case cfg.TLS.CAFile != "" && len(caPEM) == 0:
			return nil, fmt.Errorf("session: redis tls.ca_file %s is set but its contents were not passed to the store", cfg.TLS.CAFile)
		case len(caPEM) > 0:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caPEM) {
				return nil, fmt.Errorf("session: redis tls.ca_file %s holds no PEM certificate", cfg.TLS.CAFile)
			}
			tlsConf.RootCAs = pool
		}
	} else if len(caPEM) > 0 {
		return nil, errors.New("session: a redis CA certificate was passed but tls.enabled is false")
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:            cfg.Addrs,
		MasterName:       cfg.MasterName,
		Username:         cfg.Username,
		Password:         cfg.Password,
		SentinelUsername: cfg.SentinelUsername,
		SentinelPassword: cfg.SentinelPassword,
		DB:               cfg.DB,
		TLSConfig:        tlsConf,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		PoolSize:         cfg.PoolSize,
		// One dial per attempt: go-redis already retries a failed command
		// (with backoff), and its default of five dials per attempt made a
		// request wait ~1.7s to learn that Redis is down.
		DialerRetries: 1,
		ClientName:    "portcullis",
		// Request deadlines bound Redis calls too.
		ContextTimeoutEnabled: true,
		// No CLIENT SETINFO at connect: one round trip less, and the code
		// path behind CVE-2025-29923 (responses out of order when it timed
		// out) never runs, whatever the version.
		DisableIdentity: true,
		// Maintenance notifications are a Redis Enterprise/Cloud feature;
		// asking a self-hosted server costs a failed command per connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	for _, h := range hooks {
		client.AddHook(h)
	}
	return client, nil
}

// connect pings Redis until it answers or wait passes (at least one try).
func connect(client redis.UniversalClient, cfg *RedisConfig) error {
	deadline := time.Now().Add(cfg.StartupWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout+cfg.ReadTimeout)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if !time.Now().Add(250 * time.Millisecond).Before(deadline) {
			return fmt.Errorf("session: %s unreachable: %w", cfg.where(), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// storeErr wraps an error from Redis with what the store was doing. When
// the cause is Redis being out of reach (network, timeouts, a closed pool, a
// server loading, read-only after a failover, a cluster down) it also wraps
// ErrUnavailable, so the gateway answers 503 and never signs the user out
// because Redis blinked.
func storeErr(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("session: %s: %w", what, err)
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("session: %s: %w", what, err)
}

// unreachable reports whether err says Redis could not serve the command
// (as opposed to a reply that points at a bug, such as a script error).
func unreachable(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true // dial, I/O, timeout, pool exhausted, client closed
	}
	if redis.IsMaxClientsError(err) {
		return true
	}
	msg := reply.Error()
	for _, bug := range []string{"ERR", "WRONGTYPE", "NOSCRIPT", "CROSSSLOT", "WRONGPASS", "NOAUTH", "NOPERM"} {
		if strings.HasPrefix(msg, bug) {
			return false
		}
	}
	return true // LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY, OOM, …
}
