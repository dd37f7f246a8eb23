package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// jwksMinRefresh is the least time between two fetches of a provider's keys
// caused by tokens with an unknown kid. go-oidc's RemoteKeySet re-fetches on
// every failed verification; a stream of forged tokens would then become a
// stream of requests to the provider (SECURITY.md §2.8-8, §4.1).
const jwksMinRefresh = time.Minute

// keySet is an oidc.KeySet over the provider's jwks_uri that re-fetches at
// most once per jwksMinRefresh, binds each key to its declared alg and use,
// and never looks at jku, x5u or jwk headers (RFC 8725 §3.10).
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   time.Time // last fetch attempt
	inflight  chan struct{}
	lastError error
}

var _ oidc.KeySet = (*keySet)(nil)

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

// VerifySignature implements oidc.KeySet. The algorithm allowlist has
// already been applied by go-oidc's verifier when it parsed the token.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, joseAlgs(asymmetricAlgs))
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	keys, err := k.current(ctx, false)
	if err == nil {
		if payload, ok := verifyWith(jws, hdr, keys); ok {
			return payload, nil
		}
	}
	// Unknown kid or no key verified: maybe the provider rotated. Re-fetch,
	// rate-limited.
	keys, err = k.current(ctx, true)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, hdr, keys); ok {
		return payload, nil
	}
	return nil, fmt.Errorf("no key of the provider verifies the signature (kid %q, alg %s)", hdr.KeyID, hdr.Algorithm)
}

func verifyWith(jws *jose.JSONWebSignature, hdr jose.Header, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if hdr.KeyID != "" && key.KeyID != hdr.KeyID {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		// A key serves exactly one algorithm when it says which (RFC 8725 §3.1).
		if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// current returns the cached keys, fetching when there are none or when
// refresh is asked and the last fetch is older than jwksMinRefresh.
func (k *keySet) current(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	for {
		k.mu.Lock()
		// A fetch under way is what a caller needing fresh keys waits for,
		// whoever started it.
		if wait := k.inflight; wait != nil && (refresh || k.keys == nil) {
			k.mu.Unlock()
			select {
			case <-wait:
				refresh = false // someone just fetched for us
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		stale := k.keys == nil || (refresh && k.now().Sub(k.fetched) >= jwksMinRefresh)
		if k.keys == nil && k.lastError != nil && k.now().Sub(k.fetched) < 5*time.Second {
			err := k.lastError
			k.mu.Unlock()
			return nil, err
		}
		if !stale {
			keys := k.keys
			k.mu.Unlock()
			return keys, nil
		}
		// Start the fetch detached from the caller: a client that hangs up
		// must not turn into "the provider is down" for everyone, nor
		// spend the rate-limited refresh on nothing.
		done := make(chan struct{})
		k.inflight = done
		k.fetched = k.now()
		k.mu.Unlock()
		go k.fetchInto(context.WithoutCancel(ctx), done)
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		k.mu.Lock()
		keys, err := k.keys, k.lastError
		k.mu.Unlock()
		if keys == nil {
			return nil, err
		}
		return keys, nil
	}
}

// fetchInto fetches the keys, records the outcome and closes done.
func (k *keySet) fetchInto(ctx context.Context, done chan struct{}) {
	keys, err := k.fetch(ctx)
	k.mu.Lock()
	k.inflight = nil
	k.lastError = err
	if err == nil {
		k.keys = keys
	}
	k.mu.Unlock()
	close(done)
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching keys: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: fetching keys: %s", ErrUnavailable, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("%w: decoding keys: %v", ErrUnavailable, err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		// Only public keys: a JWKS that publishes a symmetric or private key
		// is not something to verify with.
		if key.IsPublic() && key.Valid() {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: provider publishes no usable public keys", ErrUnavailable)
	}
	return keys, nil
}

func joseAlgs(names []string) []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		algs[i] = jose.SignatureAlgorithm(n)
	}
	return algs
}
