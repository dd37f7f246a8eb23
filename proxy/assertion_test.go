package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/session"
)

func TestAsserterKeys(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, _ := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, err := newAsserter(AssertionConfig{}, "https://gw.example.com", keys, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newAsserter(AssertionConfig{}, "https://gw.example.com", keys, clock) // another replica
	docA, _ := a.jwksDocument()
	docB, _ := b.jwksDocument()
	if string(docA) != string(docB) {
		t.Error("two replicas with the same secrets publish different keys")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(docA, &set); err != nil || len(set.Keys) != 3 {
		t.Fatalf("JWKS = %s (%v), want previous, current and next key", docA, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Algorithm != "ES256" || k.Use != "sig" {
			t.Errorf("published key %+v", k)
		}
	}
	s := &session.Session{Identity: session.Identity{Issuer: "https://idp", Subject: "alice", Email: "a@example.com", EmailVerified: true, Groups: []string{"g"}},
		CreatedAt: now}
	tok, err := a.sign(s, "http://app:8080")
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	if keys := set.Key(kid); len(keys) != 1 || keys[0].KeyID != set.Keys[1].KeyID {
		t.Errorf("signed with kid %q, want the current (middle) key", kid)
	}
	payload, err := jws.Verify(set.Key(kid)[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	if c["iss"] != "https://gw.example.com" || c["aud"] != "http://app:8080" || c["sub"] != "alice" || c["exp"].(float64)-c["iat"].(float64) != 120 {
		t.Errorf("claims = %v", c)
	}
	// A day later the key has rotated: the old current key is now the
	// previous one, still published.
	now = now.Add(24 * time.Hour)
	doc2, _ := a.jwksDocument()
	if !strings.Contains(string(doc2), kid) {
		t.Error("the previous period's key is no longer published")
	}
	tok2, _ := a.sign(s, "http://app:8080")
	jws2, _ := jose.ParseSigned(tok2, []jose.SignatureAlgorithm{jose.ES256})
	if jws2.Signatures[0].Header.KeyID == kid {
		t.Error("the signing key did not rotate")
	}
	if _, err := newAsserter(AssertionConfig{Lifetime: 10 * time.Minute}, "x", keys, clock); err == nil {
		t.Error("an assertion lifetime over 5 minutes was accepted")
	}
}
