package providers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// Entra cannot run on loopback, so these tests use the hand-built issuer
// from issuer_test.go behind discovery documents shaped like
// login.microsoftonline.com's, and an httptest Microsoft Graph serving
// recorded-shape answers: pages, throttling, refusals, hostile links.

const (
	tenantA = "0b3c5f2e-9a41-4d6e-8f70-1a2b3c4d5e6f"
	tenantB = "7d8e9f00-1122-4334-a556-677889900aab"
	tenantC = "c0ffee00-0000-4000-8000-00000000c0de"
	groupG1 = "2f0c8d6a-1b2c-4d3e-9f40-5a6b7c8d9e01"
	groupG2 = "3e1d9e7b-2c3d-4e4f-a051-6b7c8d9e0f12"
	groupG3 = "4f2eaf8c-3d4e-4f50-b162-7c8d9e0f1a23"
	groupG4 = "5a3fb09d-4e5f-4061-8273-8d9e0f1a2b34"
)

// entraIssuer is login.microsoftonline.com on loopback: discovery under
// /<tenant>/v2.0 on front, keys and the token endpoint from testIssuer.
type entraIssuer struct {
	*testIssuer
	front *httptest.Server

	mu              sync.Mutex
	discoveryIssuer string // overrides the issuer discovery names; "" for Entra's
}

func newEntraIssuer(t *testing.T) *entraIssuer {
	t.Helper()
	ei := &entraIssuer{testIssuer: newTestIssuer(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		issuer := ei.issuer(tenant)
		if tenant == "organizations" || tenant == "common" {
			issuer = ei.issuer("{tenantid}") // as Entra's multi-tenant metadata says
		}
		ei.mu.Lock()
		if ei.discoveryIssuer != "" {
			issuer = ei.discoveryIssuer
		}
		ei.mu.Unlock()
		ei.testIssuer.mu.Lock()
		meta := maps.Clone(ei.meta)
		ei.testIssuer.mu.Unlock()
		meta["issuer"] = issuer
		writeJSON(w, http.StatusOK, meta)
	})
	ei.front = httptest.NewServer(mux)
	t.Cleanup(ei.front.Close)
	return ei
}

// issuer is tenant's issuer on this loopback "login.microsoftonline.com".
func (ei *entraIssuer) issuer(tenant string) string { return ei.front.URL + "/" + tenant + "/v2.0" }

func (ei *entraIssuer) provider(t *testing.T, clk *clock, tenant string, edit func(*Config)) *Entra {
	t.Helper()
	cfg := Config{ID: "entra", Type: "entra", Tenant: tenant, IssuerURL: ei.issuer(tenant),
		ClientID: testClientID, ClientSecret: testClientSecret, GraphURL: closedURL(t)}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg, Options{RedirectURL: testRedirectURL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Entra)
}

// claims are those of an ID token Entra would issue to a user of tid.
func (ei *entraIssuer) claims(a Attempt, now time.Time, tid string) map[string]any {
	return map[string]any{
		"iss":                ei.issuer(tid),
		"sub":                "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
		"oid":                "00000000-0000-0000-66f3-3332eca7ea81",
		"tid":                tid,
		"aud":                testClientID,
		"exp":                now.Add(5 * time.Minute).Unix(),
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"nonce":              a.Nonce,
		"ver":                "2.0",
		"name":               "Alice Example",
		"preferred_username": "alice@contoso.com",
		"email":              "alice@contoso.com",
		"xms_edov":           true,
		"groups":             []string{groupG1, groupG2},
	}
}

// signInEntra runs a sign-in whose ID token has the claims edit leaves.
func signInEntra(t *testing.T, ei *entraIssuer, clk *clock, p *Entra, tid string, edit func(map[string]any)) (*session.Session, error) {
	t.Helper()
	return signIn(t, ei.testIssuer, p, func(a Attempt) map[string]any {
		c := ei.claims(a, clk.Now(), tid)
		if edit != nil {
			edit(c)
		}
		return tokenResponse(rsaKey.sign(t, c))
	})
}

