package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// verifyAssertion checks tok as an upstream would: ES256 only, signed by a
// key h publishes at /oauth2/jwks.json, iss the gateway, aud audience, not
// expired. It returns the claims.
func verifyAssertion(h *Handler, tok, audience string) (map[string]any, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", h.public.String()+h.prefix+"/jwks.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("jwks.json: %d", rec.Code)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("kid %q is not published", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return nil, err
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	exp, _ := c["exp"].(float64)
	if c["iss"] != h.public.String() || c["aud"] != audience || int64(exp) < h.now().Unix() {
		return nil, fmt.Errorf("claims %v: want iss %s, aud %s, unexpired", c, h.public, audience)
	}
	return c, nil
}

// TestAssertionOnByDefault: with no assertion settings at all, every
// upstream receives a genuine assertion in X-Portcullis-Assertion, a
// client's own copy never passes, an upstream can opt out or rename the
// header, and forward-auth answers carry one for the original origin.
func TestAssertionOnByDefault(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Upstreams = append(c.Upstreams,
			UpstreamConfig{Path: "/quiet/", URL: c.Upstreams[0].URL, Assertion: UpstreamAssertion{Disabled: true}},
			UpstreamConfig{Path: "/own/", URL: c.Upstreams[0].URL, Assertion: UpstreamAssertion{Header: "X-App-Identity", Audience: "urn:app"}})
	})
	cookie := e.sessionCookie("alice", "alice@example.com", "admins")
	forged := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjZW8ifQ."

	e.do(get("https://gw.example.com/x", "Cookie", cookie, "X-Portcullis-Assertion", forged, "X-App-Identity", forged))
	got := e.last().Header
	if vs := got.Values("X-Portcullis-Assertion"); len(vs) != 1 || vs[0] == forged {
		t.Fatalf("default upstream got X-Portcullis-Assertion %q, want one of ours", vs)
	}
	c, err := verifyAssertion(e.h, got.Get("X-Portcullis-Assertion"), e.upstream.URL)
	if err != nil || c["sub"] != "alice" || c["email"] != "alice@example.com" {
		t.Errorf("default assertion: %v, %v", c, err)
	}
	if got.Get("X-App-Identity") != "" {
		t.Error("a client's X-App-Identity reached the default upstream")
	}

	e.do(get("https://gw.example.com/quiet/x", "Cookie", cookie, "X-Portcullis-Assertion", forged))
	if vs := e.last().Header.Values("X-Portcullis-Assertion"); len(vs) != 0 {
		t.Errorf("disabled upstream got %q", vs)
	}

	e.do(get("https://gw.example.com/own/x", "Cookie", cookie, "X-App-Identity", forged))
	got = e.last().Header
	if _, err := verifyAssertion(e.h, got.Get("X-App-Identity"), "urn:app"); err != nil {
		t.Errorf("renamed header: %v (%q)", err, got.Values("X-App-Identity"))
	}
	if got.Get("X-Portcullis-Assertion") != "" {
		t.Error("the upstream with its own header also got the default one")
	}

	fa := get("https://gw.example.com/oauth2/auth", "Cookie", cookie, "X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "App.Example.com", "X-Forwarded-Uri", "/dash")
	fa.RemoteAddr = "192.0.2.7:1000"
	resp := e.do(fa)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("forward-auth = %d", resp.StatusCode)
	}
	if _, err := verifyAssertion(e.h, resp.Header.Get("X-Portcullis-Assertion"), "https://app.example.com"); err != nil {
		t.Errorf("forward-auth assertion: %v", err)
	}
	if resp.Header.Get("X-Auth-Request-User") != "alice" {
		t.Errorf("X-Auth-Request-User = %q: the oauth2-proxy headers must stay", resp.Header.Get("X-Auth-Request-User"))
	}
}

// TestAssertionCacheFollowsIdentity: the cache is keyed by what the
// claims are made of, so two sessions of one subject with different
// groups (a bearer token, say, whose sessions carry no timestamps) never
// share an assertion.
func TestAssertionCacheFollowsIdentity(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, _ := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	a, err := newAsserter(AssertionConfig{}, "https://gw.example.com", keys, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	admin := &session.Session{Identity: session.Identity{Issuer: "https://idp", Subject: "bob", Groups: []string{"admins"}}}
	plain := &session.Session{Identity: session.Identity{Issuer: "https://idp", Subject: "bob"}}
	t1, _ := a.sign(admin, "http://app")
	t2, _ := a.sign(plain, "http://app")
	if t1 == t2 {
		t.Fatal("a session without groups got the assertion of one with admins")
	}
	if again, _ := a.sign(admin, "http://app"); again != t1 {
		t.Error("the same identity was signed again instead of served from the cache")
	}
	if other, _ := a.sign(admin, "http://other"); other == t1 {
		t.Error("another audience got the same assertion")
	}
}

// TestAssertionConfig: the settings fail closed with a clear error.
func TestAssertionConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"disabled with header", func(c *Config) { c.Upstreams[0].Assertion = UpstreamAssertion{Disabled: true, Header: "X-A"} }, "choose one"},
		{"disabled with audience", func(c *Config) { c.Upstreams[0].Assertion = UpstreamAssertion{Disabled: true, Audience: "x"} }, "choose one"},
		{"bad upstream header", func(c *Config) { c.Upstreams[0].Assertion.Header = "X A" }, "not a header name"},
		{"reserved upstream header", func(c *Config) { c.Upstreams[0].Assertion.Header = "cookie" }, "HTTP itself uses"},
		{"reserved header", func(c *Config) { c.Assertion.Header = "Authorization" }, "assertion.header"},
		{"long lifetime", func(c *Config) { c.Assertion.Lifetime = time.Hour }, "assertion.lifetime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryNew(t, tt.mutate)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one naming %q", err, tt.want)
			}
		})
	}
	if err := tryNew(t, func(*Config) {}); err != nil {
		t.Errorf("the default configuration: %v", err)
	}
}
