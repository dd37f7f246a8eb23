package providers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

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
