package session

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// device.go keeps the gateway's device authorization grants (RFC 8628)
// between the device's request, the user's approval in a browser and the
// device's polls. The gateway (package proxy) runs the protocol; this
// file generates the codes, seals the records and makes every step
// atomic: a user code is decided once, a device code redeemed once.
//
// A grant lives at most its expires_in. With store: redis it is kept in
// Redis, so the approval and the polls may reach any replica; otherwise
// in this replica's memory, bounded in count (the device, the browser and
// the polls must then reach the same replica). Records are sealed under a
// key derived for PurposeDevice; Redis sees hashes of the codes only.

// PurposeDevice seals device grants.
const PurposeDevice = "device-grant"

// UserCodeAlphabet is the user code's alphabet: 20 consonants, no vowels
// (no words spelt by accident) and none easily mistaken for another
// (RFC 8628 §6.1). Eight of them are 20^8 ≈ 2^34.6 codes.
const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLen is the user code's length, shown as XXXX-XXXX.
const UserCodeLen = 8

// maxPendingGrants bounds the in-memory keeper: a flood of device
// requests gets ErrGrantsFull, never memory growth.
const maxPendingGrants = 10_000

// Device grant states.
const (
	GrantPending  = "pending"
	GrantApproved = "approved"
	GrantDenied   = "denied"
	GrantSlowDown = "slow_down" // a poll's answer only: polled faster than the interval
)

var (
	// ErrGrantGone means no grant goes by the code: it expired, was
	// decided or redeemed, never existed, or lives in another replica's
	// memory.
	ErrGrantGone = errors.New("session: no such device grant")
	// ErrGrantExpired means the device code is one the gateway issued and
	// its time is up (RFC 8628 §3.5 expired_token).
	ErrGrantExpired = errors.New("session: the device code has expired")
	// ErrGrantDecided means the user code was approved or denied already.
	ErrGrantDecided = errors.New("session: the device grant was decided already")
	// ErrGrantsFull means this replica keeps as many grants as it may.
	ErrGrantsFull = errors.New("session: too many device grants pending")
)

// DeviceGrant is what the verification page shows about a device's
// request, and what the approval binds to.
type DeviceGrant struct {
	UserCode  string    `json:"u"`
	ClientID  string    `json:"c,omitempty"`
	Scope     string    `json:"s,omitempty"`
	Source    string    `json:"ip,omitempty"` // the device's address, as the gateway saw it
	UserAgent string    `json:"ua,omitempty"`
	CreatedAt time.Time `json:"t"`
	ExpiresAt time.Time `json:"x"`
	Status    string    `json:"-"`
}

// Poll is the answer to a device's poll.
type Poll struct {
	Status   string        // GrantPending, GrantSlowDown, GrantDenied or GrantApproved
	Interval time.Duration // the interval the device must keep from now on
	Session  *Session      // the approving user's session, when approved
	Grant    *DeviceGrant  // what the device said of itself, when approved
}

// deviceKV keeps sealed grants under the hash of their device code, and
// the user code's pointer to it.
type deviceKV interface {
	createGrant(ctx context.Context, grant, code string, sealed []byte, interval, ttl time.Duration) (taken bool, err error)
	grantByCode(ctx context.Context, code string) (grant string, sealed []byte, status string, err error)
	decideGrant(ctx context.Context, grant, code, status string, sealedSession []byte) error
	// pollGrant answers a poll; once approved, with the sealed session
	// and the sealed grant.
	pollGrant(ctx context.Context, grant string, now time.Time) (status string, interval time.Duration, sealedSession, sealedGrant []byte, err error)
}

var (
	_ deviceKV = (*memDevices)(nil)
	_ deviceKV = (*RedisStore)(nil)
)

// Devices keeps device grants.
type Devices struct {
	kv    deviceKV
	aeads []cipher.AEAD // one per secret; the first seals
	now   func() time.Time
}

// NewDevices returns the keeper: in Redis when store is the Redis store,
// else in this replica's memory.
func NewDevices(keys *KeyRing, store Backend, now func() time.Time) (*Devices, error) {
	if keys == nil {
		return nil, errors.New("session: device grants need a key ring")
	}
	if now == nil {
		now = time.Now
	}
	d := &Devices{now: now, kv: &memDevices{now: now}}
	if rs, ok := store.(*RedisStore); ok {
		d.kv = rs
	}
	for i := range keys.secrets {
		d.aeads = append(d.aeads, newGCM(keys.derive(i, PurposeDevice, "key", 32)))
	}
	return d, nil
}

