package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// entra.go adapts the OpenID Connect flow to Microsoft Entra ID (Azure AD),
// v2.0 endpoints:
//
//   - tenant: a tenant ID admits that tenant only. Its ID tokens carry
//     iss https://login.microsoftonline.com/<tenant>/v2.0 (checked by the
//     verifier) and tid = tenant (checked here).
//   - tenant: organizations or common serve a multi-tenant app. Discovery
//     names the issuer template .../{tenantid}/v2.0; each token's iss must be
//     that template filled with the token's own tid, a GUID, and tid must be
//     listed in tenants when tenants is set (else ErrNotAdmitted). common
//     also admits personal Microsoft accounts (tid
//     9188040d-6c67-4c5b-b112-36a304b66dad) unless tenants says otherwise.
//   - Email: Entra sends email without email_verified, and the address is an
//     attribute tenant admins (or, in some tenants, users) can set to
//     anything. It counts as verified only when the token carries the
//     optional claim xms_edov (email domain owner verified) as true, or the
//     operator set insecure_allow_unverified_email. Otherwise the identity
//     has no email: the sign-in succeeds, email rules match nothing, and no
//     email header is sent.
//   - Groups come from the groups claim. When a user is in more groups than
//     fit in a token (groups overage: _claim_names.groups instead of
//     groups), they are read from Microsoft Graph with the access token; see
//     graphGroups. The URL the token names in _claim_sources is never used.

// Bounds on the groups overage lookup: a user in more groups than this
// gets ErrNotAdmitted rather than a truncated list (a group missing from
// the list could be one a rule denies).
const (
	graphPageSize  = 999 // Graph's maximum for transitiveMemberOf
	maxGraphPages  = 20
	maxGraphGroups = 5000
)

// consumersTenant is the tenant of personal Microsoft accounts.
const consumersTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Entra is the Microsoft Entra ID provider: the generic OIDC provider with
// the entra flavor, plus the multi-tenant checks that need more than a
// flavor hook (the discovered issuer template, RFC 9207 iss parameters).
type Entra struct {
	*OIDC
	fl *entra
	// templateOK: the discovery document named the expected issuer
	// template (multi-tenant only).
	templateOK atomic.Bool
}

var _ Provider = (*Entra)(nil)

func newEntra(cfg Config, opts Options) (Provider, error) {
	fl := &entra{
		tenant:               cfg.Tenant,
		tenants:              cfg.Tenants,
		graphURL:             cfg.GraphURL,
		allowUnverifiedEmail: cfg.InsecureAllowUnverifiedEmail,
	}
	// Entra never sends email_verified. The generic mapping would refuse
	// every token with an email; it trusts them here (trustEmail) and the
	// flavor decides instead (entra.email), after the mapping at sign-in
	// and at every refresh that brings an ID token.
	inner := cfg
	inner.InsecureAllowUnverifiedEmail = true
	var f flavor = fl
	if fl.multi() {
		fl.template = issuerTemplate(cfg.IssuerURL, cfg.Tenant)
		f = entraMulti{fl}
	}
	return &Entra{OIDC: newOIDC(inner, opts, f), fl: fl}, nil
}

// validateEntra checks the keys type entra adds; c has its defaults.
func (c *Config) validateEntra(bad func(format string, args ...any)) {
	switch {
	case c.Tenant == "":
		bad("tenant is required for type entra: the directory (tenant) ID, or organizations or common")
		return
	case c.Tenant == "organizations" || c.Tenant == "common":
	case isGUID(c.Tenant):
		if len(c.Tenants) > 0 {
			bad("tenants applies only to tenant organizations or common; tenant %s admits only itself", c.Tenant)
		}
	default:
		bad("tenant %q: want the directory (tenant) ID, a GUID, or organizations or common", c.Tenant)
		return
	}
	tenants := make([]string, 0, len(c.Tenants))
	for _, t := range c.Tenants {
		if !isGUID(t) {
			bad("tenants: %q is not a tenant ID (a GUID)", t)
		}
		tenants = append(tenants, strings.ToLower(t))
	}
	c.Tenants = tenants
	// The tenant is one path segment of the issuer: multi-tenant tokens
	// are checked against the issuer with that segment replaced by their
	// tid, so it must be found exactly once.
	if u, err := url.Parse(c.IssuerURL); err == nil {
		n := 0
		for _, seg := range strings.Split(u.Path, "/") {
			if strings.EqualFold(seg, c.Tenant) {
				n++
			}
		}
		if n != 1 {
			bad("issuer_url %q must name tenant %s as one path segment, like https://login.microsoftonline.com/%s/v2.0", c.IssuerURL, c.Tenant, c.Tenant)
		}
	}
	c.GraphURL = strings.TrimSuffix(c.GraphURL, "/")
	if problem := plainURLProblem(c.GraphURL); problem != "" {
		bad("graph_url %s", problem)
	} else if u, _ := url.Parse(c.GraphURL); u.Path != "" {
		bad("graph_url %q: give the host only (https://graph.microsoft.com); portcullis adds /v1.0", c.GraphURL)
	}
}

