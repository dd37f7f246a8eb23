package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelSet is a master, one replica and three sentinels watching them.
type SentinelSet struct {
	t         testing.TB
	name      string
	Master    *Server // the master at start; after Failover it is a replica
	Replica   *Server // the replica at start
	Sentinels []*Server
}

// Sentinel timings: quick enough for tests, slow enough not to flap on a
// loaded two-core machine running -race.
const (
	downAfter       = 1000 * time.Millisecond
	failoverTimeout = 5000 * time.Millisecond
)

// Sentinel starts a master, a replica of it, and three sentinels
// (redis-server --sentinel) monitoring the master as "portcullis", and waits
// until the replica is in sync and every sentinel knows the replica and the
// other sentinels.
func Sentinel(t testing.TB) *SentinelSet {
	t.Helper()
	Require(t)
	set := &SentinelSet{t: t, name: "portcullis"}
	set.Master = newServer(t, "master", nil, false)
	set.Replica = newServer(t, "replica", func(int) []string {
		return []string{"replicaof 127.0.0.1 " + strconv.Itoa(set.Master.Port())}
	}, false)
	for i := 0; i < 3; i++ {
		set.Sentinels = append(set.Sentinels, newServer(t, "sentinel", func(int) []string {
			return []string{
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", set.name, set.Master.Port()),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", set.name, downAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", set.name, failoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", set.name),
			}
		}, true))
	}
	ctx := context.Background()
	if err := poll(ctx, 30*time.Second, 50*time.Millisecond, set.settled); err != nil {
		t.Fatalf("redistest: sentinel set did not settle: %v", err)
	}
	return set
}

// MasterName is the name the sentinels monitor the master under.
func (s *SentinelSet) MasterName() string { return s.name }

// SentinelAddrs returns the sentinels' addresses.
func (s *SentinelSet) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// settled reports nil once the replica is in sync and each sentinel knows
// the current master, its replica and both other sentinels.
func (s *SentinelSet) settled(ctx context.Context) error {
	master, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	info, err := s.node(master).Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if !containsAll(info, "role:master", "connected_slaves:1", "state=online") {
		return fmt.Errorf("master %s replication not ready:\n%s", master, info)
	}
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: time.Second, MaxRetries: -1})
		replicas, err1 := c.Replicas(ctx, s.name).Result()
		sentinels, err2 := c.Sentinels(ctx, s.name).Result()
		c.Close()
		if err1 != nil || err2 != nil {
			return fmt.Errorf("sentinel %s: %v %v", sn.Addr(), err1, err2)
		}
		if len(replicas) < 1 || len(sentinels) < 2 {
			return fmt.Errorf("sentinel %s knows %d replicas and %d other sentinels", sn.Addr(), len(replicas), len(sentinels))
		}
	}
	return nil
}

// MasterAddr asks the first sentinel that answers for the current master.
func (s *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, sn := range s.Sentinels {
		if !sn.Running() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: time.Second, MaxRetries: -1})
		hp, err := c.GetMasterAddrByName(ctx, s.name).Result()
		c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return net.JoinHostPort(hp[0], hp[1]), nil
	}
	return "", fmt.Errorf("no sentinel answered: %v", lastErr)
}

// WaitReplicated returns once the replica holds every write the master
// acknowledged before the call: a marker is written and WAITed on one
// connection, and replication applies writes in order.
func (s *SentinelSet) WaitReplicated(ctx context.Context) error {
	master, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	c := s.node(master)
	defer c.Close()
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, "redistest:replicated", time.Now().UnixNano(), 0).Err(); err != nil {
		return err
	}
	n, err := conn.Wait(ctx, 1, 10*time.Second).Result()
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("no replica acknowledged within 10s")
	}
	return nil
}

// Failover makes the sentinels promote the replica (SENTINEL FAILOVER) and
// waits until every sentinel reports the new master and it accepts writes.
func (s *SentinelSet) Failover(ctx context.Context) error {
	old, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr(), DialTimeout: time.Second})
	err = c.Failover(ctx, s.name).Err()
	c.Close()
	if err != nil {
		return fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	return s.waitNewMaster(ctx, old)
}

// KillMaster kills the current master (SIGKILL, as a crash would) and waits
// until the sentinels notice (down-after-milliseconds), promote the replica,
// all report it, and it accepts writes. The killed server stays down.
func (s *SentinelSet) KillMaster(ctx context.Context) error {
	old, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	for _, srv := range []*Server{s.Master, s.Replica} {
		if srv.Addr() == old {
			srv.Kill()
		}
	}
	return s.waitNewMaster(ctx, old)
}

func (s *SentinelSet) waitNewMaster(ctx context.Context, old string) error {
	return poll(ctx, 30*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
		var master string
		for _, sn := range s.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: time.Second, MaxRetries: -1})
			hp, err := c.GetMasterAddrByName(ctx, s.name).Result()
			c.Close()
			if err != nil {
				return err
			}
			addr := net.JoinHostPort(hp[0], hp[1])
			if addr == old {
				return fmt.Errorf("sentinel %s still reports %s", sn.Addr(), old)
			}
			if master != "" && addr != master {
				return fmt.Errorf("sentinels disagree: %s vs %s", master, addr)
			}
			master = addr
		}
		mc := s.node(master)
		defer mc.Close()
		return mc.Set(ctx, "redistest:failover", "ok", time.Minute).Err()
	})
}

func (s *SentinelSet) node(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true})
}
