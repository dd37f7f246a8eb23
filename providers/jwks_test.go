package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// unknownKidToken is a token for a signed by a key the issuer never
// published, under a fresh kid: what a stream of forgeries looks like.
func unknownKidToken(t testing.TB, ti *testIssuer, a Attempt, now time.Time, i int) string {
	t.Helper()
	return testKey{jose.RS256, fmt.Sprintf("forged-%d-%s", i, randomToken()[:8]), rsaOther.priv}.sign(t, ti.claims(a, now))
}

// TestJWKSRefetchIsRateLimited: forged tokens with unknown kids cost at most
// one JWKS fetch per minute (SECURITY.md §2.8-8, §4.1).
func TestJWKSRefetchIsRateLimited(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	p := ti.provider(t, clk, nil)

	for i := range 50 {
		s, err := signIn(t, ti, p, func(a Attempt) map[string]any {
			return tokenResponse(unknownKidToken(t, ti, a, clk.Now(), i))
		})
		if !errors.Is(err, ErrInvalidToken) || s != nil {
			t.Fatalf("forged token %d: Redeem = %v, %v; want %v", i, s, err, ErrInvalidToken)
		}
		clk.Advance(time.Second) // 50 tokens within 50 s
	}
	if got := ti.jwksHits.Load(); got < 1 || got > 2 {
		t.Errorf("50 unknown kids within a minute: %d JWKS fetches, want 1 or 2", got)
	}
	before := ti.jwksHits.Load()

	clk.Advance(11 * time.Second) // 61 s after the first fetch
	for i := range 5 {
		signIn(t, ti, p, func(a Attempt) map[string]any {
			return tokenResponse(unknownKidToken(t, ti, a, clk.Now(), 100+i))
		})
	}
	if got := ti.jwksHits.Load() - before; got != 1 {
		t.Errorf("after 60 s, 5 unknown kids caused %d JWKS fetches, want 1", got)
	}
}

// TestJWKSKeyRotation: a key the provider starts using is picked up on the
// next token once the minimum interval has passed; a retired key stops
// verifying once the new set is fetched.
func TestJWKSKeyRotation(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	p := ti.provider(t, clk, nil)
	signWith := func(t *testing.T, k testKey) func(a Attempt) map[string]any {
		return func(a Attempt) map[string]any { return tokenResponse(k.sign(t, ti.claims(a, clk.Now()))) }
	}

	for _, step := range []struct {
		name     string
		advance  time.Duration
		rotate   bool
		key      testKey
		wantOK   bool
		wantHits int64
	}{
		{"old key before rotation", 0, false, rsaKey, true, 1},
		{"new key, rotated 30 s after the first fetch", 30 * time.Second, true, rsaOther, false, 1},
		{"old key still cached", 0, false, rsaKey, true, 1},
		{"new key, 60 s after the first fetch", 30 * time.Second, false, rsaOther, true, 2},
		{"new key again", time.Second, false, rsaOther, true, 2},
		{"retired key", 0, false, rsaKey, false, 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			clk.Advance(step.advance)
			if step.rotate {
				ti.setKeys(rsaOther.jwk())
			}
			s, err := signIn(t, ti, p, signWith(t, step.key))
			if got := err == nil && s != nil; got != step.wantOK {
				t.Errorf("Redeem = %v, %v; want success %v", s, err, step.wantOK)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Redeem error %v, want %v", err, ErrInvalidToken)
			}
			if got := ti.jwksHits.Load(); got != step.wantHits {
				t.Errorf("%d JWKS fetches, want %d", got, step.wantHits)
			}
		})
	}
}

