package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discovery.go reads an OpenID provider's metadata (OpenID Connect
// Discovery 1.0) and builds the verifier for its tokens. Sign-in providers
// (OIDC.discover) and bearer token issuers (bearerIssuer.verifierFor) both
// come through here; each says which signature algorithms it accepts.

// retryDiscovery spaces out discovery attempts while the provider is down.
const retryDiscovery = 5 * time.Second

// metadata is what we read from a discovery document (Discovery §3).
type metadata struct {
	Issuer      string   `json:"issuer"`
	JWKS        string   `json:"jwks_uri"`
	Algs        []string `json:"id_token_signing_alg_values_supported"`
	EndSession  string   `json:"end_session_endpoint"`
	IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
	Backchannel bool     `json:"backchannel_logout_supported"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	PKCE        []string `json:"code_challenge_methods_supported"`
	Revocation  string   `json:"revocation_endpoint"` // RFC 8414 §2
	// Front-Channel Logout 1.0 §3: whether the OP renders the RP's
	// frontchannel_logout_uri, and whether it adds iss and sid to it.
	Frontchannel        bool `json:"frontchannel_logout_supported"`
	FrontchannelSession bool `json:"frontchannel_logout_session_supported"`
}

// issuerSpec says how to find one issuer's keys and check its tokens.
type issuerSpec struct {
	// issuer is the iss its tokens carry, and where discovery is.
	issuer string
	// named, when set, is the issuer the discovery document names instead
	// of issuer (Entra's multi-tenant template). The verifier then skips
	// its iss check: the caller MUST check iss itself.
	named string
	// jwks is the JWKS URL; "" reads jwks_uri from discovery.
	jwks string
	// static, when set, is the metadata itself (skip_discovery): no
	// discovery request is made.
	static *issuerKeys
	// timeout bounds discovery.
	timeout time.Duration
	// algs picks the signature algorithms to accept from those the
	// provider advertises (RFC 8725 §3.1: the caller fixes the set).
	algs func(advertised []string) ([]string, error)
	// verify is the rest of the verifier's configuration: the client ID
	// check. Algorithms, clock and issuer check are filled in here.
	verify oidc.Config
}

// issuerKeys is what discoverIssuer learned.
type issuerKeys struct {
	op       *oidc.Provider // nil when spec.jwks was given
	meta     metadata
	algs     []string
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// discoverIssuer runs discovery for spec (unless its JWKS URL is given) and
// builds the key set and verifier. go-oidc's NewProvider refuses metadata
// whose issuer is not spec.issuer exactly (Discovery §4.3), unless
// spec.named says which issuer it names.
func discoverIssuer(ctx context.Context, client *http.Client, now func() time.Time, spec issuerSpec) (*issuerKeys, error) {
	ik := &issuerKeys{meta: metadata{JWKS: spec.jwks}}
	if spec.static != nil {
		ik = spec.static
	} else if spec.jwks == "" {
		ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), spec.timeout)
		defer cancel()
		// go-oidc's own issuer comparison is switched off so that ours,
		// below, can say what differs; it is the same exact comparison.
		want := spec.issuer
		if spec.named != "" {
			want = spec.named
		}
		ctx = oidc.InsecureIssuerURLContext(ctx, want)
		op, err := oidc.NewProvider(ctx, spec.issuer)
		if err != nil {
			return nil, err
		}
		if err := op.Claims(&ik.meta); err != nil {
			return nil, fmt.Errorf("reading metadata: %w", err)
		}
		if spec.named == "" && ik.meta.Issuer != spec.issuer {
			return nil, issuerMismatch(spec.issuer, ik.meta.Issuer)
		}
		if ik.meta.JWKS == "" {
			return nil, errors.New("metadata has no jwks_uri")
		}
		ik.op = op
	}
	algs, err := spec.algs(ik.meta.Algs)
	if err != nil {
		return nil, err
	}
	ik.algs = algs
	ik.keys = newKeySet(ik.meta.JWKS, client, now)
	cfg := spec.verify
	cfg.SupportedSigningAlgs = algs
	cfg.Now = now
	cfg.SkipIssuerCheck = spec.named != ""
	ik.verifier = oidc.NewVerifier(spec.issuer, ik.keys, &cfg)
	return ik, nil
}

// intersectAlgs is the algorithms of offered that accepted has, in the
// provider's order.
func intersectAlgs(offered, accepted []string) []string {
	var out []string
	for _, a := range offered {
		if slices.Contains(accepted, a) {
			out = append(out, a)
		}
	}
	return out
}

// discoveredOnce holds what discovery learned, fixed once it succeeded.
// While it fails, it is tried again at most every retryDiscovery and the
// last error is the answer in between.
type discoveredOnce[T any] struct {
	val atomic.Pointer[T]

	mu      sync.Mutex // serialises attempts
	lastTry time.Time
	lastErr error
}

// get returns the discovered value, running discover when there is none
// and the last failure is old enough. discover's error is what callers
// see, so it says what failed and wraps ErrUnavailable.
func (o *discoveredOnce[T]) get(ctx context.Context, now func() time.Time, discover func(context.Context) (*T, error)) (*T, error) {
	if v := o.val.Load(); v != nil {
		return v, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if v := o.val.Load(); v != nil {
		return v, nil
	}
	if o.lastErr != nil && now().Sub(o.lastTry) < retryDiscovery {
		return nil, o.lastErr
	}
	o.lastTry = now()
	// Detached from the caller: a client hanging up must not be recorded
	// as the provider being down. discover's own timeout still bounds it.
	v, err := discover(context.WithoutCancel(ctx))
	if err != nil {
		o.lastErr = err
		return nil, err
	}
	o.lastErr = nil
	o.val.Store(v)
	return v, nil
}

// ErrIssuerMismatch: the discovery document names another issuer than
// the configured one. It is a configuration error, not an outage, and
// /ready shows it as such.
var ErrIssuerMismatch = errors.New("issuer mismatch")

// issuerMismatch says how the configured issuer differs from the one its
// discovery document names. They must be equal character for character
// (OpenID Connect Discovery 1.0 §4.3; Core §3.1.3.7 step 2 then compares
// every ID token's iss with it), so the gateway never "fixes" either one.
func issuerMismatch(configured, discovered string) error {
	d := strconv.Quote(truncateString(discovered, 256))
	switch {
	case configured == discovered+"/":
		return fmt.Errorf("%w: issuer in configuration %s differs from discovered %s: remove the trailing slash", ErrIssuerMismatch, configured, d)
	case configured+"/" == discovered:
		return fmt.Errorf("%w: issuer in configuration %s differs from discovered %s: add the trailing slash", ErrIssuerMismatch, configured, d)
	}
	return fmt.Errorf("%w: issuer in configuration %s differs from discovered %s: they must be identical (OpenID Connect Discovery §4.3)", ErrIssuerMismatch, configured, d)
}
