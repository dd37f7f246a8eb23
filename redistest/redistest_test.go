package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStandaloneKillRestart(t *testing.T) {
	t.Parallel()
	s := Standalone(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Running() {
		t.Error("Running after Kill")
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("PING answered after Kill")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Error("data survived a restart; nothing should persist")
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	set := Sentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	before, err := set.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != set.Master.Addr() {
		t.Errorf("master = %s, want %s", before, set.Master.Addr())
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: set.MasterName(), SentinelAddrs: set.SentinelAddrs()})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := set.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := set.Failover(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover took %v", time.Since(start).Round(time.Millisecond))
	after, _ := set.MasterAddr(ctx)
	if after != set.Replica.Addr() {
		t.Errorf("master after failover = %s, want the replica %s", after, set.Replica.Addr())
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET after failover = %q, %v", got, err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	set := Cluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: set.Addrs()})
	defer c.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var used atomic.Int32
	c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if n, _ := m.DBSize(ctx).Result(); n > 0 {
			used.Add(1)
		}
		return nil
	})
	if masters := used.Load(); masters < 2 {
		t.Errorf("keys landed on %d masters, want them spread", masters)
	}
}

func TestStandaloneTLS(t *testing.T) {
	t.Parallel()
	s := StandaloneTLS(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	c := redis.NewClient(&redis.Options{Addr: s.TLSAddr(), TLSConfig: &tls.Config{RootCAs: pool}})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
}
