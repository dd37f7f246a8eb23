package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newStore(t testing.TB, now *time.Time, secrets ...string) *CookieStore {
	t.Helper()
	s, err := NewCookieStore(CookieConfig{Name: "_portcullis"}, mustKeys(t, secrets...),
		CookieStoreOptions{Lifetime: time.Hour, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCookieStoreRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	rec := httptest.NewRecorder()
	want := demoSession(now)
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), want); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Save set %d cookies, want 1", len(cookies))
	}
	c := cookies[0]
	if c.Name != "__Host-_portcullis" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie attributes = %+v, want __Host- name, Secure, HttpOnly, Lax, Path=/, no Domain", c)
	}
	if c.MaxAge != 3600 {
		t.Errorf("MaxAge = %d, want 3600", c.MaxAge)
	}
	got, err := st.Load(request(rec))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || got.Email != want.Email || !got.EmailVerified ||
		strings.Join(got.Groups, ",") != "admins,developers" || got.RefreshToken != want.RefreshToken ||
		!got.ExpiresAt.Equal(now.Add(time.Hour)) || got.SID != want.SID {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
}

func TestCookieStoreRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	secret := randomSecret(t)
	st := newStore(t, &now, secret)
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	value := rec.Result().Cookies()[0].Value
	name := st.Name()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := newStore(t, &now, randomSecret(t))
	otherRec := httptest.NewRecorder()
	other.Save(otherRec, httptest.NewRequest("GET", "/", nil), demoSession(now))

	for _, tt := range []struct {
		name   string
		cookie string
		at     time.Time
		want   error
	}{
		{"no cookie", "", now, ErrNoSession},
		{"other cookies only", "a=b; c=d", now, ErrNoSession},
		{"empty value", name + "=", now, ErrInvalidSession},
		{"truncated", name + "=" + value[:len(value)/2], now, ErrInvalidSession},
		{"bit flipped start", name + "=" + flip(value, 3), now, ErrInvalidSession},
		{"bit flipped middle", name + "=" + flip(value, len(value)/2), now, ErrInvalidSession},
		{"bit flipped end", name + "=" + flip(value, len(value)-3), now, ErrInvalidSession},
		{"not base64", name + "=!!!!", now, ErrInvalidSession},
		{"wrong key", name + "=" + otherRec.Result().Cookies()[0].Value, now, ErrInvalidSession},
		{"wrong name", "__Host-other=" + value, now, ErrNoSession},
		{"chunks with a gap", name + "_0=" + value[:100] + "; " + name + "_2=" + value[100:], now, ErrInvalidSession},
		{"chunks out of order", name + "_1=" + value[:100] + "; " + name + "_0=" + value[100:], now, ErrInvalidSession},
		{"expired", name + "=" + value, now.Add(time.Hour + time.Second), ErrInvalidSession},
		{"oversized", name + "=" + strings.Repeat("A", 20000), now, ErrInvalidSession},
		{"too many chunks", name + "_0=a; " + name + "_7=b", now, ErrInvalidSession},
		{"hundreds of chunks", hundredsOfChunks(name), now, ErrInvalidSession},
		{"miscapitalised prefix", "__HOST-_portcullis=" + value, now, ErrNoSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			s := newStore(t, &at, secret)
			r := httptest.NewRequest("GET", "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			got, err := s.Load(r)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Load = %v, %v; want nil, %v", got, err, tt.want)
			}
			if !IsAbsent(err) {
				t.Errorf("IsAbsent(%v) = false", err)
			}
		})
	}
}

func hundredsOfChunks(name string) string {
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteString(name + "_" + strconv.Itoa(i) + "=AAAA; ")
	}
	return b.String()
}

func TestCookieStorePayloadChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	secret := randomSecret(t)
	st := newStore(t, &now, secret)
	for _, tt := range []struct {
		name   string
		mutate func(*Session)
	}{
		{"future dated", func(s *Session) { s.CreatedAt = now.Add(10 * time.Minute); s.ExpiresAt = s.CreatedAt.Add(time.Hour) }},
		{"no subject", func(s *Session) { s.Subject = "" }},
		{"no issuer", func(s *Session) { s.Issuer = "" }},
		{"lifetime stretched", func(s *Session) { s.CreatedAt = now.Add(-50 * time.Minute); s.ExpiresAt = now.Add(2 * time.Hour) }},
		{"past its end", func(s *Session) { s.CreatedAt = now.Add(-2 * time.Hour); s.ExpiresAt = now.Add(-time.Hour) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := demoSession(now)
			s.ExpiresAt = now.Add(time.Hour)
			tt.mutate(s)
			// Seal directly: Save would repair the lifetime.
			v, err := st.Seal(s)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", st.Name()+"="+v)
			if got, err := st.Load(r); !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Load = %v, %v; want ErrInvalidSession", got, err)
			}
		})
	}
}

