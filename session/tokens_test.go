package session

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// confTokens: a token opens as the session it was issued for, under the
// same expiry and key rotation as cookies; it is neither a cookie nor
// made from one; revoking it, or the user, ends it.
func confTokens(t *testing.T, newStore newStoreFunc) {
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	var now atomic.Pointer[time.Time]
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	old := randomSecret(t)
	st := newStore(t, clock, old)

	s := demoSession(start)
	s.ExpiresAt = start.Add(30 * time.Minute) // a device lifetime shorter than the store's
	token, err := st.IssueToken(ctx, s, "test")
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	got, err := st.LoadToken(ctx, token)
	if err != nil || got.Subject != s.Subject || got.Email != s.Email {
		t.Fatalf("LoadToken = %+v, %v; want the issued session", got, err)
	}

	// Not a cookie, and a cookie is not a token.
	if _, err := st.Load(browser{st.Name(): token}.request()); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("the token sent as the cookie: %v, want ErrInvalidSession", err)
	}
	b := signIn(t, st, demoSession(start))
	if _, err := st.LoadToken(ctx, b[st.Name()]); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("a cookie value sent as a token: %v, want ErrInvalidSession", err)
	}
	for _, bad := range []string{"", "x", token[:len(token)-2] + "AA", strings.Repeat("A", maxToken+1), token + " "} {
		if _, err := st.LoadToken(ctx, bad); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("LoadToken(%.20q…) = %v, want ErrInvalidSession", bad, err)
		}
	}

	// Key rotation: a store with a new first secret still opens it.
	rotated := newStore(t, clock, randomSecret(t), old)
	if _, err := rotated.LoadToken(ctx, token); err != nil {
		t.Errorf("after a key rotation: %v, want the session", err)
	}

	// Expiry: the token's own, not the store's lifetime.
	later := start.Add(31 * time.Minute)
	now.Store(&later)
	if _, err := st.LoadToken(ctx, token); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("after the token's expiry: %v, want ErrInvalidSession", err)
	}
	now.Store(&start)

	// Revoking the token ends it; an invalid token is no error.
	if err := st.RevokeToken(ctx, token); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if _, err := st.LoadToken(ctx, token); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("after RevokeToken: %v, want ErrInvalidSession", err)
	}
	if err := st.RevokeToken(ctx, "nonsense"); err != nil {
		t.Errorf("RevokeToken of nonsense: %v, want nil", err)
	}

	// Revoking the user ends their tokens too.
	tick := start.Add(time.Second)
	now.Store(&tick)
	second, err := st.IssueToken(ctx, demoSession(tick), "test")
	if err != nil {
		t.Fatal(err)
	}
	after := tick.Add(time.Second)
	now.Store(&after)
	if _, err := st.RevokeUser(ctx, s.Issuer, s.Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadToken(ctx, second); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("after RevokeUser: %v, want ErrInvalidSession", err)
	}
}
