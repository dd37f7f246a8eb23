package session

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// userSession is a session of user n (0 is alice) with provider session sid.
func userSession(n int, sid string) *Session {
	s := demoSession(time.Now())
	if n > 0 {
		s.Subject = fmt.Sprintf("user-%d", n)
		s.Email = fmt.Sprintf("user-%d@example.com", n)
	}
	s.SID = sid
	return s
}

// signInWith signs in from a browser with the given User-Agent.
func signInWith(t testing.TB, st Store, s *Session, ua string) browser {
	t.Helper()
	b := browser{}
	r := b.request()
	r.Header.Set("User-Agent", ua)
	rec := httptest.NewRecorder()
	if err := st.Save(rec, r, s); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.take(rec)
	return b
}

// testRevocation signs in alice three times and bob once, then lists and
// revokes them in every way.
func testRevocation(t *testing.T, cfg RedisConfig) {
	cfg.KeyPrefix = fmt.Sprintf("revoke%d:", storeSeq.Add(1))
	secret := randomSecret(t)
	st := newRedisStore(t, cfg, nil, secret)
	replica := newRedisStore(t, cfg, nil, secret)
	ctx := context.Background()
	alice := userSession(0, "")
	laptop := signInWith(t, st, userSession(0, "sid-laptop"), "Firefox on the laptop")
	phone := signInWith(t, st, userSession(0, "sid-phone"), "Safari on the phone")
	tablet := signInWith(t, st, userSession(0, "sid-phone"), "Safari on the tablet")
	bob := signInWith(t, st, userSession(1, "sid-bob"), "curl")
	for i, b := range []browser{laptop, phone, tablet, bob} {
		if _, err := replica.Load(b.request()); err != nil { // warm the replica's cache
			t.Fatal(i, err)
		}
	}
	gone := func(name string, b browser) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			_, err := replica.Load(b.request())
			if errors.Is(err, ErrInvalidSession) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: replica still loads it after 1s (err %v)", name, err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	alive := func(name string, b browser) {
		t.Helper()
		if _, err := st.Load(b.request()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	list, err := st.ListUser(ctx, alice.Issuer, alice.Subject)
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, s := range list {
		agents = append(agents, s.UserAgent)
		if len(s.ID) != 32 || s.CreatedAt.IsZero() || s.LastSeen.IsZero() || s.ExpiresAt.Sub(s.CreatedAt) != time.Hour {
			t.Errorf("SessionInfo = %+v", s)
		}
	}
	slices.Sort(agents)
	if want := "Firefox on the laptop,Safari on the phone,Safari on the tablet"; strings.Join(agents, ",") != want {
		t.Errorf("ListUser agents = %q, want %q", agents, want)
	}

	// One session, by the id the list shows.
	tk, _ := st.ticketFrom(laptop.request())
	laptopID := st.names(tk.tag, tk.hash()).hash
	if err := st.RevokeTicket(ctx, alice.Issuer, alice.Subject, laptopID); err != nil {
		t.Fatal(err)
	}
	gone("revoked ticket", laptop)
	if err := st.RevokeTicket(ctx, alice.Issuer, alice.Subject, laptopID); !errors.Is(err, ErrNoSession) {
		t.Errorf("second RevokeTicket = %v, want ErrNoSession", err)
	}
	if err := st.RevokeTicket(ctx, alice.Issuer, alice.Subject, "not-hex"); !errors.Is(err, ErrNoSession) {
		t.Errorf("RevokeTicket(garbage) = %v, want ErrNoSession", err)
	}
	alive("phone after the laptop's revocation", phone)

	// A provider session: phone and tablet share sid-phone.
	n, err := st.RevokeSID(ctx, alice.Issuer, "sid-phone")
	if err != nil || n != 2 {
		t.Errorf("RevokeSID = %d, %v; want 2", n, err)
	}
	gone("phone after RevokeSID", phone)
	gone("tablet after RevokeSID", tablet)
	if err := st.Save(httptest.NewRecorder(), browser{}.request(), userSession(0, "sid-phone")); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("sign-in with a logged-out provider session = %v, want ErrInvalidSession", err)
	}

	// Everything of a user.
	desk := signInWith(t, st, userSession(0, "sid-desk"), "Chrome")
	home := signInWith(t, st, userSession(0, ""), "Edge")
	for _, b := range []browser{desk, home} {
		replica.Load(b.request())
	}
	n, err = st.RevokeUser(ctx, alice.Issuer, alice.Subject)
	if err != nil || n != 2 {
		t.Errorf("RevokeUser = %d, %v; want 2", n, err)
	}
	gone("desk after RevokeUser", desk)
	gone("home after RevokeUser", home)
	if list, err := st.ListUser(ctx, alice.Issuer, alice.Subject); err != nil || len(list) != 0 {
		t.Errorf("ListUser after RevokeUser = %v, %v", list, err)
	}
	alive("bob, another user", bob)
	if list, err := st.ListUser(ctx, alice.Issuer, "user-1"); err != nil || len(list) != 1 || list[0].UserAgent != "curl" {
		t.Errorf("ListUser(bob) = %+v, %v", list, err)
	}
}

