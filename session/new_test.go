package session

import (
	"testing"
	"time"
)

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
