package session

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Invalidation keeps the replicas' local caches honest. Every revocation,
// Clear and in-place update publishes the affected sessions on
// key_prefix+"invalidate"; every replica drops them from its cache as the
// message arrives. A message is a space-separated list of tokens:
//
//	o:<origin>   the publishing store (it ignores its own messages)
//	t:<hash>     one session, by ticket hash
//	u:<tag>      every session of one user, by user tag
//
// Messages sent while a replica is disconnected are lost, so whenever its
// subscription is (re)established it drops its whole cache.
//
// A subscription can also go deaf without any error: after a Sentinel
// failover, the old master keeps its subscribers until Sentinel demotes it,
// while publishers already write to the new master. So each replica
// publishes a probe on a channel of its own once a second; when two probes
// in a row, published successfully, do not come back, it drops its cache
// and subscribes anew (which finds the current master).
const invalidateChannel = "invalidate"

// subscription is one PubSub and the goroutine reading it.
type subscription struct {
	ps   *redis.PubSub
	done chan struct{} // closed when the listener has stopped
}

func (s *RedisStore) probeChannel() string { return s.prefix + "probe:" + s.origin }

// subscribe starts the subscription and the probe loop; Close stops them.
func (s *RedisStore) subscribe() {
	s.quit = make(chan struct{})
	s.watchDone = make(chan struct{})
	s.sub = s.newSubscription()
	go s.watch()
}

func (s *RedisStore) newSubscription() *subscription {
	ps := s.client.Subscribe(context.Background(), s.prefix+invalidateChannel, s.probeChannel())
	ch := ps.ChannelWithSubscriptions(
		// Notice a dead connection within about a second, so a replica
		// resubscribes (and drops its cache) soon after Redis returns.
		redis.WithChannelHealthCheckInterval(s.healthCheck),
		redis.WithChannelSize(1024),
	)
	sub := &subscription{ps: ps, done: make(chan struct{})}
	go s.listen(ch, sub.done)
	return sub
}

// unsubscribe stops the probe loop and the subscription.
func (s *RedisStore) unsubscribe() {
	close(s.quit)
	<-s.watchDone
	s.subMu.Lock()
	sub := s.sub
	s.subMu.Unlock()
	sub.ps.Close()
	<-sub.done
}

func (s *RedisStore) listen(ch <-chan any, done chan struct{}) {
	defer close(done)
	for m := range ch {
		switch m := m.(type) {
		case *redis.Subscription:
			// go-redis delivers one on the first subscribe and on every
			// resubscribe after a reconnect.
			if m.Kind == "subscribe" && m.Channel == s.prefix+invalidateChannel {
				s.cache.clear()
				s.subscribed.Add(1)
			}
		case *redis.Message:
			if m.Channel == s.probeChannel() {
				if n, err := strconv.ParseUint(m.Payload, 10, 64); err == nil && n > s.probeSeen.Load() {
					s.probeSeen.Store(n)
				}
				continue
			}
			s.applyInvalidation(m.Payload)
		}
	}
}

// watch publishes a probe every healthCheck and replaces the subscription
// when two probes in a row were published but never arrived. A failed
// PUBLISH (Redis unreachable) proves nothing either way: go-redis
// reconnects the subscription itself once Redis is back.
func (s *RedisStore) watch() {
	defer close(s.watchDone)
	tick := time.NewTicker(s.healthCheck)
	defer tick.Stop()
	var token, pending uint64
	misses := 0
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		switch {
		case pending == 0:
		case s.probeSeen.Load() >= pending:
			misses = 0
		default:
			misses++
		}
		if misses >= 2 {
			misses = 0
			s.replaceSubscription()
		}
		token++
		ctx, cancel := context.WithTimeout(context.Background(), s.healthCheck)
		err := s.client.Publish(ctx, s.probeChannel(), strconv.FormatUint(token, 10)).Err()
		cancel()
		pending = token
		if err != nil {
			pending = 0
		}
	}
}

func (s *RedisStore) replaceSubscription() {
	s.cache.clear()
	s.resubscribe.Add(1)
	fresh := s.newSubscription()
	s.subMu.Lock()
	old := s.sub
	s.sub = fresh
	s.subMu.Unlock()
	old.ps.Close()
	<-old.done
}

func (s *RedisStore) applyInvalidation(payload string) {
	fields := strings.Fields(payload)
	if len(fields) == 0 || fields[0] == "o:"+s.origin {
		return
	}
	var keys [][16]byte
	for _, f := range fields {
		kind, h, _ := strings.Cut(f, ":")
		b, err := hex.DecodeString(h)
		switch {
		case err != nil:
		case kind == "t" && len(b) == 16:
			keys = append(keys, [16]byte(b))
		case kind == "u" && len(b) == 8:
			s.cache.dropUser([8]byte(b))
		}
	}
	if len(keys) > 0 {
		s.cache.drop(keys...)
	}
}

// invalidate drops sessions from this replica's cache at once and tells
// the others.
func (s *RedisStore) invalidate(ctx context.Context, hashes [][16]byte, users [][8]byte) {
	if len(hashes) > 0 {
		s.cache.drop(hashes...)
	}
	for _, u := range users {
		s.cache.dropUser(u)
	}
	s.publish(ctx, hashes, users)
}

// publish tells the other replicas to drop sessions. A lost message costs
// at most cache_ttl of staleness there, so a failed PUBLISH is not an error
// of the operation that already changed Redis.
func (s *RedisStore) publish(ctx context.Context, hashes [][16]byte, users [][8]byte) {
	var b strings.Builder
	b.WriteString("o:" + s.origin)
	for _, h := range hashes {
		b.WriteString(" t:" + hex.EncodeToString(h[:]))
	}
	for _, u := range users {
		b.WriteString(" u:" + hex.EncodeToString(u[:]))
	}
	_ = s.client.Publish(ctx, s.prefix+invalidateChannel, b.String()).Err()
}
