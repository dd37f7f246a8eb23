package session

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/gorilla/securecookie"
)

// MinSecretBytes is the least a cookie secret may decode to (RFC 8725 §3.5:
// keys need real entropy, never a memorable password).
const MinSecretBytes = 32

// Purposes of derived keys. Each cookie kind and each MAC gets its own keys,
// derived with HKDF-SHA256 (RFC 5869) from the configured secrets, so a value
// sealed for one purpose never opens as another.
const (
	PurposeSession = "session"
	PurposeLogin   = "login"
	PurposeCSRF    = "csrf"
	PurposeTicket  = "redis-ticket"
	// PurposeRedisMeta seals the per-session metadata (created, last seen,
	// user agent) the Redis store keeps for the admin list.
	PurposeRedisMeta = "redis-meta"
)

// KeyRing holds the operator's cookie secrets: the first seals, all open, so
// a new secret can be rolled out before the old one is retired.
type KeyRing struct {
	secrets [][]byte
}

// NewKeyRing validates and decodes secrets (base64 of at least 32 random
// bytes each, standard or URL alphabet, padding optional).
func NewKeyRing(secrets []string) (*KeyRing, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session: no cookie secret configured (session.cookie.secrets); generate one with: openssl rand -base64 32")
	}
	k := &KeyRing{}
	var errs []error
	for i, s := range secrets {
		b, err := ParseSecret(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("session: cookie secret #%d: %w", i+1, err))
			continue
		}
		k.secrets = append(k.secrets, b)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// ParseSecret decodes one base64 secret and checks its length and entropy.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("is empty; generate one with: openssl rand -base64 32")
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("is not base64; generate one with: openssl rand -base64 32")
	}
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("decodes to %d bytes, need at least %d random bytes; generate one with: openssl rand -base64 32", len(b), MinSecretBytes)
	}
	if !looksRandom(b) {
		return nil, errors.New("does not look random (too few distinct bytes); generate one with: openssl rand -base64 32")
	}
	return b, nil
}

// looksRandom rejects secrets such as 32 zero bytes, a short pattern
// repeated, or a passphrase that was base64-encoded. 32 bytes from
// crypto/rand have about 30 distinct values (fewer than 16 happens with
// negligible probability) and are all printable ASCII with probability
// (95/256)^32 < 1e-13.
func looksRandom(b []byte) bool {
	var seen [256]bool
	distinct, printable := 0, 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		if c >= 0x20 && c < 0x7f {
			printable++
		}
	}
	return distinct >= 16 && printable < len(b)
}

// derive returns n bytes for purpose/use from secret i.
func (k *KeyRing) derive(i int, purpose, use string, n int) []byte {
	b, err := hkdf.Key(sha256.New, k.secrets[i], nil, "portcullis/"+purpose+"/v1/"+use, n)
	if err != nil {
		// Only possible for n > 255*32, which no caller asks for.
		panic(fmt.Sprintf("session: hkdf: %v", err))
	}
	return b
}

// codecs returns one securecookie codec per secret for purpose, first
// sealing, all opening. Every codec gets the same limits: securecookie's
// defaults (30 days, 4096 bytes, gob) must never sneak back in through
// rotation (SECURITY.md §4.2 item 7).
func (k *KeyRing) codecs(purpose string, maxAgeSeconds, maxLength int, sz securecookie.Serializer) []*securecookie.SecureCookie {
	cs := make([]*securecookie.SecureCookie, len(k.secrets))
	for i := range k.secrets {
		c := securecookie.New(k.derive(i, purpose, "mac", 32), k.derive(i, purpose, "enc", 32))
		c.MaxAge(maxAgeSeconds)
		c.MaxLength(maxLength)
		c.SetSerializer(sz)
		cs[i] = c
	}
	return cs
}

// MAC returns HMAC-SHA256 over data under the first secret's key for
// purpose, base64url-encoded.
func (k *KeyRing) MAC(purpose string, data ...string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(0, purpose, data))
}

// VerifyMAC reports whether mac is MAC(purpose, data...) under any secret.
func (k *KeyRing) VerifyMAC(mac, purpose string, data ...string) bool {
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return false
	}
	ok := false
	for i := range k.secrets {
		if hmac.Equal(got, k.mac(i, purpose, data)) {
			ok = true
		}
	}
	return ok
}

func (k *KeyRing) mac(i int, purpose string, data []string) []byte {
	h := hmac.New(sha256.New, k.derive(i, purpose, "hmac", 32))
	for _, d := range data {
		// Length-prefix every part so ("ab","c") and ("a","bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(d), d)
	}
	return h.Sum(nil)
}

// Key returns 32 bytes derived for purpose from the first secret, for stores
// that need raw key material (the Redis ticket codec).
func (k *KeyRing) Key(purpose string) []byte {
	return k.derive(0, purpose, "key", 32)
}

// Secrets returns how many secrets the ring holds.
func (k *KeyRing) Secrets() int { return len(k.secrets) }

// Derive returns n bytes derived for purpose and label from secret i (0 is
// the sealing one), for keys other packages build (the assertion signing
// keys). Distinct purposes and labels never share bytes.
func (k *KeyRing) Derive(i int, purpose, label string, n int) []byte {
	return k.derive(i, purpose, label, n)
}

// PurposeAssertion derives the keys that sign identity assertions for
// upstreams.
const PurposeAssertion = "assertion"
