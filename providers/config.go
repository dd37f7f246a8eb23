package providers

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is one entry of the `providers` list.
type Config struct {
	// ID names the provider in routes, sessions and logs. Required, unique.
	ID string `yaml:"id"`
	// Type is the provider kind: oidc (generic: Okta, Auth0, Dex,
	// Authentik, Zitadel, …), keycloak, google, gitlab, entra or github.
	// See docs/providers.md for what each adds.
	Type string `yaml:"type"`
	// Name is shown to users on sign-in pages; defaults to ID.
	Name string `yaml:"name"`
	// IssuerURL is the OpenID issuer; discovery reads
	// IssuerURL/.well-known/openid-configuration and the issuer it names
	// must equal IssuerURL exactly (OpenID Connect Discovery §4.3).
	IssuerURL string `yaml:"issuer_url"`
	// ClientID and ClientSecret are the credentials registered at the provider.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// Scopes requested; default [openid, email, profile]. openid is added
	// when missing. Add offline_access for refresh tokens where the provider
	// wants it.
	Scopes []string `yaml:"scopes"`
	// SigningAlgs are the ID-token algorithms accepted (RFC 8725 §3.1);
	// default: the asymmetric algorithms the provider advertises. HS* and
	// none are never accepted.
	SigningAlgs []string `yaml:"signing_algs"`
	// GroupsClaim names the claim holding groups, dotted for nested claims
	// (realm_access.roles). Default "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// EmailClaim names the claim holding the email address; default
	// "email". email_verified still says whether the provider vouched for
	// it (OpenID Connect Core §5.1).
	EmailClaim string `yaml:"email_claim"`
	// UsernameClaim names the claim read as the preferred username;
	// default "preferred_username" (Dex and GitHub-backed providers say
	// "name" or "nickname").
	UsernameClaim string `yaml:"username_claim"`
	// UserClaim, when set, names the claim whose value is X-Forwarded-User
	// for this provider's users, whatever headers.user says: Dex's subject
	// is an opaque base64 string, so `user_claim: email` there. A sign-in
	// whose ID token and userinfo lack it is refused. The session is still
	// keyed by iss and sub.
	UserClaim string `yaml:"user_claim"`
	// Userinfo says when to ask the userinfo endpoint (OpenID Connect Core
	// §5.3): "auto" (default) when the ID token lacks email,
	// email_verified, name, the username, the user claim, groups or a
	// claim the policy names, filling only what is missing; "always" at
	// every sign-in and refresh, userinfo's values winning; "never" to rely
	// on the ID token alone. docs/providers.md has the precedence.
	Userinfo string `yaml:"userinfo"`
	// EndSession says whether sign-out continues to the provider's
	// end_session_endpoint (RP-Initiated Logout): "auto" (default: when
	// discovery names one) or "never".
	EndSession string `yaml:"end_session"`
	// RevokeTokens says whether sign-out revokes the session's refresh
	// token (the access token when there is none) at the provider's
	// revocation_endpoint (RFC 7009): "auto" (default: when discovery
	// names one) or "never".
	RevokeTokens string `yaml:"revoke_tokens"`
	// FrontchannelLogout accepts OpenID Connect Front-Channel Logout 1.0
	// requests (GET /oauth2/frontchannel_logout?iss=…&sid=…) naming this
	// provider's issuer. Default true; such a request ends only the
	// sessions with that iss and sid.
	FrontchannelLogout *bool `yaml:"frontchannel_logout"`
	// LogoutTokenWithoutExp accepts back-channel logout tokens that carry
	// no exp (Ory Hydra sends them so), provided their iat is at most
	// logoutTokenWindow old: Back-Channel Logout 1.0 §2.4 requires exp,
	// so this is off by default and warned about at start. A token that
	// has an exp is checked as always.
	LogoutTokenWithoutExp bool `yaml:"logout_token_without_exp"`
	// Timeout bounds every call to the provider. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// HostedDomains (google) admits only Google Workspace accounts whose ID
	// token's hd claim is one of these domains; checked on the token, not
	// only requested.
	HostedDomains []string `yaml:"hosted_domains"`
	// Tenant (entra) is the Entra ID tenant (directory) ID, or
	// "organizations" / "common" for multi-tenant apps; Tenants then lists
	// the tenant IDs admitted (empty: any).
	Tenant  string   `yaml:"tenant"`
	Tenants []string `yaml:"tenants"`
	// GraphURL (entra) is Microsoft Graph's base URL, for groups overage.
	GraphURL string `yaml:"graph_url"`
	// BaseURL (github) is GitHub Enterprise Server's URL; empty for github.com.
	BaseURL string `yaml:"base_url"`
	// Orgs and Teams (github) admit only members of these organisations or
	// teams ("org/team-slug"). Both empty: any GitHub user.
	Orgs  []string `yaml:"orgs"`
	Teams []string `yaml:"teams"`
	// InsecureAllowUnverifiedEmail accepts identities whose email_verified
	// claim is not true. It MUST stay off unless the provider never lets
	// users set an address they do not own: otherwise anyone can claim any
	// email, and email rules let them in.
	InsecureAllowUnverifiedEmail bool `yaml:"insecure_allow_unverified_email"`

	// SkipDiscovery takes the endpoints from the keys below instead of
	// IssuerURL/.well-known/openid-configuration, for providers that
	// publish no discovery document. authorization_endpoint,
	// token_endpoint and jwks_uri are then required; issuer_url stays
	// required, as the iss of the ID tokens. The endpoint keys are
	// refused without skip_discovery (see endpoints.go).
	SkipDiscovery         bool   `yaml:"skip_discovery"`
	AuthorizationEndpoint string `yaml:"authorization_endpoint"`
	TokenEndpoint         string `yaml:"token_endpoint"`
	JWKSURI               string `yaml:"jwks_uri"`
	UserinfoEndpoint      string `yaml:"userinfo_endpoint"`
	EndSessionEndpoint    string `yaml:"end_session_endpoint"`
	RevocationEndpoint    string `yaml:"revocation_endpoint"`
	// CAFile is a PEM file of CA certificates: the provider's TLS
	// connections trust exactly these instead of the system roots. main
	// reads it into CAPEM (packages get contents, never paths).
	CAFile string `yaml:"ca_file"`
	CAPEM  []byte `yaml:"-"`
	// Audiences are ID-token audiences accepted besides client_id
	// (checkAudience in idtoken.go).
	Audiences []string `yaml:"audiences"`
	// Prompt and ACRValues are sent with every authorization request
	// (OpenID Connect Core §3.1.2.1). prompt: none, login, consent,
	// select_account, space-separated.
	Prompt    string `yaml:"prompt"`
	ACRValues string `yaml:"acr_values"`
	// ClientAuth is how the gateway authenticates at the token endpoint:
	// client_secret_basic, client_secret_post, private_key_jwt or none
	// (a public client: PKCE only). Default: basic, unless discovery lists
	// only client_secret_post (clientauth.go).
	ClientAuth string `yaml:"client_auth"`
	// ClientPrivateKey (private_key_jwt) is a PEM RSA or EC private key,
	// usually given as client_private_key_file; ClientKeyID is the kid of
	// its assertions, ClientAssertionAlg their algorithm (default RS256 or
	// ES256 by key type).
	ClientPrivateKey   string `yaml:"client_private_key" secret:"true"`
	ClientKeyID        string `yaml:"client_key_id"`
	ClientAssertionAlg string `yaml:"client_assertion_alg"`

	// Filled by validate from the keys above.
	caPool    *x509.CertPool // ca_file's certificates (checkCA)
	clientKey crypto.Signer  // client_private_key (checkClientAuth)
}

