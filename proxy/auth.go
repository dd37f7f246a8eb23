package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/session"
)

// auth.go answers forward-auth calls. Which entry point a proxy calls
// decides only how the answer looks, never the decision:
//
//   - GET /oauth2/auth keeps oauth2-proxy's contract exactly, whatever
//     forwarded headers arrive: 202 with X-Auth-Request-* when allowed, 401
//     without a session, 403 when the policy denies; never a redirect. nginx
//     auth_request and ingress-nginx auth-url accept only 2xx, 401 and 403
//     from the subrequest and turn anything else, a 302 included, into a 500
//     (ngx_http_auth_request_module). oauth2-proxy's own nginx block sends
//     X-Forwarded-Uri, so the headers cannot tell nginx from Traefik: the
//     path does. The 401 still carries a sign-in link (page) or login_url
//     (JSON) for proxies that show it.
//   - GET /oauth2/forward_auth is the same decision for proxies that show the
//     answer to the browser as is (Traefik forwardAuth, Caddy forward_auth):
//     a browser without a session gets a 302 to sign-in, returning to the
//     original URL afterwards; API clients still get the 401.
//   - Envoy ext_authz (HTTP service, path_prefix /oauth2/auth): the original
//     method and path arrive as the check request's own, under
//     /oauth2/auth/. 200 when allowed; otherwise as /oauth2/forward_auth.
//
// The forwarded headers count only from server.trusted_proxies.

// Response headers for the ingress to copy to the upstream request.
const (
	hdrAuthUser              = "X-Auth-Request-User"
	hdrAuthEmail             = "X-Auth-Request-Email"
	hdrAuthGroups            = "X-Auth-Request-Groups"
	hdrAuthPreferredUsername = "X-Auth-Request-Preferred-Username"
	hdrAuthAccessToken       = "X-Auth-Request-Access-Token"
)

// auth is GET /oauth2/auth (nginx, ingress-nginx, and oauth2-proxy's
// documented Traefik and Caddy configurations, which turn the 401 into a
// redirect to /oauth2/sign_in themselves): never a redirect.
func (h *Handler) auth(w http.ResponseWriter, r *http.Request, rq *request) error {
	return h.authForwarded(w, r, rq, false)
}

// forwardAuth is GET /oauth2/forward_auth (Traefik forwardAuth, Caddy
// forward_auth pointed at it): browsers without a session are redirected.
func (h *Handler) forwardAuth(w http.ResponseWriter, r *http.Request, rq *request) error {
	return h.authForwarded(w, r, rq, true)
}

// authForwarded decides the request a trusted proxy forwarded. The query
// carries only the allowed_* narrowing: which entry point was called says
// whether browsers are redirected, so no parameter can change that.
func (h *Handler) authForwarded(w http.ResponseWriter, r *http.Request, rq *request, redirectBrowsers bool) error {
	// A request the gateway refuses to decide is refused. nginx takes only
	// 2xx, 401 and 403 from an auth subrequest and makes a 500 of anything
	// else (ngx_http_auth_request_module), so /oauth2/auth refuses with 403;
	// the proxies that show the answer as is get the 400 it is.
	refused := http.StatusForbidden
	if redirectBrowsers {
		refused = http.StatusBadRequest
	}
	t, err := h.forwardedTarget(rq.fwd)
	if err != nil {
		return errorf(refused, "The forwarded request is not accepted by this gateway.", err)
	}
	narrow, err := h.narrowing(r.URL.RawQuery)
	if err != nil {
		return errorf(refused, "The allowed_* parameters are not valid.", err)
	}
	return h.answerAuth(w, r, rq, t, narrow, redirectBrowsers, http.StatusAccepted)
}

// authEnvoy is /oauth2/auth/<original path> (Envoy ext_authz).
func (h *Handler) authEnvoy(w http.ResponseWriter, r *http.Request, rq *request) error {
	// The whole path is read with "%2F" kept only to cut the gateway's
	// own prefix off; the request judged is the tail, which admits "%2F"
	// where the route table says so (pass_encoded_slashes) and nowhere
	// else, as the same path sent to the reverse proxy would.
	_, raw, err := canonicalPathSlashes(r.URL.EscapedPath())
	if err != nil {
		return errorf(http.StatusBadRequest, "The request path is not accepted by this gateway.", err)
	}
	p, raw, err := h.routes.canonicalFor(r.Host, strings.TrimPrefix(raw, h.prefix+"/auth"))
	if err != nil {
		return errorf(http.StatusBadRequest, "The request path is not accepted by this gateway.", err)
	}
	t := Target{Method: r.Method, Host: normHost(r.Host), Path: p, Scheme: h.public.Scheme, HostPort: r.Host, RawPath: raw, Query: r.URL.RawQuery}
	if rq.fwd != nil && rq.fwd.proto != "" {
		if proto := strings.ToLower(rq.fwd.proto); proto == "http" || proto == "https" {
			t.Scheme = proto
		}
	}
	return h.answerAuth(w, r, rq, t, nil, true, http.StatusOK)
}

