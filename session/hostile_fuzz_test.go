package session

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for what a browser (or an attacker) controls: the Cookie
// header the stores read (SECURITY.md §4.2 item 11: every decode error is
// "no session", never a panic or a half-filled session).

// FuzzCookieStoreLoad: arbitrary Cookie header values through
// CookieStore.Load. Load never panics; it returns ErrNoSession,
// ErrInvalidSession, or a session that passes the store's own checks and
// survives Save and Load unchanged.
func FuzzCookieStoreLoad(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	secret := randomSecret(f)
	st := newStore(f, &now, secret)
	name := st.Name()

	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		f.Fatal(err)
	}
	good := rec.Result().Cookies()[0].Value
	big := demoSession(now)
	for i := 0; i < 150; i++ {
		big.Groups = append(big.Groups, "group-with-a-longish-name-"+strconv.Itoa(i))
	}
	chunked := httptest.NewRecorder()
	if err := st.Save(chunked, httptest.NewRequest("GET", "/", nil), big); err != nil {
		f.Fatal(err)
	}
	var chunks []string
	for _, c := range chunked.Result().Cookies() {
		chunks = append(chunks, c.Name+"="+c.Value)
	}
	for _, seed := range []string{
		"",
		name + "=" + good,
		strings.Join(chunks, "; "),
		name + `="` + good + `"`,
		name + "=" + good[:len(good)/2],
		name + "=" + good + "; " + name + "=garbage",
		name + "=garbage; " + name + "=" + good,
		name + "_0=" + good[:50] + "; " + name + "_1=" + good[50:],
		name + "_0=a; " + name + "_7=b",
		"__HOST-_portcullis=" + good,
		"_portcullis=" + good,
		name + "_login_0123=" + good,
		name + "=" + strings.Repeat("A", 20000),
		";;;=;=" + name,
		name + "_00=" + good,
		name + "_-0=" + good,
		name + "=\x00\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{header}
		s, err := st.Load(r)
		if err != nil {
			if s != nil {
				t.Fatalf("Load returned a session with error %v", err)
			}
			if !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrInvalidSession) {
				t.Fatalf("Load error %v is neither ErrNoSession nor ErrInvalidSession", err)
			}
			return
		}
		if err := st.check(s, st.now()); err != nil {
			t.Fatalf("Load returned a session its own check refuses: %v", err)
		}
		out := httptest.NewRecorder()
		want := normal(s)
		if err := st.Save(out, r, s); err != nil {
			t.Fatalf("Save of a loaded session: %v", err)
		}
		again, err := st.Load(request(out))
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		if got := normal(again); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the session:\n got %+v\nwant %+v", got, want)
		}
	})
}

