package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// newRedisClient builds the go-redis client for cfg, which must be
// validated.
func newRedisClient(cfg *RedisConfig, hooks []redis.Hook) (redis.UniversalClient, error) {
	tlsConf, err := cfg.TLS.clientConfig()
	if err != nil {
		return nil, err
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:            cfg.Addrs,
		MasterName:       cfg.MasterName,
		IsClusterMode:    cfg.Cluster,
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

// clientConfig returns the TLS client configuration, or nil without TLS.
func (t *RedisTLSConfig) clientConfig() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	if t.CAFile != "" && len(t.CAPEM) == 0 {
		return nil, fmt.Errorf("session: session.redis.tls.ca_file %q is set but its contents (CAPEM) were not passed to the store", t.CAFile)
	}
	pool, err := t.rootCAs()
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, InsecureSkipVerify: t.InsecureSkipVerify}, nil
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
