package demo

import (
	"maps"
	"net/http"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Stats counts requests to the provider, for tests and the load harness.
type Stats struct {
	AuthorizeRequests int
	// TokenRequests is keyed by grant_type: "authorization_code",
	// "refresh_token", "client_credentials", and "other" for anything else.
	TokenRequests      map[string]int
	UserinfoRequests   int
	EndSessionRequests int
	EndSessionHinted   int // of those, how many carried an id_token_hint in the query
	LoginSuccesses     int // correct username and password posted
	LoginFailures      int // wrong username or password posted
}

// counters is the mutable side of Stats.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func newCounters() *counters {
	return &counters{s: Stats{TokenRequests: make(map[string]int)}}
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
		case authorize:
			p.stats.add(func(s *Stats) { s.AuthorizeRequests++ })
		case token:
			// zitadel parses the form again; ParseForm is idempotent.
			grant := "other"
			if err := r.ParseForm(); err == nil {
				switch g := r.Form.Get("grant_type"); g {
				case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeClientCredentials):
					grant = g
				}
			}
			p.stats.add(func(s *Stats) { s.TokenRequests[grant]++ })
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
