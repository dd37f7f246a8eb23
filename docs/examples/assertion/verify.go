// Package assertion is the example from docs/operations.md: how an
// application behind Portcullis verifies the signed identity assertion
// (X-Portcullis-Assertion) instead of trusting plain X-Forwarded-* headers,
// which anyone who reaches the application directly could set.
package assertion

import (
	"context"
	"errors"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Identity is who the gateway says made the request.
type Identity struct {
	Subject string
	Email   string
	Groups  []string
}

// Verifier checks assertions from one gateway, meant for one application.
type Verifier struct {
	v *oidc.IDTokenVerifier
}

// NewVerifier trusts the gateway at gatewayURL (its public_url) and accepts
// only assertions whose audience is this application (by default the
// upstream URL the gateway proxies to, e.g. "http://127.0.0.1:8080").
// Keys come from the gateway's /oauth2/jwks.json and are re-fetched when
// the gateway rotates them.
func NewVerifier(ctx context.Context, gatewayURL, audience string) *Verifier {
	keys := oidc.NewRemoteKeySet(ctx, gatewayURL+"/oauth2/jwks.json")
	return &Verifier{v: oidc.NewVerifier(gatewayURL, keys, &oidc.Config{
		ClientID:             audience,          // aud must name this application
		SupportedSigningAlgs: []string{"ES256"}, // the gateway signs with ES256 only
	})}
}

// Verify returns the identity in r's assertion, or an error when there is
// none or it is not valid: wrong signature, issuer, audience, or expired.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Identity, error) {
	raw := r.Header.Get("X-Portcullis-Assertion")
	if raw == "" {
		return nil, errors.New("no identity assertion: the request did not come through the gateway")
	}
	tok, err := v.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	var claims struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}
	if err := tok.Claims(&claims); err != nil {
		return nil, err
	}
	return &Identity{Subject: tok.Subject, Email: claims.Email, Groups: claims.Groups}, nil
}
