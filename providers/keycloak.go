package providers

import (
	"context"
	"slices"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

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
