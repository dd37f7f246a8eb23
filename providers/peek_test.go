package providers

import (
	"strings"
	"testing"
)

func TestPeekJWT(t *testing.T) {
	seg := func(s string) string { return b64([]byte(s)) }
	jwt := func(header, payload string) string { return seg(header) + "." + seg(payload) + ".sig" }
	// sized is a token of n bytes, its signature segment padded.
	sized := func(n int) string {
		head := seg(`{}`) + "." + seg(`{"iss":"i"}`) + "."
		return head + strings.Repeat("s", n-len(head))
	}
	for _, tt := range []struct {
		name    string
		raw     string
		want    unverifiedJWT
		wantErr string
	}{
		{"typ and iss", jwt(`{"alg":"RS256","typ":"logout+jwt"}`, `{"iss":"https://idp","sub":"x"}`),
			unverifiedJWT{typ: "logout+jwt", iss: "https://idp"}, ""},
		{"neither", jwt(`{"alg":"RS256"}`, `{}`), unverifiedJWT{}, ""},
		{"empty signature still has three segments", seg(`{}`) + "." + seg(`{"iss":"i"}`) + ".", unverifiedJWT{iss: "i"}, ""},
		{"16 KiB", sized(16 << 10), unverifiedJWT{iss: "i"}, ""},

		{"over 16 KiB", sized(16<<10 + 1), unverifiedJWT{}, "too large"},
		{"two segments", seg(`{}`) + "." + seg(`{}`), unverifiedJWT{}, "not a signed JWT"},
		{"JWE-like five segments", "a.b.c.d.e", unverifiedJWT{}, "not a signed JWT"},
		{"opaque", "opaque-token", unverifiedJWT{}, "not a signed JWT"},
		{"header not base64url", "!!." + seg(`{}`) + ".s", unverifiedJWT{}, "malformed header"},
		{"header padded", seg(`{}`) + "=." + seg(`{}`) + ".s", unverifiedJWT{}, "malformed header"},
		{"header not JSON", jwt(`alg`, `{}`), unverifiedJWT{}, "malformed header"},
		{"typ not a string", jwt(`{"typ":1}`, `{}`), unverifiedJWT{}, "malformed header"},
		{"payload not base64url", seg(`{}`) + ".!!.s", unverifiedJWT{}, "malformed payload"},
		{"payload not JSON", jwt(`{}`, `iss`), unverifiedJWT{}, "malformed payload"},
		{"iss not a string", jwt(`{}`, `{"iss":7}`), unverifiedJWT{}, "malformed payload"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := peekJWT(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("peekJWT = %+v, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("peekJWT = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := peekIssuer(jwt(`{}`, `{"sub":"x"}`)); err == nil || !strings.Contains(err.Error(), "no iss") {
		t.Errorf("peekIssuer without iss = %v, want no iss", err)
	}
}
