package session

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseSecret(t *testing.T) {
	good := make([]byte, 32)
	for i := range good {
		good[i] = byte(i * 7)
	}
	for _, tt := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"std base64", base64.StdEncoding.EncodeToString(good), true},
		{"url base64 raw", base64.RawURLEncoding.EncodeToString(good), true},
		{"surrounding newline from a file", base64.StdEncoding.EncodeToString(good) + "\n", true},
		{"empty", "", false},
		{"short", base64.StdEncoding.EncodeToString(good[:16]), false},
		{"password", "correct horse battery staple", false},
		{"32 zero bytes", base64.StdEncoding.EncodeToString(make([]byte, 32)), false},
		{"base64 of a passphrase", base64.StdEncoding.EncodeToString([]byte("this is a test secret of 32 bytes!")), false},
		{"repeated pattern", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("abcd", 8))), false},
		{"not base64", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.secret)
			if (err == nil) != tt.ok {
				t.Errorf("ParseSecret(%q) err = %v, want ok=%v", tt.secret, err, tt.ok)
			}
		})
	}
}

func TestKeyRingErrorsNameTheSecret(t *testing.T) {
	_, err := NewKeyRing([]string{randomSecret(t), "short"})
	if err == nil || !strings.Contains(err.Error(), "#2") {
		t.Errorf("err = %v, want it to name secret #2", err)
	}
	if _, err := NewKeyRing(nil); err == nil || !strings.Contains(err.Error(), "openssl rand") {
		t.Errorf("err = %v, want a hint how to generate one", err)
	}
}

func TestKeyRingMAC(t *testing.T) {
	a, b := randomSecret(t), randomSecret(t)
	old := mustKeys(t, a)
	rotated := mustKeys(t, b, a)
	mac := old.MAC(PurposeCSRF, "sub", "123")
	for _, tt := range []struct {
		name string
		ring *KeyRing
		mac  string
		data []string
		want bool
	}{
		{"same ring", old, mac, []string{"sub", "123"}, true},
		{"after rotation", rotated, mac, []string{"sub", "123"}, true},
		{"other data", old, mac, []string{"sub", "124"}, false},
		{"shifted boundary", old, mac, []string{"su", "b123"}, false},
		{"other key only", mustKeys(t, b), mac, []string{"sub", "123"}, false},
		{"garbage", old, "%%%", []string{"sub", "123"}, false},
		{"empty", old, "", []string{"sub", "123"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ring.VerifyMAC(tt.mac, PurposeCSRF, tt.data...); got != tt.want {
				t.Errorf("VerifyMAC = %v, want %v", got, tt.want)
			}
		})
	}
	if old.MAC(PurposeCSRF, "x") == old.MAC(PurposeLogin, "x") {
		t.Error("MACs for different purposes are equal")
	}
}