// Shared reports whether grants are kept where every replica sees them.
func (d *Devices) Shared() bool {
	_, mem := d.kv.(*memDevices)
	return !mem
}

// Start records a new grant and returns its device code; g's user code
// and times are filled in.
func (d *Devices) Start(ctx context.Context, g *DeviceGrant, lifetime, interval time.Duration) (string, error) {
	now := d.now()
	g.CreatedAt, g.ExpiresAt = now, now.Add(lifetime)
	var raw [24]byte
	if _, err := rand.Read(raw[:16]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(raw[16:], uint64(g.ExpiresAt.Unix()))
	deviceCode := base64.RawURLEncoding.EncodeToString(raw[:])
	grant := grantName(deviceCode)
	for range 5 { // a collision of user codes is rare (2^34.6 of them); try another
		code, err := newUserCode()
		if err != nil {
			return "", err
		}
		g.UserCode = code
		plain, err := json.Marshal(g)
		if err != nil {
			return "", err
		}
		sealed, err := seal(d.aeads[0], plain, grant)
		if err != nil {
			return "", err
		}
		taken, err := d.kv.createGrant(ctx, grant, userCodeName(code), sealed, interval, lifetime)
		if err != nil {
			return "", err
		}
		if !taken {
			return deviceCode, nil
		}
	}
	return "", errors.New("session: no free user code after 5 tries")
}

// ByUserCode returns the pending grant a user typed the code of.
func (d *Devices) ByUserCode(ctx context.Context, userCode string) (*DeviceGrant, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return nil, ErrGrantGone
	}
	grant, sealed, status, err := d.kv.grantByCode(ctx, userCodeName(code))
	if err != nil {
		return nil, err
	}
	g, err := d.openGrant(grant, sealed)
	if err != nil {
		return nil, err
	}
	if !d.now().Before(g.ExpiresAt) {
		return nil, ErrGrantGone
	}
	g.Status = status
	return g, nil
}

// Decide approves (s is the approving user's session) or denies (s nil)
// the grant of userCode, once.
func (d *Devices) Decide(ctx context.Context, userCode string, s *Session) error {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return ErrGrantGone
	}
	grant, _, status, err := d.kv.grantByCode(ctx, userCodeName(code))
	if err != nil {
		return err
	}
	if status != GrantPending {
		return ErrGrantDecided
	}
	if s == nil {
		return d.kv.decideGrant(ctx, grant, userCodeName(code), GrantDenied, nil)
	}
	plain, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	sealed, err := seal(d.aeads[0], plain, grant+"/session")
	if err != nil {
		return err
	}
	return d.kv.decideGrant(ctx, grant, userCodeName(code), GrantApproved, sealed)
}

// Poll answers a device's poll with its device code. An approved or
// denied grant is answered once and then gone: a second redemption gets
// ErrGrantGone.
func (d *Devices) Poll(ctx context.Context, deviceCode string) (Poll, error) {
	exp, ok := deviceCodeExpiry(deviceCode)
	if !ok {
		return Poll{}, ErrGrantGone
	}
	now := d.now()
	grant := grantName(deviceCode)
	status, interval, sealed, sealedGrant, err := d.kv.pollGrant(ctx, grant, now)
	switch {
	case errors.Is(err, ErrGrantGone) && !now.Before(exp):
		return Poll{}, ErrGrantExpired
	case err != nil:
		return Poll{}, err
	}
	p := Poll{Status: status, Interval: interval}
	if status == GrantApproved {
		plain, err := d.open(sealed, grant+"/session")
		if err != nil {
			return Poll{}, fmt.Errorf("%w: %v", ErrGrantGone, err)
		}
		p.Session = new(Session)
		if err := p.Session.UnmarshalBinary(plain); err != nil {
			return Poll{}, fmt.Errorf("%w: %v", ErrGrantGone, err)
		}
		if p.Grant, err = d.openGrant(grant, sealedGrant); err != nil {
			return Poll{}, err
		}
	}
	return p, nil
}

func (d *Devices) openGrant(grant string, sealed []byte) (*DeviceGrant, error) {
	plain, err := d.open(sealed, grant)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGrantGone, err)
	}
	g := new(DeviceGrant)
	if err := json.Unmarshal(plain, g); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGrantGone, err)
	}
	return g, nil
}

func (d *Devices) open(sealed []byte, aad string) ([]byte, error) {
	var err error
	for _, a := range d.aeads {
		var plain []byte
		if plain, err = open(a, sealed, aad); err == nil {
			return plain, nil
		}
	}
	return nil, err
}

