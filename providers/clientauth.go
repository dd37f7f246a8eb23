package providers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// clientauth.go is how the gateway authenticates itself to the provider's
// token endpoint (OpenID Connect Core §9; RFC 6749 §2.3): with the shared
// secret in the Authorization header or in the form, with a signed JWT
// (private_key_jwt, RFC 7523), or not at all (a public client, RFC 6749
// §2.1, protected by PKCE alone). authenticate applies the configured
// method to any POST to the provider, so revocation (RFC 7009 §2.1: the
// same client authentication as at the token endpoint) uses it too.

// The client_auth values.
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authJWT   = "private_key_jwt"
	authNone  = "none"
)

// assertionType is client_assertion_type for a JWT (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: one request's
// worth (RFC 7523 §3 item 4 wants an exp; short limits replay).
const assertionLifetime = 60 * time.Second

// checkClientAuth checks client_auth and the keys that go with it, and
// parses the private key.
func (c *Config) checkClientAuth(bad func(format string, args ...any)) {
	keyKeys := c.ClientPrivateKey != "" || c.ClientKeyID != "" || c.ClientAssertionAlg != ""
	switch c.ClientAuth {
	case "", authBasic, authPost:
		if keyKeys {
			bad("client_private_key_file, client_key_id and client_assertion_alg apply only to client_auth private_key_jwt")
		}
	case authNone:
		if c.ClientSecret != "" {
			bad("client_secret must not be set with client_auth none: a public client has no secret")
		}
		if keyKeys {
			bad("client_private_key_file, client_key_id and client_assertion_alg apply only to client_auth private_key_jwt")
		}
	case authJWT:
		if c.ClientSecret != "" {
			bad("client_secret is not used with client_auth private_key_jwt: remove it")
		}
		if c.ClientKeyID != "" && (!printableASCII(c.ClientKeyID, 256) || strings.Contains(c.ClientKeyID, " ")) {
			bad("client_key_id %q: want one printable word", c.ClientKeyID)
		}
		if c.ClientPrivateKey == "" {
			bad("client_private_key_file is required with client_auth private_key_jwt")
			return
		}
		key, alg, err := parseClientKey(c.ClientPrivateKey, c.ClientAssertionAlg)
		if err != nil {
			bad("client_private_key_file: %v", err) // never the key itself
			return
		}
		c.clientKey, c.ClientAssertionAlg = key, alg
	default:
		bad("client_auth %q: want client_secret_basic, client_secret_post, private_key_jwt or none", c.ClientAuth)
	}
	if c.Type == "github" && c.ClientAuth != "" {
		bad("client_auth does not apply to type github (GitHub takes the client secret only)")
	}
}

// parseClientKey reads a PEM RSA or EC private key (PKCS #8, PKCS #1 or
// SEC 1) and the assertion algorithm for it: alg when given and fitting
// the key, else RS256 for RSA and the curve's ES algorithm for EC.
func parseClientKey(pemText, alg string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, "", errors.New("no PEM block in it")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY, unencrypted)", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parsing the key: %v", err)
	}
	var allowed []string
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key of %d bits: want at least 2048", k.N.BitLen())
		}
		allowed = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PrivateKey:
		// RFC 7518 §3.4: each ES algorithm has its curve.
		switch k.Curve {
		case elliptic.P256():
			allowed = []string{"ES256"}
		case elliptic.P384():
			allowed = []string{"ES384"}
		case elliptic.P521():
			allowed = []string{"ES512"}
		default:
			return nil, "", errors.New("EC key on an unsupported curve (want P-256, P-384 or P-521)")
		}
	default:
		return nil, "", fmt.Errorf("%T: want an RSA or EC key", key)
	}
	if alg == "" {
		alg = allowed[0]
	} else if !slices.Contains(allowed, alg) {
		return nil, "", fmt.Errorf("client_assertion_alg %s does not fit this key (want one of %s)", alg, strings.Join(allowed, ", "))
	}
	return key.(crypto.Signer), alg, nil
}

// clientAuthMethod is the method in force: client_auth, else
// client_secret_basic unless the provider lists only client_secret_post
// (Discovery §3 token_endpoint_auth_methods_supported). One method, never
// x/oauth2's auto-detection, which retries a failed exchange with the
// other one.
func (p *OIDC) clientAuthMethod(advertised []string) string {
	if p.cfg.ClientAuth != "" {
		return p.cfg.ClientAuth
	}
	if len(advertised) > 0 && !slices.Contains(advertised, authBasic) && slices.Contains(advertised, authPost) {
		return authPost
	}
	return authBasic
}