// overage turns claims into a groups-overage token: no groups, and
// _claim_names / _claim_sources pointing at source (never to be called).
func overage(source string) func(map[string]any) {
	return func(c map[string]any) {
		delete(c, "groups")
		c["_claim_names"] = map[string]any{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": source + "/" + tenantA + "/users/x/getMemberObjects"}}
	}
}

func TestEntraSingleTenant(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	p := ei.provider(t, clk, tenantA, nil)
	for _, tt := range []struct {
		name    string
		edit    func(map[string]any)
		wantErr error
	}{
		{"happy path", nil, nil},
		{"tid in upper case", func(c map[string]any) { c["tid"] = strings.ToUpper(tenantA) }, nil},
		{"wrong tid", func(c map[string]any) { c["tid"] = tenantB }, ErrInvalidToken},
		{"no tid", func(c map[string]any) { delete(c, "tid") }, ErrInvalidToken},
		{"tid not a string", func(c map[string]any) { c["tid"] = []string{tenantA} }, ErrInvalidToken},
		{"iss of another tenant", func(c map[string]any) { c["iss"], c["tid"] = ei.issuer(tenantB), tenantB }, ErrInvalidToken},
		{"iss is the multi-tenant template", func(c map[string]any) { c["iss"] = ei.issuer("{tenantid}") }, ErrInvalidToken},
		{"iss of the real Entra", func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + tenantA + "/v2.0" }, ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := signInEntra(t, ei, clk, p, tenantA, tt.edit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Redeem = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s.Issuer != ei.issuer(tenantA) || s.Subject != "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ" || s.Provider != "entra" {
				t.Errorf("identity = %s / %s / %s", s.Issuer, s.Subject, s.Provider)
			}
			if s.Email != "alice@contoso.com" || !s.EmailVerified || s.PreferredUsername != "alice@contoso.com" || s.Name != "Alice Example" {
				t.Errorf("attributes = %+v", s.Identity)
			}
			if got, want := strings.Join(s.Groups, ","), groupG1+","+groupG2; got != want {
				t.Errorf("groups = %s, want %s", got, want)
			}
		})
	}
}

// TestEntraEmail: Entra sends no email_verified; only xms_edov makes the
// address count, and without it the identity simply has no email.
func TestEntraEmail(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	for _, tt := range []struct {
		name         string
		insecure     bool
		edit         func(map[string]any)
		wantEmail    string
		wantVerified bool
	}{
		{"xms_edov true", false, nil, "alice@contoso.com", true},
		{"xms_edov \"1\"", false, func(c map[string]any) { c["xms_edov"] = "1" }, "alice@contoso.com", true},
		{"xms_edov \"true\"", false, func(c map[string]any) { c["xms_edov"] = "true" }, "alice@contoso.com", true},
		{"no xms_edov", false, func(c map[string]any) { delete(c, "xms_edov") }, "", false},
		{"xms_edov false", false, func(c map[string]any) { c["xms_edov"] = false }, "", false},
		{"xms_edov \"0\"", false, func(c map[string]any) { c["xms_edov"] = "0" }, "", false},
		{"xms_edov 1 as a number", false, func(c map[string]any) { c["xms_edov"] = 1 }, "", false},
		{"xms_edov in another case", false, func(c map[string]any) { delete(c, "xms_edov"); c["XMS_EDOV"] = true }, "", false},
		{"email_verified alone does not count", false, func(c map[string]any) { delete(c, "xms_edov"); c["email_verified"] = true }, "", false},
		{"no email", false, func(c map[string]any) { delete(c, "email") }, "", false},
		{"no xms_edov, insecure_allow_unverified_email", true, func(c map[string]any) { delete(c, "xms_edov") }, "alice@contoso.com", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ei.provider(t, clk, tenantA, func(c *Config) { c.InsecureAllowUnverifiedEmail = tt.insecure })
			s, err := signInEntra(t, ei, clk, p, tenantA, tt.edit)
			if err != nil {
				t.Fatalf("Redeem = %v; an unverified email must cost the email, not the sign-in", err)
			}
			if s.Email != tt.wantEmail || s.EmailVerified != tt.wantVerified {
				t.Errorf("email = %q verified %v, want %q %v", s.Email, s.EmailVerified, tt.wantEmail, tt.wantVerified)
			}
		})
	}
}