// NormalizeUserCode returns the canonical form of what a user typed:
// upper case, without the dash, spaces or other punctuation (RFC 8628
// §6.1), and whether it can be a user code at all.
func NormalizeUserCode(s string) (string, bool) {
	if len(s) > 32 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case strings.ContainsRune(UserCodeAlphabet, r):
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '.' || r == '_':
		default:
			return "", false
		}
	}
	if b.Len() != UserCodeLen {
		return "", false
	}
	return b.String(), true
}

// FormatUserCode shows a canonical user code as XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

func newUserCode() (string, error) {
	// Rejection sampling: 256 is not a multiple of 20, so bytes ≥ 240 are
	// drawn again rather than biasing the first letters.
	out := make([]byte, 0, UserCodeLen)
	var buf [16]byte
	for len(out) < UserCodeLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 240 && len(out) < UserCodeLen {
				out = append(out, UserCodeAlphabet[int(c)%len(UserCodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// deviceCodeExpiry reads the expiry a device code carries (it is not
// secret, nor trusted beyond choosing expired_token over invalid_grant).
func deviceCodeExpiry(code string) (time.Time, bool) {
	if len(code) != 32 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(code)
	if err != nil || len(raw) != 24 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(raw[16:])), 0), true
}

// grantName and userCodeName are the record names: hashes, so a Redis
// dump names no code.
func grantName(deviceCode string) string {
	sum := sha256.Sum256([]byte("portcullis/device-code/" + deviceCode))
	return "dev:" + hex.EncodeToString(sum[:16])
}

func userCodeName(code string) string {
	sum := sha256.Sum256([]byte("portcullis/user-code/" + code))
	return "devcode:" + hex.EncodeToString(sum[:16])
}

// memDevices keeps grants in this replica's memory.
type memDevices struct {
	mu     sync.Mutex
	now    func() time.Time
	grants map[string]*memGrant
	codes  map[string]string // user code name → grant name
}

type memGrant struct {
	sealed   []byte
	status   string
	session  []byte
	interval time.Duration
	lastPoll time.Time
	exp      time.Time
}

func (m *memDevices) createGrant(_ context.Context, grant, code string, sealed []byte, interval, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.grants == nil {
		m.grants, m.codes = map[string]*memGrant{}, map[string]string{}
	}
	if len(m.grants) >= maxPendingGrants {
		m.sweep(now)
	}
	if len(m.grants) >= maxPendingGrants {
		return false, ErrGrantsFull
	}
	if g, ok := m.grants[m.codes[code]]; ok && now.Before(g.exp) {
		return true, nil
	}
	m.grants[grant] = &memGrant{sealed: sealed, status: GrantPending, interval: interval, exp: now.Add(ttl)}
	m.codes[code] = grant
	return false, nil
}

func (m *memDevices) sweep(now time.Time) {
	for name, g := range m.grants {
		if !now.Before(g.exp) {
			delete(m.grants, name)
		}
	}
	for code, name := range m.codes {
		if _, ok := m.grants[name]; !ok {
			delete(m.codes, code)
		}
	}
}

func (m *memDevices) live(name string) (*memGrant, bool) {
	g, ok := m.grants[name]
	if !ok || !m.now().Before(g.exp) {
		return nil, false
	}
	return g, true
}

func (m *memDevices) grantByCode(_ context.Context, code string) (string, []byte, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := m.codes[code]
	g, ok := m.live(name)
	if !ok {
		return "", nil, "", ErrGrantGone
	}
	return name, g.sealed, g.status, nil
}

func (m *memDevices) decideGrant(_ context.Context, grant, code, status string, sealedSession []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.live(grant)
	switch {
	case !ok:
		return ErrGrantGone
	case g.status != GrantPending:
		return ErrGrantDecided
	}
	g.status, g.session = status, sealedSession
	delete(m.codes, code) // the user code is spent
	return nil
}

func (m *memDevices) pollGrant(_ context.Context, grant string, now time.Time) (string, time.Duration, []byte, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.live(grant)
	if !ok {
		return "", 0, nil, nil, ErrGrantGone
	}
	// RFC 8628 §3.5: polling faster than the interval is slow_down, and
	// the interval grows by 5 seconds for this and every later poll.
	if !g.lastPoll.IsZero() && now.Sub(g.lastPoll) < g.interval {
		g.interval += 5 * time.Second
		g.lastPoll = now
		return GrantSlowDown, g.interval, nil, nil, nil
	}
	g.lastPoll = now
	if g.status != GrantPending {
		delete(m.grants, grant) // answered once: redeemed or refused
	}
	return g.status, g.interval, g.session, g.sealed, nil
}