// issuerTemplate replaces the tenant segment of issuer with {tenantid}.
func issuerTemplate(issuer, tenant string) string {
	scheme, rest, _ := strings.Cut(issuer, "://")
	segs := strings.Split(rest, "/")
	for i := 1; i < len(segs); i++ { // segs[0] is the host
		if strings.EqualFold(segs[i], tenant) {
			segs[i] = "{tenantid}"
			break
		}
	}
	return scheme + "://" + strings.Join(segs, "/")
}

// entra is the flavor. It is shared by pointer with Entra.
type entra struct {
	tenant               string   // a tenant ID, or organizations / common
	tenants              []string // multi-tenant: the tenant IDs admitted (lower case); empty: any
	template             string   // multi-tenant: the issuer with {tenantid}
	graphURL             string
	allowUnverifiedEmail bool
}

func (e *entra) multi() bool { return e.tenant == "organizations" || e.tenant == "common" }

func (*entra) authOptions() []oauth2.AuthCodeOption { return nil }

// identity checks the tenant, decides the email and resolves a groups
// overage. It runs after the ID token (and, for multi-tenant, its iss) has
// been verified.
func (e *entra) identity(ctx context.Context, p *OIDC, all map[string]any, tok *oauth2.Token, id *session.Identity) error {
	tid, _ := all["tid"].(string)
	if err := e.admit(tid); err != nil {
		return err
	}
	e.email(all, id)
	if p.cfg.GroupsClaim == "groups" && groupsOverage(all) {
		groups, err := graphGroups(ctx, p.client, e.graphURL, tok.AccessToken, p.cfg.Timeout)
		if err != nil {
			return err
		}
		id.Groups = groups
	}
	return nil
}

// admit says whether a verified token's tid is a tenant this provider
// serves.
func (e *entra) admit(tid string) error {
	switch {
	case !isGUID(tid):
		return fmt.Errorf("%w: tid %s is not a tenant ID", ErrInvalidToken, strconv.Quote(clip(tid)))
	case !e.multi():
		if !strings.EqualFold(tid, e.tenant) {
			return fmt.Errorf("%w: tid %s is not tenant %s", ErrInvalidToken, tid, e.tenant)
		}
	case len(e.tenants) > 0 && !slices.Contains(e.tenants, strings.ToLower(tid)):
		return fmt.Errorf("%w: Entra tenant %s is not one of the tenants configured", ErrNotAdmitted, tid)
	case e.tenant == "organizations" && strings.EqualFold(tid, consumersTenant):
		return fmt.Errorf("%w: personal Microsoft accounts are not admitted by tenant organizations", ErrNotAdmitted)
	}
	return nil
}

// email keeps the address only when Entra vouches for its domain: the
// optional claim xms_edov is true (Entra has emitted it both as a boolean
// and as "1"), or the operator accepts unverified addresses.
func (e *entra) email(all map[string]any, id *session.Identity) {
	email, _ := all["email"].(string)
	var edov bool
	switch v := all["xms_edov"].(type) {
	case bool:
		edov = v
	case string:
		edov = v == "1" || strings.EqualFold(v, "true")
	}
	if email == "" || !(edov || e.allowUnverifiedEmail) {
		id.Email, id.EmailVerified = "", false
		return
	}
	id.Email, id.EmailVerified = email, true
}

// groupsOverage reports whether the token says its groups did not fit
// (_claim_names.groups in ID tokens, hasgroups in implicit-flow tokens).
func groupsOverage(all map[string]any) bool {
	if names, ok := all["_claim_names"].(map[string]any); ok {
		if _, ok := names["groups"]; ok {
			return true
		}
	}
	return all["hasgroups"] == true
}

// entraMulti is the flavor for tenant organizations or common: tokens carry
// the issuer of the user's own tenant.
type entraMulti struct{ *entra }

var _ issuerFlavor = entraMulti{}

func (m entraMulti) discoveryIssuer() string { return m.template }

// checkIssuer requires iss to be the template filled with the token's tid,
// a GUID. Which tenants are admitted is decided in identity.
func (m entraMulti) checkIssuer(iss string, all map[string]any) error {
	tid, _ := all["tid"].(string)
	if !isGUID(tid) {
		return fmt.Errorf("tid %s is not a tenant ID", strconv.Quote(clip(tid)))
	}
	if want := strings.Replace(m.template, "{tenantid}", tid, 1); iss != want {
		return fmt.Errorf("iss %s is not %s, the issuer of tenant %s", strconv.Quote(clip(iss)), want, tid)
	}
	return nil
}

