package providers

import (
	"context"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// flavor adapts the generic OpenID Connect flow to one provider's quirks.
// Each provider type's flavor lives in its own file (keycloak.go,
// google.go, entra.go); plain OIDC and GitLab use plainOIDC (GitLab's one
// difference, its groups claim, is a default in typeDefaults).
type flavor interface {
	// authOptions are extra authorization request parameters.
	authOptions() []oauth2.AuthCodeOption
	// identity refines the identity read from a verified ID token (and
	// userinfo), at sign-in and at every refresh that brings a new ID
	// token.
	identity(ctx context.Context, p *OIDC, all map[string]any, tok *oauth2.Token, id *session.Identity) error
}

// issuerFlavor is a flavor whose tokens carry an issuer other than the
// configured issuer URL (Entra's multi-tenant endpoints name
// "https://login.microsoftonline.com/{tenantid}/v2.0" in discovery and the
// tenant's own issuer in tokens). The flavor then checks iss itself.
type issuerFlavor interface {
	flavor
	// discoveryIssuer is the issuer the discovery document names.
	discoveryIssuer() string
	// checkIssuer validates a verified token's iss against its claims.
	checkIssuer(iss string, all map[string]any) error
}

// plainOIDC is the generic provider: nothing to adapt.
type plainOIDC struct{}

func (plainOIDC) authOptions() []oauth2.AuthCodeOption { return nil }
func (plainOIDC) identity(context.Context, *OIDC, map[string]any, *oauth2.Token, *session.Identity) error {
	return nil
}
