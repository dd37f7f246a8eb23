package session

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// commandCounter is a Redis hook that counts dials and commands, to tell
// whether New talked to Redis.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.n.Add(1)
		return next(ctx, network, addr)
	}
}

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	keys := mustKeys(t, randomSecret(t))
	_, live := standalone(t) // a Redis that answers, so a store that tried would connect
	for _, tt := range []struct {
		name      string
		cfg       Config
		wantType  string
		wantName  string
		wantRedis bool // talked to Redis
		wantErr   string
	}{
		{"cookie by default", Config{}, "*session.CookieStore", "__Host-_portcullis", false, ""},
		{"cookie, named with a domain", Config{Store: "cookie", Cookie: CookieConfig{Name: "gw", Domain: "example.com"}},
			"*session.CookieStore", "gw", false, ""},
		{"redis", Config{Store: "redis", Redis: live}, "*session.RedisStore", "__Host-_portcullis", true, ""},
		{"invalid config", Config{Store: "redis", Redis: live, Lifetime: time.Second, Cookie: CookieConfig{SameSite: "none"}},
			"", "", false, "session.lifetime 1s"},
		{"unknown store", Config{Store: "memcached", Redis: live}, "", "", false, `session.store "memcached": want cookie or redis`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := &commandCounter{}
			got, err := New(tt.cfg, keys, Options{Hooks: []redis.Hook{hook}})
			if rs, ok := got.(*RedisStore); ok {
				defer rs.Close()
			}
			if gotRedis := hook.n.Load() > 0; gotRedis != tt.wantRedis {
				t.Errorf("talked to Redis = %v (%d dials and commands), want %v", gotRedis, hook.n.Load(), tt.wantRedis)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("New = %T, want an error mentioning %q", got, tt.wantErr)
				}
				if got != nil {
					t.Errorf("New = %#v with an error, want a nil Backend", got)
				}
				want := tt.cfg
				if werr := want.Validate(); werr == nil || err.Error() != werr.Error() {
					t.Errorf("New error = %q, want Config.Validate's %q", err, werr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("New error = %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotType := fmt.Sprintf("%T", got); gotType != tt.wantType {
				t.Errorf("New = %s, want %s", gotType, tt.wantType)
			}
			if gotName := got.Name(); gotName != tt.wantName {
				t.Errorf("Name = %q, want %q", gotName, tt.wantName)
			}
		})
	}
}

// A store New fails to build comes back as a nil Backend, not as an
// interface holding a nil pointer.
func TestNewFailureIsNil(t *testing.T) {
	keys := mustKeys(t, randomSecret(t))
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"redis unreachable", Config{Store: "redis", Redis: RedisConfig{Addrs: []string{"127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond}}},
		{"cookie store refused", Config{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := keys
			if tt.cfg.Store == "" {
				k = nil // NewCookieStore refuses a nil key ring
			}
			got, err := New(tt.cfg, k, Options{})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if got != nil {
				t.Errorf("New = %#v with error %v, want a nil Backend", got, err)
			}
		})
	}
}
