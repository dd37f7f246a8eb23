package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