func TestEntraMultiTenant(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	for _, tt := range []struct {
		name    string
		tenant  string
		tenants []string
		tid     string
		edit    func(map[string]any)
		wantErr error
	}{
		{"listed tenant", "organizations", []string{tenantA, tenantB}, tenantA, nil, nil},
		{"other listed tenant", "organizations", []string{tenantA, tenantB}, tenantB, nil, nil},
		{"listed in upper case", "organizations", []string{strings.ToUpper(tenantB)}, tenantB, nil, nil},
		{"unlisted tenant", "organizations", []string{tenantA, tenantB}, tenantC, nil, ErrNotAdmitted},
		{"any tenant without a list", "common", nil, tenantC, nil, nil},
		{"personal account under common", "common", nil, consumersTenant, nil, nil},
		{"personal account under organizations", "organizations", nil, consumersTenant, nil, ErrNotAdmitted},
		{"forged iss naming another tenant", "organizations", []string{tenantA}, tenantB,
			func(c map[string]any) { c["iss"] = ei.issuer(tenantA) }, ErrInvalidToken},
		{"tid of a listed tenant, iss of another", "organizations", []string{tenantA}, tenantA,
			func(c map[string]any) { c["iss"] = ei.issuer(tenantB) }, ErrInvalidToken},
		{"tid not a GUID", "organizations", nil, "evil", nil, ErrInvalidToken},
		{"tid a GUID with a path", "organizations", nil, tenantA + "/x", nil, ErrInvalidToken},
		{"tid is the placeholder", "organizations", nil, "{tenantid}", nil, ErrInvalidToken},
		{"no tid", "organizations", nil, tenantA, func(c map[string]any) { delete(c, "tid") }, ErrInvalidToken},
		{"iss is the template", "organizations", nil, tenantA, func(c map[string]any) { c["iss"] = ei.issuer("{tenantid}") }, ErrInvalidToken},
		{"iss on another host", "organizations", nil, tenantA,
			func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + tenantA + "/v2.0" }, ErrInvalidToken},
		{"iss with a trailing slash", "organizations", nil, tenantA, func(c map[string]any) { c["iss"] = ei.issuer(tenantA) + "/" }, ErrInvalidToken},
		{"iss names the tenant in upper case", "organizations", nil, tenantA,
			func(c map[string]any) { c["iss"] = ei.issuer(strings.ToUpper(tenantA)) }, ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ei.provider(t, clk, tt.tenant, func(c *Config) { c.Tenants = tt.tenants })
			s, err := signInEntra(t, ei, clk, p, tt.tid, tt.edit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Redeem = %v, want %v", err, tt.wantErr)
			}
			if err == nil && s.Issuer != ei.issuer(tt.tid) {
				t.Errorf("session issuer = %s, want the user's tenant's %s", s.Issuer, ei.issuer(tt.tid))
			}
		})
	}
	// The provider's own issuer stays the configured one: it is what
	// sign-in state is bound to.
	if p := ei.provider(t, clk, "organizations", nil); p.Issuer() != ei.issuer("organizations") {
		t.Errorf("Issuer() = %s", p.Issuer())
	}
}

// TestEntraMultiTenantDiscovery: the document at .../organizations/v2.0
// must name the {tenantid} template; go-oidc stops comparing once told the
// issuer differs, so the provider checks it.
func TestEntraMultiTenantDiscovery(t *testing.T) {
	for _, tt := range []struct {
		name   string
		issuer func(ei *entraIssuer) string
		ok     bool
	}{
		{"template", func(ei *entraIssuer) string { return "" }, true},
		{"a tenant's issuer", func(ei *entraIssuer) string { return ei.issuer(tenantA) }, false},
		{"another host's template", func(ei *entraIssuer) string { return "https://login.microsoftonline.com/{tenantid}/v2.0" }, false},
		{"the discovery URL", func(ei *entraIssuer) string { return ei.issuer("organizations") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ei := newEntraIssuer(t)
			ei.discoveryIssuer = tt.issuer(ei)
			p := ei.provider(t, newClock(), "organizations", nil)
			ready := p.Ready(context.Background())
			_, authErr := p.AuthCodeURL(context.Background(), NewAttempt())
			_, redeemErr := p.Redeem(context.Background(), "code-1", NewAttempt())
			_, refreshErr := p.Refresh(context.Background(), &session.Session{RefreshToken: "rt-1"})
			_, endErr := p.EndSessionURL(context.Background(), "", "", "")
			if tt.ok {
				if ready != nil || authErr != nil {
					t.Fatalf("Ready = %v, AuthCodeURL = %v", ready, authErr)
				}
				return
			}
			for _, err := range []error{ready, authErr, redeemErr, refreshErr, endErr} {
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("err = %v, want ErrUnavailable", err)
				}
			}
			if n := ei.tokenHits.Load(); n != 0 {
				t.Errorf("token endpoint called %d times", n)
			}
		})
	}
}

