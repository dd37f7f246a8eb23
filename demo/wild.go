package demo

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The options of this file make the provider behave like identity
// providers found in the wild, so the gateway's tests meet them without
// running those providers (see Config.NoEndSession, RefreshReuseError and
// RequireIDTokenHint, and Provider.RedeemRefreshTokens).

// wildBehaviour wraps zitadel's handler with the options that change its
// answers. Paths are relative to the issuer.
func (p *Provider) wildBehaviour(next http.Handler) http.Handler {
	discovery := oidc.DiscoveryEndpoint
	token := p.op.TokenEndpoint().Relative()
	endSession := p.op.EndSessionEndpoint().Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == discovery && p.wild.noEndSession:
			p.discoveryWithoutEndSession(w, r, next)
		case r.URL.Path == endSession && p.wild.noEndSession:
			http.NotFound(w, r)
		case r.URL.Path == endSession && p.wild.requireIDTokenHint && !hasIDTokenHint(r):
			http.Error(w, "id_token_hint is required", http.StatusBadRequest)
		case r.URL.Path == token && p.wild.refreshReuseError != "" && p.isReusedRefresh(r):
			writeOAuthError(w, p.wild.refreshReuseError, "refresh token was already used")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// wildOptions are the Config fields wildBehaviour reads.
type wildOptions struct {
	noEndSession       bool
	refreshReuseError  string
	requireIDTokenHint bool
}

// discoveryWithoutEndSession serves zitadel's discovery document without
// end_session_endpoint, as Dex publishes it: OpenID Connect RP-Initiated
// Logout 1.0 §2.1 makes the field optional, and a relying party that finds
// none must sign out locally.
func (p *Provider) discoveryWithoutEndSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var doc map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		http.Error(w, "discovery failed", http.StatusInternalServerError)
		return
	}
	delete(doc, "end_session_endpoint")
	body, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "discovery failed", http.StatusInternalServerError)
		return
	}
	maps.Copy(w.Header(), rec.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// hasIDTokenHint reports whether an end-session request names the ID
// token, in the query (GET) or the form (POST), as RP-Initiated Logout 1.0
// §2 allows. ParseForm is idempotent; zitadel parses the same form again.
func hasIDTokenHint(r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	return r.Form.Get("id_token_hint") != ""
}

// isReusedRefresh reports whether r is a refresh_token grant presenting a
// refresh token that an earlier refresh already rotated away.
func (p *Provider) isReusedRefresh(r *http.Request) bool {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		return false
	}
	if r.PostForm.Get("grant_type") != string(oidc.GrantTypeRefreshToken) {
		return false
	}
	return p.store.wasRotated(r.PostForm.Get("refresh_token"))
}

// writeOAuthError answers a token request with an RFC 6749 §5.2 error.
func writeOAuthError(w http.ResponseWriter, code, description string) {
	var body bytes.Buffer
	json.NewEncoder(&body).Encode(map[string]string{"error": code, "error_description": description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(body.Bytes())
}

// wasRotated reports whether token is a refresh token that a refresh
// replaced (and that has not expired since).
func (s *storage) wasRotated(token string) bool {
	if token == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expires, ok := s.rotated[token]
	return ok && !s.now().After(expires)
}

// RedeemRefreshTokens plays another holder of the user's refresh tokens:
// each current one is redeemed (rotated away, the new token discarded), so
// the next refresh with it presents an already used token, which fails
// with Config.RefreshReuseError (invalid_grant by default). It reports how
// many tokens there were.
func (p *Provider) RedeemRefreshTokens(userID string) int {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for tok, rt := range s.refreshTokens {
		if rt.userID == userID {
			delete(s.refreshTokens, tok)
			s.rotated[tok] = rt.expires
			n++
		}
	}
	return n
}