func TestCookieStoreRotation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	oldKey, newKey := randomSecret(t), randomSecret(t)
	before := newStore(t, &now, oldKey)
	rec := httptest.NewRecorder()
	before.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now))

	// Step 1: new key added second; step 2: promoted first; step 3: old removed.
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
			st := newStore(t, &now, tt.secrets...)
			_, err := st.Load(request(rec))
			if (err == nil) != tt.ok {
				t.Errorf("Load err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// A cookie re-sealed by the promoted key survives the retirement.
	st := newStore(t, &now, newKey, oldKey)
	s, err := st.Load(request(rec))
	if err != nil {
		t.Fatal(err)
	}
	rec2 := httptest.NewRecorder()
	if err := st.Save(rec2, request(rec), s); err != nil {
		t.Fatal(err)
	}
	if _, err := newStore(t, &now, newKey).Load(request(rec2)); err != nil {
		t.Errorf("re-sealed cookie under retired-old ring: %v", err)
	}
}

func TestCookieStoreChunking(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	big := demoSession(now)
	for i := 0; i < 150; i++ {
		big.Groups = append(big.Groups, "group-with-a-longish-name-"+strconv.Itoa(i))
	}
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), big); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) < 2 {
		t.Fatalf("Save set %d cookies, want chunks", len(cookies))
	}
	for i, c := range cookies {
		if want := st.Name() + "_" + strconv.Itoa(i); c.Name != want {
			t.Errorf("chunk %d name = %q, want %q", i, c.Name, want)
		}
		if l := len(c.Name) + len(c.Value); l > 4096 {
			t.Errorf("chunk %s is %d bytes, browsers drop > 4096", c.Name, l)
		}
	}
	got, err := st.Load(request(rec))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Groups) != len(big.Groups) {
		t.Errorf("groups after chunking = %d, want %d", len(got.Groups), len(big.Groups))
	}

	// Shrinking back to one cookie expires the chunks the browser holds.
	rec2 := httptest.NewRecorder()
	if err := st.Save(rec2, request(rec), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	expired := map[string]bool{}
	for _, c := range rec2.Result().Cookies() {
		if c.MaxAge < 0 {
			expired[c.Name] = true
		}
	}
	for i := range cookies {
		if n := st.Name() + "_" + strconv.Itoa(i); !expired[n] {
			t.Errorf("stale chunk %s not expired", n)
		}
	}

	// Too big for four chunks is an error, not a silently dropped cookie.
	for i := 0; i < 2000; i++ {
		big.Groups = append(big.Groups, "another-group-name-"+strconv.Itoa(i))
	}
	if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), big); err == nil {
		t.Error("Save of an oversized session succeeded")
	}
}

func TestCookieStoreClear(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", st.Name()+"_0=a; "+st.Name()+"_1=b; other=c")
	rec := httptest.NewRecorder()
	st.Clear(rec, r)
	got := map[string]int{}
	for _, c := range rec.Result().Cookies() {
		got[c.Name] = c.MaxAge
	}
	if len(got) != 2 || got[st.Name()+"_0"] != -1 || got[st.Name()+"_1"] != -1 {
		t.Errorf("Clear expired %v, want both chunks and nothing else", got)
	}
}

func TestCookieConfig(t *testing.T) {
	no := false
	for _, tt := range []struct {
		name     string
		cfg      CookieConfig
		wantName string
		wantErr  bool
	}{
		{"default secure gets __Host-", CookieConfig{}, "__Host-_portcullis", false},
		{"named", CookieConfig{Name: "gw"}, "__Host-gw", false},
		{"already prefixed", CookieConfig{Name: "__Host-gw"}, "__Host-gw", false},
		{"plain http development", CookieConfig{Name: "gw", Secure: &no}, "gw", false},
		{"domain keeps plain name", CookieConfig{Name: "gw", Domain: "example.com"}, "gw", false},
		{"__Host- with domain", CookieConfig{Name: "__Host-gw", Domain: "example.com"}, "", true},
		{"prefix without secure", CookieConfig{Name: "__Host-gw", Secure: &no}, "", true},
		{"bad name", CookieConfig{Name: "a;b"}, "", true},
		{"bad same_site", CookieConfig{SameSite: "none"}, "", true},
		{"domains keep plain name", CookieConfig{Name: "gw", Domains: []string{"a.example", "b.example"}}, "gw", false},
		{"__Host- with domains", CookieConfig{Name: "__Host-gw", Domains: []string{"a.example"}}, "", true},
		{"bad domains entry", CookieConfig{Domains: []string{"a.example/x"}}, "", true},
		{"empty domains entry", CookieConfig{Domains: []string{""}}, "", true},
		{"path with a domain", CookieConfig{Name: "gw", Domain: "example.com", Path: "/app"}, "gw", false},
		{"path on a __Host- cookie", CookieConfig{Path: "/app"}, "", true},
		{"relative path", CookieConfig{Name: "gw", Domain: "example.com", Path: "app"}, "", true},
		{"path with ;", CookieConfig{Name: "gw", Domain: "example.com", Path: "/a;Domain=evil"}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, err := newCookieJar(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && j.name != tt.wantName {
				t.Errorf("name = %q, want %q", j.name, tt.wantName)
			}
		})
	}
}

func TestNewCookieStoreLifetime(t *testing.T) {
	keys := mustKeys(t, randomSecret(t))
	for _, lt := range []time.Duration{time.Second, 8 * 24 * time.Hour} {
		if _, err := NewCookieStore(CookieConfig{}, keys, CookieStoreOptions{Lifetime: lt}); err == nil {
			t.Errorf("lifetime %v accepted", lt)
		}
	}
	if _, err := NewCookieStore(CookieConfig{}, nil, CookieStoreOptions{}); err == nil {
		t.Error("nil key ring accepted")
	}
}