func TestRedisRevocation(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	testRevocation(t, cfg)
}

// Last-seen is written at most once a minute.
func TestRedisLastSeenThrottled(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.CacheTTL = -1
	start := time.Unix(1_800_000_000, 0)
	now := start
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := newRedisStore(t, cfg, clock, randomSecret(t))
	b := signIn(t, st, demoSession(start))
	lastSeen := func() time.Time {
		list, err := st.ListUser(context.Background(), "https://idp.example.com", "248289761001")
		if err != nil || len(list) != 1 {
			t.Fatalf("ListUser = %v, %v", list, err)
		}
		return list[0].LastSeen
	}
	for _, tt := range []struct {
		at   time.Duration
		want time.Duration
	}{
		{10 * time.Second, 0},
		{59 * time.Second, 0},
		{61 * time.Second, 61 * time.Second},
		{90 * time.Second, 61 * time.Second},
		{3 * time.Minute, 3 * time.Minute},
	} {
		mu.Lock()
		now = start.Add(tt.at)
		mu.Unlock()
		if _, err := st.Load(b.request()); err != nil {
			t.Fatal(err)
		}
		if got := lastSeen(); !got.Equal(start.Add(tt.want)) {
			t.Errorf("after a Load at +%v last seen = +%v, want +%v", tt.at, got.Sub(start), tt.want)
		}
	}
}

// Sign-ins, sign-outs and revocations racing each other leave the records
// and the indexes in agreement, and no session of a revoked provider
// session survives.
func TestRedisConcurrentSignInSignOut(t *testing.T) {
	t.Parallel()
	_, cfg := standalone(t)
	cfg.KeyPrefix = "race:"
	secret := randomSecret(t)
	a := newRedisStore(t, cfg, nil, secret)
	b := newRedisStore(t, cfg, nil, secret)
	ctx := context.Background()
	alice := userSession(0, "")

	var mu sync.Mutex
	var doomed []browser // saved with sid-doomed, successfully
	type savedSession struct {
		br      browser
		created time.Time
	}
	var saved []savedSession
	var wg sync.WaitGroup
	for g := range 8 {
		st := []*RedisStore{a, b}[g%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				sid := "sid-kept"
				if i%3 == 0 {
					sid = "sid-doomed"
				}
				br := browser{}
				rec := httptest.NewRecorder()
				sess := userSession(0, sid)
				err := st.Save(rec, br.request(), sess)
				if errors.Is(err, ErrInvalidSession) {
					continue // the provider session was logged out first, or a RevokeUser ran after sess was created
				}
				if err != nil {
					t.Error(err)
					return
				}
				br.take(rec)
				mu.Lock()
				saved = append(saved, savedSession{br, sess.CreatedAt})
				mu.Unlock()
				if sid == "sid-doomed" {
					mu.Lock()
					doomed = append(doomed, br)
					mu.Unlock()
				}
				if i%4 == 1 {
					if err := st.Clear(httptest.NewRecorder(), br.request()); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Add(2)
	var lastRevoke time.Time
	go func() {
		defer wg.Done()
		for range 5 {
			lastRevoke = time.Now()
			if _, err := a.RevokeUser(ctx, alice.Issuer, alice.Subject); err != nil {
				t.Error(err)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		time.Sleep(10 * time.Millisecond)
		if _, err := b.RevokeSID(ctx, alice.Issuer, "sid-doomed"); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()

	for i, br := range doomed {
		if _, err := a.Load(br.request()); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("doomed session %d loads after RevokeSID: %v", i, err)
		}
	}
	// Records and user index agree exactly.
	tag := userTag(alice.Issuer, alice.Subject)
	n := a.names(tag, [16]byte{})
	records, err := a.client.Keys(ctx, strings.TrimSuffix(n.session, n.hash)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	indexed, err := a.client.ZRange(ctx, n.index, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var recordIDs []string
	for _, k := range records {
		recordIDs = append(recordIDs, k[strings.LastIndexByte(k, ':')+1:])
	}
	slices.Sort(recordIDs)
	slices.Sort(indexed)
	if !slices.Equal(recordIDs, indexed) {
		t.Errorf("records %v and user index %v disagree", recordIDs, indexed)
	}
	list, err := a.ListUser(ctx, alice.Issuer, alice.Subject)
	if err != nil || len(list) != len(records) {
		t.Errorf("ListUser = %d sessions, %v; want %d", len(list), err, len(records))
	}
	// Whatever survived was created after the last RevokeUser began, to
	// the millisecond: a sign-in racing a revocation does not outlive it.
	for _, sv := range saved {
		if _, err := a.Load(sv.br.request()); err == nil && !sv.created.After(lastRevoke) {
			t.Errorf("a session created at %v survived the revocation at %v", sv.created, lastRevoke)
		}
	}
	t.Logf("%d sessions survived, %d doomed ones revoked", len(records), len(doomed))
}
