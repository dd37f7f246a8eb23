package session

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mustKeys(t testing.TB, secrets ...string) *KeyRing {
	t.Helper()
	k, err := NewKeyRing(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// request builds a request carrying the cookies set on rec (like a browser
// would send them back), plus extra raw Cookie pairs.
func request(rec *httptest.ResponseRecorder, extra ...string) *http.Request {
	r := httptest.NewRequest("GET", "https://app.example.com/", nil)
	var pairs []string
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			continue
		}
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	pairs = append(pairs, extra...)
	if len(pairs) > 0 {
		r.Header.Set("Cookie", strings.Join(pairs, "; "))
	}
	return r
}

func demoSession(now time.Time) *Session {
	return &Session{
		Identity: Identity{
			Issuer:            "https://idp.example.com",
			Subject:           "248289761001",
			Email:             "alice@example.com",
			EmailVerified:     true,
			Name:              "Alice Example",
			PreferredUsername: "alice",
			Groups:            []string{"admins", "developers"},
		},
		Provider:     "corp",
		SID:          "08a5019c-17e1-4977-8f42-65a12843ea02",
		CreatedAt:    now,
		TokenExpiry:  now.Add(5 * time.Minute),
		RefreshToken: "rt-" + strings.Repeat("x", 40),
	}
}
