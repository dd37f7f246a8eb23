// Package demo owns Portcullis's built-in identity provider and the demo
// upstream app: what `portcullis demo` runs on loopback, what the end-to-end
// tests sign in against, and what the load harness drives.
//
// The provider is a real OpenID Provider. The protocol (discovery,
// authorize, token, userinfo, keys, revoke, end_session, introspection) is
// the op package of github.com/zitadel/oidc/v3; this package only supplies
// an in-memory op.Storage, a username/password login page and the wiring.
// Nothing here is meant to hold real users: state lives in memory and is lost
// when the process exits.
//
// Behaviour the gateway and its tests can rely on:
//
//   - Clients are confidential (client_secret_basic or client_secret_post),
//     use the authorization-code flow, and must register redirect URIs and
//     post-logout redirect URIs, which are matched exactly. A client with
//     ClientCredentials may also, or instead (no redirect URIs), use the
//     client_credentials grant; see below.
//   - A Public client has no secret (token_endpoint_auth_method none): the
//     token endpoint takes its client_id alone, for the code (PKCE then
//     protects it) and for refresh. A client with a PublicKey has no secret
//     either and authenticates with private_key_jwt (RFC 7523): zitadel
//     verifies the assertion's signature with that key (its kid must be
//     KeyID when KeyID is set), that iss and sub are the client ID, that
//     aud contains the issuer, and its exp and iat (at most an hour old).
//     Discovery lists private_key_jwt among the methods.
//   - Stats counts discovery, authorize, token (by grant and by client
//     authentication), userinfo and end_session requests, and keeps the
//     query of the latest authorization request (prompt, login_hint,
//     acr_values). The ID token's acr is the first acr_values asked for:
//     the demo meets any level.
//   - PKCE is optional, but only S256 is accepted; a code issued with a
//     challenge needs the matching code_verifier.
//   - A refresh token is issued only when the authorization request asked
//     for the offline_access scope (zitadel's rule). Refresh tokens rotate:
//     every refresh returns a new one and the old one stops working.
//     Refreshed ID tokens carry no nonce and re-read the user's current
//     groups and claims.
//   - Authorization codes are single-use and live one minute; authorization
//     requests live ten minutes.
//   - ID tokens carry the userinfo claims themselves (email and
//     email_verified for scope email; name, given_name, family_name and
//     preferred_username for scope profile), plus groups and the user's
//     ExtraClaims whatever the scopes. Userinfo answers the same claims.
//     email_verified is left out, not false, for an unverified address.
//   - A client with MinimalIDToken gets ID tokens with the protocol claims
//     only (iss, sub, aud, azp, client_id, exp, iat, auth_time, amr, nonce,
//     at_hash, c_hash): no email, profile, groups or ExtraClaims, at the code
//     exchange and at refresh alike. Userinfo still answers them all, so a
//     relying party must call it to learn the user's groups.
//   - The provider keeps no browser session: every authorization request
//     shows the login form, and prompt=none answers login_required.
//   - end_session redirects to post_logout_redirect_uri (with state) only
//     when it is registered for the client named by id_token_hint or
//     client_id, and refuses an unregistered one with a 400; without a
//     client it shows a "signed out" page. Given an id_token_hint, it also
//     revokes the refresh tokens that user holds for that client.
//   - ID tokens are RS256 JWTs (aud, azp and client_id are the client; amr
//     is ["pwd"]). Access tokens are opaque by default: zitadel encrypts a
//     token ID, and only userinfo and introspection can read them.
//   - With Client.JWTAccessTokens, access tokens are RS256 JWTs (RFC 9068
//     style) signed with the same key as ID tokens, verifiable with the JWKS
//     at /keys. zitadel sets iss, sub, aud, client_id, jti, exp, iat and
//     nbf, and takes every other claim from the storage
//     (GetPrivateClaimsFromRequest), which adds the space-separated scope
//     of RFC 9068 (zitadel leaves it out) and, for a user, exactly the
//     claims userinfo answers for the grant's scopes: email and
//     email_verified with scope email, the profile claims with scope
//     profile, groups and ExtraClaims always. They carry no nonce, azp,
//     at_hash, auth_time, amr or acr, and are re-read at every refresh like
//     ID tokens. Userinfo, introspection and revocation accept them (by
//     jti); revoking one only stops those endpoints, not a resource server
//     that verifies signatures, until it expires.
//   - zitadel types every JWT it signs "JWT", not RFC 9068's "at+jwt", so
//     the header does not tell an access token from an ID token. Tell them
//     apart by aud: only access tokens carry Client.Audience; ID tokens
//     name the client alone. A resource server should require its own
//     audience, and may also require jti, which ID tokens lack.
//   - Client.Audience adds audiences to the aud of the client's access
//     tokens, after the client ID: aud is ["gateway", "https://api.example"]
//     for a JWT, and introspection reports the same list. (See jwtAudience
//     in tokens.go for how that is kept out of the ID token.)
//   - The client_credentials grant (RFC 6749, section 4.4) is open to
//     clients with ClientCredentials, authenticating with
//     client_secret_basic or client_secret_post. The access token's sub and
//     client_id are the client ID; it carries groups from ServiceGroups,
//     and email with email_verified true from ServiceEmail, when set, and
//     the requested scopes the provider knows (openid, profile, email,
//     offline_access, groups; others are dropped). No ID token and no
//     refresh token. A wrong secret and an unknown client both get 401
//     invalid_client, with identical bodies; an authenticated client
//     without ClientCredentials gets 400 unauthorized_client. Userinfo
//     refuses these tokens, since they name no user; introspection by the
//     client itself answers sub, client_id, aud, scope, groups and email.
//   - Token lifetimes: access tokens expire AccessTokenLifetime after
//     Config.Now; their iat and nbf come from the wall clock.
//   - The authorization response carries code and state only: no RFC 9207
//     iss parameter.
//
// Options that make the provider behave like others found in the wild:
//
//   - Config.NoEndSession (Dex): discovery has no end_session_endpoint and
//     /end_session answers 404.
//   - Config.RefreshReuseError (Dex: "invalid_request"): a refresh token
//     that was rotated away answers that error code instead of
//     invalid_grant. Provider.RedeemRefreshTokens makes the tokens a user
//     holds such used tokens, as if another holder had redeemed them.
//   - Config.RequireIDTokenHint (Ory Hydra, Okta): end_session refuses a
//     request without id_token_hint with a 400.
//   - Client.MinimalIDToken (Zitadel): profile, email and groups only at
//     userinfo. User.ID takes any subject, e.g. Dex's opaque base64 one;
//     User.ExtraClaims nested claims such as Keycloak's realm_access.
//   - An issuer with a path (Keycloak's /realms/<realm>); Start accepts a
//     path alone as Config.Issuer and puts the bound address in front.
//   - Config.IssuerTrailingSlash (authentik, often Ory Hydra): the issuer
//     ends in "/" in discovery and tokens; endpoints stay without it.
//
// zitadel's op package logs protocol errors through slog.Default; Config.Logger
// receives this package's own lines only. Neither logs passwords or tokens.
package demo
