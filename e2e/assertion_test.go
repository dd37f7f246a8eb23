package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/docs/examples/assertion"
)

// TestSignedAssertion: the upstream gets a signed identity assertion and
// verifies it with the documented snippet against the gateway's published
// keys; the wrong audience, a tampered token and a token signed with
// another key are refused.
func TestSignedAssertion(t *testing.T) {
	w := newWorld(t, worldOptions{extraConfig: "assertion:\n  lifetime: 1m\n"})
	setUpstreamAssertion(t, w)
	seen := decodeSeen(t, w.signIn(browser(t), "/app", "alice"))
	raw := seen.Header.Get("X-Portcullis-Assertion")
	if raw == "" {
		t.Fatalf("no assertion reached the upstream: %v", seen.Header)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Portcullis-Assertion", raw)
	ctx := context.Background()

	id, err := assertion.NewVerifier(ctx, w.gateway, w.upstream.URL).Verify(ctx, req)
	if err != nil {
		t.Fatalf("the documented verifier refused a genuine assertion: %v", err)
	}
	if id.Subject != "u-alice" || id.Email != "alice@example.com" || strings.Join(id.Groups, ",") != "admins,developers" {
		t.Errorf("identity = %+v", id)
	}
	if _, err := assertion.NewVerifier(ctx, w.gateway, "http://another-app:9000").Verify(ctx, req); err == nil {
		t.Error("an assertion for another application was accepted")
	}
	parts := strings.Split(raw, ".")
	tampered := httptest.NewRequest("GET", "/", nil)
	tampered.Header.Set("X-Portcullis-Assertion", parts[0]+"."+b64(`{"iss":"`+w.gateway+`","aud":"`+w.upstream.URL+`","sub":"ceo","exp":9999999999}`)+"."+parts[2])
	if _, err := assertion.NewVerifier(ctx, w.gateway, w.upstream.URL).Verify(ctx, tampered); err == nil {
		t.Error("a tampered assertion was accepted")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	jws, _ := signer.Sign([]byte(`{"iss":"` + w.gateway + `","aud":"` + w.upstream.URL + `","sub":"ceo","exp":9999999999}`))
	forged, _ := jws.CompactSerialize()
	req.Header.Set("X-Portcullis-Assertion", forged)
	if _, err := assertion.NewVerifier(ctx, w.gateway, w.upstream.URL).Verify(ctx, req); err == nil {
		t.Error("an assertion signed with another key was accepted")
	}
	// A client cannot send its own assertion through the gateway.
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "dave"))
	r2, _ := http.NewRequest("GET", w.gateway+"/x", nil)
	r2.Header.Set("X-Portcullis-Assertion", forged)
	resp, err := c.Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeSeen(t, resp).Header.Get("X-Portcullis-Assertion"); got == forged || got == "" {
		t.Error("the client's own assertion reached the upstream")
	}
}

// setUpstreamAssertion turns on assertions for the world's upstream and
// restarts the gateway.
func setUpstreamAssertion(t *testing.T, w *world) {
	t.Helper()
	rp := w.replicas[0]
	cfg := readFile(t, rp.config)
	cfg = strings.Replace(cfg, "    url: "+w.upstream.URL, "    url: "+w.upstream.URL+"\n    assertion: {header: X-Portcullis-Assertion}", 1)
	writeFile(t, rp.config, cfg)
	rp.stop(t)
	rp.start(t)
}

// TestAssertionByDefault: with no assertion settings anywhere, the
// upstream receives an assertion that verifies against /oauth2/jwks.json
// fetched from the running binary (ES256, iss the gateway, aud the
// upstream's origin, the user's subject); an upstream with
// assertion.disabled receives none, and the client's copy never passes.
func TestAssertionByDefault(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := browser(t)
	seen := decodeSeen(t, w.signIn(c, "/app", "alice"))
	raw := seen.Header.Get("X-Portcullis-Assertion")
	if raw == "" || len(seen.Header.Values("X-Portcullis-Assertion")) != 1 {
		t.Fatalf("a default-config upstream got X-Portcullis-Assertion %q", seen.Header.Values("X-Portcullis-Assertion"))
	}
	resp, err := http.Get(w.gateway + "/oauth2/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("jwks.json = %d (%v)", resp.StatusCode, err)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the assertion's kid %q is not in the published set", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("the assertion does not verify against the published key: %v", err)
	}
	var claims struct {
		Iss, Aud, Sub string
		Exp           int64
	}
	json.Unmarshal(payload, &claims)
	if claims.Iss != w.gateway || claims.Aud != w.upstream.URL || claims.Sub != "u-alice" || claims.Exp < time.Now().Unix() {
		t.Errorf("claims = %+v", claims)
	}

	// Opting out: the upstream gets no assertion, not even the client's.
	rp := w.replicas[0]
	cfg := readFile(t, rp.config)
	writeFile(t, rp.config, strings.Replace(cfg, "    url: "+w.upstream.URL, "    url: "+w.upstream.URL+"\n    assertion: {disabled: true}", 1))
	rp.stop(t)
	rp.start(t)
	r, _ := http.NewRequest("GET", w.gateway+"/app", nil)
	r.Header.Set("X-Portcullis-Assertion", raw)
	resp, err = c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeSeen(t, resp).Header.Values("X-Portcullis-Assertion"); len(got) != 0 {
		t.Errorf("an upstream with assertion.disabled got %q", got)
	}
}
