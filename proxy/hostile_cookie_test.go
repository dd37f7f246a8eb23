package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// Cookie tampering over HTTP (SECURITY.md §4.2 items 2-5 and 11, CK-1, CK-3,
// CK-6, §2.8-7; mod_auth_openidc CVE-2024-24814 and CVE-2023-28625;
// authentik CVE-2026-25748). Whatever a browser (or an attacker) sends in
// place of the session cookie, the gateway treats it as "no session": a
// browser is sent to sign in (302 to the provider), an API client gets 401,
// forward-auth answers 401, and nothing reaches the upstream. Never a 500,
// never a panic, never a 2xx.

// otherStore seals like e.store, under another secret or cookie name.
func (e *env) otherStore(name string) *session.CookieStore {
	e.t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := session.NewCookieStore(session.CookieConfig{Name: name}, keys, session.CookieStoreOptions{Lifetime: time.Hour, Now: e.clock})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// sealWith seals an otherwise valid session for alice, changed by edit,
// with e's own keys (no store check repairs it).
func (e *env) sealWith(edit func(s *session.Session)) string {
	e.t.Helper()
	now := e.clock()
	s := &session.Session{
		Identity: session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"}},
		Provider: "corp", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	edit(s)
	v, err := e.store.Seal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// flipBit decodes the cookie's outer base64, flips bit i, and re-encodes.
func flipBit(t *testing.T, value string, i int) string {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		t.Fatalf("cookie value is not base64url: %v", err)
	}
	raw[i/8] ^= 1 << (i % 8)
	return base64.URLEncoding.EncodeToString(raw)
}

type cookieCase struct {
	name   string
	cookie string // the whole Cookie header
}

func hostileCookies(t *testing.T, e *env) []cookieCase {
	name := e.store.Name()
	good := strings.TrimPrefix(e.alice(), name+"=")
	var cs []cookieCase
	add := func(n, c string) { cs = append(cs, cookieCase{n, c}) }

	// Empty, truncated, padded.
	add("empty value", name+"=")
	add("name only", name)
	for _, n := range []int{1, 4, 16, 40, len(good) / 2, len(good) - 4, len(good) - 1} {
		add(fmt.Sprintf("truncated to %d bytes", n), name+"="+good[:n])
	}
	add("one byte appended", name+"="+good+"A")
	add("padding removed", name+"="+strings.TrimRight(good, "="))
	add("doubled", name+"="+good+good)

	// Bit flips spread over the whole sealed value: timestamp, IV,
	// ciphertext, MAC and the "|" separators.
	raw, _ := base64.URLEncoding.DecodeString(good)
	bits := len(raw) * 8
	for _, i := range []int{0, 1, 7, 8, 13, 31, 50, 64, 77, 80, 95, 100, 127, 128, 200, 255, 256, 333, 400, 512, 640,
		bits / 3, bits / 2, 2 * bits / 3, bits - 257, bits - 256, bits - 100, bits - 9, bits - 8, bits - 1} {
		if i >= 0 && i < bits {
			add(fmt.Sprintf("bit %d of %d flipped", i, bits), name+"="+flipBit(t, good, i))
		}
	}

	// Wrong key, wrong name, wrong purpose.
	stranger := e.otherStore("_portcullis")
	v, _ := stranger.Seal(&session.Session{Identity: session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"}},
		Provider: "corp", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour)})
	add("sealed under another secret", name+"="+v)
	renamed := e.otherStore("other")
	v2, _ := renamed.Seal(&session.Session{Identity: session.Identity{Issuer: e.idp.issuer, Subject: "alice", Email: "alice@example.com", EmailVerified: true},
		Provider: "corp", CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour)})
	add("sealed for another cookie name", name+"="+v2)
	add("our value under another name", "__Host-other="+good)
	add("our value as a chunk of another name", "__Host-other_0="+good)
	add("miscapitalised __HOST- prefix", "__HOST-_portcullis="+good)
	add("lower-case __host- prefix", "__host-_portcullis="+good)
	add("upper-case name", "__Host-_PORTCULLIS="+good)
	add("without the __Host- prefix", "_portcullis="+good)
	add("__Secure- prefix instead", "__Secure-_portcullis="+good)
	add("name with trailing space", name+" ="+good)
	add("name with leading junk", "x"+name+"="+good)
	start := e.do(get("https://gw.example.com/oauth2/start"))
	for _, c := range start.Cookies() {
		if c.MaxAge > 0 {
			add("a login cookie's value as the session", name+"="+c.Value)
		}
	}
	add("random base64 of a plausible length", name+"="+base64.URLEncoding.EncodeToString(make([]byte, len(raw))))

	// Lifetime: expired, future-dated, stretched; no identity.
	add("expired", name+"="+e.sealWith(func(s *session.Session) {
		s.CreatedAt, s.ExpiresAt = e.clock().Add(-2*time.Hour), e.clock().Add(-time.Hour)
	}))
	add("expired a second ago", name+"="+e.sealWith(func(s *session.Session) {
		s.CreatedAt, s.ExpiresAt = e.clock().Add(-time.Hour), e.clock().Add(-time.Second)
	}))
	add("future-dated", name+"="+e.sealWith(func(s *session.Session) {
		s.CreatedAt, s.ExpiresAt = e.clock().Add(10*time.Minute), e.clock().Add(70*time.Minute)
	}))
	add("far future", name+"="+e.sealWith(func(s *session.Session) {
		s.CreatedAt, s.ExpiresAt = e.clock().Add(24*365*time.Hour), e.clock().Add(24*366*time.Hour)
	}))
	add("lifetime stretched", name+"="+e.sealWith(func(s *session.Session) {
		s.CreatedAt, s.ExpiresAt = e.clock().Add(-30*time.Minute), e.clock().Add(30*24*time.Hour)
	}))
	add("no expiry", name+"="+e.sealWith(func(s *session.Session) { s.ExpiresAt = time.Time{} }))
	add("no creation time", name+"="+e.sealWith(func(s *session.Session) { s.CreatedAt = time.Time{} }))
	add("no subject", name+"="+e.sealWith(func(s *session.Session) { s.Subject = "" }))
	add("no issuer", name+"="+e.sealWith(func(s *session.Session) { s.Issuer = "" }))

	// Size and count.
	add("oversized 5 KB", name+"="+strings.Repeat("A", 5000))
	add("oversized 20 KB", name+"="+strings.Repeat("A", 20000))
	add("oversized 60 KB", name+"="+strings.Repeat("A", 60000))
	var chunks []string
	for i := 0; i < 500; i++ {
		chunks = append(chunks, name+"_"+strconv.Itoa(i)+"=AAAA")
	}
	add("500 chunks", strings.Join(chunks, "; "))
	add("valid value split into chunks 0 and 2", name+"_0="+good[:50]+"; "+name+"_2="+good[50:])
	add("valid value split, chunks reversed", name+"_1="+good[:50]+"; "+name+"_0="+good[50:])
	add("valid value as chunk 0 plus a chunk 4", name+"_0="+good+"; "+name+"_4=x")
	add("chunk index far out of range", name+"_99999999999999999999="+good)
	add("negative chunk index", name+"_-1="+good)
	add("signed chunk index", name+"_+0="+good)
	add("chunk index with spaces", name+"_ 0="+good)
	var logins []string
	for i := 0; i < 300; i++ {
		logins = append(logins, fmt.Sprintf("%s_login_%016x=%s", name, i, strings.Repeat("B", 40)))
	}
	add("300 login cookies", strings.Join(logins, "; "))

	// Duplicates, quotes, separators.
	add("garbage first, valid second", name+"=garbage; "+name+"="+good)
	add("empty first, valid second", name+"=; "+name+"="+good)
	add("garbage plain, valid chunk", name+"=garbage; "+name+"_0="+good)
	// Cookie tossing (RFC 6265bis §8.6): the valid cookie first and
	// another value second is ambiguous, so no session either.
	add("valid first, garbage second", name+"="+good+"; "+name+"=garbage")
	add("valid first, empty second", name+"="+good+"; "+name+"=")
	add("valid plain, valid chunk 0", name+"="+good+"; "+name+"_0="+good)
	add("valid chunk 0 twice, second differs", name+"_0="+good+"; "+name+"_0="+good[:len(good)-1])
	add("quoted garbage", name+`="garbage"`)
	add("lone quote", name+`="`)
	add("empty quotes", name+`=""`)
	add("quote inside", name+`="`+good[:20]+`"`+good[20:])
	add("leading equals sign", name+"=="+good)
	add("equals signs inside", name+"="+good[:30]+"="+good[30:])
	add("space inside", name+"="+good[:30]+" "+good[30:])
	add("spaces around the equals sign", name+" = "+good)
	add("semicolons only", ";;;;")
	add("equals signs only", "=;=;=")
	add("tab-separated", name+"=\t"+good[:10])
	add("comma-joined pair", name+"=x, other=y")
	add("non-UTF-8 bytes", name+"=\xff\xfe\xfd")
	add("NUL byte", name+"="+good[:30]+"\x00"+good[30:])
	add("percent-encoded value", name+"="+url.QueryEscape(good)+"%00")
	return cs
}

