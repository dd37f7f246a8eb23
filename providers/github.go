package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis/portcullis/session"
)

// github.go signs users in with GitHub (github.com or GitHub Enterprise
// Server) as a plain OAuth2 client: there is no ID token, so the identity is
// read from the REST API with the access token.
//
//   - Issuer is https://github.com, or base_url for GitHub Enterprise Server;
//     Subject is the numeric user id (logins can be renamed and reused),
//     PreferredUsername the login.
//   - Email: only the address /user/emails marks primary and verified. With
//     none, the identity has no email (sign-in succeeds, email rules match
//     nothing). insecure_allow_unverified_email is refused for this type.
//   - Groups: each organisation login ("my-org") and each team
//     ("my-org/team-slug"), in lower case, read from /user/orgs and
//     /user/teams when the scopes include read:org (the default when orgs or
//     teams is set; add it to scopes to get groups without a restriction).
//   - orgs / teams: when either is set, the user must belong to one of the
//     organisations or one of the teams, else ErrNotAdmitted. An
//     organisation that restricts OAuth app access must approve the app.
//   - No refresh and no end-session endpoint: sessions last their own
//     lifetime. Ready does no I/O (unauthenticated API calls would spend the
//     gateway's small anonymous rate limit).

const (
	githubDotCom = "https://github.com"
	githubAPI    = "https://api.github.com"
	// githubAPIVersion is the REST API version asked for.
	githubAPIVersion = "2022-11-28"
	// maxGitHubPages bounds each paginated list (100 entries a page).
	maxGitHubPages = 10
)

// GitHub is the GitHub OAuth2 provider.
type GitHub struct {
	cfg    Config
	opts   Options
	client *http.Client
	oauth  *oauth2.Config
	api    *url.URL // https://api.github.com, or base_url/api/v3
	// readOrgs: the scopes let /user/orgs and /user/teams list private
	// memberships.
	readOrgs   bool
	readEmails bool
}

var _ Provider = (*GitHub)(nil)

func newGitHub(cfg Config, opts Options) (Provider, error) {
	web, api := githubDotCom, githubAPI
	if cfg.BaseURL != "" {
		web, api = cfg.BaseURL, cfg.BaseURL+"/api/v3"
	}
	apiURL, err := url.Parse(api)
	if err != nil {
		return nil, fmt.Errorf("providers: %s: base_url: %w", cfg.ID, err)
	}
	return &GitHub{
		cfg:    cfg,
		opts:   opts,
		client: newHTTPClient(opts.Transport, cfg.Timeout),
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  web + "/login/oauth/authorize",
				TokenURL: web + "/login/oauth/access_token",
				// GitHub documents client_id and client_secret as form
				// parameters; no auto-detection retrying the other style.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: opts.RedirectURL,
			Scopes:      cfg.Scopes,
		},
		api:        apiURL,
		readOrgs:   slices.ContainsFunc(cfg.Scopes, orgScope),
		readEmails: slices.Contains(cfg.Scopes, "user:email") || slices.Contains(cfg.Scopes, "user"),
	}, nil
}

// orgScope reports whether scope lets the token read private organisation
// and team memberships.
func orgScope(scope string) bool {
	return scope == "read:org" || scope == "write:org" || scope == "admin:org"
}

// validateGitHub checks the keys type github adds; c has its defaults.
func (c *Config) validateGitHub(bad func(format string, args ...any)) {
	if c.BaseURL != "" {
		if problem := plainURLProblem(c.BaseURL); problem != "" {
			bad("base_url %s", problem)
		}
	}
	if c.InsecureAllowUnverifiedEmail {
		bad("insecure_allow_unverified_email is not accepted for type github: GitHub says which addresses are verified, and only the verified primary address is used")
	}
	if (len(c.Orgs) > 0 || len(c.Teams) > 0) && !slices.ContainsFunc(c.Scopes, orgScope) {
		bad("orgs and teams need the scope read:org, or private memberships are invisible and members are turned away")
	}
	for _, o := range c.Orgs {
		if o == "" || strings.ContainsAny(o, "/ ") {
			bad("orgs: %q is not an organisation login", o)
		}
	}
	for _, t := range c.Teams {
		org, slug, ok := strings.Cut(t, "/")
		if !ok || org == "" || slug == "" || strings.ContainsAny(slug, "/ ") {
			bad("teams: %q: want org/team-slug", t)
		}
	}
}

// ID implements Provider.
func (g *GitHub) ID() string { return g.cfg.ID }

// Name is the display name.
func (g *GitHub) Name() string { return g.cfg.Name }

