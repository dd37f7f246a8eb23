package session

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
)

// TLS to Redis: the CA comes as PEM bytes in tls.CAPEM (main reads
// tls.ca_file); without it the server's certificate is refused.
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.StandaloneTLS(t)
	keys := mustKeys(t, randomSecret(t))
	tlsOn := RedisConfig{Addrs: []string{srv.TLSAddr()}, TLS: RedisTLSConfig{Enabled: true, CAFile: "/etc/redis/ca.pem"}}
	for _, tt := range []struct {
		name    string
		cfg     RedisConfig
		ca      []byte
		wantErr string
	}{
		{"trusted CA", tlsOn, srv.CAPEM(), ""},
		{"system roots only", RedisConfig{Addrs: tlsOn.Addrs, TLS: RedisTLSConfig{Enabled: true}}, nil, "certificate"},
		{"insecure skip verify", RedisConfig{Addrs: tlsOn.Addrs, TLS: RedisTLSConfig{Enabled: true, InsecureSkipVerify: true}}, nil, ""},
		{"ca_file but no contents", tlsOn, nil, "ca_file"},
		{"ca_file that is not PEM", tlsOn, []byte("not a certificate"), "no PEM certificate"},
		{"CA without tls", RedisConfig{Addrs: []string{srv.Addr()}}, srv.CAPEM(), "tls.enabled is false"},
		{"plain client, TLS port", RedisConfig{Addrs: tlsOn.Addrs}, nil, "unreachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DialTimeout = 500 * time.Millisecond
			tt.cfg.ReadTimeout = 500 * time.Millisecond
			tt.cfg.TLS.CAPEM = tt.ca
			st, err := NewRedisStore(tt.cfg, keys, RedisStoreOptions{})
			if tt.wantErr != "" {
				if err == nil {
					st.Close()
					t.Fatalf("NewRedisStore succeeded, want an error mentioning %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewRedisStore = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			b := signIn(t, st, demoSession(time.Now()))
			if _, err := st.Load(b.request()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
