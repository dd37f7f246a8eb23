package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// A ticket names one session in Redis and holds the key to it. The browser
// carries it sealed in the session cookie (securecookie, PurposeTicket keys);
// Redis holds only AES-256-GCM(key, session) under a name derived from the
// id. A Redis dump therefore reveals no tokens and no identities, and
// cannot be turned into cookies: the per-session keys exist only in
// browsers (SECURITY.md §4.3).
type ticket struct {
	id  [16]byte // random; Redis sees only its SHA-256
	key [32]byte // random per-session AES-256-GCM key
	tag [8]byte  // userTag of the session's identity: its Cluster hash slot
}

const (
	ticketVersion = 1
	ticketLen     = 1 + 16 + 32 + 8
	// maxTicketCookie bounds a sealed ticket (about 190 bytes) so a forged
	// giant cookie is refused before any MAC or base64 work.
	maxTicketCookie = 512
	recordVersion   = 1
	gcmNonceLen     = 12
)

// newTicket mints a ticket for the user with tag.
func newTicket(tag [8]byte) (*ticket, error) {
	t := &ticket{tag: tag}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, fmt.Errorf("session: minting ticket: %w", err)
	}
	if _, err := rand.Read(t.key[:]); err != nil {
		return nil, fmt.Errorf("session: minting ticket: %w", err)
	}
	return t, nil
}

// hash is what Redis and the admin list know the session by: the first 16
// bytes of SHA-256(id). It names the session but opens nothing.
func (t *ticket) hash() [16]byte {
	sum := sha256.Sum256(t.id[:])
	return [16]byte(sum[:16])
}

// userTag is the first 8 bytes of SHA-256(issuer ‖ 0 ‖ subject). Inside
// braces it is the Cluster hash tag of a user's sessions, index and locks,
// so one Lua script can touch them all. It is unkeyed so that it survives
// secret rotation; whoever holds a dump and guesses an (issuer, subject)
// pair can therefore tell whether that user has sessions, and nothing more.
func userTag(issuer, subject string) [8]byte {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	var tag [8]byte
	copy(tag[:], h.Sum(nil))
	return tag
}

// sidKeyHash names a provider session (issuer, sid) in the sid index.
func sidKeyHash(issuer, sid string) string {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(sid))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// redisNames are the keys of one session. All share the user's hash tag.
type redisNames struct {
	tag     string // hex(userTag)
	hash    string // hex(ticket hash)
	session string // HASH: d = sealed session, m = sealed metadata
	index   string // ZSET of the user's ticket hashes, scored by expiry (ms)
	lock    string // refresh lock
	revoked string // the user's last revocation, ms (RevokeUser)
}

func (s *RedisStore) names(tag [8]byte, hash [16]byte) redisNames {
	n := redisNames{tag: hex.EncodeToString(tag[:]), hash: hex.EncodeToString(hash[:])}
	n.session = s.prefix + "s:{" + n.tag + "}:" + n.hash
	n.index = s.userIndex(n.tag)
	n.lock = s.prefix + "lock:{" + n.tag + "}:" + n.hash
	n.revoked = s.userRevoked(n.tag)
	return n
}

func (s *RedisStore) userIndex(tagHex string) string { return s.prefix + "u:{" + tagHex + "}" }

func (s *RedisStore) userRevoked(tagHex string) string { return s.prefix + "r:{" + tagHex + "}" }

// sidIndex is the SET of "tagHex:ticketHash" for one provider session. It
// lives in its own slot; see RevokeSID for how it stays consistent.
func (s *RedisStore) sidIndex(issuer, sid string) string {
	return s.prefix + "sid:" + sidKeyHash(issuer, sid)
}

// ticketSerializer is the securecookie serializer of a ticket: a version
// byte, then id, key and tag.
type ticketSerializer struct{}

func (ticketSerializer) Serialize(src any) ([]byte, error) {
	t, ok := src.(*ticket)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T as a ticket", src)
	}
	b := make([]byte, 0, ticketLen)
	b = append(b, ticketVersion)
	b = append(b, t.id[:]...)
	b = append(b, t.key[:]...)
	return append(b, t.tag[:]...), nil
}

