package providers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// OIDC is a generic OpenID Connect provider: discovery and ID-token
// signatures through go-oidc (discovery.go), the code exchange through
// x/oauth2, the checks both leave to their caller in idtoken.go, and the
// identity built from the claims in identity.go.
type OIDC struct {
	cfg    Config
	opts   Options
	client *http.Client
	flavor flavor

	state discoveredOnce[discovery]
	reach reachability // is the sign-in page answering (reach.go)
}

var _ Provider = (*OIDC)(nil)

// discovery is what the provider's metadata told us, fixed once learned.
type discovery struct {
	endpoint    oauth2.Endpoint
	verifier    *oidc.IDTokenVerifier
	algs        []string
	keys        *keySet
	op          *oidc.Provider
	endSession  string
	userinfo    string
	issParam    bool // authorization_response_iss_parameter_supported (RFC 9207 §3)
	backchannel bool
	// revocation is the RFC 7009 revocation endpoint (RFC 8414 §2
	// revocation_endpoint, or revocation_endpoint with skip_discovery).
	revocation string
	// clientAuth is the token endpoint authentication in force
	// (clientAuthMethod).
	clientAuth string
	// idVerifier verifies ID tokens: verifier, or, with audiences, one
	// that leaves aud to checkAudience.
	idVerifier *oidc.IDTokenVerifier
}

func newOIDC(cfg Config, opts Options, fl flavor) *OIDC {
	return &OIDC{cfg: cfg, opts: opts, client: newHTTPClient(opts.Transport, cfg.Timeout), flavor: fl}
}

// ID implements Provider.
func (p *OIDC) ID() string { return p.cfg.ID }

// Name is the display name.
func (p *OIDC) Name() string { return p.cfg.Name }

// Issuer implements Provider.
func (p *OIDC) Issuer() string { return p.cfg.IssuerURL }

// clientCtx attaches p's HTTP client the way go-oidc and x/oauth2 expect
// it: both read the client from the context.
func (p *OIDC) clientCtx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, p.client), p.client)
}

// Ready implements Provider: discovery has succeeded.
func (p *OIDC) Ready(ctx context.Context) error {
	_, err := p.discovered(ctx)
	return err
}

func (p *OIDC) discovered(ctx context.Context) (*discovery, error) {
	return p.state.get(ctx, p.opts.Now, func(ctx context.Context) (*discovery, error) {
		d, err := p.discover(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: discovery at %s: %w", ErrUnavailable, p.cfg.ID, p.cfg.IssuerURL, err)
		}
		return d, nil
	})
}

func (p *OIDC) discover(ctx context.Context) (*discovery, error) {
	spec := issuerSpec{
		issuer:  p.cfg.IssuerURL,
		timeout: p.cfg.Timeout,
		algs:    p.algs,
		verify:  oidc.Config{ClientID: p.cfg.ClientID},
	}
	// A flavor whose tokens carry another issuer than its discovery URL
	// names the one its discovery document carries, and checks iss itself
	// (checkIDToken, checkRefreshedIDToken).
	if ifl, ok := p.flavor.(issuerFlavor); ok {
		spec.named = ifl.discoveryIssuer()
	}
	if p.cfg.SkipDiscovery {
		spec.static = p.configuredIssuer(ctx)
	}
	ik, err := discoverIssuer(ctx, p.client, p.opts.Now, spec)
	if err != nil {
		return nil, err
	}
	meta := ik.meta
	// RFC 7636 §7.2 forbids falling back to plain; a provider that says it
	// only knows plain gets S256 anyway and will fail loudly.
	if len(meta.PKCE) > 0 && !slices.Contains(meta.PKCE, "S256") {
		return nil, fmt.Errorf("provider does not support PKCE S256 (code_challenge_methods_supported=%v)", meta.PKCE)
	}
	endpoint := ik.op.Endpoint()
	// x/oauth2 sends client_id alone; authTransport authenticates
	// (clientauth.go).
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	idVerifier := ik.verifier
	if len(p.cfg.Audiences) > 0 {
		// checkAudience does the aud check go-oidc would do, with the
		// extra audiences; the logout-token verifier keeps go-oidc's.
		cfg := oidc.Config{ClientID: p.cfg.ClientID, SkipClientIDCheck: true, SupportedSigningAlgs: ik.algs, Now: p.opts.Now, SkipIssuerCheck: spec.named != ""}
		idVerifier = oidc.NewVerifier(p.cfg.IssuerURL, ik.keys, &cfg)
	}
	return &discovery{
		revocation:  meta.Revocation,
		clientAuth:  p.clientAuthMethod(meta.AuthMethods),
		idVerifier:  idVerifier,
		endpoint:    endpoint,
		verifier:    ik.verifier,
		algs:        ik.algs,
		keys:        ik.keys,
		op:          ik.op,
		endSession:  meta.EndSession,
		userinfo:    ik.op.UserInfoEndpoint(),
		issParam:    meta.IssParam,
		backchannel: meta.Backchannel,
	}, nil
}

