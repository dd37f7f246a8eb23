package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// devicestore.go keeps device grants in Redis (device.go), for every
// replica. Each grant is one hash, so every step on it is one script on
// one key (one Cluster slot); the user code's pointer is a key of its own,
// taken with SET NX so two grants never share a user code.

// createGrant implements deviceKV.
func (s *RedisStore) createGrant(ctx context.Context, grant, code string, sealed []byte, interval, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.prefix+code, grant, ttl).Result()
	if err != nil {
		return false, storeErr("starting a device grant", err)
	}
	if !ok {
		return true, nil
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.prefix+grant, "g", sealed, "st", GrantPending, "iv", interval.Milliseconds(), "lp", 0)
		p.PExpire(ctx, s.prefix+grant, ttl)
		return nil
	})
	if err != nil {
		return false, storeErr("starting a device grant", err)
	}
	return false, nil
}

// grantByCode implements deviceKV.
func (s *RedisStore) grantByCode(ctx context.Context, code string) (string, []byte, string, error) {
	grant, err := s.client.Get(ctx, s.prefix+code).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil, "", ErrGrantGone
	}
	if err != nil {
		return "", nil, "", storeErr("finding a device grant", err)
	}
	vals, err := s.client.HMGet(ctx, s.prefix+grant, "g", "st").Result()
	if err != nil {
		return "", nil, "", storeErr("finding a device grant", err)
	}
	g, _ := vals[0].(string)
	st, _ := vals[1].(string)
	if g == "" {
		return "", nil, "", ErrGrantGone
	}
	return grant, []byte(g), st, nil
}

// decideGrantScript sets a pending grant's decision. KEYS: the grant.
// ARGV: status, sealed session. Returns 1, 0 (decided already) or -1 (gone).
var decideGrantScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'st') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 's', ARGV[2])
return 1
`)

// decideGrant implements deviceKV.
func (s *RedisStore) decideGrant(ctx context.Context, grant, code, status string, sealedSession []byte) error {
	res, err := decideGrantScript.Run(ctx, s.client, []string{s.prefix + grant}, status, sealedSession).Int()
	switch {
	case err != nil:
		return storeErr("deciding a device grant", err)
	case res == -1:
		return ErrGrantGone
	case res == 0:
		return ErrGrantDecided
	}
	// The user code is spent; the grant's own expiry bounds it anyway.
	if err := s.client.Del(ctx, s.prefix+code).Err(); err != nil {
		return storeErr("deciding a device grant", err)
	}
	return nil
}

// pollGrantScript answers a poll (RFC 8628 §3.5). KEYS: the grant. ARGV:
// now in ms. Returns {-1} (gone), {1, interval} (slow_down: the interval
// grows by 5 s), {0, interval} (pending), {2, interval} (denied) or
// {3, interval, sealed session, sealed grant} (approved); the last two delete the grant,
// so it is redeemed once.
var pollGrantScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local now = tonumber(ARGV[1])
local lp = tonumber(redis.call('HGET', KEYS[1], 'lp') or '0')
local iv = tonumber(redis.call('HGET', KEYS[1], 'iv') or '5000')
if lp > 0 and now - lp < iv then
  iv = iv + 5000
  redis.call('HSET', KEYS[1], 'iv', iv, 'lp', now)
  return {1, iv}
end
redis.call('HSET', KEYS[1], 'lp', now)
local st = redis.call('HGET', KEYS[1], 'st')
if st == 'pending' then return {0, iv} end
local sess = redis.call('HGET', KEYS[1], 's') or ''
local g = redis.call('HGET', KEYS[1], 'g') or ''
redis.call('DEL', KEYS[1])
if st == 'approved' then return {3, iv, sess, g} end
return {2, iv}
`)

// pollGrant implements deviceKV.
func (s *RedisStore) pollGrant(ctx context.Context, grant string, now time.Time) (string, time.Duration, []byte, []byte, error) {
	res, err := pollGrantScript.Run(ctx, s.client, []string{s.prefix + grant}, now.UnixMilli()).Slice()
	if err != nil {
		return "", 0, nil, nil, storeErr("polling a device grant", err)
	}
	code, _ := res[0].(int64)
	if code == -1 {
		return "", 0, nil, nil, ErrGrantGone
	}
	if len(res) < 2 {
		return "", 0, nil, nil, fmt.Errorf("session: polling a device grant: unexpected reply %v", res)
	}
	ms, _ := res[1].(int64)
	interval := time.Duration(ms) * time.Millisecond
	switch code {
	case 0:
		return GrantPending, interval, nil, nil, nil
	case 1:
		return GrantSlowDown, interval, nil, nil, nil
	case 2:
		return GrantDenied, interval, nil, nil, nil
	}
	if len(res) < 4 {
		return "", 0, nil, nil, fmt.Errorf("session: polling a device grant: approved without a session")
	}
	sealed, _ := res[2].(string)
	g, _ := res[3].(string)
	return GrantApproved, interval, []byte(sealed), []byte(g), nil
}