// TestHostileCookies sends every case to a protected page as a browser and
// as an API client, and to forward-auth.
func TestHostileCookies(t *testing.T) {
	e := hostileEnv(t)
	cases := hostileCookies(t, e)
	if len(cases) < 60 {
		t.Fatalf("%d cookie cases, want at least 60", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count()
			for _, mode := range []struct {
				accept string
				want   int
			}{{"text/html", http.StatusFound}, {"application/json", http.StatusUnauthorized}} {
				r := get("https://gw.example.com/app", "Accept", mode.accept)
				r.Header["Cookie"] = []string{tt.cookie}
				resp, hdr := e.serve(r)
				if resp.StatusCode != mode.want {
					t.Errorf("%s: status %d, want %d", mode.accept, resp.StatusCode, mode.want)
				}
				if bad := headerInjection(hdr); bad != "" {
					t.Errorf("%s: header carries CR/LF/NUL: %q", mode.accept, bad)
				}
				if n := len(hdr["Set-Cookie"]); n > 2*session.MaxLoginCookies+64 {
					t.Errorf("%s: %d Set-Cookie lines", mode.accept, n)
				}
			}
			r := authReq(trustedPeer, "/oauth2/auth", "X-Original-URI", "/admin/x")
			r.Header["Cookie"] = []string{tt.cookie}
			if resp := e.do(r); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(hdrAuthUser) != "" {
				t.Errorf("forward-auth: %d (user %q), want 401", resp.StatusCode, resp.Header.Get(hdrAuthUser))
			}
			r = get("https://gw.example.com/oauth2/userinfo")
			r.Header["Cookie"] = []string{tt.cookie}
			if resp := e.do(r); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("userinfo: %d, want 401", resp.StatusCode)
			}
			if e.count() != before {
				t.Error("the upstream was reached")
			}
		})
	}
	// The control: the untampered cookie works, so the table tests what it
	// says it tests.
	if resp := e.do(get("https://gw.example.com/app", "Cookie", e.alice())); resp.StatusCode != http.StatusOK {
		t.Fatalf("the untampered cookie: %d", resp.StatusCode)
	}
	good := strings.TrimPrefix(e.alice(), e.store.Name()+"=")
	for _, c := range []string{e.store.Name() + `="` + good + `"`, "  " + e.store.Name() + "=" + good + "  ", e.store.Name() + "_0=" + good} {
		if resp := e.do(get("https://gw.example.com/app", "Cookie", c)); resp.StatusCode != http.StatusOK {
			t.Errorf("equivalent spelling %q of a valid cookie: %d, want 200", c[:30], resp.StatusCode)
		}
	}
}

