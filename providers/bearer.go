package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/portcullis/portcullis/session"
)

// bearer.go lets machine clients in with Authorization: Bearer <JWT>
// instead of a session cookie (RFC 6750). A token is accepted only from a
// configured issuer, signed with one of that issuer's keys under an
// allowed asymmetric algorithm (RFC 8725 §3.1), unexpired, and with an
// audience configured for it (RFC 9700 §2.3, §4.10.2: a token meant for
// another resource server must be refused). ID tokens and logout tokens
// are refused as bearer tokens (RFC 8725 §3.11–3.12: no cross-JWT
// confusion).

// BearerConfig is the `bearer` section.
type BearerConfig struct {
	// Audiences admits access tokens from the configured providers whose
	// aud names one of these. Empty: the providers' tokens are not
	// accepted as bearer tokens.
	Audiences []string `yaml:"audiences"`
	// Issuers are further trusted token issuers (e.g. a CI system's OIDC
	// issuer), each with its own audiences.
	Issuers []BearerIssuer `yaml:"issuers"`
}

// BearerIssuer is one extra trusted issuer.
type BearerIssuer struct {
	IssuerURL   string   `yaml:"issuer_url"`
	Audiences   []string `yaml:"audiences"`    // required
	JWKSURL     string   `yaml:"jwks_url"`     // default: from discovery
	SigningAlgs []string `yaml:"signing_algs"` // default: RS256, ES256, PS256, EdDSA and friends
	GroupsClaim string   `yaml:"groups_claim"` // default "groups"
}

// ErrInvalidBearer means a bearer token was presented and refused.
var ErrInvalidBearer = errors.New("invalid bearer token")

// BearerVerifier checks bearer tokens against the trusted issuers.
type BearerVerifier struct {
	issuers map[string]*bearerIssuer
}

type bearerIssuer struct {
	cfg    BearerIssuer
	claims claimMapping // groups_claim and the policy's claims
	client *http.Client
	now    func() time.Time
	found  discoveredOnce[oidc.IDTokenVerifier]
}