func (ticketSerializer) Deserialize(src []byte, dst any) error {
	t, ok := dst.(*ticket)
	if !ok {
		return fmt.Errorf("session: cannot deserialize a ticket into %T", dst)
	}
	if len(src) != ticketLen || src[0] != ticketVersion {
		return errors.New("malformed ticket")
	}
	copy(t.id[:], src[1:17])
	copy(t.key[:], src[17:49])
	copy(t.tag[:], src[49:57])
	return nil
}

// seal encrypts plain with AES-256-GCM under a fresh random nonce. The
// version byte and aad (the Redis key name, so a record moved under another
// key fails to open) are authenticated.
func seal(aead cipher.AEAD, plain []byte, aad string) ([]byte, error) {
	out := make([]byte, 1+gcmNonceLen, 1+gcmNonceLen+len(plain)+aead.Overhead())
	out[0] = recordVersion
	if _, err := rand.Read(out[1 : 1+gcmNonceLen]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:1+gcmNonceLen], plain, additional(aad)), nil
}

func open(aead cipher.AEAD, sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < 1+gcmNonceLen+aead.Overhead() || sealed[0] != recordVersion {
		return nil, errors.New("malformed record")
	}
	return aead.Open(nil, sealed[1:1+gcmNonceLen], sealed[1+gcmNonceLen:], additional(aad))
}

func additional(aad string) []byte {
	b := make([]byte, 0, 1+len(aad))
	return append(append(b, recordVersion), aad...)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("session: aes: " + err.Error()) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("session: gcm: " + err.Error())
	}
	return aead
}

// sealRecord encrypts the session under the ticket's own key.
func (t *ticket) sealRecord(s *Session, keyName string) ([]byte, error) {
	plain, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return seal(newGCM(t.key[:]), plain, keyName)
}

func (t *ticket) openRecord(sealed []byte, keyName string) (*Session, error) {
	plain, err := open(newGCM(t.key[:]), sealed, keyName)
	if err != nil {
		return nil, fmt.Errorf("opening session record: %w", err)
	}
	s := new(Session)
	if err := s.UnmarshalBinary(plain); err != nil {
		return nil, err
	}
	return s, nil
}

// sessionMeta is what the admin list shows: no tokens, no identity. It is
// sealed with a server-wide key (PurposeRedisMeta) so an operator holding
// the secrets can list a user's sessions while a dump shows nothing.
type sessionMeta struct {
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	UserAgent string
}

const (
	maxUserAgent = 256
	metaAAD      = "\x00meta"
)

func (m *sessionMeta) marshal() []byte {
	b := make([]byte, 0, 32+len(m.UserAgent))
	for _, t := range []time.Time{m.CreatedAt, m.LastSeen, m.ExpiresAt} {
		b = binary.AppendVarint(b, t.Unix())
	}
	return appendRaw(b, m.UserAgent)
}

func (m *sessionMeta) unmarshal(b []byte) error {
	d := decoder{b: b}
	for _, t := range []*time.Time{&m.CreatedAt, &m.LastSeen, &m.ExpiresAt} {
		*t = d.time()
	}
	m.UserAgent = d.str()
	if d.err == nil && len(d.b) != 0 {
		return errMalformed
	}
	return d.err
}

// truncateUA keeps at most maxUserAgent bytes of valid UTF-8.
func truncateUA(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
		for !utf8.ValidString(ua) { // cut inside a rune
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

func (s *RedisStore) sealMeta(m *sessionMeta, keyName string) ([]byte, error) {
	return seal(s.meta[0], m.marshal(), keyName+metaAAD)
}

// openMeta tries every secret's metadata key: the first seals, all open.
func (s *RedisStore) openMeta(sealed []byte, keyName string) (*sessionMeta, error) {
	var err error
	for _, aead := range s.meta {
		var plain []byte
		if plain, err = open(aead, sealed, keyName+metaAAD); err == nil {
			m := new(sessionMeta)
			return m, m.unmarshal(plain)
		}
	}
	return nil, err
}
