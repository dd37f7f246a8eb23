package session

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// Cookie tossing (RFC 6265bis §8.6): one cookie name sent with different
// values is refused by every reader of the jar, never resolved to the first
// copy. Near misses (identical copies, one value) still read.
func TestHostileDuplicateSessionCookies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, &now, randomSecret(t))
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		t.Fatal(err)
	}
	name := st.Name()
	good := rec.Result().Cookies()[0].Value
	other := httptest.NewRecorder()
	s2 := demoSession(now)
	s2.Subject = "mallory"
	if err := st.Save(other, httptest.NewRequest("GET", "/", nil), s2); err != nil {
		t.Fatal(err)
	}
	evil := other.Result().Cookies()[0].Value
	for _, tt := range []struct {
		name, cookie string
		ambiguous    bool // want ErrAmbiguousCookie; else a session
	}{
		{"valid first, other valid second", name + "=" + good + "; " + name + "=" + evil, true},
		{"other valid first, valid second", name + "=" + evil + "; " + name + "=" + good, true},
		{"valid then garbage", name + "=" + good + "; " + name + "=garbage", true},
		{"valid then empty", name + "=" + good + "; " + name + "=", true},
		{"chunk 0 twice, different", name + "_0=" + good + "; " + name + "_0=" + evil, true},
		{"plain and chunk 0", name + "=" + good + "; " + name + "_0=" + good, true},
		{"in two Cookie lines", name + "=" + good + "\n" + name + "=" + evil, true},
		{"near miss: identical copies", name + "=" + good + "; " + name + "=" + good, false},
		{"near miss: quoted and unquoted copy", name + "=" + good + "; " + name + `="` + good + `"`, false},
		{"near miss: one copy", name + "=" + good, false},
		{"near miss: other name carries other value", name + "=" + good + "; x" + name + "=" + evil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, line := range splitLines(tt.cookie) {
				r.Header.Add("Cookie", line)
			}
			s, err := st.Load(r)
			if tt.ambiguous {
				if s != nil || !errors.Is(err, ErrAmbiguousCookie) || !IsAbsent(err) {
					t.Fatalf("Load = %v, %v; want no session and ErrAmbiguousCookie", s != nil, err)
				}
				return
			}
			if err != nil || s.Subject != "248289761001" {
				t.Fatalf("Load = %v; want alice's session", err)
			}
		})
	}
}

// TestHostileDuplicateLoginCookie: a login cookie name sent twice with
// different values is refused and expired, never resolved to either copy.
func TestHostileDuplicateLoginCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLogin(t, &now, randomSecret(t))
	rec := httptest.NewRecorder()
	if err := l.Begin(rec, httptest.NewRequest("GET", "/", nil), attempt("state-one")); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	for _, tt := range []struct {
		name, cookie string
		wantErr      bool
	}{
		{"valid then garbage", c.Name + "=" + c.Value + "; " + c.Name + "=garbage", true},
		{"garbage then valid", c.Name + "=garbage; " + c.Name + "=" + c.Value, true},
		{"near miss: identical copies", c.Name + "=" + c.Value + "; " + c.Name + "=" + c.Value, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", tt.cookie)
			w := httptest.NewRecorder()
			st, err := l.Take(w, r, "state-one")
			if tt.wantErr {
				if st != nil || !errors.Is(err, ErrAmbiguousCookie) || !errors.Is(err, ErrNoLogin) {
					t.Fatalf("Take = %v, %v; want ErrNoLogin wrapping ErrAmbiguousCookie", st != nil, err)
				}
			} else if err != nil {
				t.Fatalf("Take: %v", err)
			}
			if set := w.Result().Cookies(); len(set) != 1 || set[0].MaxAge >= 0 {
				t.Fatalf("Take did not expire the login cookie: %v", set)
			}
		})
	}
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
