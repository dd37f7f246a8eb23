package demo

import (
	"crypto/rand"
	"strings"
)

// DemoUsers returns the two users of `portcullis demo`, with passwords made
// up on each call, for the caller to print:
//
//   - alice (alice@example.com, verified), groups admins and developers
//   - bob (bob@example.com, verified), group developers
func DemoUsers() []User {
	return []User{
		{
			ID: "u-alice", Username: "alice", Password: NewPassword(),
			Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Demo", GivenName: "Alice", FamilyName: "Demo",
			Groups: []string{"admins", "developers"},
		},
		{
			ID: "u-bob", Username: "bob", Password: NewPassword(),
			Email: "bob@example.com", EmailVerified: true,
			Name: "Bob Demo", GivenName: "Bob", FamilyName: "Demo",
			Groups: []string{"developers"},
		},
	}
}

// passwordAlphabet leaves out look-alikes (0 o 1 l i) so a printed password
// can be typed back.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// NewPassword returns 16 random characters from passwordAlphabet in groups
// of four, like "h7kq-3xmz-p9ta-we4r" (about 79 bits).
func NewPassword() string {
	var b strings.Builder
	for i := 0; i < 16; {
		var buf [32]byte
		rand.Read(buf[:])
		for _, c := range buf {
			// 248 is the largest multiple of 31 below 256: rejecting the rest keeps
			// every character equally likely.
			if c >= 248 || i == 16 {
				continue
			}
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(passwordAlphabet[int(c)%len(passwordAlphabet)])
			i++
		}
	}
	return b.String()
}