// Issuer implements Provider: the GitHub instance, which with the numeric
// user id keys sessions.
func (g *GitHub) Issuer() string { return g.cfg.IssuerURL }

// Ready implements Provider. There is no discovery to wait for.
func (g *GitHub) Ready(context.Context) error { return nil }

// AuthCodeURL implements Provider: state and an S256 PKCE challenge (RFC
// 7636 §4.2; GitHub checks it for OAuth apps). There is no nonce without
// OpenID Connect; the code is bound to the attempt by state and PKCE.
func (g *GitHub) AuthCodeURL(_ context.Context, a Attempt) (string, error) {
	return g.oauth.AuthCodeURL(a.State, oauth2.S256ChallengeOption(a.Verifier)), nil
}

// CheckResponse implements Provider. GitHub sends no iss parameter (RFC
// 9207); one that is present must name this instance.
func (g *GitHub) CheckResponse(_ context.Context, q url.Values) error {
	if iss, present := q["iss"]; present && (len(iss) != 1 || iss[0] != g.Issuer()) {
		return fmt.Errorf("%w: iss parameter is not %s", ErrMixUp, g.Issuer())
	}
	return nil
}

// Redeem implements Provider: exchange the code with the PKCE verifier
// (GitHub answers a bad code with 200 and an error field, which x/oauth2
// reports as an error), then read the user, the verified primary email and
// the memberships, and apply the orgs / teams restriction.
func (g *GitHub) Redeem(ctx context.Context, code string, a Attempt) (*session.Session, error) {
	tok, err := g.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, g.client), code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		return nil, exchangeError(err)
	}
	// One budget for all API calls, on top of the per-request timeout.
	ctx, cancel := context.WithTimeout(ctx, 3*g.cfg.Timeout)
	defer cancel()
	id, err := g.identity(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	if err := checkHeaderSafe(ErrInvalidToken, &id); err != nil {
		return nil, err
	}
	// No refresh token is kept: there is no Refresh for GitHub.
	return &session.Session{
		Identity:    id,
		Provider:    g.cfg.ID,
		TokenExpiry: tok.Expiry,
		AccessToken: tok.AccessToken,
	}, nil
}

func (g *GitHub) identity(ctx context.Context, token string) (session.Identity, error) {
	var user struct {
		ID    json.Number `json:"id"`
		Login string      `json:"login"`
		Name  string      `json:"name"`
	}
	if _, err := g.get(ctx, token, g.apiURL("/user"), &user); err != nil {
		return session.Identity{}, err
	}
	uid, err := strconv.ParseInt(user.ID.String(), 10, 64)
	if err != nil || uid <= 0 || user.Login == "" {
		return session.Identity{}, fmt.Errorf("%w: GitHub /user has no numeric id or no login", ErrInvalidToken)
	}
	id := session.Identity{
		Issuer:            g.Issuer(),
		Subject:           strconv.FormatInt(uid, 10),
		Name:              user.Name,
		PreferredUsername: user.Login,
	}
	if g.readEmails {
		var emails []struct {
			Email    string `json:"email"`
			Primary  bool   `json:"primary"`
			Verified bool   `json:"verified"`
		}
		if _, err := g.get(ctx, token, g.apiURL("/user/emails?per_page=100"), &emails); err != nil {
			return session.Identity{}, err
		}
		for _, e := range emails {
			if e.Primary && e.Verified && e.Email != "" {
				id.Email, id.EmailVerified = e.Email, true
			}
		}
	}
	if g.readOrgs {
		if id.Groups, err = g.memberships(ctx, token); err != nil {
			return session.Identity{}, err
		}
	}
	if err := g.admit(id.Groups); err != nil {
		return session.Identity{}, err
	}
	return id, nil
}