// TestHostileCookiesOnTheWire: the largest cases through a real server
// with the gateway's limits: 431 or "no session", never 500.
func TestHostileCookiesOnTheWire(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	name := e.store.Name()
	for _, tt := range []struct {
		name   string
		cookie string
		want   int
	}{
		{"60 KB value", name + "=" + strings.Repeat("A", 60000), http.StatusFound},
		{"100 KB value", name + "=" + strings.Repeat("A", 100000), http.StatusRequestHeaderFieldsTooLarge},
		{"2000 chunks", func() string {
			var b strings.Builder
			for i := 0; i < 2000; i++ {
				fmt.Fprintf(&b, "%s_%d=A; ", name, i)
			}
			return b.String()
		}(), http.StatusFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawDo(t, srv, "GET /app HTTP/1.1", "Accept", "text/html", "Cookie", tt.cookie)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if e.count() != 0 {
		t.Error("the upstream was reached")
	}
}

// TestCookieReplayAfterSignOut documents what each store can do about a
// cookie copied before sign-out and replayed after it.
//
// Cookie mode keeps the whole session in the cookie. Sign-out expires the
// browser's copy, but the server keeps no record of the session, so a
// copy taken earlier (malware, a shared machine, a proxy log) stays valid
// until its absolute expiry. What cookie mode can do is revoke by user or
// provider session on the replica that is told: back-channel logout and the
// admin API add "(iss, sub) revoked at T" or "(iss, sid) ended", and every
// older cookie of that user or provider session is then refused. Redis mode
// deletes the record at sign-out, so a replayed ticket finds nothing
// (session/conformance_test.go confClear).
func TestCookieReplayAfterSignOut(t *testing.T) {
	e := hostileEnv(t)
	_, jar := e.signIn("/", "c-replay", "alice", "alice@example.com", "admins")
	r := httptest.NewRequest("POST", "https://gw.example.com/oauth2/sign_out", strings.NewReader("rd=%2F"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Cookie", jar)
	out := e.do(r)
	if out.StatusCode != http.StatusFound || !expired(out, e.store.Name()) {
		t.Fatalf("sign-out: %d, cookie expired %v", out.StatusCode, expired(out, e.store.Name()))
	}
	// The replica that signed the session out remembers it (by its session
	// id) until it would have ended: a copy taken before is refused. Other
	// cookie-mode replicas cannot know; the Redis store ends it everywhere.
	if replay := e.do(get("https://gw.example.com/app", "Cookie", jar, "Accept", "application/json")); replay.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed cookie after sign-out: %d, want 401", replay.StatusCode)
	}
	// Another session of the same user, signed in in the same second, lives on.
	_, other := e.signIn("/", "c-replay-2", "alice", "alice@example.com", "admins")
	if resp := e.do(get("https://gw.example.com/app", "Cookie", other)); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's other session after signing one out: %d, want 200", resp.StatusCode)
	}

	// A revocation for the user refuses every older copy.
	e.advance(2 * time.Second)
	e.idp.logout = func(string) (*providers.LogoutToken, error) {
		return &providers.LogoutToken{Issuer: e.idp.issuer, Subject: "alice", ID: "jti-replay", Expiry: time.Now().Add(time.Minute)}, nil
	}
	if resp := postLogout(e, fakeLogoutToken(e.idp.issuer, "x")); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/app", "Cookie", jar, "Accept", "application/json")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed cookie after the user's revocation: %d, want 401", resp.StatusCode)
	}
}
