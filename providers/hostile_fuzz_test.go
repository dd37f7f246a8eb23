package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzLogoutToken sends arbitrary strings through VerifyLogoutToken against
// the hand-built issuer (issuer_test.go). It never panics, and it accepts
// only tokens that carry a real signature by one of the issuer's published
// keys under an algorithm the issuer advertises, with the claims
// Back-Channel Logout 1.0 §2.6 requires (SECURITY.md BCL-1..3, JWT-1/2).
func FuzzLogoutToken(f *testing.F) {
	ti := newTestIssuer(f)
	clk := newClock()
	p := ti.provider(f, clk, nil).(*OIDC)
	now := clk.Now()
	sign := func(k testKey, typ string, edit func(map[string]any)) string {
		c := ti.logoutClaims(now)
		if edit != nil {
			edit(c)
		}
		opts := (&jose.SignerOptions{}).WithHeader("kid", k.kid)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		return signJWS(f, jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts, c)
	}
	valid := sign(rsaKey, "logout+jwt", nil)
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		sign(rsaKey, "", func(c map[string]any) { delete(c, "sub") }),
		sign(rsaKey, "JWT", func(c map[string]any) { delete(c, "sid") }),
		sign(ecKey, "logout+jwt", nil),    // a published key, but ES256 is not advertised
		sign(rsaOther, "logout+jwt", nil), // an unknown key
		sign(rsaKey, "logout+jwt", func(c map[string]any) { c["nonce"] = "n" }),
		sign(rsaKey, "logout+jwt", func(c map[string]any) { delete(c, "events") }),
		sign(rsaKey, "at+jwt", nil),
		sign(rsaKey, "logout+jwt", func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(time.Minute).Unix(), 10) }),
		sign(rsaKey, "logout+jwt", func(c map[string]any) { c["EXP"] = c["exp"]; delete(c, "exp") }),
		sign(rsaKey, "logout+jwt", func(c map[string]any) { c["iat"] = float64(now.Unix()) + 0.5 }),
		craftJWT(f, map[string]any{"alg": "none", "typ": "logout+jwt"}, ti.logoutClaims(now), nil),
		craftJWT(f, map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": rsaKey.kid}, ti.logoutClaims(now), []byte(testClientSecret)),
		craftJWT(f, map[string]any{"alg": "RS256", "kid": "../../etc/passwd", "jku": "https://evil.example/jwks"}, ti.logoutClaims(now), nil),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		parts[0] + ".." + parts[2],
		"." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2] + "." + parts[2],
		valid + "=",
		strings.ToUpper(valid),
		"",
		"..",
		"garbage",
		"eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lt, err := p.VerifyLogoutToken(ctx, raw)
		if err != nil {
			if lt != nil {
				t.Fatalf("a token with an error: %+v, %v", lt, err)
			}
			return
		}
		// Accepted: it must be a compact JWS with one real signature by a
		// key the issuer publishes, under the one algorithm it advertises.
		jws, perr := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if perr != nil || len(jws.Signatures) != 1 {
			t.Fatalf("accepted a token that is not an RS256 JWS: %q (%v)", raw, perr)
		}
		segs := strings.Split(raw, ".")
		if len(segs) != 3 || segs[2] == "" {
			t.Fatalf("accepted an unsigned token: %q", raw)
		}
		if _, verr := jws.Verify(rsaKey.priv.Public()); verr != nil {
			t.Fatalf("accepted a token the issuer's key does not verify: %q (%v)", raw, verr)
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(segs[0])
		var h map[string]any
		if json.Unmarshal(hdr, &h) != nil || h["alg"] != "RS256" {
			t.Fatalf("accepted header %s", hdr)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(segs[1])
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted an unreadable payload: %v", err)
		}
		events, _ := c["events"].(map[string]any)
		if _, ok := events[backchannelEvent].(map[string]any); !ok {
			t.Fatalf("accepted without the back-channel event: %s", payload)
		}
		if _, ok := c["nonce"]; ok {
			t.Fatalf("accepted with a nonce: %s", payload)
		}
		// RFC 7519 §2: NumericDates are JSON numbers, claim names exact.
		for _, k := range []string{"exp", "iat"} {
			if f, ok := c[k].(float64); !ok || f < 0 {
				t.Fatalf("accepted %s that is not a NumericDate: %s", k, payload)
			}
		}
		for k := range c {
			if k != strings.ToLower(k) {
				t.Fatalf("accepted claim name %q: %s", k, payload)
			}
		}
		if lt.Issuer != ti.URL || lt.ID == "" || (lt.Subject == "" && lt.SessionID == "") {
			t.Fatalf("accepted %+v", lt)
		}
	})
}
