package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Revocation at its boundary (issue 14, defect 4): back-channel logout by
// subject and admin revocation end every session not provably created
// after them (Back-Channel Logout 1.0 §2.7). Sessions of the same second
// used to survive, because the revocation time was cut to the second.

// revokeCase is one session relative to a revocation at T.
type revokeCase struct {
	name    string
	created time.Duration // CreatedAt - T
	// afterRevoke saves the session only once the revocation has run: a
	// sign-in racing it.
	afterRevoke bool
	// want is whether the session loads afterwards, per store.
	wantCookie, wantRedis bool
}

var revokeCases = []revokeCase{
	{"created a second before, saved before", -time.Second, false, false, false},
	{"same second, 300 ms before, saved before", -300 * time.Millisecond, false, false, false},
	{"same second, 1 ms before, saved before", -time.Millisecond, false, false, false},
	{"at the very instant, saved before", 0, false, false, false},
	{"same second, 300 ms before, saved after (a racing sign-in)", -300 * time.Millisecond, true, false, false},
	{"at the very instant, saved after", 0, true, false, false},
	{"a minute before, saved after", -time.Minute, true, false, false},
	// After the revocation, in the same second: the cookie keeps whole
	// seconds and fails closed; Redis compares milliseconds.
	{"same second, 300 ms after", 300 * time.Millisecond, true, false, true},
	// Near misses: sessions of a later second survive in both stores.
	{"the next second", 600 * time.Millisecond, true, true, true},
	{"a minute after", time.Minute, true, true, true},
}

// clock is a settable clock for stores under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func runRevokeCases(t *testing.T, store string, open func(t *testing.T, now func() time.Time) Backend) {
	// T sits half-way through a second, so "same second" has room on both sides.
	T := time.Unix(1_800_000_000, 400_000_000)
	for _, tt := range revokeCases {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: T.Add(tt.created)}
			st := open(t, c.Now)
			sess := demoSession(T.Add(tt.created))
			sess.SID = "" // by subject, as back-channel logout without sid and the admin API do
			sess.ExpiresAt = T.Add(time.Hour)
			var br browser
			save := func() error {
				br = browser{}
				rec := httptest.NewRecorder()
				err := st.Save(rec, br.request(), sess)
				br.take(rec)
				return err
			}
			revoke := func() {
				c.set(T)
				if _, err := st.RevokeUser(context.Background(), sess.Issuer, sess.Subject); err != nil {
					t.Fatal(err)
				}
			}
			var saveErr error
			if tt.afterRevoke {
				revoke()
				c.set(T.Add(tt.created))
				saveErr = save()
			} else {
				if err := save(); err != nil {
					t.Fatal(err)
				}
				revoke()
			}
			c.set(T.Add(2 * time.Minute))
			want := tt.wantCookie
			if store == "redis" {
				want = tt.wantRedis
			}
			_, err := st.Load(br.request())
			switch {
			case saveErr != nil && !errors.Is(saveErr, ErrInvalidSession):
				t.Fatalf("Save: %v", saveErr)
			case saveErr != nil && want:
				t.Errorf("Save refused a session created after the revocation: %v", saveErr)
			case saveErr == nil && want && err != nil:
				t.Errorf("a session created after the revocation does not load: %v", err)
			case saveErr == nil && !want && err == nil:
				t.Errorf("a session created %v from the revocation survived it", tt.created)
			}
		})
	}
}

func TestHostileRevokeBoundaryCookie(t *testing.T) {
	runRevokeCases(t, "cookie", func(t *testing.T, now func() time.Time) Backend {
		s, err := NewCookieStore(CookieConfig{Name: "_portcullis"}, mustKeys(t, randomSecret(t)),
			CookieStoreOptions{Lifetime: time.Hour, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestHostileRevokeBoundaryRedis(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	runRevokeCases(t, "redis", func(t *testing.T, now func() time.Time) Backend {
		return newRedisStore(t, cfg, now, randomSecret(t))
	})
}