// tenantOfIssuer returns the tenant a multi-tenant issuer names, or "".
func (m entraMulti) tenantOfIssuer(iss string) string {
	prefix, suffix, _ := strings.Cut(m.template, "{tenantid}")
	tid, ok := strings.CutPrefix(iss, prefix)
	if !ok {
		return ""
	}
	tid, ok = strings.CutSuffix(tid, suffix)
	if !ok || !isGUID(tid) {
		return ""
	}
	return tid
}

// checkDiscovery makes sure a multi-tenant discovery document named the
// issuer template. go-oidc compares nothing once it is told the issuer
// differs from the discovery URL, and the flavor hook cannot see the
// document.
func (p *Entra) checkDiscovery(ctx context.Context) error {
	if !p.fl.multi() || p.templateOK.Load() {
		return nil
	}
	d, err := p.discovered(ctx)
	if err != nil {
		return err
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	if err := d.op.Claims(&meta); err != nil || meta.Issuer != p.fl.template {
		return fmt.Errorf("%w: %s: discovery at %s names issuer %s, want %s", ErrUnavailable, p.cfg.ID, p.cfg.IssuerURL, strconv.Quote(clip(meta.Issuer)), p.fl.template)
	}
	p.templateOK.Store(true)
	return nil
}

// Ready implements Provider.
func (p *Entra) Ready(ctx context.Context) error { return p.checkDiscovery(ctx) }

// AuthCodeURL implements Provider.
func (p *Entra) AuthCodeURL(ctx context.Context, a Attempt) (string, error) {
	if err := p.checkDiscovery(ctx); err != nil {
		return "", err
	}
	return p.OIDC.AuthCodeURL(ctx, a)
}

// CheckResponse implements Provider. A multi-tenant app's authorization
// response names the user's tenant's issuer when it names one (RFC 9207
// §2.4): it must be the template filled with an admitted tenant ID.
func (p *Entra) CheckResponse(ctx context.Context, q url.Values) error {
	if err := p.checkDiscovery(ctx); err != nil {
		return err
	}
	m, multi := p.flavor.(entraMulti)
	iss, present := q["iss"]
	if !multi || !present {
		return p.OIDC.CheckResponse(ctx, q)
	}
	if len(iss) != 1 {
		return fmt.Errorf("%w: several iss parameters", ErrMixUp)
	}
	tid := m.tenantOfIssuer(iss[0])
	if tid == "" {
		return fmt.Errorf("%w: iss parameter %s is not an Entra tenant issuer of the form %s", ErrMixUp, strconv.Quote(clip(iss[0])), m.template)
	}
	return m.admit(tid)
}

// Redeem implements Provider.
func (p *Entra) Redeem(ctx context.Context, code string, a Attempt) (*session.Session, error) {
	if err := p.checkDiscovery(ctx); err != nil {
		return nil, err
	}
	return p.OIDC.Redeem(ctx, code, a)
}

// Refresh implements the gateway's refresher (see OIDC.Refresh).
func (p *Entra) Refresh(ctx context.Context, s *session.Session) (*session.Session, error) {
	if err := p.checkDiscovery(ctx); err != nil {
		return nil, err
	}
	return p.OIDC.Refresh(ctx, s)
}

// EndSessionURL implements the gateway's endSessioner (see
// OIDC.EndSessionURL).
func (p *Entra) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect, state string) (string, error) {
	if err := p.checkDiscovery(ctx); err != nil {
		return "", err
	}
	return p.OIDC.EndSessionURL(ctx, idTokenHint, postLogoutRedirect, state)
}

// VerifyLogoutToken refuses logout tokens for a multi-tenant app: Entra
// does not send back-channel logout, and the generic check would not
// compare the tenant-specific iss.
func (p *Entra) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	if p.fl.multi() {
		return nil, fmt.Errorf("%w: back-channel logout is not supported for multi-tenant Entra apps", ErrInvalidLogoutToken)
	}
	return p.OIDC.VerifyLogoutToken(ctx, raw)
}

