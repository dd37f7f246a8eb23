package providers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// flavor adapts the generic OpenID Connect flow to one provider's quirks.
// Each provider type's flavor lives in its own file (keycloak.go,
// google.go, entra.go); plain OIDC has none.
type flavor interface {
	// authOptions are extra authorization request parameters.
	authOptions() []oauth2.AuthCodeOption
	// identity refines the identity read from a verified ID token (and
	// userinfo), at sign-in and at every refresh.
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

// ErrNotAdmitted means the provider vouched for the user, but the
// provider type's own restriction (Google hosted domain, Entra tenant,
// GitHub organisation) does not admit them.
var ErrNotAdmitted = fmt.Errorf("identity not admitted by the provider's restrictions")

// keycloak turns Keycloak roles into groups: realm roles
// (realm_access.roles) as they are, client roles
// (resource_access.<client>.roles) as "<client>:<role>", added to
// whatever the groups claim holds (a Group Membership mapper).
type keycloak struct{ clientID string }

func (keycloak) authOptions() []oauth2.AuthCodeOption { return nil }

func (k keycloak) identity(_ context.Context, _ *OIDC, all map[string]any, _ *oauth2.Token, id *session.Identity) error {
	groups := slices.Clone(id.Groups)
	groups = append(groups, stringList(lookupClaim(all, "realm_access.roles"))...)
	if ra, ok := all["resource_access"].(map[string]any); ok {
		clients := make([]string, 0, len(ra))
		for c := range ra {
			clients = append(clients, c)
		}
		slices.Sort(clients)
		for _, c := range clients {
			obj, _ := ra[c].(map[string]any)
			for _, r := range stringList(obj["roles"]) {
				groups = append(groups, c+":"+r)
			}
		}
	}
	slices.Sort(groups)
	id.Groups = slices.Compact(groups)
	return nil
}

// google checks the Workspace hosted domain on the ID token (the hd
// authorization parameter is only a hint to Google's account chooser).
type google struct{ domains []string }

func (g google) authOptions() []oauth2.AuthCodeOption {
	switch len(g.domains) {
	case 0:
		return nil
	case 1:
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("hd", g.domains[0])}
	}
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("hd", "*")}
}

func (g google) identity(_ context.Context, _ *OIDC, all map[string]any, _ *oauth2.Token, id *session.Identity) error {
	if len(g.domains) == 0 {
		return nil
	}
	hd, _ := all["hd"].(string)
	if hd == "" || !slices.ContainsFunc(g.domains, func(d string) bool { return strings.EqualFold(d, hd) }) {
		return fmt.Errorf("%w: Google hosted domain %q is not one of %v", ErrNotAdmitted, hd, g.domains)
	}
	return nil
}
