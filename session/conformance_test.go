package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newStoreFunc builds a store under test. Stores built within one test
// share their backend (the same Redis keys), so a test can reopen what
// another store instance saved, with other secrets. Their lifetime is 1h.
type newStoreFunc func(t *testing.T, now func() time.Time, secrets ...string) Backend

// runConformance runs the behaviour every Backend must have. It runs for the
// cookie store and for the Redis store in each topology.
func runConformance(t *testing.T, newStore newStoreFunc) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, newStore newStoreFunc)
	}{
		{"save then load", confSaveLoad},
		{"load returns a copy", confLoadCopy},
		{"clear", confClear},
		{"absolute expiry", confExpiry},
		{"rejects bad cookies", confRejects},
		{"key rotation", confRotation},
		{"fresh ticket at every new save", confFreshTicket},
		{"concurrent refresh runs once", confConcurrentRefresh},
		{"tokens", confTokens},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

// browser is a cookie jar: it keeps what responses set and sends it back.
type browser map[string]string

func (b browser) take(rec *httptest.ResponseRecorder) {
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b, c.Name)
		} else {
			b[c.Name] = c.Value
		}
	}
}

func (b browser) request() *http.Request {
	r := httptest.NewRequest("GET", "https://app.example.com/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (conformance)")
	var pairs []string
	for n, v := range b {
		pairs = append(pairs, n+"="+v)
	}
	if len(pairs) > 0 {
		r.Header.Set("Cookie", strings.Join(pairs, "; "))
	}
	return r
}

func (b browser) clone() browser {
	c := browser{}
	for k, v := range b {
		c[k] = v
	}
	return c
}

// signIn saves a new session for s and returns the browser holding it.
func signIn(t testing.TB, st Store, s *Session) browser {
	t.Helper()
	b := browser{}
	rec := httptest.NewRecorder()
	if err := st.Save(rec, b.request(), s); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.take(rec)
	if len(b) == 0 {
		t.Fatal("Save set no cookie")
	}
	return b
}

// serverSide is implemented by stores that keep sessions on the server and
// can therefore end them for good.
type serverSide interface {
	RevokeTicket(ctx context.Context, issuer, subject, id string) error
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func confSaveLoad(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, fixedNow(now), randomSecret(t))
	want := demoSession(now)
	want.Claims = map[string][]string{"department": {"sre"}}
	want.AccessToken = "at-123"
	b := signIn(t, st, want)
	got, err := st.Load(b.request())
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || got.Email != want.Email || !got.EmailVerified ||
		strings.Join(got.Groups, ",") != "admins,developers" || got.RefreshToken != want.RefreshToken ||
		got.AccessToken != "at-123" || got.Claims["department"][0] != "sre" ||
		!got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(time.Hour)) || got.SID != want.SID {
		t.Errorf("Load = %+v, want %+v", got, want)
	}

	// A loaded session saved again keeps working and shows the change.
	got.Groups = append(got.Groups, "auditors")
	rec := httptest.NewRecorder()
	if err := st.Save(rec, b.request(), got); err != nil {
		t.Fatal(err)
	}
	b.take(rec)
	again, err := st.Load(b.request())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again.Groups, ",") != "admins,developers,auditors" {
		t.Errorf("groups after update = %v", again.Groups)
	}
}

func confLoadCopy(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, fixedNow(now), randomSecret(t))
	b := signIn(t, st, demoSession(now))
	first, err := st.Load(b.request())
	if err != nil {
		t.Fatal(err)
	}
	// The contract (Identity): fields are set, Groups and Claims replaced
	// whole, never changed in place.
	lastSeen := first.LastSeen
	first.Groups = []string{"mutated"}
	first.Email = "mallory@example.com"
	first.LastSeen = now.Add(time.Hour)
	second, err := st.Load(b.request())
	if err != nil {
		t.Fatal(err)
	}
	if second.Groups[0] != "admins" || second.Email != "alice@example.com" || !second.LastSeen.Equal(lastSeen) {
		t.Errorf("a caller's change leaked into the next Load: %+v", second)
	}
}

func confClear(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, fixedNow(now), randomSecret(t))
	b := signIn(t, st, demoSession(now))
	stolen := b.clone()
	// Loading first warms whatever the store caches (opened cookies,
	// tickets, sessions), so the checks below also cover the caches.
	if _, err := st.Load(stolen.request()); err != nil {
		t.Fatalf("Load before Clear: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := st.Clear(rec, b.request()); err != nil {
		t.Fatal(err)
	}
	b.take(rec)
	if len(b) != 0 {
		t.Errorf("browser still holds %v after Clear", b)
	}
	if _, err := st.Load(b.request()); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load after Clear = %v, want ErrNoSession", err)
	}
	if _, ok := st.(serverSide); ok {
		// A copy of the cookie taken before sign-out is worthless now.
		if _, err := st.Load(stolen.request()); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("Load of a cleared session's cookie = %v, want ErrInvalidSession", err)
		}
	}
	// Clearing without a session is fine.
	if err := st.Clear(httptest.NewRecorder(), browser{}.request()); err != nil {
		t.Errorf("Clear without a session: %v", err)
	}
}

