package session

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The session travels in a compact binary form: a version byte, then one
// record per non-empty field, each a tag byte followed by its value. Strings
// are a uvarint length and bytes, times are varint Unix seconds, lists are a
// uvarint count of strings. Empty fields are left out, so a typical session
// costs a few hundred bytes before encryption; JSON would cost twice that and
// gob more. Unknown tags are an error: the format is ours and versioned.
const encodingVersion = 1

const (
	tagIssuer byte = iota + 1
	tagSubject
	tagEmail
	tagEmailVerified
	tagName
	tagPreferredUsername
	tagGroups
	tagClaim // one record per claim: key string, then a list
	tagProvider
	tagSID
	tagCreatedAt
	tagRefreshedAt
	tagExpiresAt
	tagTokenExpiry
	tagAccessToken
	tagRefreshToken
	tagIDToken
	tagLastSeen
	tagSessionID
	tagIDTokenJWS // the ID token as its three decoded segments (appendIDToken)
	tagUser       // Identity.User (user_claim)
	tagLast       = tagUser
)

// Decoding limits: a sealed cookie passed its MAC before it gets here, but the
// Redis store decodes records too and fuzzing decodes anything.
const (
	maxFieldLen  = 64 << 10
	maxListLen   = 4096
	maxClaimKeys = 256
)

var errMalformed = errors.New("malformed session encoding")

// MarshalBinary encodes s in the compact form described above.
func (s *Session) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, encodingVersion)
	b = appendString(b, tagIssuer, s.Issuer)
	b = appendString(b, tagSubject, s.Subject)
	b = appendString(b, tagEmail, s.Email)
	if s.EmailVerified {
		b = append(b, tagEmailVerified)
	}
	b = appendString(b, tagName, s.Name)
	b = appendString(b, tagPreferredUsername, s.PreferredUsername)
	if len(s.Groups) > 0 {
		b = append(b, tagGroups)
		b = appendList(b, s.Groups)
	}
	for k, v := range s.Claims {
		b = append(b, tagClaim)
		b = appendRaw(b, k)
		b = appendList(b, v)
	}
	b = appendString(b, tagProvider, s.Provider)
	b = appendString(b, tagSID, s.SID)
	b = appendTime(b, tagCreatedAt, s.CreatedAt)
	b = appendTime(b, tagRefreshedAt, s.RefreshedAt)
	b = appendTime(b, tagExpiresAt, s.ExpiresAt)
	b = appendTime(b, tagTokenExpiry, s.TokenExpiry)
	b = appendString(b, tagAccessToken, s.AccessToken)
	b = appendString(b, tagRefreshToken, s.RefreshToken)
	b = appendIDToken(b, s.IDToken)
	b = appendTime(b, tagLastSeen, s.LastSeen)
	b = appendString(b, tagSessionID, s.ID)
	b = appendString(b, tagUser, s.User)
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced. It rejects anything
// else with an error and leaves s unspecified, so callers must discard s when
// it fails.
func (s *Session) UnmarshalBinary(data []byte) error {
	*s = Session{}
	if len(data) == 0 || data[0] != encodingVersion {
		return fmt.Errorf("%w: unknown version", errMalformed)
	}
	d := decoder{b: data[1:]}
	seen := uint32(0)
	for len(d.b) > 0 && d.err == nil {
		tag := d.b[0]
		d.b = d.b[1:]
		if tag != tagClaim {
			if tag == 0 || tag > tagLast {
				return fmt.Errorf("%w: unknown field %d", errMalformed, tag)
			}
			if seen&(1<<tag) != 0 {
				return fmt.Errorf("%w: repeated field %d", errMalformed, tag)
			}
			seen |= 1 << tag
		}
		switch tag {
		case tagIssuer:
			s.Issuer = d.str()
		case tagSubject:
			s.Subject = d.str()
		case tagEmail:
			s.Email = d.str()
		case tagEmailVerified:
			s.EmailVerified = true
		case tagName:
			s.Name = d.str()
		case tagPreferredUsername:
			s.PreferredUsername = d.str()
		case tagGroups:
			s.Groups = d.list()
		case tagClaim:
			k, v := d.str(), d.list()
			if s.Claims == nil {
				s.Claims = make(map[string][]string)
			}
			if _, dup := s.Claims[k]; dup || len(s.Claims) >= maxClaimKeys {
				return fmt.Errorf("%w: repeated or too many claims", errMalformed)
			}
			s.Claims[k] = v
		case tagProvider:
			s.Provider = d.str()
		case tagSID:
			s.SID = d.str()
		case tagCreatedAt:
			s.CreatedAt = d.time()
		case tagRefreshedAt:
			s.RefreshedAt = d.time()
		case tagExpiresAt:
			s.ExpiresAt = d.time()
		case tagTokenExpiry:
			s.TokenExpiry = d.time()
		case tagAccessToken:
			s.AccessToken = d.str()
		case tagRefreshToken:
			s.RefreshToken = d.str()
		case tagIDToken:
			s.IDToken = d.str()
		case tagIDTokenJWS:
			s.IDToken = d.jws()
		case tagLastSeen:
			s.LastSeen = d.time()
		case tagSessionID:
			s.ID = d.str()
		case tagUser:
			s.User = d.str()
		}
	}
	if seen&(1<<tagIDToken) != 0 && seen&(1<<tagIDTokenJWS) != 0 {
		return fmt.Errorf("%w: two ID tokens", errMalformed)
	}
	return d.err
}

