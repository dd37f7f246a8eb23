package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/redistest"
	"github.com/redis/go-redis/v9"
)

// The Redis store on a three-master Cluster: the conformance suite,
// revocation, and many users spread over the slots.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	set := redistest.Cluster(t)
	cfg := RedisConfig{Addrs: set.Addrs()}
	t.Run("conformance", func(t *testing.T) { runConformance(t, redisStores(cfg)) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, cfg) })
	t.Run("users across slots", func(t *testing.T) { testClusterUsers(t, cfg) })
}

func testClusterUsers(t *testing.T, cfg RedisConfig) {
	cfg.KeyPrefix = "many:"
	secret := randomSecret(t)
	a := newRedisStore(t, cfg, nil, secret)
	b := newRedisStore(t, cfg, nil, secret)
	ctx := context.Background()
	const users = 30
	browsers := make([][2]browser, users)
	for u := range users {
		for i := range 2 {
			browsers[u][i] = signIn(t, a, userSession(u, fmt.Sprintf("sid-%d", u)))
		}
	}
	// The users' keys are spread over every master.
	var mu sync.Mutex
	perNode := map[string]int64{}
	err := a.client.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		perNode[m.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for node, n := range perNode {
		if n == 0 {
			t.Errorf("node %s holds no keys: %v", node, perNode)
		}
	}
	t.Logf("keys per master: %v", perNode)

	for u := range users {
		for i := range 2 {
			if _, err := b.Load(browsers[u][i].request()); err != nil {
				t.Fatalf("user %d session %d: %v", u, i, err)
			}
		}
		list, err := b.ListUser(ctx, "https://idp.example.com", userSession(u, "").Subject)
		if err != nil || len(list) != 2 {
			t.Errorf("ListUser(user %d) = %d sessions, %v; want 2", u, len(list), err)
		}
	}
	if n, err := a.RevokeSID(ctx, "https://idp.example.com", "sid-3"); err != nil || n != 2 {
		t.Errorf("RevokeSID = %d, %v; want 2", n, err)
	}
	if n, err := a.RevokeUser(ctx, "https://idp.example.com", userSession(4, "").Subject); err != nil || n != 2 {
		t.Errorf("RevokeUser = %d, %v; want 2", n, err)
	}
	deadline := time.Now().Add(time.Second)
	for _, u := range []int{3, 4} {
		for i := range 2 {
			for {
				_, err := b.Load(browsers[u][i].request())
				if errors.Is(err, ErrInvalidSession) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("user %d session %d still loads on the other replica: %v", u, i, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	if _, err := b.Load(browsers[5][0].request()); err != nil {
		t.Errorf("an unrelated user's session: %v", err)
	}
}