func confExpiry(t *testing.T, newStore newStoreFunc) {
	start := time.Unix(1_800_000_000, 0)
	var now atomic.Pointer[time.Time]
	now.Store(&start)
	st := newStore(t, func() time.Time { return *now.Load() }, randomSecret(t))
	b := signIn(t, st, demoSession(start))
	if rs, ok := st.(*RedisStore); ok {
		ttl := recordTTL(t, rs, b)
		if ttl < time.Hour-5*time.Second || ttl > time.Hour {
			t.Errorf("record PTTL = %v, want about the 1h lifetime", ttl)
		}
	}
	for _, tt := range []struct {
		name string
		at   time.Duration
		ok   bool
	}{
		{"just signed in", 0, true},
		{"a minute before the end", 59 * time.Minute, true},
		{"at the end", time.Hour, false},
		{"long after", 3 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at := start.Add(tt.at)
			now.Store(&at)
			_, err := st.Load(b.request())
			if tt.ok && err != nil {
				t.Errorf("Load = %v, want the session", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Load = %v, want ErrInvalidSession", err)
			}
		})
	}
}

func confRejects(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	secret := randomSecret(t)
	st := newStore(t, fixedNow(now), secret)
	b := signIn(t, st, demoSession(now))
	if len(b) != 1 {
		t.Fatalf("want one cookie, got %v", b)
	}
	var name, value string
	for name, value = range b {
	}
	other := signIn(t, newStore(t, fixedNow(now), randomSecret(t)), demoSession(now))
	flip := func(i int) string {
		v := []byte(value)
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		return string(v)
	}
	for _, tt := range []struct {
		name   string
		cookie string
		want   error
	}{
		{"no cookie", "", ErrNoSession},
		{"other cookies only", "a=b; c=d", ErrNoSession},
		{"empty value", name + "=", ErrInvalidSession},
		{"truncated", name + "=" + value[:len(value)/2], ErrInvalidSession},
		{"one byte short", name + "=" + value[:len(value)-1], ErrInvalidSession},
		{"bit flipped start", name + "=" + flip(3), ErrInvalidSession},
		{"bit flipped middle", name + "=" + flip(len(value)/2), ErrInvalidSession},
		{"bit flipped end", name + "=" + flip(len(value)-3), ErrInvalidSession},
		{"not base64", name + "=!!!!", ErrInvalidSession},
		{"wrong key", name + "=" + other[name], ErrInvalidSession},
		{"oversized", name + "=" + strings.Repeat("A", 20000), ErrInvalidSession},
		{"too many chunks", name + "_0=a; " + name + "_7=b", ErrInvalidSession},
		{"miscapitalised name", strings.ToUpper(name) + "=" + value, ErrNoSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			got, err := st.Load(r)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Load = %v, %v; want nil, %v", got, err, tt.want)
			}
		})
	}
}

func confRotation(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	oldKey, newKey := randomSecret(t), randomSecret(t)
	b := signIn(t, newStore(t, fixedNow(now), oldKey), demoSession(now))
	for _, tt := range []struct {
		name    string
		secrets []string
		ok      bool
	}{
		{"old only", []string{oldKey}, true},
		{"new added second", []string{oldKey, newKey}, true},
		{"new promoted first", []string{newKey, oldKey}, true},
		{"old retired", []string{newKey}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newStore(t, fixedNow(now), tt.secrets...).Load(b.request())
			if tt.ok && err != nil {
				t.Errorf("Load = %v, want the session", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Load = %v, want ErrInvalidSession", err)
			}
		})
	}
}

func confFreshTicket(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, fixedNow(now), randomSecret(t))
	first := signIn(t, st, demoSession(now))

	// Signing in again in the same browser replaces the cookie.
	rec := httptest.NewRecorder()
	if err := st.Save(rec, first.request(), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	second := first.clone()
	second.take(rec)
	for n, v := range first {
		if second[n] == v {
			t.Errorf("cookie %s unchanged by a new sign-in", n)
		}
	}
	if _, err := st.Load(second.request()); err != nil {
		t.Errorf("Load of the new session: %v", err)
	}
	if _, ok := st.(serverSide); ok {
		if _, err := st.Load(first.request()); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("the replaced session still loads: %v", err)
		}
	}

	// Two browsers signing in get two independent sessions.
	third := signIn(t, st, demoSession(now))
	if err := st.Clear(httptest.NewRecorder(), third.request()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(second.request()); err != nil {
		t.Errorf("clearing one browser's session ended another's: %v", err)
	}
}

func confConcurrentRefresh(t *testing.T, newStore newStoreFunc) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, fixedNow(now), randomSecret(t))
	b := signIn(t, st, demoSession(now))
	const callers = 20
	var calls atomic.Int32
	fn := func(ctx context.Context, s *Session) (*Session, error) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond) // the provider is slow
		s.RefreshToken = "rotated"
		s.RefreshedAt = now.Add(time.Minute)
		return s, nil
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]*Session, callers)
	errs := make([]error, callers)
	recs := make([]*httptest.ResponseRecorder, callers)
	for i := range callers {
		r := b.request()
		s, err := st.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = httptest.NewRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = st.RefreshOnce(r.Context(), recs[i], r, s, fn)
		}()
	}
	close(start)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times, want once", n)
	}
	_, cookieInSession := st.(*CookieStore)
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
			continue
		}
		if results[i].RefreshToken != "rotated" {
			t.Errorf("caller %d got refresh token %q, want the refreshed session", i, results[i].RefreshToken)
		}
		if cookieInSession && len(recs[i].Result().Cookies()) == 0 {
			t.Errorf("caller %d got no re-issued cookie", i)
		}
	}
	if cookieInSession {
		b.take(recs[0])
	}
	got, err := st.Load(b.request())
	if err != nil || got.RefreshToken != "rotated" {
		t.Errorf("Load after refresh = %+v, %v; want the refreshed session", got, err)
	}
}