// envoyUpstreamCookie keeps the gateway's cookies from the application
// behind Envoy's HTTP ext_authz: Envoy sets on the upstream request the
// answer's headers that allowed_upstream_headers lists ("cookie" in
// docs/forward-auth.md), and removes those x-envoy-auth-headers-to-remove
// names. Nothing changes when the client sent no gateway cookie.
func (h *Handler) envoyUpstreamCookie(hdr, in http.Header) {
	kept, changed := h.upstreamCookie(in)
	switch {
	case !changed:
	case kept != "":
		hdr["Cookie"] = []string{kept}
	default:
		hdr["X-Envoy-Auth-Headers-To-Remove"] = []string{"cookie"}
	}
}

// noStore is the Cache-Control value of every forward-auth answer, shared:
// header maps are only ever given a new slice, never written through.
var noStore = []string{"no-store"}

// answerAuth decides t and renders the answer the way proxies asking for
// forward-auth understand it.
func (h *Handler) answerAuth(w http.ResponseWriter, r *http.Request, rq *request, t Target, narrow []*rule, redirectBrowsers bool, okStatus int) error {
	t.Also = overrideMethods(r.Header, t.Query) // the query of the request judged, not of the subrequest
	// The proxy gets this answer, not the browser, and may pass on one
	// Set-Cookie only (nginx auth_request_set): the cookie store re-issues
	// a refreshed session here only as one cookie, and otherwise carries
	// it on this replica until the browser's cookie catches up
	// (session/carry.go).
	r = session.ForwardAuthRequest(r)
	m := h.match(r, rq, t)
	d, s, err := h.decide(w, r, rq, &m, narrow)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr["Cache-Control"] = noStore
	switch d.Outcome {
	case Allow:
		if s != nil {
			if err := h.authHeaders(hdr, s, t.Scheme+"://"+strings.ToLower(t.HostPort)); err != nil {
				return err
			}
		}
		if rq.route == envoyHTTPRoute {
			h.envoyUpstreamCookie(hdr, r.Header)
		}
		w.WriteHeader(okStatus)
		return nil
	case SignIn:
		if redirectBrowsers && !d.API && !wantsJSON(r) {
			setPageHeaders(hdr)
			found(w, h.loginURL(t.url(), d.Provider))
			return nil
		}
		returnTo := t.url()
		if page := referringPage(r, t); page != "" && (d.API || wantsJSON(r)) {
			returnTo = page
		}
		return &httpError{Code: http.StatusUnauthorized, Msg: "Sign in first.", LoginURL: h.loginURL(returnTo, d.Provider), Err: errNoSession}
	}
	return denied(d, s)
}

// authHeaders sets the identity response headers the ingress copies
// upstream (nginx: auth_request_set; Traefik: authResponseHeaders; Envoy:
// allowed_upstream_headers), and the signed assertion (assertion.header,
// a JWT per RFC 7519) for audience, the original request's origin. The
// X-Auth-Request-* headers stay as oauth2-proxy has them; the assertion is
// one more header an ingress may copy. No answer goes out without it.
func (h *Handler) authHeaders(hdr http.Header, s *session.Session, audience string) error {
	a, err := h.asserter.header(s, audience)
	if err != nil {
		return fmt.Errorf("signing the identity assertion: %w", err)
	}
	hdr[h.authAssertion] = a
	vals := make(headerValues, 0, 6)
	h.identityValues(s, func(name, v string) { hdr[name] = vals.one(v) }, nil,
		hdrAuthUser, hdrAuthEmail, hdrAuthGroups, hdrAuthPreferredUsername)
	if s.AccessToken != "" {
		if h.cfg.Headers.AuthRequestAccessToken {
			hdr[hdrAuthAccessToken] = vals.one(s.AccessToken)
		}
		if h.cfg.Headers.AuthRequestAuthorization {
			hdr["Authorization"] = vals.one("Bearer " + s.AccessToken)
		}
	}
	return nil
}

// narrowing compiles the oauth2-proxy compatible allowed_groups,
// allowed_emails and allowed_email_domains query parameters (comma
// separated, repeatable). Each present parameter is one more rule the
// identity must pass, so they can only narrow what the policy allows.
// Ingress configurations send the same few strings over and over; compiled
// rules are cached.
func (h *Handler) narrowing(rawQuery string) ([]*rule, error) {
	if rawQuery == "" {
		return nil, nil
	}
	if v, ok := h.narrowCache.Load(rawQuery); ok {
		return v.([]*rule), nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					out = append(out, e)
				}
			}
		}
		return out
	}
	var rules []*rule
	for _, p := range []struct {
		name                   string
		emails, domains, group []string
	}{
		{name: "allowed_groups", group: list("allowed_groups")},
		{name: "allowed_emails", emails: list("allowed_emails")},
		{name: "allowed_email_domains", domains: list("allowed_email_domains")},
	} {
		if _, present := q[p.name]; !present {
			continue
		}
		r, err := compileRule(p.name, p.emails, p.domains, p.group, nil)
		if err != nil {
			return nil, err
		}
		// A parameter that names nobody denies everyone: narrowing to
		// nothing leaves nothing.
		rules = append(rules, r)
	}
	if h.narrowCount.Add(1) <= 1024 {
		h.narrowCache.Store(rawQuery, rules)
	}
	return rules, nil
}

// narrowCacheSet is embedded in Handler.
type narrowCacheSet struct {
	narrowCache sync.Map
	narrowCount atomicCounter
}
