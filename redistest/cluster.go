package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterSet is a Redis Cluster of three masters and no replicas.
type ClusterSet struct {
	Nodes []*Server
}

// Cluster starts three cluster-enabled servers, joins them with
// `redis-cli --cluster create` (16384 slots split three ways, no replicas)
// and waits until every node reports cluster_state:ok.
func Cluster(t testing.TB) *ClusterSet {
	t.Helper()
	Require(t)
	set := &ClusterSet{}
	for i := 0; i < 3; i++ {
		set.Nodes = append(set.Nodes, newServer(t, "cluster", func(port int) []string {
			bus, err := freePort()
			if err != nil {
				t.Fatalf("redistest: %v", err)
			}
			return []string{
				"cluster-enabled yes",
				"cluster-config-file nodes-" + strconv.Itoa(port) + ".conf",
				"cluster-node-timeout 5000",
				"cluster-port " + strconv.Itoa(bus),
			}
		}, false))
	}
	args := append([]string{"--cluster", "create"}, set.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	err = poll(ctx, 30*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		for _, n := range set.Nodes {
			c := redis.NewClient(&redis.Options{Addr: n.Addr(), DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true})
			info, err := c.ClusterInfo(ctx).Result()
			c.Close()
			if err != nil {
				return err
			}
			if !containsAll(info, "cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:3") {
				return fmt.Errorf("node %s:\n%s", n.Addr(), info)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: cluster did not become ok: %v", err)
	}
	return set
}

// Addrs returns the nodes' addresses, the seed list for a cluster client.
func (c *ClusterSet) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
