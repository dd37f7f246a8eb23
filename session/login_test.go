package session

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newLogin(t testing.TB, now *time.Time, secrets ...string) *LoginCookies {
	t.Helper()
	l, err := NewLoginCookies(CookieConfig{Name: "_portcullis"}, mustKeys(t, secrets...), func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func attempt(state string) *LoginState {
	return &LoginState{State: state, Nonce: "n-" + state, Verifier: "v-" + state, RedirectTo: "/after", Provider: "corp", Issuer: "https://idp"}
}

func TestLoginBeginTake(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLogin(t, &now, randomSecret(t))
	rec := httptest.NewRecorder()
	if err := l.Begin(rec, httptest.NewRequest("GET", "/", nil), attempt("state-one")); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	if !strings.HasPrefix(c.Name, "__Host-_portcullis_login_") || !c.HttpOnly || !c.Secure || c.MaxAge != 600 {
		t.Errorf("login cookie = %+v", c)
	}
	if strings.Contains(c.Value, "state-one") || strings.Contains(c.Value, "v-state-one") {
		t.Error("login cookie shows its contents")
	}
	take := httptest.NewRecorder()
	st, err := l.Take(take, request(rec), "state-one")
	if err != nil {
		t.Fatal(err)
	}
	if st.Verifier != "v-state-one" || st.Nonce != "n-state-one" || st.RedirectTo != "/after" || st.Provider != "corp" {
		t.Errorf("Take = %+v", st)
	}
	if exp := take.Result().Cookies(); len(exp) != 1 || exp[0].Name != c.Name || exp[0].MaxAge != -1 {
		t.Errorf("Take did not expire the login cookie: %v", exp)
	}
}

func TestLoginTakeRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	secret := randomSecret(t)
	l := newLogin(t, &now, secret)
	rec := httptest.NewRecorder()
	l.Begin(rec, httptest.NewRequest("GET", "/", nil), attempt("state-one"))
	good := rec.Result().Cookies()[0]
	otherRec := httptest.NewRecorder()
	newLogin(t, &now, randomSecret(t)).Begin(otherRec, httptest.NewRequest("GET", "/", nil), attempt("state-one"))
	forged := otherRec.Result().Cookies()[0]
	// A cookie sealed for state-two, renamed to state-one's slot.
	twoRec := httptest.NewRecorder()
	l.Begin(twoRec, httptest.NewRequest("GET", "/", nil), attempt("state-two"))
	two := twoRec.Result().Cookies()[0]

	for _, tt := range []struct {
		name   string
		cookie string
		state  string
		at     time.Time
		want   error
	}{
		{"missing state", good.Name + "=" + good.Value, "", now, ErrNoLogin},
		{"no cookie", "", "state-one", now, ErrNoLogin},
		{"other state", good.Name + "=" + good.Value, "state-two", now, ErrNoLogin},
		{"wrong key", forged.Name + "=" + forged.Value, "state-one", now, ErrNoLogin},
		{"renamed cookie", good.Name + "=" + two.Value, "state-one", now, ErrNoLogin},
		{"expired attempt", good.Name + "=" + good.Value, "state-one", now.Add(11 * time.Minute), ErrNoLogin},
		{"huge state", good.Name + "=" + good.Value, strings.Repeat("s", 100000), now, ErrNoLogin},
		{"truncated", good.Name + "=" + good.Value[:20], "state-one", now, ErrNoLogin},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			l := newLogin(t, &at, secret)
			r := httptest.NewRequest("GET", "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			st, err := l.Take(httptest.NewRecorder(), r, tt.state)
			if !errors.Is(err, tt.want) || st != nil {
				t.Errorf("Take = %v, %v; want nil, %v", st, err, tt.want)
			}
		})
	}
}

func TestLoginCookiesBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLogin(t, &now, randomSecret(t))
	jar := map[string]string{} // what the browser holds
	fromJar := func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		var pairs []string
		for n, v := range jar {
			pairs = append(pairs, n+"="+v)
		}
		r.Header.Set("Cookie", strings.Join(pairs, "; "))
		return r
	}
	var states []string
	for i := 0; i < 12; i++ {
		now = now.Add(time.Second)
		rec := httptest.NewRecorder()
		state := fmt.Sprintf("state-%02d", i)
		states = append(states, state)
		if err := l.Begin(rec, fromJar(), attempt(state)); err != nil {
			t.Fatal(err)
		}
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge < 0 {
				delete(jar, c.Name)
			} else {
				jar[c.Name] = c.Value
			}
		}
		if len(jar) > MaxLoginCookies {
			t.Fatalf("after %d attempts the browser holds %d login cookies, want ≤ %d", i+1, len(jar), MaxLoginCookies)
		}
	}
	for i, state := range states {
		_, err := l.Take(httptest.NewRecorder(), fromJar(), state)
		if kept := i >= len(states)-MaxLoginCookies; (err == nil) != kept {
			t.Errorf("attempt %s: err = %v, want kept=%v (newest %d survive)", state, err, kept, MaxLoginCookies)
		}
	}
}