// DefaultScopes are requested when a provider lists none.
var DefaultScopes = []string{"openid", "email", "profile"}

// typeDefaults fills what each provider type implies.
func (c *Config) typeDefaults() {
	switch c.Type {
	case "google":
		if c.IssuerURL == "" {
			c.IssuerURL = "https://accounts.google.com"
		}
	case "gitlab":
		if c.IssuerURL == "" {
			c.IssuerURL = "https://gitlab.com"
		}
		if c.GroupsClaim == "" {
			// GitLab's ID token lists direct memberships there
			// (group paths, e.g. "my-org/sub-group").
			c.GroupsClaim = "groups_direct"
		}
	case "github":
		// No OpenID issuer: the identity's issuer is the GitHub instance.
		c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
		if c.BaseURL == githubDotCom {
			c.BaseURL = ""
		}
		if c.IssuerURL == "" {
			c.IssuerURL = githubDotCom
			if c.BaseURL != "" {
				c.IssuerURL = c.BaseURL
			}
		}
		if len(c.Scopes) == 0 {
			// No openid: GitHub's OAuth apps are plain OAuth2. read:org
			// lets /user/orgs and /user/teams show private memberships.
			c.Scopes = []string{"read:user", "user:email"}
			if len(c.Orgs) > 0 || len(c.Teams) > 0 {
				c.Scopes = append(c.Scopes, "read:org")
			}
		}
	case "entra":
		// Tenant IDs are GUIDs; Entra writes them in lower case in
		// issuers and tid.
		c.Tenant = strings.ToLower(c.Tenant)
		if c.IssuerURL == "" && c.Tenant != "" {
			c.IssuerURL = "https://login.microsoftonline.com/" + c.Tenant + "/v2.0"
		}
		if c.GraphURL == "" {
			c.GraphURL = "https://graph.microsoft.com"
		}
		if c.Userinfo == "" {
			// Entra's userinfo endpoint (on Graph) has nothing the ID
			// token lacks, never groups, and needs a Graph access token.
			c.Userinfo = "never"
		}
	}
}

