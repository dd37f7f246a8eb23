package session

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A negative idle_timeout turns the idle timeout off, and validating the
// section again must not turn it back on.
func TestConfigValidateIdleOff(t *testing.T) {
	c := Config{IdleTimeout: -1}
	for i := range 2 {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.IdleTimeout; got > 0 {
			t.Errorf("after Validate #%d idle_timeout = %v, want off (not positive)", i+1, got)
		}
	}
}

func TestConfigValidateDefaults(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		name string
		cfg  Config
		want Config
	}{
		{"empty", Config{}, Config{Store: "cookie", Lifetime: DefaultLifetime, IdleTimeout: DefaultIdleTimeout,
			RefreshBefore: time.Minute, KeepIDToken: &yes, Cookie: CookieConfig{Name: "_portcullis", Secure: &yes, SameSite: "lax", Path: "/"},
			PreservePost: PreserveConfig{MaxBytes: DefaultPreserveMaxBytes}}},
		{"redis keeps the ID token", Config{Store: "redis", Redis: RedisConfig{Addrs: []string{"a:1"}}}, Config{Store: "redis",
			Lifetime: DefaultLifetime, IdleTimeout: DefaultIdleTimeout, RefreshBefore: time.Minute, KeepIDToken: &yes,
			Cookie: CookieConfig{Name: "_portcullis", Secure: &yes, SameSite: "lax", Path: "/"},
			Redis: RedisConfig{Addrs: []string{"a:1"}, KeyPrefix: DefaultRedisKeyPrefix, DialTimeout: 2 * time.Second,
				ReadTimeout: time.Second, WriteTimeout: time.Second, CacheTTL: 5 * time.Second, CacheSize: 100000,
				LockTTL: 10 * time.Second, LockWait: 5 * time.Second},
			PreservePost: PreserveConfig{MaxBytes: DefaultPreserveMaxBytes}}},
		{"set values stay", Config{Lifetime: time.Hour, IdleTimeout: -1, RefreshBefore: 0, KeepIDToken: &yes,
			Cookie: CookieConfig{Name: "gw", Secure: &no, Domain: "example.com", SameSite: "Strict"}, PreservePost: PreserveConfig{Disabled: true, MaxBytes: 1024}},
			Config{Store: "cookie", Lifetime: time.Hour, IdleTimeout: -1, RefreshBefore: time.Minute, KeepIDToken: &yes,
				Cookie:       CookieConfig{Name: "gw", Secure: &no, Domain: "example.com", SameSite: "Strict", Path: "/"},
				PreservePost: PreserveConfig{Disabled: true, MaxBytes: 1024}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after Validate\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Validate fills defaults once: validating a validated section (New does)
// changes nothing.
func TestConfigValidateIdempotent(t *testing.T) {
	no := false
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"empty", Config{}},
		{"idle timeout off", Config{IdleTimeout: -time.Hour}},
		{"redis", Config{Store: "redis", Redis: RedisConfig{Addrs: []string{"a:1", "b:2"}, CacheTTL: -1}}},
		{"plain http development", Config{Cookie: CookieConfig{Name: "gw", Secure: &no}}},
		{"sentinel over tls", Config{Store: "redis", Lifetime: 2 * time.Hour, RefreshBefore: 5 * time.Minute,
			Redis: RedisConfig{Addrs: []string{"s:26379"}, MasterName: "m", TLS: RedisTLSConfig{Enabled: true}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			once := tt.cfg
			if err := once.Validate(); err != nil {
				t.Fatal(err)
			}
			twice := once
			twice.Redis.Addrs = slices.Clone(once.Redis.Addrs)
			if err := twice.Validate(); err != nil {
				t.Fatalf("second Validate: %v", err)
			}
			if !reflect.DeepEqual(twice, once) {
				t.Errorf("second Validate changed the section\n got %+v\nwant %+v", twice, once)
			}
		})
	}
}

// One Validate reports every problem of the section, subsections
// included, each naming its key.
func TestConfigValidateReportsAll(t *testing.T) {
	no := false
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"whole section", Config{Store: "redis", Lifetime: time.Second, IdleTimeout: time.Millisecond, RefreshBefore: 2 * time.Hour,
			Cookie: CookieConfig{Name: "a;b", SameSite: "none", Domain: "a/b"},
			Redis:  RedisConfig{DB: -1, KeyPrefix: "{x}"}}, []string{
			`session.lifetime 1s: want between 1m0s and 168h0m0s`,
			`session.idle_timeout 1ms: want at least 1s`,
			`session.refresh_before 2h0m0s: want between 0 and 1h0m0s`,
			`session.cookie.name "a;b" has characters a cookie name cannot carry`,
			`session.cookie.same_site "none": want lax or strict`,
			`session.cookie.domain "a/b" is not a host name`,
			`session.redis.addrs: at least one host:port is needed`,
			`session.redis.db -1: want 0 or more`,
			`session.redis.key_prefix "{x}"`,
		}},
		{"unknown store and a cookie problem", Config{Store: "memcached", Lifetime: 200 * time.Hour,
			Cookie: CookieConfig{Name: "__Host-gw", Domain: "example.com"}}, []string{
			`session.store "memcached": want cookie or redis`,
			`session.lifetime 200h0m0s: want between 1m0s and 168h0m0s`,
			`session.cookie.domain "example.com": a __Host- cookie (name "__Host-gw") cannot have a domain`,
		}},
		{"prefixed name without secure", Config{Cookie: CookieConfig{Name: "__Secure-gw", Secure: &no}}, []string{
			`session.cookie.secure: cookie "__Secure-gw" needs secure: true`,
		}},
		{"redis tls", Config{Store: "redis", Redis: RedisConfig{Addrs: []string{"a:1"},
			TLS: RedisTLSConfig{CAFile: "/etc/redis/ca.pem", CAPEM: []byte("not a certificate"), InsecureSkipVerify: true}}}, []string{
			`session.redis.tls.enabled is false, but ca_file or insecure_skip_verify is set`,
			`session.redis.tls: insecure_skip_verify ignores ca_file`,
			`session.redis.tls.ca_file "/etc/redis/ca.pem" holds no PEM certificate`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the section")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("Validate = \n%v\nwant a line starting %q", err, w)
				}
			}
		})
	}
}