func (p *OIDC) accepted() []string {
	if len(p.cfg.SigningAlgs) > 0 {
		return p.cfg.SigningAlgs
	}
	return asymmetricAlgs
}

// algs intersects what the provider advertises for ID tokens with what we
// accept. A provider that advertises nothing gets RS256, the one algorithm
// OpenID Connect requires (Core §15.1).
func (p *OIDC) algs(advertised []string) ([]string, error) {
	offered := advertised
	if len(offered) == 0 {
		offered = []string{"RS256"}
	}
	algs := intersectAlgs(offered, p.accepted())
	if len(algs) == 0 {
		return nil, fmt.Errorf("no acceptable ID-token algorithm: provider offers %v, accepted %v", advertised, p.accepted())
	}
	return algs, nil
}

func (p *OIDC) oauth2Config(d *discovery) *oauth2.Config {
	return &oauth2.Config{
		// No secret: authTransport adds the client authentication.
		ClientID:    p.cfg.ClientID,
		Endpoint:    d.endpoint,
		RedirectURL: p.opts.RedirectURL,
		Scopes:      p.cfg.Scopes,
	}
}

// AuthCodeURL implements Provider: response_type=code with state, nonce
// (OpenID Connect Core §3.1.2.1) and an S256 PKCE challenge (RFC 7636 §4.2;
// RFC 9700 §2.1.1).
func (p *OIDC) AuthCodeURL(ctx context.Context, a Attempt) (string, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return "", err
	}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier)}, p.flavor.authOptions()...)
	opts = append(opts, p.requestOptions(a)...)
	return p.oauth2Config(d).AuthCodeURL(a.State, opts...), nil
}

// requestOptions are the optional authorization request parameters of
// OpenID Connect Core §3.1.2.1 this provider sends: its prompt and
// acr_values, and the attempt's login_hint. The flavor's come first; these
// override them.
func (p *OIDC) requestOptions(a Attempt) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if p.cfg.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", p.cfg.Prompt))
	}
	if p.cfg.ACRValues != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", p.cfg.ACRValues))
	}
	if a.LoginHint != "" && LoginHint(a.LoginHint) {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", a.LoginHint))
	}
	return opts
}

// CheckResponse implements Provider with RFC 9207 §2.4: an iss parameter,
// when present, must equal the issuer the request went to, compared as
// strings; when the provider advertises the parameter it must be present.
func (p *OIDC) CheckResponse(ctx context.Context, q url.Values) error {
	d, err := p.discovered(ctx)
	if err != nil {
		return err
	}
	iss, present := q["iss"]
	switch {
	case present && (len(iss) != 1 || subtle.ConstantTimeCompare([]byte(iss[0]), []byte(p.cfg.IssuerURL)) != 1):
		return fmt.Errorf("%w: iss parameter is not %s", ErrMixUp, p.cfg.IssuerURL)
	case !present && d.issParam:
		return fmt.Errorf("%w: provider advertises the iss parameter but the response has none", ErrMixUp)
	}
	return nil
}

// Redeem implements Provider: exchange the code with the PKCE verifier,
// then verify the ID token before looking at anything else it carries
// (RFC 9700 §4.5.3.2).
func (p *OIDC) Redeem(ctx context.Context, code string, a Attempt) (*session.Session, error) {
	d, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := p.oauth2Config(d).Exchange(p.tokenCtx(ctx, d), code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		return nil, exchangeError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrInvalidToken)
	}
	// Keys that cannot be fetched are the provider's outage, not a forged
	// token: go-oidc would flatten the cause into a verification error.
	if _, err := d.keys.current(ctx, false); err != nil {
		return nil, err
	}
	idt, err := d.idVerifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	all, err := p.checkIDToken(idt, tok, a.Nonce)
	if err != nil {
		return nil, err
	}
	// Sign-in: the profile comes from this token alone (a claim it omits
	// leaves the attribute empty), and an email it does not vouch for
	// refuses the sign-in unless insecure_allow_unverified_email.
	id, err := p.idTokenIdentity(ctx, d, tok, all, session.Identity{Issuer: idt.Issuer, Subject: idt.Subject},
		claimUse{profile: true, email: p.emailRule()})
	if err != nil {
		return nil, err
	}
	expiry := tok.Expiry
	if expiry.IsZero() {
		expiry = idt.Expiry
	}
	return &session.Session{
		Identity:     id,
		Provider:     p.cfg.ID,
		SID:          stringClaim(all, "sid"),
		TokenExpiry:  expiry,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		IDToken:      raw,
	}, nil
}