// asymmetricAlgs are the JWS algorithms we accept at all (RFC 8725 §3.1:
// the caller fixes the set; MAC algorithms would make the client secret a
// signing key, and none is no signature).
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// validate fills in c's defaults and reports every problem at once, each
// naming the provider and the key.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("providers: %s: "+format, append([]any{c.ID}, args...)...))
	}
	c.checkID(bad)
	if c.Type == "" {
		c.Type = "oidc"
	}
	// Before typeDefaults fills them in: what is set here, the operator set.
	c.checkTypeKeys(bad)
	c.typeDefaults()
	c.defaults()
	c.checkClient(bad)
	c.checkModes(bad)
	c.checkEndpoints(bad)
	c.checkClientAuth(bad)
	c.checkRequestOptions(bad)
	switch c.Type {
	case "entra":
		c.validateEntra(bad)
	case "github":
		c.validateGitHub(bad)
	}
	return errors.Join(errs...)
}

func (c *Config) checkID(bad func(format string, args ...any)) {
	if c.ID == "" {
		c.ID = "?"
		bad("id is required")
	} else if strings.Trim(c.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		bad("id %q: use letters, digits, - and _", c.ID)
	}
}

// checkTypeKeys refuses keys of another type. They would be ignored
// without a word: orgs on an oidc provider would read like a restriction
// and admit everyone.
func (c *Config) checkTypeKeys(bad func(format string, args ...any)) {
	if c.Type != "github" && (c.BaseURL != "" || len(c.Orgs) > 0 || len(c.Teams) > 0) {
		bad("base_url, orgs and teams apply only to type github")
	}
	if c.Type != "entra" && (c.Tenant != "" || len(c.Tenants) > 0 || c.GraphURL != "") {
		bad("tenant, tenants and graph_url apply only to type entra")
	}
	if c.Type == "github" && (c.EmailClaim != "" || c.UsernameClaim != "" || c.UserClaim != "" || c.Userinfo != "") {
		// GitHub's identity is its REST API's user, not claims.
		bad("email_claim, username_claim, user_claim and userinfo do not apply to type github (the identity is GitHub's /user: login, verified primary email)")
	}
	if c.Type == "github" && c.IssuerURL != "" {
		bad("issuer_url is not used by type github (GitHub has no OpenID discovery); set base_url for GitHub Enterprise Server")
	}
}

// defaults fills what every type shares, after typeDefaults.
func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = c.ID
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") && c.Type != "github" { // GitHub is plain OAuth2
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.EndSession == "" {
		c.EndSession = "auto"
	}
	if c.Userinfo == "" {
		c.Userinfo = "auto"
	}
	if c.RevokeTokens == "" {
		c.RevokeTokens = "auto"
	}
	if c.FrontchannelLogout == nil {
		// Only providers with an OpenID issuer send iss and sid; GitHub
		// has neither.
		on := c.Type != "github"
		c.FrontchannelLogout = &on
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// checkClient checks what the gateway needs to be a client of the
// provider: its issuer, the credentials, the ID-token algorithms.
func (c *Config) checkClient(bad func(format string, args ...any)) {
	if c.Type != "github" { // github's issuer is base_url, checked in validateGitHub
		if problem := plainURLProblem(c.IssuerURL); problem != "" {
			bad("issuer_url %s", problem)
		}
	}
	if c.ClientID == "" {
		bad("client_id is required")
	}
	if c.ClientSecret == "" && c.ClientAuth != "none" && c.ClientAuth != "private_key_jwt" {
		bad("client_secret is required (or client_secret_file; or client_auth none or private_key_jwt)")
	}
	for _, a := range c.SigningAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			bad("signing_algs: %q is not accepted (want one of %s)", a, strings.Join(asymmetricAlgs, ", "))
		}
	}
}

// checkModes checks the keys with a fixed set of values.
func (c *Config) checkModes(bad func(format string, args ...any)) {
	if c.EndSession != "auto" && c.EndSession != "never" {
		bad("end_session %q: want auto or never", c.EndSession)
	}
	if c.Userinfo != "auto" && c.Userinfo != "always" && c.Userinfo != "never" {
		bad("userinfo %q: want auto, always or never", c.Userinfo)
	}
	if c.RevokeTokens != "auto" && c.RevokeTokens != "never" {
		bad("revoke_tokens %q: want auto or never", c.RevokeTokens)
	}
	if c.Type == "github" && *c.FrontchannelLogout {
		bad("frontchannel_logout: type github has no OpenID issuer and cannot send front-channel logout requests")
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		bad("timeout %v must be between 0 and 1m", c.Timeout)
	}
}

// plainURLProblem says what is wrong with raw as the base of a provider's
// URLs, or "" when it is a plain https URL (http only for loopback).
func plainURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "is required"
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#"):
		return fmt.Sprintf("%q is not a plain http(s) URL", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Sprintf("%q must use https (http only for loopback)", raw)
	}
	return ""
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
