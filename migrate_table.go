package main

import "strings"

// migrate_table.go is the one table `portcullis migrate` and
// docs/migrating-from-oauth2-proxy.md read: every option of oauth2-proxy's
// reference ("Configuration Overview", 7.x, plus the provider pages'
// options), what Portcullis key it becomes, and how.
//
// To map an option that has no equivalent once Portcullis has one, change
// its one row: none(...) → mapTo(flag, typ, key, conv, note), where conv
// is nil for a top-level key (the value is copied), convEachUpstream for
// upstreams[].x, convProviderKey for providers[].x.
// TestMigrateDocs then asks for the page to be regenerated, and the
// fixtures' tests for their expectations to move from "no equivalent".

// optType is how oauth2-proxy parses an option.
type optType int

const (
	tString optType = iota
	tBool
	tList
	tDuration
	tInt
)

// coverage classifies an option.
type coverage int

const (
	covMapped      coverage = iota // same meaning, written
	covWarned                      // written or handled, meaning changed or a step needed
	covUnsupported                 // no equivalent (yet)
)

func (c coverage) String() string {
	return [...]string{"mapped", "mapped with a warning", "no equivalent"}[c]
}

// convFunc writes what one option becomes.
type convFunc func(m *migration, o *option, v optValue)

// option is one row of the table.
type option struct {
	flag   string   // oauth2-proxy's flag, without --
	toml   string   // its config-file key; OAUTH2_PROXY_ + upper case is its variable
	typ    optType  //
	cov    coverage //
	key    string   // Portcullis key written, "" for none; providers[] means the migrated provider
	conv   convFunc // nil: copy the value to key (mapped), or report (unsupported)
	dflt   string   // unsupported: a value that needs nothing (oauth2-proxy's default Portcullis matches)
	note   string
	secret bool // the value is never copied: a ${VARIABLE} is written instead
}

// env is the option's environment variable.
func (o *option) env() string { return "OAUTH2_PROXY_" + strings.ToUpper(o.toml) }

// as overrides the config-file name where it is not the derived one.
func (o option) as(toml string) option { o.toml = toml; return o }

// secretOpt marks the value as a secret.
func (o option) secretOpt() option { o.secret = true; return o }

func row(flag string, typ optType, cov coverage, key string, conv convFunc, note string) option {
	toml := strings.ReplaceAll(flag, "-", "_")
	if typ == tList && !strings.HasSuffix(toml, "s") {
		toml += "s"
	}
	return option{flag: flag, toml: toml, typ: typ, cov: cov, key: key, conv: conv, note: note}
}

func mapTo(flag string, typ optType, key string, conv convFunc, note string) option {
	return row(flag, typ, covMapped, key, conv, note)
}

func warn(flag string, typ optType, key string, conv convFunc, note string) option {
	return row(flag, typ, covWarned, key, conv, note)
}

func none(flag string, typ optType, dflt, note string) option {
	o := row(flag, typ, covUnsupported, "", nil, note)
	o.dflt = dflt
	return o
}

