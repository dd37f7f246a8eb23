package session

import (
	"net/http/httptest"
	"testing"
	"time"
)

func benchStore(b *testing.B) (*CookieStore, *Session) {
	now := time.Now()
	s, err := NewCookieStore(CookieConfig{}, mustKeys(b, randomSecret(b)), CookieStoreOptions{Lifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return s, demoSession(now)
}

func BenchmarkCookieEncode(b *testing.B) {
	st, s := benchStore(b)
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		if err := st.Save(rec, r, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCookieDecode opens a session cookie: "uncached" is the MAC,
// decryption and decoding a value costs the first time a replica sees it;
// "cached" is every later request with the same value (decodeCache).
func BenchmarkCookieDecode(b *testing.B) {
	st, s := benchStore(b)
	rec := httptest.NewRecorder()
	if err := st.Save(rec, httptest.NewRequest("GET", "/", nil), s); err != nil {
		b.Fatal(err)
	}
	r := request(rec)
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !cached {
					clear(st.opened.entries) // keeps the map: only the decode is measured
				}
				if _, err := st.Load(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(r.Header.Get("Cookie"))), "cookie-bytes")
		})
	}
}
