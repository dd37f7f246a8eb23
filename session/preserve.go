package session

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// preserve.go keeps a form post that arrived without a session until the
// sign-in it started comes back (issue 17: work is not lost across a
// re-login), as mod_auth_openidc's OIDCPreservePost does. The gateway
// (package proxy) decides what may be kept; this file seals and stores it.
//
// A kept post is sealed (AES-256-GCM under a key derived for
// PurposePreserve, the record's name as additional data) and lives at
// most LoginTTL, as long as the attempt that will redeem it. With
// store: redis it is kept in Redis, so the replica that receives the
// callback finds it; otherwise in this replica's memory, bounded in count
// and bytes. Either way it is redeemed once: Take deletes it.

// PreserveConfig is the session.preserve_post section.
type PreserveConfig struct {
	// Disabled turns preservation off: a form post without a session then
	// gets the "your session expired, please repeat" page.
	Disabled bool `yaml:"disabled"`
	// MaxBytes is the largest request body kept. Default 65536, at most
	// 1 MiB; larger posts get the "please repeat" page.
	MaxBytes int `yaml:"max_bytes"`
}

// Preservation limits.
const (
	DefaultPreserveMaxBytes = 64 << 10
	maxPreserveMaxBytes     = 1 << 20
	// PurposePreserve seals kept posts.
	PurposePreserve = "preserve-post"
	// maxKeptPosts and maxKeptBytes bound the in-memory keeper: an
	// unauthenticated client can fill it, for LoginTTL at most, and then
	// further posts are not kept (they get the "please repeat" page); no
	// post already kept is pushed out.
	maxKeptPosts = 10_000
	maxKeptBytes = 64 << 20
)

func (c *PreserveConfig) validate(p *problems) {
	switch {
	case c.MaxBytes == 0:
		c.MaxBytes = DefaultPreserveMaxBytes
	case c.MaxBytes < 0 || c.MaxBytes > maxPreserveMaxBytes:
		p.add("preserve_post.max_bytes %d: want between 1 and %d (or disabled: true)", c.MaxBytes, maxPreserveMaxBytes)
	}
}

// Field is one name/value pair of a form, in the order it was sent.
type Field struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// Post is a kept form post: where it went, how it was encoded, its
// fields. It never holds a file.
type Post struct {
	URL       string    `json:"u"` // the request-target, as the redirect policy admitted it
	Enctype   string    `json:"e"` // application/x-www-form-urlencoded or multipart/form-data
	Fields    []Field   `json:"f"`
	Size      int       `json:"z"` // bytes of the original body, for the log
	CreatedAt time.Time `json:"t"`
}

var (
	// ErrPostNotKept means a post was not kept: the keeper is full.
	ErrPostNotKept = errors.New("session: the post could not be kept")
	// ErrPostGone means there is no kept post under the id: it expired,
	// was redeemed already, or was kept by another replica's memory.
	ErrPostGone = errors.New("session: the kept post is gone")
)

// postKV holds sealed posts under a name for a while; take removes.
type postKV interface {
	put(ctx context.Context, name string, sealed []byte, ttl time.Duration) error
	take(ctx context.Context, name string) ([]byte, error)
}

var (
	_ postKV = (*memPosts)(nil)
	_ postKV = (*RedisStore)(nil)
)

// Posts keeps preserved posts.
type Posts struct {
	kv       postKV
	aeads    []cipher.AEAD // one per secret; the first seals
	maxBytes int
	now      func() time.Time
}

// NewPosts returns the keeper cfg asks for, in Redis when store is the
// Redis store, else in this replica's memory; nil (and no error) when
// preservation is disabled. cfg is validated (defaults filled) first.
func NewPosts(cfg PreserveConfig, keys *KeyRing, store Backend, now func() time.Time) (*Posts, error) {
	p := problems{prefix: "session."}
	cfg.validate(&p)
	if err := p.err(); err != nil {
		return nil, err
	}
	if cfg.Disabled {
		return nil, nil
	}
	if keys == nil {
		return nil, errors.New("session: preserved posts need a key ring")
	}
	if now == nil {
		now = time.Now
	}
	ps := &Posts{maxBytes: cfg.MaxBytes, now: now, kv: &memPosts{now: now}}
	if rs, ok := store.(*RedisStore); ok {
		ps.kv = rs
	}
	for i := range keys.secrets {
		ps.aeads = append(ps.aeads, newGCM(keys.derive(i, PurposePreserve, "key", 32)))
	}
	return ps, nil
}