// NewBearerVerifier builds the verifier for cfg; provs, the configured
// providers, lend their issuers to cfg.Audiences. It returns nil,
// nil when nothing is configured. It does no I/O.
func NewBearerVerifier(cfg BearerConfig, provs []Config, opts Options) (*BearerVerifier, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &BearerVerifier{issuers: map[string]*bearerIssuer{}}
	var errs []error
	add := func(bi BearerIssuer, where string, transport http.RoundTripper) {
		if len(bi.Audiences) == 0 {
			errs = append(errs, fmt.Errorf("%s: audiences are required: a token for another service must not be accepted", where))
			return
		}
		if slices.Contains(bi.Audiences, "") {
			errs = append(errs, fmt.Errorf("%s: empty audience", where))
			return
		}
		for _, a := range bi.SigningAlgs {
			if !slices.Contains(asymmetricAlgs, a) {
				errs = append(errs, fmt.Errorf("%s: signing_algs: %q is not accepted", where, a))
				return
			}
		}
		if bi.IssuerURL == "" {
			errs = append(errs, fmt.Errorf("%s: issuer_url is required", where))
			return
		}
		if bi.GroupsClaim == "" {
			bi.GroupsClaim = "groups"
		}
		if prev, dup := v.issuers[bi.IssuerURL]; dup {
			prev.cfg.Audiences = append(prev.cfg.Audiences, bi.Audiences...)
			return
		}
		v.issuers[bi.IssuerURL] = &bearerIssuer{
			cfg:    bi,
			claims: claimMapping{groups: bi.GroupsClaim, policy: opts.Claims},
			client: newHTTPClient(transport, 10*time.Second),
			now:    opts.Now,
		}
	}
	if len(cfg.Audiences) > 0 {
		for _, p := range provs {
			p.typeDefaults() // a copy: the issuer a type implies
			// GitHub issues opaque tokens, and a multi-tenant Entra app's
			// tokens come from each tenant's own issuer: list those under
			// bearer.issuers instead.
			if p.Type == "github" || (p.Type == "entra" && (p.Tenant == "organizations" || p.Tenant == "common")) {
				continue
			}
			bi := BearerIssuer{IssuerURL: p.IssuerURL, Audiences: cfg.Audiences, SigningAlgs: p.SigningAlgs, GroupsClaim: p.GroupsClaim}
			if p.SkipDiscovery {
				bi.JWKSURL = p.JWKSURI // the provider has no discovery document
			}
			add(bi, "bearer.audiences", providerTransport(p, opts.Transport))
		}
	}
	for i, bi := range cfg.Issuers {
		add(bi, fmt.Sprintf("bearer.issuers[%d]", i), opts.Transport)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(v.issuers) == 0 {
		return nil, nil
	}
	return v, nil
}

// providerTransport is the transport for calls to provider p's issuer:
// one trusting its ca_file, else base. A broken ca_file is reported by the
// provider's own validation.
func providerTransport(p Config, base http.RoundTripper) http.RoundTripper {
	if p.CAFile == "" {
		return base
	}
	p.checkCA(func(string, ...any) {})
	if p.caPool == nil {
		return base
	}
	return caTransport(p.caPool, 10*time.Second)
}

// Verify checks token and returns the identity it carries.
func (v *BearerVerifier) Verify(ctx context.Context, token string) (*session.Identity, error) {
	iss, err := peekIssuer(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBearer, err)
	}
	bi := v.issuers[iss]
	if bi == nil {
		return nil, fmt.Errorf("%w: issuer %q is not trusted", ErrInvalidBearer, truncateString(iss, 128))
	}
	verifier, err := bi.verifierFor(ctx)
	if err != nil {
		return nil, err // ErrUnavailable: the gateway says 503, not 401
	}
	tok, err := verifier.Verify(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBearer, err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(bi.cfg.Audiences, a) }) {
		return nil, fmt.Errorf("%w: audience %v is not one of %v", ErrInvalidBearer, tok.Audience, bi.cfg.Audiences)
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidBearer, err)
	}
	if err := checkClaimTypes(all); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBearer, err)
	}
	if _, ok := all["nonce"]; ok {
		return nil, fmt.Errorf("%w: an ID token is not an access token", ErrInvalidBearer)
	}
	if _, ok := all["events"]; ok {
		return nil, fmt.Errorf("%w: a logout token is not an access token", ErrInvalidBearer)
	}
	if tok.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalidBearer)
	}
	// A bearer token stands alone: every profile attribute comes from it,
	// and an email it does not vouch for is kept as unverified (nothing to
	// refuse: a machine client may have no email, and the policy decides).
	id := &session.Identity{Issuer: tok.Issuer, Subject: tok.Subject}
	bi.claims.apply(id, all, claimUse{profile: true, email: reportEmail})
	if err := checkHeaderSafe(ErrInvalidBearer, id); err != nil {
		return nil, err
	}
	return id, nil
}

// verifierFor discovers the issuer's keys on first use, retrying at most
// every few seconds while it is unreachable.
func (bi *bearerIssuer) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	return bi.found.get(ctx, bi.now, func(ctx context.Context) (*oidc.IDTokenVerifier, error) {
		ik, err := discoverIssuer(ctx, bi.client, bi.now, issuerSpec{
			issuer:  bi.cfg.IssuerURL,
			jwks:    bi.cfg.JWKSURL,
			timeout: 10 * time.Second,
			algs:    bi.algs,
			verify:  oidc.Config{SkipClientIDCheck: true}, // audiences are checked by Verify against the configured list
		})
		if err != nil {
			return nil, fmt.Errorf("%w: bearer issuer %s: %v", ErrUnavailable, bi.cfg.IssuerURL, err)
		}
		return ik.verifier, nil
	})
}

// algs picks the algorithms accepted for the issuer's access tokens:
// signing_algs as configured; otherwise those it advertises that we accept
// at all, or any of those when it advertises none of them. Discovery lists
// the algorithms of ID tokens, not of access tokens, so unlike for sign-in
// it narrows the default but never makes the issuer unusable.
func (bi *bearerIssuer) algs(advertised []string) ([]string, error) {
	if len(bi.cfg.SigningAlgs) > 0 {
		return bi.cfg.SigningAlgs, nil
	}
	if algs := intersectAlgs(advertised, asymmetricAlgs); len(algs) > 0 {
		return algs, nil
	}
	return asymmetricAlgs, nil
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
