package providers

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
)

// inspect.go answers `portcullis -check -online`: what one provider's
// discovery document and keys say, in plain words, before the gateway
// depends on them, and which of the gateway's URIs the provider can use.

// Report is what Inspect learned about one provider.
type Report struct {
	ID, Name, Issuer string
	// Errors stop sign-ins through this provider, one sentence each.
	Errors []string
	// Notes are worth knowing but stop nothing.
	Notes []string
	// Discovered: the discovery document was read; Supports is then
	// what it advertises.
	Discovered bool
	Supports   Support
	// Register says which of the gateway's URIs to register at the
	// provider: only those it can use.
	Register Register
}

// Support is what a provider's discovery document advertises.
type Support struct {
	EndSession          bool // end_session_endpoint (RP-Initiated Logout 1.0 §2.1)
	Backchannel         bool // backchannel_logout_supported (Back-Channel Logout 1.0 §2.1)
	Frontchannel        bool // frontchannel_logout_supported (Front-Channel Logout 1.0 §3)
	FrontchannelSession bool // frontchannel_logout_session_supported: iss and sid are sent
	Revocation          bool // revocation_endpoint (RFC 8414 §2, RFC 7009)
	Userinfo            bool // userinfo_endpoint (OpenID Connect Core §5.3)
	IssParameter        bool // authorization_response_iss_parameter_supported (RFC 9207 §3)
}

// Register names the gateway URIs the provider needs registered.
type Register struct {
	Redirect     bool // always
	PostLogout   bool // post_logout_redirect_uri: sign-out continues to end_session
	Backchannel  bool // backchannel_logout_uri
	Frontchannel bool // frontchannel_logout_uri (with session required)
}

// inspectMetadata is the discovery document as Inspect reads it: what
// the gateway uses, and the endpoints go-oidc reads for it.
type inspectMetadata struct {
	metadata
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	Userinfo      string `json:"userinfo_endpoint"`
}

// Inspect validates cfg, then fetches its provider's discovery document
// and JWKS and reports every defect the gateway would trip over, and what
// the provider supports. The error is for an invalid cfg only; what is
// wrong at the provider is in Report.Errors.
func Inspect(ctx context.Context, cfg Config, opts Options) (Report, error) {
	if opts.RedirectURL == "" {
		opts.RedirectURL = "http://inspect.invalid/oauth2/callback" // New needs one; Inspect sends it nowhere
	}
	p, err := New(cfg, opts)
	if err != nil {
		return Report{}, err
	}
	rep := Report{ID: p.ID(), Name: p.Name(), Issuer: p.Issuer(), Register: Register{Redirect: true}}
	var o *OIDC
	switch v := p.(type) {
	case *OIDC:
		o = v
	case *Entra:
		o = v.OIDC
	default:
		rep.Notes = append(rep.Notes, "no OpenID discovery for this type: nothing to fetch; sign-out is local to the gateway")
		return rep, nil
	}
	o.inspect(ctx, &rep)
	return rep, nil
}

func (p *OIDC) inspect(ctx context.Context, rep *Report) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	meta := p.configuredMetadata()
	if !p.cfg.SkipDiscovery {
		where := strings.TrimSuffix(p.cfg.IssuerURL, "/") + "/.well-known/openid-configuration"
		var err error
		if meta, err = p.fetchMetadata(ctx, where); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("discovery at %s failed: %s", where, Cause(err)))
			return
		}
		rep.Discovered = true
	} else {
		rep.Notes = append(rep.Notes, "skip_discovery: the endpoints are the configured ones; only the keys are fetched")
	}
	rep.Errors = append(rep.Errors, p.metadataProblems(meta)...)
	if meta.JWKS != "" {
		if _, err := newKeySet(meta.JWKS, p.client, p.opts.Now).fetch(ctx); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("keys (jwks_uri %s): %s", meta.JWKS, Cause(err)))
		}
	}
	rep.Supports = Support{
		EndSession:          meta.EndSession != "",
		Backchannel:         meta.Backchannel,
		Frontchannel:        meta.Frontchannel,
		FrontchannelSession: meta.FrontchannelSession,
		Revocation:          meta.Revocation != "",
		Userinfo:            meta.Userinfo != "",
		IssParameter:        meta.IssParam,
	}
	s := rep.Supports
	rep.Register.PostLogout = s.EndSession && p.cfg.EndSession != "never"
	rep.Register.Backchannel = s.Backchannel
	rep.Register.Frontchannel = s.Frontchannel && s.FrontchannelSession && p.FrontchannelLogout()
	if s.Frontchannel && !s.FrontchannelSession && p.FrontchannelLogout() {
		rep.Notes = append(rep.Notes, "front-channel logout is offered without iss and sid (frontchannel_logout_session_supported is not true); the gateway accepts only requests naming both, so do not register a front-channel logout URI")
	}
	if len(meta.PKCE) == 0 {
		rep.Notes = append(rep.Notes, "discovery does not list code_challenge_methods_supported; the gateway sends PKCE S256 anyway (RFC 7636 §4.2)")
	}
}

