package session

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocation and the admin list: ending sessions by user (back-channel
// logout without sid, "sign out everywhere"), by provider session
// (back-channel logout with sid), or one by one, and listing a user's
// sessions. Each revocation reaches every replica's cache at once.

// SessionInfo describes one session for the admin list. It carries no
// tokens; ID names the session for RevokeTicket but opens nothing.
type SessionInfo struct {
	ID        string // ticket hash, 32 hex digits
	CreatedAt time.Time
	LastSeen  time.Time // written at most once a minute
	ExpiresAt time.Time
	UserAgent string
}

// RevokeUser ends every session of the user (issuer, subject) in one Lua
// script and returns how many there were. The script also records when, for
// a session lifetime: a sign-in whose session was created until then but
// is written only after the script ran (a sign-in racing the revocation)
// is refused by saveScript, so no session created up to the revocation
// survives it (Back-Channel Logout 1.0 §2.7), the boundary included.
func (s *RedisStore) RevokeUser(ctx context.Context, issuer, subject string) (int, error) {
	tag := userTag(issuer, subject)
	tagHex := hex.EncodeToString(tag[:])
	n, err := revokeUserScript.Run(ctx, s.client, []string{s.userIndex(tagHex), s.userRevoked(tagHex)},
		s.prefix+"s:{"+tagHex+"}:", s.now().UnixMilli(), ms(s.lifetime+clockSkew)).Int()
	if err != nil {
		return 0, storeErr("revoking user sessions", err)
	}
	s.invalidate(ctx, nil, [][8]byte{tag})
	return n, nil
}

// RevokeTicket ends one session of the user, by the ID ListUser gave. It
// returns an error wrapping ErrNoSession when there is no such session.
func (s *RedisStore) RevokeTicket(ctx context.Context, issuer, subject, id string) error {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("%w: malformed session id", ErrNoSession)
	}
	n, err := s.deleteTicket(ctx, userTag(issuer, subject), [16]byte(b))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no such session", ErrNoSession)
	}
	return nil
}

// RevokeSID ends every session that signed in with the provider session
// (issuer, sid) and returns how many there were.
//
// The sid index lives in its own hash slot, so it cannot share a script
// with the sessions it names. Instead RevokeSID leaves a tombstone in it for
// a session lifetime, and Save checks for the tombstone both before and
// after writing a session with that sid: a sign-in racing the revocation
// either is found and deleted here or finds the tombstone and deletes
// itself. Either way no session of a logged-out provider session survives.
func (s *RedisStore) RevokeSID(ctx context.Context, issuer, sid string) (int, error) {
	members, err := sidRevokeScript.Run(ctx, s.client, []string{s.sidIndex(issuer, sid)}, ms(s.lifetime+clockSkew)).StringSlice()
	if err != nil {
		return 0, storeErr("revoking provider session", err)
	}
	count := 0
	var hashes [][16]byte
	for _, m := range members {
		tagHex, hashHex, _ := strings.Cut(m, ":")
		tag, err1 := hex.DecodeString(tagHex)
		hash, err2 := hex.DecodeString(hashHex)
		if err1 != nil || err2 != nil || len(tag) != 8 || len(hash) != 16 {
			continue // the tombstone, or not ours
		}
		n := s.names([8]byte(tag), [16]byte(hash))
		deleted, err := deleteScript.Run(ctx, s.client, []string{n.session, n.index}, n.hash).Int()
		if err != nil {
			s.invalidate(ctx, hashes, nil)
			return count, storeErr("revoking provider session", err)
		}
		count += deleted
		hashes = append(hashes, [16]byte(hash))
	}
	s.invalidate(ctx, hashes, nil)
	return count, nil
}

// claimSID adds the session to its provider session's index, unless that
// provider session was revoked.
func (s *RedisStore) claimSID(ctx context.Context, sess *Session, n redisNames) error {
	ok, err := sidAddScript.Run(ctx, s.client, []string{s.sidIndex(sess.Issuer, sess.SID)},
		n.tag+":"+n.hash, ms(s.lifetime+clockSkew)).Int()
	if err != nil {
		return storeErr("indexing provider session", err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: the provider session was logged out", ErrInvalidSession)
	}
	return nil
}

// checkSID deletes the session just written when its provider session was
// revoked meanwhile.
func (s *RedisStore) checkSID(ctx context.Context, sess *Session, n redisNames, t *ticket) error {
	revoked, err := s.client.SIsMember(ctx, s.sidIndex(sess.Issuer, sess.SID), sidTombstone).Result()
	if err != nil {
		return storeErr("checking provider session", err)
	}
	if revoked {
		if _, err := s.deleteTicket(ctx, t.tag, t.hash()); err != nil {
			return err
		}
		return fmt.Errorf("%w: the provider session was logged out", ErrInvalidSession)
	}
	return nil
}

// ListUser lists the user's live sessions, oldest first. Sessions whose
// metadata was sealed under a secret since retired show only ID and
// ExpiresAt.
func (s *RedisStore) ListUser(ctx context.Context, issuer, subject string) ([]SessionInfo, error) {
	tag := userTag(issuer, subject)
	now := s.now()
	zs, err := s.client.ZRangeByScoreWithScores(ctx, s.userIndex(hex.EncodeToString(tag[:])), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, storeErr("listing sessions", err)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(zs))
	names := make([]redisNames, len(zs))
	for i, z := range zs {
		id, _ := z.Member.(string)
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 16 {
			continue
		}
		names[i] = s.names(tag, [16]byte(b))
		cmds[i] = pipe.HGet(ctx, names[i].session, "m")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr("listing sessions", err)
	}
	var out []SessionInfo
	for i, z := range zs {
		if cmds[i] == nil {
			continue
		}
		sealed, err := cmds[i].Bytes()
		if err != nil {
			continue // expired or revoked since the index was read
		}
		info := SessionInfo{ID: names[i].hash, ExpiresAt: time.UnixMilli(int64(z.Score))}
		if m, err := s.openMeta(sealed, names[i].session); err == nil {
			info.CreatedAt, info.LastSeen, info.ExpiresAt, info.UserAgent = m.CreatedAt, m.LastSeen, m.ExpiresAt, m.UserAgent
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// ms formats a duration for a Lua argument.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// sidTombstone marks a revoked provider session in its index.
const sidTombstone = "!"

var (
	// revokeUserScript deletes every session in a user index and the index.
	// The session keys are built from ARGV[1] and the members; they carry
	// the index's hash tag, so they live in its slot.
	// KEYS: user index. ARGV: session key prefix. Returns records deleted.
	revokeUserScript = redis.NewScript(`
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[2], math.max(prev, tonumber(ARGV[2])), 'PX', ARGV[3])
return n`)

	// sidAddScript adds a member to a sid index unless it holds the
	// tombstone. KEYS: sid index. ARGV: member, ttl ms. Returns 1 or 0.
	sidAddScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], '` + sidTombstone + `') == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

	// sidRevokeScript empties a sid index, leaves the tombstone, and
	// returns what it held. KEYS: sid index. ARGV: tombstone ttl ms.
	sidRevokeScript = redis.NewScript(`
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '` + sidTombstone + `')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return members`)
)