// appendIDToken stores an ID token, a compact JWS (RFC 7515 §7.1), as its
// three base64url segments decoded: a quarter smaller than the text, which
// matters in a cookie, where every byte is encrypted and base64-encoded
// again (about 1.8 bytes per byte kept). A token that would not come back
// as exactly the same text (padding, non-canonical bits, not three
// segments) is kept as text.
func appendIDToken(b []byte, tok string) []byte {
	if tok == "" {
		return b
	}
	segs, ok := jwsSegments(tok)
	if !ok {
		return appendString(b, tagIDToken, tok)
	}
	b = append(b, tagIDTokenJWS)
	for _, seg := range segs {
		b = binary.AppendUvarint(b, uint64(len(seg)))
		b = append(b, seg...)
	}
	return b
}

func jwsSegments(tok string) ([3][]byte, bool) {
	var segs [3][]byte
	rest := tok
	for i := range segs {
		part := rest
		if i < 2 {
			var found bool
			if part, rest, found = strings.Cut(rest, "."); !found {
				return segs, false
			}
		}
		dec, err := jwsEncoding.DecodeString(part)
		if err != nil || jwsEncoding.EncodeToString(dec) != part {
			return segs, false
		}
		segs[i] = dec
	}
	return segs, true
}

// jwsEncoding is base64url without padding (RFC 7515 §2), strict so that
// decoding and encoding again gives back the very same text.
var jwsEncoding = base64.RawURLEncoding.Strict()

func appendRaw(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, tag byte, v string) []byte {
	if v == "" {
		return b
	}
	return appendRaw(append(b, tag), v)
}

func appendList(b []byte, vs []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = appendRaw(b, v)
	}
	return b
}

func appendTime(b []byte, tag byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return binary.AppendVarint(append(b, tag), t.Unix())
}

// decoder reads fields until the first error, which sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errMalformed, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(limit uint64, what string) int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) str() string {
	n := d.uvarint(maxFieldLen, "length")
	if d.err != nil {
		return ""
	}
	if n > len(d.b) {
		d.fail("length")
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(v) {
		d.fail("text")
		return ""
	}
	return v
}

// jws reads the three segments appendIDToken wrote and joins them again.
func (d *decoder) jws() string {
	var out strings.Builder
	for i := 0; i < 3 && d.err == nil; i++ {
		n := d.uvarint(maxFieldLen, "length")
		if d.err != nil || n > len(d.b) {
			d.fail("length")
			return ""
		}
		if i > 0 {
			out.WriteByte('.')
		}
		out.WriteString(jwsEncoding.EncodeToString(d.b[:n]))
		d.b = d.b[n:]
	}
	if d.err != nil {
		return ""
	}
	return out.String()
}

func (d *decoder) list() []string {
	n := d.uvarint(maxListLen, "list")
	if d.err != nil || n > len(d.b) {
		d.fail("list")
		return nil
	}
	if n == 0 {
		// An empty list is no list: the encoder omits empty groups, so
		// decoding to nil keeps decode(encode(decode(b))) stable.
		return nil
	}
	vs := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		vs = append(vs, d.str())
	}
	return vs
}

func (d *decoder) time() time.Time {
	v, n := binary.Varint(d.b)
	if n <= 0 || v <= 0 || v > 1<<40 {
		d.fail("time")
		return time.Time{}
	}
	d.b = d.b[n:]
	return time.Unix(v, 0)
}

// binarySerializer adapts MarshalBinary/UnmarshalBinary to securecookie.
type binarySerializer struct{}

func (binarySerializer) Serialize(src any) ([]byte, error) {
	s, ok := src.(*Session)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	return s.MarshalBinary()
}

func (binarySerializer) Deserialize(src []byte, dst any) error {
	s, ok := dst.(*Session)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	return s.UnmarshalBinary(src)
}
