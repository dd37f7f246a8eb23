package demo

import (
	"maps"
	"net/http"
	"net/url"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Stats counts requests to the provider, for tests and the load harness.
type Stats struct {
	DiscoveryRequests int // /.well-known/openid-configuration
	AuthorizeRequests int
	// TokenRequests is keyed by grant_type: "authorization_code",
	// "refresh_token", "client_credentials", and "other" for anything else.
	TokenRequests      map[string]int
	UserinfoRequests   int
	EndSessionRequests int
	EndSessionHinted   int // of those, how many carried an id_token_hint in the query
	LoginSuccesses     int // correct username and password posted
	LoginFailures      int // wrong username or password posted
	// LastAuthorize is the query of the latest authorization request: the
	// prompt, login_hint and acr_values a relying party sent.
	LastAuthorize url.Values
	// TokenAuth counts token requests by the client authentication they
	// carry: "client_secret_basic" (an Authorization header),
	// "client_secret_post", "private_key_jwt" (a client assertion) or
	// "none" (client_id alone), whether or not it succeeds.
	TokenAuth map[string]int
}

// counters is the mutable side of Stats.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func newCounters() *counters {
	return &counters{s: Stats{TokenRequests: make(map[string]int), TokenAuth: make(map[string]int)}}
}

func (c *counters) add(f func(*Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.s)
}

// Stats returns a snapshot of the counters since the provider was created.
func (p *Provider) Stats() Stats {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	s := p.stats.s
	s.TokenRequests = maps.Clone(s.TokenRequests)
	s.TokenAuth = maps.Clone(s.TokenAuth)
	s.LastAuthorize = maps.Clone(s.LastAuthorize)
	return s
}

// countRequests counts requests to zitadel's endpoints by path, whether or
// not they succeed. Paths are relative to the issuer.
func (p *Provider) countRequests(next http.Handler) http.Handler {
	authorize := p.op.AuthorizationEndpoint().Relative()
	token := p.op.TokenEndpoint().Relative()
	userinfo := p.op.UserinfoEndpoint().Relative()
	endSession := p.op.EndSessionEndpoint().Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case oidc.DiscoveryEndpoint:
			p.stats.add(func(s *Stats) { s.DiscoveryRequests++ })
		case authorize:
			q := r.URL.Query()
			p.stats.add(func(s *Stats) { s.AuthorizeRequests++; s.LastAuthorize = q })
		case token:
			// zitadel parses the form again; ParseForm is idempotent.
			grant := "other"
			if err := r.ParseForm(); err == nil {
				switch g := r.Form.Get("grant_type"); g {
				case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeClientCredentials):
					grant = g
				}
			}
			auth := tokenAuth(r)
			p.stats.add(func(s *Stats) { s.TokenRequests[grant]++; s.TokenAuth[auth]++ })
		case userinfo:
			p.stats.add(func(s *Stats) { s.UserinfoRequests++ })
		case endSession:
			hinted := r.URL.Query().Get("id_token_hint") != ""
			p.stats.add(func(s *Stats) {
				s.EndSessionRequests++
				if hinted {
					s.EndSessionHinted++
				}
			})
		}
		next.ServeHTTP(w, r)
	})
}

// tokenAuth names the client authentication a parsed token request
// carries (OpenID Connect Core §9).
func tokenAuth(r *http.Request) string {
	switch {
	case r.Header.Get("Authorization") != "":
		return "client_secret_basic"
	case r.PostForm.Get("client_assertion") != "":
		return "private_key_jwt"
	case r.PostForm.Get("client_secret") != "":
		return "client_secret_post"
	}
	return "none"
}