// MaxBytes is the largest body kept.
func (ps *Posts) MaxBytes() int { return ps.maxBytes }

// Keep seals and stores post for LoginTTL and returns the id that redeems
// it, for the login state of the attempt it waits for.
func (ps *Posts) Keep(ctx context.Context, post *Post) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("naming a kept post: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	post.CreatedAt = ps.now()
	plain, err := json.Marshal(post)
	if err != nil {
		return "", fmt.Errorf("encoding a kept post: %w", err)
	}
	name := postName(id)
	sealed, err := seal(ps.aeads[0], plain, name)
	if err != nil {
		return "", fmt.Errorf("sealing a kept post: %w", err)
	}
	if err := ps.kv.put(ctx, name, sealed, LoginTTL); err != nil {
		return "", err
	}
	return id, nil
}

// Take returns the post kept under id and deletes it: a post is
// re-submitted once. ErrPostGone when there is none (or none that opens).
func (ps *Posts) Take(ctx context.Context, id string) (*Post, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrPostGone
	}
	name := postName(id)
	sealed, err := ps.kv.take(ctx, name)
	if err != nil {
		return nil, err
	}
	var plain []byte
	for _, a := range ps.aeads {
		if plain, err = open(a, sealed, name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPostGone, err)
	}
	post := new(Post)
	if err := json.Unmarshal(plain, post); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPostGone, err)
	}
	if age := ps.now().Sub(post.CreatedAt); age > LoginTTL || age < -clockSkew {
		return nil, fmt.Errorf("%w: kept %v ago", ErrPostGone, age.Round(time.Second))
	}
	return post, nil
}

// postName is the record name for id: a hash, so a Redis dump names no
// id a login state carries.
func postName(id string) string {
	sum := sha256.Sum256([]byte("portcullis/preserve-post/" + id))
	return "post:" + hex.EncodeToString(sum[:16])
}

// memPosts keeps sealed posts in this replica's memory.
type memPosts struct {
	mu    sync.Mutex
	now   func() time.Time
	m     map[string]memPost
	bytes int
}

type memPost struct {
	sealed []byte
	exp    time.Time
}

func (m *memPosts) put(_ context.Context, name string, sealed []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.m == nil {
		m.m = map[string]memPost{}
	}
	if len(m.m) >= maxKeptPosts || m.bytes+len(sealed) > maxKeptBytes {
		for k, e := range m.m {
			if !now.Before(e.exp) {
				m.bytes -= len(e.sealed)
				delete(m.m, k)
			}
		}
	}
	if len(m.m) >= maxKeptPosts || m.bytes+len(sealed) > maxKeptBytes {
		return ErrPostNotKept
	}
	m.m[name] = memPost{sealed: sealed, exp: now.Add(ttl)}
	m.bytes += len(sealed)
	return nil
}

func (m *memPosts) take(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[name]
	if !ok {
		return nil, ErrPostGone
	}
	delete(m.m, name)
	m.bytes -= len(e.sealed)
	if !m.now().Before(e.exp) {
		return nil, ErrPostGone
	}
	return e.sealed, nil
}

// put keeps a sealed post in Redis, for every replica, expiring with the
// attempt (SET PX).
func (s *RedisStore) put(ctx context.Context, name string, sealed []byte, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.prefix+name, sealed, ttl).Err(); err != nil {
		return storeErr("keeping a post", err)
	}
	return nil
}

// take reads and deletes a kept post in one command (GETDEL, Redis 6.2),
// so two callbacks racing on two replicas cannot both redeem it.
func (s *RedisStore) take(ctx context.Context, name string) ([]byte, error) {
	b, err := s.client.GetDel(ctx, s.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrPostGone
	}
	if err != nil {
		return nil, storeErr("taking a kept post", err)
	}
	return b, nil
}