// authenticate applies the configured client authentication to a form
// POSTed to endpoint, one of the provider's (token, revocation): it sets
// req's Authorization header or form's client parameters. The secret and
// the key are never logged.
func (p *OIDC) authenticate(form url.Values, req *http.Request, endpoint string) error {
	d, err := p.discovered(req.Context())
	if err != nil {
		return err
	}
	id := p.cfg.ClientID
	form.Del("client_secret")
	form.Del("client_assertion")
	form.Del("client_assertion_type")
	switch d.clientAuth {
	case authBasic:
		// RFC 6749 §2.3.1: both form-urlencoded, then Basic; no client
		// parameters in the body (one method per request).
		form.Del("client_id")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(p.cfg.ClientSecret))
	case authPost:
		form.Set("client_id", id)
		form.Set("client_secret", p.cfg.ClientSecret)
	case authNone:
		form.Set("client_id", id) // RFC 6749 §4.1.3
	case authJWT:
		assertion, err := p.clientAssertion(endpoint)
		if err != nil {
			return err
		}
		form.Set("client_id", id) // optional, RFC 7523 §3; some providers want it
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", assertion)
	default:
		return fmt.Errorf("client authentication %q", d.clientAuth)
	}
	return nil
}

// clientAssertion is a fresh private_key_jwt assertion (RFC 7523 §3;
// OpenID Connect Core §9): iss and sub the client_id, aud the endpoint
// (Core §9: the token endpoint's URL) and the issuer, which some providers
// require instead (zitadel; RFC 7523 §3 item 3 lets aud name the
// authorization server either way), a random jti, iat, and exp
// assertionLifetime later.
func (p *OIDC) clientAssertion(endpoint string) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if p.cfg.ClientKeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), p.cfg.ClientKeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(p.cfg.ClientAssertionAlg), Key: p.cfg.clientKey}, opts)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	aud := jwt.Audience{endpoint}
	if p.cfg.IssuerURL != endpoint {
		aud = append(aud, p.cfg.IssuerURL)
	}
	now := p.opts.Now()
	claims := jwt.Claims{
		Issuer:   p.cfg.ClientID,
		Subject:  p.cfg.ClientID,
		Audience: aud,
		ID:       randomToken(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	return raw, nil
}

// maxTokenForm bounds the form authTransport re-encodes: x/oauth2's token
// requests are a few hundred bytes.
const maxTokenForm = 64 << 10

// authTransport applies authenticate to every request x/oauth2 makes to
// the token endpoint. x/oauth2 could add the parameters to an Exchange
// (oauth2.SetAuthURLParam) but has no way to add them to the refresh a
// TokenSource makes, and a private_key_jwt assertion must be fresh for
// each request (its jti and exp). So the code exchange and the refresh
// both come through here, one place for every method: x/oauth2 is told
// AuthStyleInParams without a secret, so it sends client_id alone, and
// this transport sets what the method needs.
type authTransport struct {
	p        *OIDC
	base     http.RoundTripper
	endpoint string
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// Only the token endpoint hears the credentials: any other request
	// made with this client (none today) goes out as it is.
	if r.Method != http.MethodPost || r.Body == nil || !sameEndpoint(r.URL, t.endpoint) {
		return t.base.RoundTrip(r)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenForm+1))
	r.Body.Close()
	if err != nil || len(body) > maxTokenForm {
		return nil, errors.New("token request body unreadable or too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("token request body: %w", err)
	}
	out := r.Clone(r.Context())
	if err := t.p.authenticate(form, out, t.endpoint); err != nil {
		return nil, err
	}
	enc := form.Encode()
	out.Body = io.NopCloser(strings.NewReader(enc))
	out.ContentLength = int64(len(enc))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	return t.base.RoundTrip(out)
}

// sameEndpoint reports whether u is the endpoint URL, query aside.
func sameEndpoint(u *url.URL, endpoint string) bool {
	e, err := url.Parse(endpoint)
	return err == nil && u.Scheme == e.Scheme && strings.EqualFold(u.Host, e.Host) && u.EscapedPath() == e.EscapedPath()
}

// tokenCtx is clientCtx for calls to the token endpoint: p's client with
// authTransport in front.
func (p *OIDC) tokenCtx(ctx context.Context, d *discovery) context.Context {
	c := *p.client
	c.Transport = authTransport{p: p, base: p.client.Transport, endpoint: d.endpoint.TokenURL}
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, &c), &c)
}