func TestEntraCheckResponse(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	multi := ei.provider(t, clk, "organizations", func(c *Config) { c.Tenants = []string{tenantA} })
	single := ei.provider(t, clk, tenantA, nil)
	for _, tt := range []struct {
		name string
		p    *Entra
		q    url.Values
		want error
	}{
		{"multi: no iss", multi, url.Values{"code": {"c"}}, nil},
		{"multi: admitted tenant's issuer", multi, url.Values{"iss": {ei.issuer(tenantA)}}, nil},
		{"multi: unlisted tenant's issuer", multi, url.Values{"iss": {ei.issuer(tenantB)}}, ErrNotAdmitted},
		{"multi: the template itself", multi, url.Values{"iss": {ei.issuer("{tenantid}")}}, ErrMixUp},
		{"multi: the configured issuer", multi, url.Values{"iss": {ei.issuer("organizations")}}, ErrMixUp},
		{"multi: another host", multi, url.Values{"iss": {"https://evil.example.com/" + tenantA + "/v2.0"}}, ErrMixUp},
		{"multi: suffix added", multi, url.Values{"iss": {ei.issuer(tenantA) + "/x"}}, ErrMixUp},
		{"multi: two values", multi, url.Values{"iss": {ei.issuer(tenantA), ei.issuer(tenantA)}}, ErrMixUp},
		{"single: own issuer", single, url.Values{"iss": {ei.issuer(tenantA)}}, nil},
		{"single: another tenant's issuer", single, url.Values{"iss": {ei.issuer(tenantB)}}, ErrMixUp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.CheckResponse(context.Background(), tt.q); !errors.Is(err, tt.want) {
				t.Errorf("CheckResponse(%v) = %v, want %v", tt.q, err, tt.want)
			}
		})
	}
}

// fakeGraph is Microsoft Graph on loopback. page is called with the page
// number from $skiptoken (0 for the first request).
type fakeGraph struct {
	*httptest.Server
	hits atomic.Int64

	mu   sync.Mutex
	reqs []*http.Request
}

func newFakeGraph(t *testing.T, page func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int)) *fakeGraph {
	t.Helper()
	g := &fakeGraph{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		g.mu.Lock()
		g.reqs = append(g.reqs, r.Clone(context.Background()))
		g.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/v1.0/me/transitiveMemberOf" {
			writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound"))
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
		page(g, w, r, n)
	}))
	t.Cleanup(g.Close)
	return g
}

// next is the @odata.nextLink to page n, as Graph writes it.
func (g *fakeGraph) next(n int) string {
	return g.URL + "/v1.0/me/transitiveMemberOf?$select=id&$top=999&$skiptoken=" + strconv.Itoa(n)
}

func graphError(code string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": "recorded", "innerError": map[string]any{"request-id": "r"}}}
}

// graphPage is one page of directoryObjects: ids of groups, plus whatever
// other objects are given as type:id.
func graphPage(next string, ids ...string) map[string]any {
	value := []map[string]any{}
	for _, id := range ids {
		typ := "#microsoft.graph.group"
		if t, rest, ok := strings.Cut(id, ":"); ok {
			typ, id = t, rest
		}
		value = append(value, map[string]any{"@odata.type": typ, "id": id})
	}
	p := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id)", "value": value}
	if next != "" {
		p["@odata.nextLink"] = next
	}
	return p
}