// memberships returns the user's organisations and teams as groups.
func (g *GitHub) memberships(ctx context.Context, token string) ([]string, error) {
	var groups []string
	err := g.pages(ctx, token, "/user/orgs", func(raw json.RawMessage) error {
		var orgs []struct {
			Login string `json:"login"`
		}
		if err := json.Unmarshal(raw, &orgs); err != nil {
			return err
		}
		for _, o := range orgs {
			if o.Login != "" {
				groups = append(groups, strings.ToLower(o.Login))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = g.pages(ctx, token, "/user/teams", func(raw json.RawMessage) error {
		var teams []struct {
			Slug         string `json:"slug"`
			Organization struct {
				Login string `json:"login"`
			} `json:"organization"`
		}
		if err := json.Unmarshal(raw, &teams); err != nil {
			return err
		}
		for _, t := range teams {
			if t.Slug != "" && t.Organization.Login != "" {
				groups = append(groups, strings.ToLower(t.Organization.Login+"/"+t.Slug))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// admit applies orgs and teams: with either set, one must match (GitHub
// logins and slugs compare without case).
func (g *GitHub) admit(groups []string) error {
	if len(g.cfg.Orgs) == 0 && len(g.cfg.Teams) == 0 {
		return nil
	}
	for _, want := range append(slices.Clone(g.cfg.Orgs), g.cfg.Teams...) {
		if slices.Contains(groups, strings.ToLower(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: the GitHub user is in none of the organisations %v or teams %v", ErrNotAdmitted, g.cfg.Orgs, g.cfg.Teams)
}

// pages GETs path?per_page=100 and the pages its Link header names
// (rel="next"), at most maxGitHubPages, each only on the API's own host.
func (g *GitHub) pages(ctx context.Context, token, path string, each func(json.RawMessage) error) error {
	next := g.apiURL(path + "?per_page=100")
	for page := 0; next != ""; page++ {
		if page == maxGitHubPages {
			return fmt.Errorf("%w: GitHub %s has more than %d pages; portcullis reads at most %d", ErrNotAdmitted, path, maxGitHubPages, maxGitHubPages)
		}
		var raw json.RawMessage
		link, err := g.get(ctx, token, next, &raw)
		if err != nil {
			return err
		}
		if err := each(raw); err != nil {
			return fmt.Errorf("%w: GitHub %s: decoding the answer: %v", ErrUnavailable, path, err)
		}
		next = ""
		if n := nextLink(link); n != "" {
			u, err := followable(g.api, "/", n)
			if err != nil {
				return fmt.Errorf("%w: GitHub %s: %v", ErrUnavailable, path, err)
			}
			next = u.String()
		}
	}
	return nil
}

func (g *GitHub) apiURL(pathAndQuery string) string {
	return g.api.String() + pathAndQuery
}

// get calls the REST API and decodes a 200 answer into v, returning the
// Link header. Errors are sorted for the gateway: rate limits and 5xx are
// ErrUnavailable (saying when to retry), 401 ErrRejected (the token is not
// accepted), 403 and 404 ErrNotAdmitted (a missing scope, or an
// organisation's OAuth app restriction), any other status ErrRejected.
func (g *GitHub) get(ctx context.Context, token, rawURL string, v any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("%w: GitHub API: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "portcullis")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: GitHub API: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	what := "GitHub " + req.URL.Path
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case (code == http.StatusForbidden || code == http.StatusTooManyRequests) && rateLimited(resp.Header):
		return "", fmt.Errorf("%w: %s: rate limited (%s)%s", ErrUnavailable, what, resp.Status, githubRetryHint(resp.Header))
	case code == http.StatusTooManyRequests || code >= 500:
		return "", fmt.Errorf("%w: %s answered %s%s", ErrUnavailable, what, resp.Status, retryHint(resp.Header))
	case code == http.StatusUnauthorized:
		return "", fmt.Errorf("%w: %s answered %s: the access token was not accepted", ErrRejected, what, resp.Status)
	case code == http.StatusForbidden || code == http.StatusNotFound:
		return "", fmt.Errorf("%w: %s answered %s: the token lacks a scope (%s), or an organisation restricts OAuth app access", ErrNotAdmitted, what, resp.Status, strings.Join(g.cfg.Scopes, " "))
	default:
		return "", fmt.Errorf("%w: %s answered %s", ErrRejected, what, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return "", fmt.Errorf("%w: %s: decoding the answer: %v", ErrUnavailable, what, err)
	}
	return resp.Header.Get("Link"), nil
}

// rateLimited reports GitHub's primary limit (X-RateLimit-Remaining: 0) or
// a secondary limit (Retry-After).
func rateLimited(h http.Header) bool {
	return h.Get("X-RateLimit-Remaining") == "0" || h.Get("Retry-After") != ""
}

// githubRetryHint says when the limit lifts: Retry-After, or the primary
// limit's X-RateLimit-Reset (Unix seconds).
func githubRetryHint(h http.Header) string {
	if hint := retryHint(h); hint != "" {
		return hint
	}
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil && s > 0 {
		return "; resets at " + time.Unix(s, 0).UTC().Format(time.RFC3339)
	}
	return ""
}

// nextLink returns the rel="next" target of a Link header (RFC 8288), or "".
func nextLink(header string) string {
	for _, part := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			if slices.Contains(strings.Fields(strings.ToLower(strings.Trim(strings.TrimSpace(v), `"`))), "next") {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}