// FuzzLoginCookieTake: arbitrary Cookie header and state through
// LoginCookies.Take. No panic; success only for a cookie sealed for
// exactly that state; errors are ErrNoLogin or ErrLoginMismatch; at most
// one cookie is expired, and only a login cookie.
func FuzzLoginCookieTake(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	l := newLogin(f, &now, randomSecret(f))
	rec := httptest.NewRecorder()
	if err := l.Begin(rec, httptest.NewRequest("GET", "/", nil), attempt("state-one")); err != nil {
		f.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	good := c.Name + "=" + c.Value
	for _, seed := range []struct{ cookie, state string }{
		{good, "state-one"},
		{good, "state-two"},
		{good, ""},
		{"", "state-one"},
		{c.Name + `="` + c.Value + `"`, "state-one"},
		{c.Name + "=" + c.Value[:20], "state-one"},
		{c.Name + "=garbage; " + good, "state-one"},
		{strings.ToUpper(c.Name) + "=" + c.Value, "state-one"},
		{good, strings.Repeat("s", 600)},
		{good, "state-one\x00"},
		{l.Prefix() + "0000000000000000=" + c.Value, "state-one"},
	} {
		f.Add(seed.cookie, seed.state)
	}
	f.Fuzz(func(t *testing.T, cookie, state string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{cookie}
		w := httptest.NewRecorder()
		st, err := l.Take(w, r, state)
		set := w.Result().Cookies()
		if len(set) > 1 {
			t.Fatalf("Take set %d cookies", len(set))
		}
		for _, c := range set {
			if c.MaxAge >= 0 || !strings.HasPrefix(c.Name, l.Prefix()) {
				t.Fatalf("Take set %+v", c)
			}
		}
		if err != nil {
			if st != nil {
				t.Fatalf("Take returned a state with error %v", err)
			}
			if !errors.Is(err, ErrNoLogin) && !errors.Is(err, ErrLoginMismatch) {
				t.Fatalf("Take error %v", err)
			}
			return
		}
		if st.State != state || state == "" {
			t.Fatalf("Take(%q) returned the attempt for %q", state, st.State)
		}
		if st.Nonce == "" || st.Verifier == "" {
			t.Fatalf("Take returned an incomplete attempt %+v", st)
		}
		if len(set) != 1 || set[0].Name != l.nameFor(state) {
			t.Fatalf("Take did not expire the attempt's cookie: %v", set)
		}
	})
}

// FuzzCookieDuplicates: a valid session cookie (plain or chunked) next to
// a second copy of its name, or of one chunk, carrying any other value, in
// either order and on the same or another Cookie line. Whatever the second
// value, Load gives no session unless it is byte for byte the first one
// (RFC 6265bis §8.6: a tossed cookie must not win; ambiguity is no session).
func FuzzCookieDuplicates(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	st := newStore(f, &now, randomSecret(f))
	name := st.Name()
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), demoSession(now)); err != nil {
		f.Fatal(err)
	}
	plain := []string{name + "=" + rec.Result().Cookies()[0].Value}
	big := demoSession(now)
	for i := 0; i < 150; i++ {
		big.Groups = append(big.Groups, "group-with-a-longish-name-"+strconv.Itoa(i))
	}
	rec = httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), big); err != nil {
		f.Fatal(err)
	}
	var chunked []string
	for _, c := range rec.Result().Cookies() {
		chunked = append(chunked, c.Name+"="+c.Value)
	}
	if len(chunked) < 2 {
		f.Fatal("the big session was not chunked")
	}
	for _, seed := range []struct {
		value string
		which uint8
	}{{"garbage", 0}, {"", 1}, {`"x"`, 2}, {"A", 3}, {strings.Repeat("B", 3000), 4}, {plain[0][len(name)+1:], 5}} {
		f.Add(seed.value, seed.which)
	}
	f.Fuzz(func(t *testing.T, value string, which uint8) {
		pairs := plain
		if which&1 != 0 {
			pairs = chunked
		}
		pairs = slices.Clone(pairs)
		i := int(which>>1) % len(pairs)
		dupName, orig, _ := strings.Cut(pairs[i], "=")
		if strings.ContainsAny(value, ";\r\n") {
			return // not one cookie value: a different header, covered by FuzzCookieStoreLoad
		}
		dup := dupName + "=" + value
		r := httptest.NewRequest("GET", "/", nil)
		switch which >> 5 % 3 {
		case 0: // the copy first, on the same line
			r.Header["Cookie"] = []string{strings.Join(append([]string{dup}, pairs...), "; ")}
		case 1: // the copy last, on the same line
			r.Header["Cookie"] = []string{strings.Join(append(pairs, dup), "; ")}
		default: // the copy on a line of its own
			r.Header["Cookie"] = []string{dup, strings.Join(pairs, "; ")}
		}
		s, err := st.Load(r)
		same := strings.Trim(value, `"`) == orig || value == orig
		if err == nil && !same {
			t.Fatalf("a session from %s sent twice with different values (%q)", dupName, value)
		}
		if err != nil && s != nil {
			t.Fatalf("Load returned a session with error %v", err)
		}
	})
}