func TestEntraGroupsOverage(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	g := newFakeGraph(t, func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 0:
			writeJSON(w, http.StatusOK, graphPage(g.next(1), groupG3, "#microsoft.graph.directoryRole:"+groupG4, groupG1))
		case 1:
			writeJSON(w, http.StatusOK, graphPage(g.next(2), strings.ToUpper(groupG2), groupG1))
		default:
			writeJSON(w, http.StatusOK, graphPage("", "#microsoft.graph.administrativeUnit:"+tenantB, groupG4))
		}
	})
	claimSource, claimSourceHits := countingServer(t)
	p := ei.provider(t, clk, tenantA, func(c *Config) { c.GraphURL = g.URL })
	for _, tt := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"_claim_names", overage(claimSource.URL)},
		{"hasgroups", func(c map[string]any) { delete(c, "groups"); c["hasgroups"] = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g.hits.Store(0)
			s, err := signInEntra(t, ei, clk, p, tenantA, tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{groupG1, groupG2, groupG3, groupG4} // roles and units skipped, ids lower-cased, sorted
			if !slices.Equal(s.Groups, want) {
				t.Errorf("groups = %v, want %v", s.Groups, want)
			}
			if n := g.hits.Load(); n != 3 {
				t.Errorf("Graph asked %d times, want 3 pages", n)
			}
		})
	}
	g.mu.Lock()
	first := g.reqs[0]
	g.mu.Unlock()
	if got := first.Header.Get("Authorization"); got != "Bearer "+testAccessToken {
		t.Errorf("Authorization = %q", got)
	}
	if q := first.URL.Query(); q.Get("$select") != "id" || q.Get("$top") != "999" {
		t.Errorf("first request = %s", first.URL)
	}
	if n := claimSourceHits.Load(); n != 0 {
		t.Errorf("the token's _claim_sources endpoint was called %d times", n)
	}
	t.Run("groups in the token need no Graph", func(t *testing.T) {
		g.hits.Store(0)
		if _, err := signInEntra(t, ei, clk, p, tenantA, nil); err != nil {
			t.Fatal(err)
		}
		if n := g.hits.Load(); n != 0 {
			t.Errorf("Graph asked %d times", n)
		}
	})
}

func TestEntraGraphFailures(t *testing.T) {
	elsewhere, elsewhereHits := countingServer(t)
	many := make([]string, maxGraphGroups+1)
	for i := range many {
		many[i] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
	}
	for _, tt := range []struct {
		name     string
		page     func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int)
		wantErr  error
		wantMsg  string
		wantHits int64 // 0: don't check
	}{
		{"429 with Retry-After", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, http.StatusTooManyRequests, graphError("TooManyRequests"))
		}, ErrUnavailable, "Retry-After 30s", 1},
		{"429 on the second page", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				writeJSON(w, http.StatusOK, graphPage(g.next(1), groupG1))
				return
			}
			w.Header().Set("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT")
			writeJSON(w, http.StatusTooManyRequests, graphError("TooManyRequests"))
		}, ErrUnavailable, "Retry-After 2026-10-21T07:28:00Z", 2},
		{"503", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusServiceUnavailable, graphError("serviceNotAvailable"))
		}, ErrUnavailable, "503", 1},
		{"403 missing permission", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusForbidden, graphError("Authorization_RequestDenied"))
		}, ErrNotAdmitted, "GroupMember.Read.All", 1},
		{"401 token not for Graph", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusUnauthorized, graphError("InvalidAuthenticationToken"))
		}, ErrNotAdmitted, "InvalidAuthenticationToken", 1},
		{"nextLink to another host", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(elsewhere.URL+"/v1.0/me/transitiveMemberOf?$skiptoken=1", groupG1))
		}, ErrUnavailable, "refusing", 1},
		{"nextLink with Graph as userinfo", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			u, _ := url.Parse(elsewhere.URL)
			writeJSON(w, http.StatusOK, graphPage("http://"+strings.TrimPrefix(g.URL, "http://")+"@"+u.Host+"/v1.0/me/transitiveMemberOf", groupG1))
		}, ErrUnavailable, "refusing", 1},
		{"nextLink scheme-relative", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(strings.TrimPrefix(elsewhere.URL, "http:")+"/v1.0/x", groupG1))
		}, ErrUnavailable, "refusing", 1},
		{"nextLink outside /v1.0/", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(g.URL+"/beta/me/transitiveMemberOf", groupG1))
		}, ErrUnavailable, "refusing", 1},
		{"nextLink climbing out of /v1.0/", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(g.URL+"/v1.0/../admin", groupG1))
		}, ErrUnavailable, "refusing", 1},
		{"endless pages", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(g.next(n+1), groupG1))
		}, ErrNotAdmitted, "pages", maxGraphPages},
		{"a page linking to itself", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage(g.next(0), groupG1))
		}, ErrNotAdmitted, "pages", maxGraphPages},
		{"more groups than the bound", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage("", many...))
		}, ErrNotAdmitted, "5000", 1},
		{"group id not a GUID", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, graphPage("", "admins\r\nX-Injected"))
		}, ErrUnavailable, "GUID", 1},
		{"not JSON", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			w.Write([]byte("<html>"))
		}, ErrUnavailable, "decoding", 1},
		{"redirect", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, elsewhere.URL, http.StatusFound)
		}, ErrUnavailable, "redirect", 1},
		{"404", func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound"))
		}, ErrUnavailable, "404", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ei := newEntraIssuer(t)
			clk := newClock()
			g := newFakeGraph(t, tt.page)
			p := ei.provider(t, clk, tenantA, func(c *Config) { c.GraphURL = g.URL })
			_, err := signInEntra(t, ei, clk, p, tenantA, overage(elsewhere.URL))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("Redeem = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			if tt.wantHits != 0 && g.hits.Load() != tt.wantHits {
				t.Errorf("Graph asked %d times, want %d", g.hits.Load(), tt.wantHits)
			}
			if n := elsewhereHits.Load(); n != 0 {
				t.Errorf("another host was called %d times", n)
			}
		})
	}
}

