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
//     post-logout redirect URIs, which are matched exactly.
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
//   - The provider keeps no browser session: every authorization request
//     shows the login form, and prompt=none answers login_required.
//   - end_session redirects to post_logout_redirect_uri (with state) only
//     when it is registered for the client named by id_token_hint or
//     client_id, and refuses an unregistered one with a 400; without a
//     client it shows a "signed out" page. Given an id_token_hint, it also
//     revokes the refresh tokens that user holds for that client.
//   - ID tokens are RS256 JWTs (aud, azp and client_id are the client; amr
//     is ["pwd"]). Access tokens are opaque: zitadel encrypts a token ID.
//   - The authorization response carries code and state only: no RFC 9207
//     iss parameter.
//
// zitadel's op package logs protocol errors through slog.Default; Config.Logger
// receives this package's own lines only. Neither logs passwords or tokens.
package demo