// TestJWKSConcurrentSignIns: the first sign-ins after start share one
// discovery and one JWKS fetch, and so do concurrent forgeries. Run with
// -race.
func TestJWKSConcurrentSignIns(t *testing.T) {
	const n = 20
	ti := newTestIssuer(t)
	clk := newClock()
	p := ti.provider(t, clk, nil)

	attempts := make([]Attempt, n)
	good := map[string]string{} // code -> ID token; read-only once served
	forged := map[string]string{}
	for i := range n {
		attempts[i] = NewAttempt()
		good[fmt.Sprint("good-", i)] = rsaKey.sign(t, ti.claims(attempts[i], clk.Now()))
		forged[fmt.Sprint("forged-", i)] = unknownKidToken(t, ti, attempts[i], clk.Now(), i)
	}
	ti.reply(func(w http.ResponseWriter, r *http.Request) {
		code := r.PostForm.Get("code")
		idt, ok := good[code]
		if !ok {
			idt = forged[code]
		}
		writeJSON(w, http.StatusOK, tokenResponse(idt))
	})

	run := func(prefix string, wantOK bool) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s, err := p.Redeem(context.Background(), fmt.Sprint(prefix, i), attempts[i])
				if got := err == nil && s != nil; got != wantOK {
					t.Errorf("%s%d: Redeem = %v, %v; want success %v", prefix, i, s, err, wantOK)
				}
			})
		}
		wg.Wait()
	}
	run("good-", true)
	if d, k := ti.discoveryHits.Load(), ti.jwksHits.Load(); d != 1 || k != 1 {
		t.Errorf("%d concurrent sign-ins: %d discovery and %d JWKS fetches, want 1 and 1", n, d, k)
	}
	run("forged-", false)
	if got := ti.jwksHits.Load(); got != 1 {
		t.Errorf("%d concurrent forgeries within a minute: %d JWKS fetches in all, want 1", n, got)
	}
}

// TestKeySetConcurrentRefresh: forgeries arriving together when a refresh
// is allowed cause one fetch, not one each.
func TestKeySetConcurrentRefresh(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	ks := newKeySet(ti.URL+"/jwks", newHTTPClient(nil, 5*time.Second), clk.Now)
	c := ti.claims(Attempt{Nonce: "n"}, clk.Now())
	if _, err := ks.VerifySignature(context.Background(), rsaKey.sign(t, c)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * jwksMinRefresh)
	var wg sync.WaitGroup
	for i := range 20 {
		tok := testKey{jose.RS256, fmt.Sprint("forged-", i), rsaOther.priv}.sign(t, c)
		wg.Go(func() {
			if _, err := ks.VerifySignature(context.Background(), tok); err == nil {
				t.Error("forged token verified")
			}
		})
	}
	wg.Wait()
	if got := ti.jwksHits.Load(); got != 2 {
		t.Errorf("%d JWKS fetches, want 2 (initial and one refresh)", got)
	}
}

// TestKeySetRefusesSymmetricAndNone: the key set parses with its own
// allowlist of asymmetric algorithms, so a MAC or unsigned token fails even
// if the verifier's list were wrong, and a symmetric key published in the
// JWKS is never a verification key.
func TestKeySetRefusesSymmetricAndNone(t *testing.T) {
	secret := []byte(testClientSecret)
	oct := jose.JSONWebKey{Key: secret, KeyID: "oct-1", Algorithm: "HS256", Use: "sig"}
	c := map[string]any{"iss": "x", "sub": "y"}
	for _, tt := range []struct {
		name  string
		keys  []jose.JSONWebKey
		token string
	}{
		{"alg none", []jose.JSONWebKey{rsaKey.jwk()}, craftJWT(t, map[string]any{"alg": "none", "kid": rsaKey.kid}, c, nil)},
		{"HS256 with the client secret", []jose.JSONWebKey{rsaKey.jwk()}, craftJWT(t, map[string]any{"alg": "HS256", "kid": rsaKey.kid}, c, secret)},
		{"HS256 with a published oct key", []jose.JSONWebKey{rsaKey.jwk(), oct}, craftJWT(t, map[string]any{"alg": "HS256", "kid": "oct-1"}, c, secret)},
		{"HS256 with the public key PEM", []jose.JSONWebKey{rsaKey.jwk()}, craftJWT(t, map[string]any{"alg": "HS256", "kid": rsaKey.kid}, c, rsaPublicPEM)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			ti.setKeys(tt.keys...)
			ks := newKeySet(ti.URL+"/jwks", newHTTPClient(nil, 5*time.Second), newClock().Now)
			if payload, err := ks.VerifySignature(context.Background(), tt.token); err == nil {
				t.Errorf("VerifySignature accepted the token: %s", payload)
			}
		})
	}
}

// jwksServer serves handler as a JWKS and counts requests.
func jwksServer(t *testing.T, handler http.HandlerFunc) (url string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL, hits
}