// graphGroups lists the groups the signed-in user is a member of, directly
// or through nested groups, from Microsoft Graph:
//
//	GET {graph_url}/v1.0/me/transitiveMemberOf?$select=id&$top=999
//
// following @odata.nextLink for at most maxGraphPages pages, and only to
// graph_url's own scheme and host under /v1.0/. Directory roles and
// administrative units in the answer are skipped; group IDs are returned
// in lower case, sorted.
//
// The access token must be for Graph: the default scopes (openid email
// profile) give one with User.Read, which Graph documents as enough for
// /me/transitiveMemberOf; tenants that restrict what it returns need the
// delegated permission GroupMember.Read.All (admin consent), requested as
// scope https://graph.microsoft.com/GroupMember.Read.All. 401 and 403 are
// ErrNotAdmitted naming that permission; 429 and 5xx are ErrUnavailable
// with the Retry-After Graph sent.
func graphGroups(ctx context.Context, client *http.Client, graphURL, accessToken string, timeout time.Duration) ([]string, error) {
	if accessToken == "" {
		return nil, fmt.Errorf("%w: groups overage: the token response has no access token to ask Microsoft Graph with", ErrNotAdmitted)
	}
	base, err := url.Parse(graphURL)
	if err != nil {
		return nil, fmt.Errorf("%w: graph_url: %v", ErrUnavailable, err)
	}
	// One budget for all pages, on top of the client's per-request timeout.
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	next := graphURL + "/v1.0/me/transitiveMemberOf?$select=id&$top=" + strconv.Itoa(graphPageSize)
	seen := map[string]bool{}
	for page := 0; next != ""; page++ {
		if page == maxGraphPages {
			return nil, fmt.Errorf("%w: Microsoft Graph: the user's group memberships take more than %d pages; portcullis reads at most %d", ErrNotAdmitted, maxGraphPages, maxGraphPages)
		}
		u, err := followable(base, "/v1.0/", next)
		if err != nil {
			return nil, fmt.Errorf("%w: Microsoft Graph: %v", ErrUnavailable, err)
		}
		var body struct {
			Value []struct {
				Type string `json:"@odata.type"`
				ID   string `json:"id"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := graphGet(ctx, client, u, accessToken, &body); err != nil {
			return nil, err
		}
		for _, o := range body.Value {
			if o.Type != "" && o.Type != "#microsoft.graph.group" {
				continue // a directory role or administrative unit
			}
			if !isGUID(o.ID) {
				return nil, fmt.Errorf("%w: Microsoft Graph: group id %s is not a GUID", ErrUnavailable, strconv.Quote(clip(o.ID)))
			}
			seen[strings.ToLower(o.ID)] = true
		}
		if len(seen) > maxGraphGroups {
			return nil, fmt.Errorf("%w: Microsoft Graph: the user is in more than %d groups; portcullis reads at most %d", ErrNotAdmitted, maxGraphGroups, maxGraphGroups)
		}
		next = body.Next
	}
	if len(seen) == 0 {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func graphGet(ctx context.Context, client *http.Client, u *url.URL, accessToken string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: Microsoft Graph: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: Microsoft Graph: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%w: Microsoft Graph answered %s%s", ErrUnavailable, resp.Status, retryHint(resp.Header))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: Microsoft Graph refused to list the user's groups (%s%s): the app registration needs the delegated permission GroupMember.Read.All with admin consent, and the access token must be for Graph (scopes openid email profile https://graph.microsoft.com/GroupMember.Read.All)",
			ErrNotAdmitted, resp.Status, graphErrorCode(resp))
	default:
		return fmt.Errorf("%w: Microsoft Graph answered %s%s", ErrUnavailable, resp.Status, graphErrorCode(resp))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: Microsoft Graph: decoding the answer: %v", ErrUnavailable, err)
	}
	return nil
}

// graphErrorCode returns ", <code>" from Graph's error body, for the log.
func graphErrorCode(resp *http.Response) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error.Code == "" {
		return ""
	}
	return ", " + strconv.Quote(clip(e.Error.Code))
}

// followable parses a next-page link (Graph's @odata.nextLink, GitHub's
// Link rel="next") and accepts it only on base's scheme and host, without
// userinfo, under base's path + under: the access token goes with it.
func followable(base *url.URL, under, next string) (*url.URL, error) {
	u, err := url.Parse(next)
	switch {
	case err != nil:
		return nil, fmt.Errorf("next-page link %s does not parse", strconv.Quote(clip(next)))
	case u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) || u.User != nil || u.Opaque != "":
		return nil, fmt.Errorf("refusing next-page link to %s: not %s://%s", strconv.Quote(clip(u.Scheme+"://"+u.Host)), base.Scheme, base.Host)
	case !strings.HasPrefix(u.EscapedPath(), base.EscapedPath()+under) || strings.Contains(u.Path, ".."):
		return nil, fmt.Errorf("refusing next-page link to path %s: not under %s", strconv.Quote(clip(u.EscapedPath())), base.EscapedPath()+under)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// retryHint turns a Retry-After header (RFC 9110 §10.2.3) into words.
func retryHint(h http.Header) string {
	ra := strings.TrimSpace(h.Get("Retry-After"))
	if ra == "" {
		return ""
	}
	if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
		return fmt.Sprintf("; Retry-After %ds", n)
	}
	if t, err := http.ParseTime(ra); err == nil {
		return "; Retry-After " + t.UTC().Format(time.RFC3339)
	}
	return ""
}

// isGUID reports whether s is a GUID in its 8-4-4-4-12 hex form, as Entra
// writes tenant and object IDs.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// clip shortens a value from a response for an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