// optionTable is every oauth2-proxy option, in the order migrate applies
// them: upstreams and the provider first, since other rows refine them.
var optionTable = []option{
	// Upstreams.
	warn("upstream", tList, "upstreams[]", convUpstreams, "http(s)://host/path/ → path + url (the request path is kept, as oauth2-proxy does); static://202 alone (forward-auth) needs no upstream; file://, other static:// and unix:// have no equivalent; a path without a trailing slash matched only itself in oauth2-proxy, here it is a prefix at a / boundary"),
	mapTo("pass-host-header", tBool, "upstreams[].pass_host_header", convEachUpstream, ""),
	mapTo("pass-access-token", tBool, "upstreams[].pass_access_token", convPassAccessToken, "with --set-xauthrequest also headers.auth_request_access_token"),
	warn("pass-authorization-header", tBool, "upstreams[].pass_authorization_header", convEachUpstream, "Authorization: Bearer <ID token>, as in oauth2-proxy, but only while the ID token has not expired"),
	warn("flush-interval", tDuration, "upstreams[].flush_interval", convEachUpstream, "oauth2-proxy's default was 1s; Portcullis's is 0s (streams are flushed anyway)"),
	mapTo("upstream-timeout", tDuration, "upstreams[].timeout", convEachUpstream, "waits for response headers"),
	warn("proxy-websockets", tBool, "", convWebsockets, "Portcullis always proxies WebSocket upgrades"),
	warn("ssl-upstream-insecure-skip-verify", tBool, "", convRefuseInsecure, "refused: not carried over; give upstreams[].tls.ca_file instead"),

	// Provider.
	warn("provider", tString, "providers[].type", convProvider, "oidc, keycloak-oidc, google, github, gitlab, azure/entra-id; others have no equivalent. oauth2-proxy's default was google"),
	mapTo("provider-display-name", tString, "providers[].name", convProviderKey, ""),
	mapTo("client-id", tString, "providers[].client_id", convProviderKey, ""),
	mapTo("client-secret", tString, "providers[].client_secret", convSecretProvider, "written as a ${VARIABLE}, never copied").secretOpt(),
	mapTo("client-secret-file", tString, "providers[].client_secret_file", convProviderKey, ""),
	mapTo("oidc-issuer-url", tString, "providers[].issuer_url", convProviderKey, "must equal the iss the provider's discovery names"),
	warn("scope", tString, "providers[].scopes", convScope, "space-separated → a list; openid is added when missing"),
	mapTo("acr-values", tString, "providers[].acr_values", convProviderKey, ""),
	mapTo("prompt", tString, "providers[].prompt", convProviderKey, ""),
	none("approval-prompt", tString, "force", "Google's legacy parameter; use prompt"),
	warn("code-challenge-method", tString, "", convPKCE, "Portcullis always sends PKCE with S256"),
	mapTo("oidc-email-claim", tString, "providers[].email_claim", convProviderKey, ""),
	mapTo("oidc-groups-claim", tString, "providers[].groups_claim", convProviderKey, ""),
	mapTo("user-id-claim", tString, "providers[].user_claim", convProviderKey, "deprecated in oauth2-proxy for oidc-email-claim; here the claim X-Forwarded-User carries"),
	none("oidc-audience-claim", tString, "aud", "Portcullis reads aud").as("oidc_audience_claims"),
	mapTo("oidc-extra-audience", tList, "providers[].audiences", convProviderKey, ""),
	warn("oidc-jwks-url", tString, "providers[].jwks_uri", convEndpoint, "written only with --skip-oidc-discovery"),
	warn("login-url", tString, "providers[].authorization_endpoint", convEndpoint, "written only with --skip-oidc-discovery"),
	warn("redeem-url", tString, "providers[].token_endpoint", convEndpoint, "written only with --skip-oidc-discovery"),
	warn("profile-url", tString, "providers[].userinfo_endpoint", convEndpoint, "written only with --skip-oidc-discovery"),
	none("validate-url", tString, "", "Portcullis validates tokens itself"),
	mapTo("skip-oidc-discovery", tBool, "providers[].skip_discovery", convProviderKey, "needs login-url, redeem-url and oidc-jwks-url"),
	mapTo("skip-claims-from-profile-url", tBool, "providers[].userinfo", convSkipProfile, "true → userinfo: never"),
	warn("insecure-oidc-allow-unverified-email", tBool, "providers[].insecure_allow_unverified_email", convProviderKey, "kept, and flagged: it lets anyone who can set an email at the provider claim it"),
	none("insecure-oidc-skip-issuer-verification", tBool, "false", "refused: use type entra with tenant organizations/common for multi-tenant Entra ID"),
	none("insecure-oidc-skip-nonce", tBool, "true", "Portcullis always checks the nonce"),
	warn("provider-ca-file", tList, "providers[].ca_file", convCAFile, "one file: a second one is not carried over").as("provider_ca_files"),
	warn("use-system-trust-store", tBool, "", convSystemTrust, "with ca_file Portcullis trusts only that file"),
	none("jwt-key", tString, "", "login.gov's private_key_jwt; see providers[].client_private_key_file").secretOpt(),
	none("jwt-key-file", tString, "", "login.gov's private_key_jwt; see providers[].client_private_key_file"),
	none("pubjwk-url", tString, "", "login.gov"),
	none("backend-logout-url", tString, "", "Portcullis signs out at the provider's end_session_endpoint (providers[].end_session)"),
	warn("skip-provider-button", tBool, "", convSkipButton, "with one provider Portcullis always goes straight to it"),
	mapTo("azure-tenant", tString, "providers[].tenant", convProviderKey, "type entra"),
	mapTo("entra-id-allowed-tenant", tList, "providers[].tenants", convProviderKey, "type entra"),
	none("entra-id-federated-token-auth", tBool, "false", "workload identity federation"),
	warn("github-org", tString, "providers[].orgs", convGitHubOrg, "with --github-team: teams org/slug"),
	warn("github-team", tString, "providers[].teams", convGitHubOrg, "comma-separated slugs of --github-org"),
	none("github-repo", tString, "", "collaborator checks"),
	none("github-token", tString, "", "collaborator checks").secretOpt(),
	none("github-user", tList, "", "per-user admission; use policy.emails"),
	warn("gitlab-group", tList, "policy.groups", convGroups, "GitLab groups are the groups claim"),
	none("gitlab-project", tList, "", "project membership"),
	none("google-admin-email", tString, "", "Google Workspace directory groups"),
	none("google-group", tList, "", "Google Workspace directory groups"),
	none("google-service-account-json", tString, "", "Google Workspace directory groups"),
	none("google-use-application-default-credentials", tBool, "false", "Google Workspace directory groups"),
	none("google-target-principal", tString, "", "Google Workspace directory groups"),
	none("keycloak-group", tList, "", "use --allowed-group with the groups claim"),
	none("bitbucket-team", tString, "", "no Bitbucket provider"),
	none("bitbucket-repository", tString, "", "no Bitbucket provider"),

	// Who may pass.
	warn("email-domain", tList, "policy.email_domains", convEmailDomains, "\"*\" stays \"*\" (every signed-in user); *.example.com → .example.com"),
	warn("allowed-group", tList, "policy.groups", convGroups, "oauth2-proxy required the group AND the email domain; Portcullis admits any matching entry"),
	mapTo("authenticated-emails-file", tString, "policy.authenticated_emails_file", nil, "one address per line, # comments; re-read when it changes; needs email_verified"),
	none("htpasswd-file", tString, "", "no basic-auth users"),
	none("htpasswd-user-group", tList, "", "no basic-auth users"),
	none("display-htpasswd-form", tBool, "true", "no basic-auth users"),
	warn("skip-auth-route", tList, "policy.skip_auth_routes", convSkipAuthRoute, "METHOD=^regex on the canonical path; an unanchored regex is anchored (narrower); METHOD!= has no equivalent"),
	warn("skip-auth-regex", tList, "policy.skip_auth_routes", convSkipAuthRegex, "deprecated for skip-auth-route; anchored like it").as("skip_auth_regex"),
	mapTo("skip-auth-preflight", tBool, "policy.skip_auth_routes", convSkipPreflight, "OPTIONS=^/"),
	warn("api-route", tList, "policy.api_routes", convAPIRoutes, "401 instead of the sign-in redirect; an unanchored regex is anchored"),
	warn("trusted-ip", tList, "policy.trusted_ips", convTrustedIPs, "bypasses sign-in; 0.0.0.0/0 and ::/0 are refused"),
	none("skip-jwt-bearer-tokens", tBool, "false", "add policy.routes with bearer: true and bearer.audiences (docs/policy.md)"),
	none("extra-jwt-issuers", tList, "", "see bearer.issuers (docs/policy.md)"),

	// Cookie and session.
	warn("cookie-secret", tString, "session.cookie.secrets", convCookieSecret, "a new secret: Portcullis cannot read oauth2-proxy's sessions, users sign in once more").secretOpt(),
	warn("cookie-name", tString, "session.cookie.name", convCookieName, "browsers see __Host-<name> when secure and host-only"),
	mapTo("cookie-domain", tList, "session.cookie.domain", convCookieDomain, "one domain: session.cookie.domain; several: session.cookie.domains, the longest the request host is under"),
	mapTo("cookie-path", tString, "session.cookie.path", nil, "a path other than / needs session.cookie.domain(s): a __Host- cookie is always Path=/"),
	warn("cookie-expire", tDuration, "session.lifetime", convCookieExpire, "at most 168h; 0 (a browser-session cookie) has no equivalent"),
	warn("cookie-refresh", tDuration, "", convCookieRefresh, "Portcullis refreshes session.refresh_before the access token expires"),
	mapTo("cookie-secure", tBool, "session.cookie.secure", nil, ""),
	none("cookie-httponly", tBool, "true", "Portcullis's cookie is always HttpOnly"),
	warn("cookie-samesite", tString, "session.cookie.same_site", convSameSite, "lax | strict; none is written as lax"),
	none("cookie-csrf-per-request", tBool, "false", "Portcullis keys each sign-in's state separately"),
	none("cookie-csrf-expire", tDuration, "15m", "Portcullis's sign-in state lives a fixed time"),
	none("session-cookie-minimal", tBool, "false", "Portcullis keeps what refresh and sign-out need"),
	mapTo("session-store-type", tString, "session.store", convStoreType, ""),
	warn("redis-connection-url", tString, "session.redis.url", convRedisURL, "with a password: addrs/db/tls and password from a variable"),
	mapTo("redis-password", tString, "session.redis.password", convRedisSecret, "written as a ${VARIABLE}").secretOpt(),
	mapTo("redis-use-sentinel", tBool, "", convRedisNoop, "master_name and addrs say Sentinel"),
	mapTo("redis-sentinel-master-name", tString, "session.redis.master_name", convRedisSentinel, ""),
	mapTo("redis-sentinel-connection-urls", tList, "session.redis.addrs", convRedisSentinel, "redis://host:port → host:port"),
	mapTo("redis-sentinel-password", tString, "session.redis.sentinel_password", convRedisSecret, "written as a ${VARIABLE}").secretOpt(),
	mapTo("redis-use-cluster", tBool, "session.redis.cluster", convRedisNoop, "several addrs say Cluster"),
	mapTo("redis-cluster-connection-urls", tList, "session.redis.addrs", convRedisCluster, "redis://host:port → host:port"),
	warn("redis-insecure-skip-tls-verify", tBool, "", convRefuseInsecure, "refused: give session.redis.tls.ca_file"),
	none("redis-connection-idle-timeout", tInt, "0", "go-redis manages idle connections"),

	// Headers.
	warn("set-xauthrequest", tBool, "headers.set_xauthrequest", nil, "/oauth2/auth answers X-Auth-Request-* always; in reverse-proxy mode the copies go to the upstream, never to the browser as oauth2-proxy's response headers did"),
	none("set-authorization-header", tBool, "false", "oauth2-proxy answered the ID token; headers.auth_request_authorization answers the access token, so it is not written"),
	none("set-basic-auth", tBool, "false", "no Basic credentials are made up"),
	none("pass-basic-auth", tBool, "", "no Basic credentials are made up; X-Forwarded-User and -Email are always sent"),
	none("basic-auth-password", tString, "", "no Basic credentials are made up").secretOpt(),
	mapTo("pass-user-headers", tBool, "headers.pass_user_headers", nil, "X-Forwarded-User, -Email, -Groups, -Preferred-Username to the upstream"),
	mapTo("prefer-email-to-user", tBool, "headers.user", convPreferEmail, "true → user: email"),
	none("skip-auth-strip-headers", tBool, "true", "Portcullis always strips the identity headers it sets"),

	// Server.
	warn("http-address", tString, "server.listen", convListen, "http:// is dropped; unix:// and fd: have no equivalent"),
	warn("https-address", tString, "server.listen", convHTTPSAddress, "one listener: with a certificate it is the HTTPS one"),
	mapTo("tls-cert-file", tString, "server.tls.cert_file", nil, ""),
	mapTo("tls-key-file", tString, "server.tls.key_file", nil, ""),
	warn("tls-min-version", tString, "server.tls.min_version", convTLSMin, "TLS1.2 → 1.2"),
	none("tls-cipher-suite", tList, "", "Go's default suites"),
	warn("force-https", tBool, "server.tls.redirect_http", convForceHTTPS, "plain HTTP on :80 answered with a redirect"),
	mapTo("metrics-address", tString, "metrics.listen", nil, ""),
	none("metrics-secure-address", tString, "", "metrics are plain HTTP on a private listener"),
	none("metrics-tls-cert-file", tString, "", "metrics are plain HTTP on a private listener"),
	none("metrics-tls-key-file", tString, "", "metrics are plain HTTP on a private listener"),
	mapTo("proxy-prefix", tString, "server.prefix", nil, ""),
	warn("redirect-url", tString, "server.public_url", convRedirectURL, "public_url is the redirect URL without prefix/callback"),
	none("relative-redirect-url", tBool, "false", "the redirect URI is always absolute"),
	warn("reverse-proxy", tBool, "server.trusted_proxies", convReverseProxy, "the proxies' CIDRs cannot be known: a placeholder is written"),
	warn("real-client-ip-header", tString, "server.real_client_ip_header", convRealClientIP, "X-Forwarded-For, X-Real-IP or Forwarded, believed only from server.trusted_proxies; oauth2-proxy's default was X-Real-IP, Portcullis's is X-Forwarded-For"),
	warn("whitelist-domain", tList, "server.allowed_redirect_hosts", convWhitelist, "*.example.com → .example.com; host:* has no equivalent (server.whitelist_domains refuses it too)"),
	none("allow-query-semicolons", tBool, "false", "Go's net/http rejects them"),
	none("encode-state", tBool, "false", "Portcullis's state is opaque"),
	none("force-json-errors", tBool, "false", "errors are JSON for API clients (Accept, X-Requested-With) and on policy.api_routes"),
	none("signature-key", tString, "", "GAP-Signature; Portcullis signs an assertion JWT instead (assertion, docs/operations.md)").secretOpt(),
	none("ssl-insecure-skip-verify", tBool, "false", "refused: give providers[].ca_file"),

	// Probes.
	none("ping-path", tString, "/ping", "Portcullis answers /ready (and prefix/ready)"),
	none("ping-user-agent", tString, "", "health checks use /ready"),
	none("ready-path", tString, "/ready", "Portcullis answers /ready"),
	none("gcp-healthchecks", tBool, "false", "deprecated"),

	// Pages.
	warn("custom-sign-in-logo", tString, "ui.logo_url", convLogo, "an https: or data: URL; a path has no equivalent"),
	none("custom-templates-dir", tString, "", "ui.templates_dir takes Portcullis's own templates (docs/ui.md), not oauth2-proxy's"),
	none("banner", tString, "", "ui.title"),
	none("footer", tString, "", "no footer"),
	none("show-debug-on-error", tBool, "false", "errors never show details"),

	// Logging.
	none("auth-logging", tBool, "true", "audit events go to log.audit"),
	none("auth-logging-format", tString, "", "JSON audit lines"),
	none("request-logging", tBool, "true", "one line per request"),
	none("request-logging-format", tString, "", "log.format text | json"),
	none("standard-logging", tBool, "true", "log.level"),
	none("standard-logging-format", tString, "", "log.format text | json"),
	none("errors-to-info-log", tBool, "false", "logs go to stderr"),
	none("exclude-logging-path", tString, "", "every request is logged").as("exclude_logging_paths"),
	none("silence-ping-logging", tBool, "false", "every request is logged"),
	none("request-id-header", tString, "X-Request-Id", "not read"),
	none("logging-filename", tString, "", "logs go to stderr; log.audit may name a file"),
	none("logging-max-size", tInt, "100", "no rotation; use the platform's"),
	none("logging-max-age", tInt, "7", "no rotation; use the platform's"),
	none("logging-max-backups", tInt, "0", "no rotation; use the platform's"),
	none("logging-local-time", tBool, "true", "times are UTC"),
	none("logging-compress", tBool, "false", "no rotation; use the platform's"),
}

// optionByName finds a row by flag or config-file name.
func optionByName(name string) *option {
	for i := range optionTable {
		if o := &optionTable[i]; o.flag == name || o.toml == name {
			return o
		}
	}
	return nil
}