// TestEntraRefreshReadsOverage: a refresh re-reads the groups, through
// Graph with the new access token when the new ID token overflows.
func TestEntraRefreshReadsOverage(t *testing.T) {
	ei := newEntraIssuer(t)
	clk := newClock()
	g := newFakeGraph(t, func(g *fakeGraph, w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") != "Bearer at-2" {
			writeJSON(w, http.StatusUnauthorized, graphError("InvalidAuthenticationToken"))
			return
		}
		writeJSON(w, http.StatusOK, graphPage("", groupG3))
	})
	p := ei.provider(t, clk, "organizations", func(c *Config) { c.GraphURL = g.URL; c.Tenants = []string{tenantA} })
	now := clk.Now()
	base := &session.Session{
		Identity:     session.Identity{Issuer: ei.issuer(tenantA), Subject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", Groups: []string{groupG1}},
		Provider:     "entra",
		TokenExpiry:  now.Add(30 * time.Second),
		RefreshToken: "rt-1",
	}
	idToken := func(tid string) string {
		c := ei.claims(Attempt{}, now, tid)
		delete(c, "nonce")
		overage(closedURL(t))(c)
		return rsaKey.sign(t, c)
	}
	ei.replyJSON(http.StatusOK, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300, "id_token": idToken(tenantA)})
	next, err := p.Refresh(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(next.Groups, []string{groupG3}) || next.Email != "alice@contoso.com" || !next.EmailVerified {
		t.Errorf("refreshed identity = %+v", next.Identity)
	}
	// A refreshed token from another tenant is not this session's.
	ei.replyJSON(http.StatusOK, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300, "id_token": idToken(tenantB)})
	if _, err := p.Refresh(context.Background(), base); !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNotAdmitted) {
		t.Errorf("refresh into another tenant = %v", err)
	}
}

func TestEntraLogoutTokenMultiTenant(t *testing.T) {
	ei := newEntraIssuer(t)
	p := ei.provider(t, newClock(), "common", nil)
	if _, err := p.VerifyLogoutToken(context.Background(), "x.y.z"); !errors.Is(err, ErrInvalidLogoutToken) {
		t.Errorf("VerifyLogoutToken = %v, want ErrInvalidLogoutToken", err)
	}
}