// TestKeySetFetchFailures: a JWKS that cannot be used makes verification
// fail as "provider unavailable", never as a panic or a verified token.
func TestKeySetFetchFailures(t *testing.T) {
	priv := jose.JSONWebKey{Key: rsaKey.priv, KeyID: rsaKey.kid, Algorithm: "RS256", Use: "sig"}
	elsewhere, elsewhereHits := countingServer(t)
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }},
		{"404", http.NotFound},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }},
		{"no keys", jsonReply(http.StatusOK, map[string]any{"keys": []any{}})},
		{"only a private key", jsonReply(http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv}})},
		{"only a symmetric key", jsonReply(http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte(testClientSecret), KeyID: "rsa-1"}}})},
		{"over 1 MiB", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":[],"x":"` + strings.Repeat("a", maxResponseBytes) + `"}`))
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/jwks", http.StatusFound)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := jwksServer(t, tt.handler)
			ks := newKeySet(u, newHTTPClient(nil, 5*time.Second), newClock().Now)
			tok := rsaKey.sign(t, map[string]any{"sub": "x"})
			_, err := ks.VerifySignature(context.Background(), tok)
			t.Logf("VerifySignature: %v", err)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("VerifySignature error = %v, want %v", err, ErrUnavailable)
			}
			if got := elsewhereHits.Load(); got != 0 {
				t.Errorf("redirect target contacted %d times", got)
			}
		})
	}
}

// TestKeySetRetry: while the JWKS is failing and no keys are cached, it is
// fetched at most every 5 s; a failed refresh keeps the keys already known.
func TestKeySetRetry(t *testing.T) {
	var down atomic.Bool
	u, hits := jwksServer(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaKey.jwk()}})
	})
	clk := newClock()
	ks := newKeySet(u, newHTTPClient(nil, 5*time.Second), clk.Now)
	good := rsaKey.sign(t, map[string]any{"sub": "x"})
	forged := rsaOther.sign(t, map[string]any{"sub": "x"})

	for _, step := range []struct {
		name     string
		advance  time.Duration
		down     bool
		token    string
		wantOK   bool
		wantHits int64
	}{
		{"first fetch fails", 0, true, good, false, 1},
		{"4 s later: remembered failure", 4 * time.Second, true, good, false, 1},
		{"5 s after the fetch: fetched again", time.Second, false, good, true, 2},
		{"refresh fails a minute later", time.Minute, true, forged, false, 3},
		{"known key still verifies", 0, true, good, true, 3},
		{"and still after 5 s", 5 * time.Second, true, good, true, 3},
	} {
		t.Run(step.name, func(t *testing.T) {
			clk.Advance(step.advance)
			down.Store(step.down)
			_, err := ks.VerifySignature(context.Background(), step.token)
			if got := err == nil; got != step.wantOK {
				t.Errorf("VerifySignature error = %v, want success %v", err, step.wantOK)
			}
			if got := hits.Load(); got != step.wantHits {
				t.Errorf("%d fetches, want %d", got, step.wantHits)
			}
		})
	}
}

// TestKeySetIgnoresCallerCancellation: the key set is shared by every
// sign-in, so one caller that goes away while keys are fetched (a browser
// closing the callback) must not fail the others, nor use up the refresh
// that a key rotation needs. An already cancelled context stands in for
// one cancelled mid-fetch.
func TestKeySetIgnoresCallerCancellation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rotate bool // keys cached, then the provider rotates and a refresh is due
	}{
		{"first fetch", false},
		{"refresh after rotation", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t)
			clk := newClock()
			ks := newKeySet(ti.URL+"/jwks", newHTTPClient(nil, 5*time.Second), clk.Now)
			key := rsaKey
			if tt.rotate {
				if _, err := ks.VerifySignature(context.Background(), rsaKey.sign(t, map[string]any{"sub": "x"})); err != nil {
					t.Fatal(err)
				}
				ti.setKeys(rsaOther.jwk())
				key = rsaOther
				clk.Advance(2 * jwksMinRefresh)
			}
			tok := key.sign(t, map[string]any{"sub": "x"})
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			ks.VerifySignature(gone, tok)
			if _, err := ks.VerifySignature(context.Background(), tok); err != nil {
				t.Errorf("VerifySignature after another caller gave up = %v, want nil", err)
			}
		})
	}
}
