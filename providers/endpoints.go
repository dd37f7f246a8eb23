package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
)

// endpoints.go holds the provider options that change where and how the
// gateway reaches a provider: skip_discovery with explicit endpoints,
// ca_file, and the static authorization request parameters (prompt,
// acr_values) with the login_hint pass-through.

// endpointKeys are the explicit endpoints of skip_discovery, by key.
func (c *Config) endpointKeys() [][2]string {
	return [][2]string{
		{"authorization_endpoint", c.AuthorizationEndpoint},
		{"token_endpoint", c.TokenEndpoint},
		{"jwks_uri", c.JWKSURI},
		{"userinfo_endpoint", c.UserinfoEndpoint},
		{"end_session_endpoint", c.EndSessionEndpoint},
		{"revocation_endpoint", c.RevocationEndpoint},
	}
}

// checkEndpoints checks skip_discovery and its endpoints, and ca_file.
// An endpoint key without skip_discovery is refused rather than ignored:
// the operator would believe the gateway uses it.
func (c *Config) checkEndpoints(bad func(format string, args ...any)) {
	c.checkCA(bad)
	var set []string
	for _, kv := range c.endpointKeys() {
		if kv[1] != "" {
			set = append(set, kv[0])
		}
	}
	if !c.SkipDiscovery {
		if len(set) > 0 {
			bad("%s: set only with skip_discovery: true (otherwise discovery names the endpoints)", strings.Join(set, ", "))
		}
		return
	}
	if c.Type == "github" || c.Type == "entra" {
		bad("skip_discovery is not supported for type %s", c.Type)
		return
	}
	for i, kv := range c.endpointKeys() {
		switch {
		case kv[1] == "" && i < 3:
			bad("%s is required with skip_discovery", kv[0])
		case kv[1] != "":
			if problem := plainURLProblem(kv[1]); problem != "" {
				bad("%s %s", kv[0], problem)
			}
		}
	}
}

// checkCA parses ca_file's contents (main has read them into CAPEM).
func (c *Config) checkCA(bad func(format string, args ...any)) {
	if c.CAFile == "" {
		return
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := c.CAPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			bad("ca_file %s: %v", c.CAFile, err)
			return
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		bad("ca_file %s: no PEM certificate in it", c.CAFile)
		return
	}
	c.caPool = pool
}

// caTransport is newHTTPClient's default transport trusting only pool.
func caTransport(pool *x509.CertPool, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
}

// configuredIssuer is what discovery would have read, for skip_discovery:
// the metadata comes from the configuration, and go-oidc's Provider (its
// endpoints, and userinfo) is built from it without any request.
// discoverIssuer then builds keys and verifier as for discovered metadata.
func (p *OIDC) configuredIssuer(ctx context.Context) *issuerKeys {
	c := p.cfg
	ik := &issuerKeys{meta: metadata{
		Issuer:     c.IssuerURL,
		JWKS:       c.JWKSURI,
		EndSession: c.EndSessionEndpoint,
		Revocation: c.RevocationEndpoint,
		// Nothing is advertised: the operator's signing_algs, else RS256
		// (p.algs, OpenID Connect Core §15.1).
		Algs: slices.Clone(c.SigningAlgs),
	}}
	ik.op = (&oidc.ProviderConfig{
		IssuerURL:   c.IssuerURL,
		AuthURL:     c.AuthorizationEndpoint,
		TokenURL:    c.TokenEndpoint,
		UserInfoURL: c.UserinfoEndpoint,
		JWKSURL:     c.JWKSURI,
		Algorithms:  p.accepted(),
	}).NewProvider(oidc.ClientContext(ctx, p.client))
	return ik
}

// validPrompts are the prompt values of OpenID Connect Core §3.1.2.1
// (select_account included; create, from Initiating User Registration,
// is left out).
var validPrompts = []string{"none", "login", "consent", "select_account"}

// maxLoginHint bounds login_hint: an email address or username fits.
const maxLoginHint = 256

// checkRequestOptions checks prompt, acr_values and audiences.
func (c *Config) checkRequestOptions(bad func(format string, args ...any)) {
	words := strings.Fields(c.Prompt)
	for _, w := range words {
		if !slices.Contains(validPrompts, w) {
			bad("prompt %q: want none, login, consent or select_account, space-separated", w)
		}
	}
	// Core §3.1.2.1: none must not be combined with any other value.
	if slices.Contains(words, "none") && len(words) > 1 {
		bad("prompt %q: none cannot be combined with other values", c.Prompt)
	}
	c.Prompt = strings.Join(words, " ")
	if c.ACRValues != "" && !printableASCII(c.ACRValues, 1024) {
		bad("acr_values %q: want printable ASCII, space-separated", c.ACRValues)
	}
	c.ACRValues = strings.Join(strings.Fields(c.ACRValues), " ")
	for _, a := range c.Audiences {
		if a == "" || !printableASCII(a, 1024) || strings.Contains(a, " ") {
			bad("audiences: %q is not an audience (one printable word)", a)
		}
	}
	if c.Type == "github" && (c.Prompt != "" || c.ACRValues != "" || len(c.Audiences) > 0) {
		bad("prompt, acr_values and audiences do not apply to type github")
	}
}

// printableASCII: s is 1..max bytes of printable ASCII (space included).
func printableASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// LoginHint reports whether hint can be passed on as login_hint (OpenID
// Connect Core §3.1.2.1): 1 to maxLoginHint bytes of printable UTF-8, no
// space at either end. The caller drops any other (and logs it).
func LoginHint(hint string) bool {
	if hint == "" || len(hint) > maxLoginHint || !utf8.ValidString(hint) || strings.TrimSpace(hint) != hint {
		return false
	}
	for _, r := range hint {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