// exchangeError sorts a failed exchange (at sign-in and at refresh) into
// "the provider could not be asked" (ErrUnavailable: transport failure,
// 5xx, 429), "the provider said no" (ErrRejected: an RFC 6749 §5.2 error
// such as invalid_grant, or another non-2xx status) and "the provider
// answered garbage" (ErrBadResponse: a 2xx x/oauth2 could not read as a
// token response, §5.1).
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests) {
			return fmt.Errorf("%w: token endpoint: %s", ErrUnavailable, re.Response.Status)
		}
		// "Try later", whatever the status: temporarily_unavailable (RFC
		// 6749 §4.1.2.1, which some providers also answer at the token
		// endpoint) and slow_down (RFC 8628 §3.5). Not a refusal: the
		// session lives on and the refresh backs off.
		if re.ErrorCode == "temporarily_unavailable" || re.ErrorCode == "slow_down" {
			return fmt.Errorf("%w: token endpoint: %s", ErrUnavailable, re.ErrorCode)
		}
		code := re.ErrorCode
		if code == "" {
			code = "unknown error"
		}
		return fmt.Errorf("%w: token endpoint: %s", ErrRejected, code)
	}
	return fmt.Errorf("%w: token endpoint: %v", transportOrGarbage(err), err)
}

// transportOrGarbage is ErrUnavailable when err is the HTTP client failing
// to get an answer (x/oauth2 and go-oidc return the client's *url.Error
// as is), and ErrBadResponse for anything else: the answer came but could
// not be used. A refused redirect is the provider's answer, not an outage.
// Read errors after the status line reach us flattened by x/oauth2 and so
// count as garbage.
func transportOrGarbage(err error) error {
	var ue *url.Error
	if errors.Is(err, errRedirectRefused) || !errors.As(err, &ue) {
		return ErrBadResponse
	}
	return ErrUnavailable
}

// fillFromUserinfo reads the userinfo endpoint (OpenID Connect Core
// §5.3) into id, as the provider's userinfo key says: "auto" asks when
// the identity lacks an attribute userinfo could give (Core §5.4 lets a
// provider answer email and profile there alone: Zitadel does), and
// fills only what is missing, the ID token's values winning; "always"
// asks every time and userinfo's values win wherever present; "never"
// does not ask. Userinfo whose sub differs from the ID token's is
// refused (Core §5.3.2).
func (p *OIDC) fillFromUserinfo(ctx context.Context, d *discovery, tok *oauth2.Token, id *session.Identity) error {
	use := claimUse{profile: true, fillOnly: true, email: p.emailRule()}
	switch p.cfg.Userinfo {
	case "never":
		return nil
	case "always":
		use = claimUse{profile: true, overlay: true, email: p.emailRule()}
	case "auto":
		if !p.claims().lacks(id, use) {
			return nil
		}
	}
	return p.readUserinfo(ctx, d, tok, id, use)
}

// readUserinfo asks the userinfo endpoint with tok's access token and
// applies the answer to id as use says. Without an endpoint or an access
// token there is nothing to ask.
func (p *OIDC) readUserinfo(ctx context.Context, d *discovery, tok *oauth2.Token, id *session.Identity, use claimUse) error {
	if d.userinfo == "" || tok.AccessToken == "" {
		return nil
	}
	ui, err := d.op.UserInfo(p.clientCtx(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("%w: userinfo: %v", transportOrGarbage(err), err)
	}
	if ui.Subject != id.Subject { // SECURITY.md IDT-14
		return fmt.Errorf("%w: userinfo sub %q is not the ID token's", ErrInvalidToken, ui.Subject)
	}
	var all map[string]any
	if err := ui.Claims(&all); err != nil {
		return fmt.Errorf("%w: userinfo claims: %v", ErrInvalidToken, err)
	}
	if err := checkClaimTypes(all); err != nil {
		return fmt.Errorf("%w: userinfo: %v", ErrInvalidToken, err)
	}
	p.claims().apply(id, all, use)
	return checkHeaderSafe(ErrInvalidToken, id)
}
