package session

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/redistest"
)

// TestRedisURL: each scheme fills the settings it stands for, and every
// URL that would be misread is refused, naming the URL without its
// password.
func TestRedisURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want RedisConfig // the connection fields only
		err  string      // substring of the error; "" means valid
	}{
		{url: "redis://127.0.0.1", want: RedisConfig{Addrs: []string{"127.0.0.1:6379"}}},
		{url: "redis://:s%40cret@redis.internal:6380/2", want: RedisConfig{Addrs: []string{"redis.internal:6380"}, Password: "s@cret", DB: 2}},
		{url: "rediss://gw:pw@redis.internal", want: RedisConfig{Addrs: []string{"redis.internal:6379"}, Username: "gw", Password: "pw",
			TLS: RedisTLSConfig{Enabled: true}}},
		{url: "redis://[::1]:7000/", want: RedisConfig{Addrs: []string{"[::1]:7000"}}},
		{url: "redis://[::1]", want: RedisConfig{Addrs: []string{"[::1]:6379"}}},
		{url: "redis+sentinel://s1,s2:26380/mymaster/3", want: RedisConfig{Addrs: []string{"s1:26379", "s2:26380"}, MasterName: "mymaster", DB: 3}},
		{url: "rediss+sentinel://:pw@s1/m", want: RedisConfig{Addrs: []string{"s1:26379"}, MasterName: "m", Password: "pw",
			TLS: RedisTLSConfig{Enabled: true}}},
		{url: "redis+cluster://cfg.cache.amazonaws.com:6379", want: RedisConfig{Addrs: []string{"cfg.cache.amazonaws.com:6379"}, Cluster: true}},
		{url: "REDISS+CLUSTER://a,b", want: RedisConfig{Addrs: []string{"a:6379", "b:6379"}, Cluster: true, TLS: RedisTLSConfig{Enabled: true}}},

		{url: "http://redis", err: "want redis://"},
		{url: "redis:/host", err: "want redis://"},
		{url: "redis://host?db=1", err: "no query"},
		{url: "redis://host#x", err: "no query"},
		{url: "redis://a,b", err: "several hosts"},
		{url: "redis://host/x", err: `database "x"`},
		{url: "redis://host/-1", err: `database "-1"`},
		{url: "redis://host/1/2", err: "at most a database"},
		{url: "redis+sentinel://s1", err: "name the master"},
		{url: "redis+sentinel://s1/", err: "name the master"},
		{url: "redis+cluster://a/1", err: "only db 0"},
		{url: "redis://", err: "host is missing"},
		{url: "redis://a,,b", err: "host is missing"},
		{url: "redis://host:0", err: "no valid port"},
		{url: "redis://host:99999", err: "no valid port"},
		{url: "redis://host:x", err: "no valid port"},
		{url: "redis://fe80::1", err: "not host[:port]"},
		{url: "redis://:%zz@host", err: "percent-encoding"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			c := RedisConfig{URL: tt.url}
			err := c.Validate()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := RedisConfig{Addrs: c.Addrs, Username: c.Username, Password: c.Password, DB: c.DB, MasterName: c.MasterName,
				Cluster: c.Cluster, TLS: RedisTLSConfig{Enabled: c.TLS.Enabled}}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("settings = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

// TestRedisURLConflicts: a URL with the keys it replaces is refused (one
// would be ignored), and no message shows the password.
func TestRedisURLConflicts(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  RedisConfig
		want string
	}{
		{"with addrs", RedisConfig{URL: "redis://a", Addrs: []string{"b:1"}}, "either url or addrs"},
		{"with a password", RedisConfig{URL: "redis://a", Password: "x"}, "either url or addrs"},
		{"with cluster", RedisConfig{URL: "redis://a", Cluster: true}, "either url or addrs"},
		{"redis:// with tls.enabled", RedisConfig{URL: "redis://u:hunter2@a", TLS: RedisTLSConfig{Enabled: true}}, "use rediss://"},
		{"bad URL", RedisConfig{URL: "redis://u:hunter2@a/x"}, `"redis://u:xxxxx@a/x"`},
		{"cluster and master", RedisConfig{Addrs: []string{"a:1"}, Cluster: true, MasterName: "m"}, "a Cluster has no sentinels"},
		{"cluster with a db", RedisConfig{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "only db 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	c := RedisConfig{URL: "redis+sentinel://:pw@s1/m"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validating again: %v (the settings the URL filled count as given twice)", err)
	}
}

// TestRedisURLConnects: the URL forms reach real servers: standalone with
// a database, and a Cluster through one node, as through a configuration
// endpoint (without cluster mode, the store would hit MOVED errors).
func TestRedisURLConnects(t *testing.T) {
	t.Parallel()
	redistest.Require(t)
	srv := redistest.Standalone(t)
	set := redistest.Cluster(t)
	for _, tt := range []struct{ name, url string }{
		{"standalone", "redis://" + srv.Addr() + "/3"},
		{"cluster through one node", "redis+cluster://" + set.Addrs()[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newRedisStore(t, RedisConfig{URL: tt.url, KeyPrefix: "url:"}, nil, randomSecret(t))
			for i := range 20 { // users spread over the Cluster's slots
				b := signIn(t, st, userSession(i, ""))
				if got, err := st.Load(b.request()); err != nil || got == nil {
					t.Fatalf("user %d: %v, %v", i, got, err)
				}
			}
		})
	}
	if n, err := srv.Client().DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("db 0 holds %d keys (%v): the URL's /3 was not used", n, err)
	}
}