func TestEntraConfig(t *testing.T) {
	base := func() Config {
		return Config{ID: "entra", Type: "entra", Tenant: tenantA, ClientID: testClientID, ClientSecret: testClientSecret}
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; nil means valid
	}{
		{"tenant ID", func(c *Config) {}, nil},
		{"tenant ID in upper case", func(c *Config) { c.Tenant = strings.ToUpper(tenantA) }, nil},
		{"organizations with tenants", func(c *Config) { c.Tenant, c.Tenants = "organizations", []string{tenantA, tenantB} }, nil},
		{"common", func(c *Config) { c.Tenant = "common" }, nil},
		{"sovereign cloud issuer", func(c *Config) { c.IssuerURL = "https://login.microsoftonline.us/" + tenantA + "/v2.0" }, nil},
		{"graph_url with a trailing slash", func(c *Config) { c.GraphURL = "https://graph.microsoft.us/" }, nil},

		{"no tenant", func(c *Config) { c.Tenant = "" }, []string{"entra", "tenant is required"}},
		{"tenant as a domain name", func(c *Config) { c.Tenant = "contoso.onmicrosoft.com" }, []string{"tenant", "GUID"}},
		{"consumers", func(c *Config) { c.Tenant = "consumers" }, []string{"tenant"}},
		{"tenant with a path", func(c *Config) { c.Tenant = tenantA + "/v2.0" }, []string{"tenant"}},
		{"tenants with a single tenant", func(c *Config) { c.Tenants = []string{tenantB} }, []string{"tenants", "organizations or common"}},
		{"tenants not GUIDs", func(c *Config) { c.Tenant, c.Tenants = "organizations", []string{"contoso"} }, []string{"tenants", "contoso"}},
		{"issuer_url without the tenant", func(c *Config) { c.IssuerURL = "https://login.microsoftonline.com/" + tenantB + "/v2.0" }, []string{"issuer_url", tenantA}},
		{"issuer_url naming the tenant twice", func(c *Config) { c.IssuerURL = "https://login.microsoftonline.com/" + tenantA + "/" + tenantA }, []string{"issuer_url"}},
		{"graph_url over http", func(c *Config) { c.GraphURL = "http://graph.example.com" }, []string{"graph_url", "https"}},
		{"graph_url with a path", func(c *Config) { c.GraphURL = "https://graph.microsoft.com/v1.0" }, []string{"graph_url", "host only"}},
		{"graph_url with userinfo", func(c *Config) { c.GraphURL = "https://u:p@graph.microsoft.com" }, []string{"graph_url"}},
		{"github keys", func(c *Config) { c.Orgs = []string{"acme"} }, []string{"orgs", "github"}},
		{"tenant on an oidc provider", func(c *Config) { c.Type = "oidc"; c.IssuerURL = "https://idp.example.com" }, []string{"tenant", "entra"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(&cfg)
			checkNew(t, cfg, tt.want)
		})
	}

	p, err := New(base(), Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	e := p.(*Entra)
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"issuer", p.Issuer(), "https://login.microsoftonline.com/" + tenantA + "/v2.0"},
		{"graph", e.fl.graphURL, "https://graph.microsoft.com"},
		{"userinfo", e.cfg.Userinfo, "never"},
		{"scopes", strings.Join(e.cfg.Scopes, " "), "openid email profile"},
		{"email needs xms_edov", e.fl.allowUnverifiedEmail, false},
		{"refresh", implements[interface {
			Refresh(context.Context, *session.Session) (*session.Session, error)
		}](p), true},
		{"end session", implements[interface {
			EndSessionURL(context.Context, string, string, string) (string, error)
		}](p), true},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	multi, err := New(Config{ID: "m", Type: "entra", Tenant: "organizations", ClientID: testClientID, ClientSecret: testClientSecret}, Options{RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if got := multi.(*Entra).fl.template; got != "https://login.microsoftonline.com/{tenantid}/v2.0" {
		t.Errorf("template = %s", got)
	}
}

func implements[I any](p Provider) bool {
	_, ok := p.(I)
	return ok
}

func TestIsGUID(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{tenantA, true},
		{strings.ToUpper(tenantA), true},
		{"", false},
		{"organizations", false},
		{tenantA[:35], false},
		{tenantA + "0", false},
		{strings.ReplaceAll(tenantA, "-", ""), false},
		{"0b3c5f2e-9a41-4d6e-8f70-1a2b3c4d5e6g", false},
		{"0b3c5f2e-9a41-4d6e-8f70+1a2b3c4d5e6f", false},
		{"{b3c5f2e-9a41-4d6e-8f70-1a2b3c4d5e6f}", false},
	} {
		if got := isGUID(tt.s); got != tt.want {
			t.Errorf("isGUID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