// configuredMetadata is what a skip_discovery provider's configuration
// says in place of a discovery document: its endpoints, the issuer as
// configured, nothing advertised.
func (p *OIDC) configuredMetadata() *inspectMetadata {
	c := p.cfg
	m := &inspectMetadata{Authorization: c.AuthorizationEndpoint, Token: c.TokenEndpoint, Userinfo: c.UserinfoEndpoint}
	m.Issuer, m.JWKS, m.EndSession, m.Revocation = c.IssuerURL, c.JWKSURI, c.EndSessionEndpoint, c.RevocationEndpoint
	return m
}

// metadataProblems is what in meta stops sign-ins, in plain words.
func (p *OIDC) metadataProblems(meta *inspectMetadata) []string {
	var out []string
	named := p.cfg.IssuerURL
	if ifl, ok := p.flavor.(issuerFlavor); ok {
		named = ifl.discoveryIssuer()
	}
	if meta.Issuer != named {
		// The same words the gateway logs and /ready shows (discovery.go).
		out = append(out, issuerMismatch(named, meta.Issuer).Error())
	}
	for _, ep := range []struct{ name, value string }{
		{"authorization_endpoint", meta.Authorization}, {"token_endpoint", meta.Token}, {"jwks_uri", meta.JWKS},
	} {
		if ep.value == "" {
			out = append(out, fmt.Sprintf("discovery names no %s: the gateway cannot sign anyone in without it", ep.name))
		}
	}
	if len(meta.PKCE) > 0 && !slices.Contains(meta.PKCE, "S256") {
		out = append(out, fmt.Sprintf("the provider does not support PKCE S256 (code_challenge_methods_supported: %s); the gateway always sends S256 and never falls back to plain (RFC 7636 §7.2)", strings.Join(meta.PKCE, ", ")))
	}
	if _, err := p.algs(meta.Algs); err != nil {
		out = append(out, err.Error())
	}
	// Discovery §3 token_endpoint_auth_methods_supported; omitted, it means
	// client_secret_basic alone, which is the default here too.
	if method := p.clientAuthMethod(meta.AuthMethods); len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, method) {
		out = append(out, fmt.Sprintf("client authentication %s is not among the provider's token_endpoint_auth_methods_supported (%s): set client_auth to one of them",
			method, strings.Join(meta.AuthMethods, ", ")))
	}
	return out
}

// fetchMetadata reads the discovery document at where.
func (p *OIDC) fetchMetadata(ctx context.Context, where string) (*inspectMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the provider answered %s", resp.Status)
	}
	var meta inspectMetadata
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		return nil, fmt.Errorf("the answer is not a discovery document: %w", err)
	}
	return &meta, nil
}

// Cause says in plain words why a provider could not be used, for /ready,
// the log and -check -online: the kind of network failure, or the
// innermost message (never a token or a secret: errors from this package
// carry neither).
func Cause(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	var netErr net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrIssuerMismatch):
		msg := err.Error()
		if i := strings.Index(msg, "issuer in configuration"); i >= 0 {
			msg = msg[i:]
		}
		return msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens at the issuer's address)"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("host name %s could not be resolved", dnsErr.Name)
	case errors.As(err, &unknownCA):
		return "TLS certificate signed by an unknown authority"
	case errors.As(err, &badHost):
		return "TLS certificate is not valid for " + badHost.Host
	case errors.As(err, &badCert):
		return "TLS certificate is not valid (expired or not for serving)"
	case errors.Is(err, errRedirectRefused):
		return "the provider answered with a redirect (providers are called without redirects)"
	case errors.Is(err, errResponseTooLarge):
		return "the provider's answer is too large"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time (timeout)"
	}
	return innermost(err)
}

// innermost is the message of the last error err wraps, on one line and
// at most 200 bytes.
func innermost(err error) string {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			if list := u.Unwrap(); len(list) > 0 {
				next = list[len(list)-1]
			}
		case interface{ Unwrap() error }:
			// A single wrap adds context worth keeping (fmt.Errorf("…: %w")).
		}
		if next == nil {
			break
		}
		err = next
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	// "identity provider unavailable: " says what the caller knows already.
	msg = strings.TrimPrefix(msg, ErrUnavailable.Error()+": ")
	return truncateString(msg, 200)
}
