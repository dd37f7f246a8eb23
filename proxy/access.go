package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// access.go is the step every mode shares between routing and the answer:
// find who is asking (the session, kept valid, or a bearer token) when the
// match says it matters, ask the decision, and count and audit it. Each
// mode (reverse proxy, forward-auth) then renders the decision its own way.

// decide identifies the requester as m needs and decides m for them.
// narrow, when set, must also admit the identity. The session is returned
// for the answer (identity headers), nil when none was loaded.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, rq *request, m *Match, narrow []*rule) (Decision, *session.Session, error) {
	s, via, err := h.identify(w, r, rq, m)
	if err != nil {
		return Decision{}, nil, err
	}
	d := m.Decide(s, via, narrow)
	user := ""
	if s != nil && m.NeedsIdentity() {
		user = h.userValue(s)
	}
	rq.decided(d, user)
	if d.Outcome != NotFound {
		h.metrics.decision(d.outcomeLabel(), d.ruleLabel())
	}
	if d.Outcome == Deny {
		h.audit(r, rq, "denied", s, slog.String("route", rq.route), slog.String("rule", d.Rule()))
	}
	if d.ExprFailed {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "policy expression failed to evaluate; the request is denied",
			slog.String("id", rq.id), slog.String("rule", d.Rule()))
		h.metrics.exprError(d.ruleLabel())
	}
	return d, s, nil
}

// identify finds who is asking, as far as m needs to know: nobody when the
// decision is settled; on a public route the session if there is one (a
// store failure must not break the route); else a bearer token where the
// route takes one, or the session, refreshed or ended as its lifecycle
// says.
func (h *Handler) identify(w http.ResponseWriter, r *http.Request, rq *request, m *Match) (*session.Session, Via, error) {
	if !m.NeedsIdentity() {
		if m.Public() && !m.Anonymous() {
			s, _ := h.loadSession(r)
			return s, ViaSession, nil
		}
		return nil, ViaSession, nil
	}
	if h.devices != nil && m.AcceptsDevice() {
		if token, ok := bearerToken(r); ok && strings.HasPrefix(token, deviceTokenPrefix) {
			s, err := h.deviceSession(r, token)
			return s, ViaDevice, err
		}
	}
	if m.AcceptsBearer() {
		if token, ok := bearerToken(r); ok {
			s, err := h.bearerSession(r, token)
			return s, ViaBearer, err
		}
	}
	s, err := h.loadSession(r)
	if err != nil || s == nil {
		return nil, ViaSession, err
	}
	s, err = h.maintain(w, r, rq, s)
	return s, ViaSession, err
}

// loadSession returns the request's session, nil when there is none (or
// none that can be trusted), or an error when the store failed.
func (h *Handler) loadSession(r *http.Request) (*session.Session, error) {
	s, err := h.sessions.Load(r)
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, session.ErrNoSession):
		return nil, nil
	case errors.Is(err, session.ErrAmbiguousCookie):
		// Possible cookie tossing: worth a warning. The reason names no
		// cookie value.
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "session cookie refused: sent twice with different values",
			slog.String("reason", err.Error()))
		return nil, nil
	case session.IsAbsent(err):
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "session cookie rejected", slog.String("reason", err.Error()))
		return nil, nil
	}
	return nil, errorf(http.StatusServiceUnavailable, "Sessions are unavailable right now. Please try again shortly.", err)
}

// overrideMethods returns the methods the request's method-override
// headers name, upper-cased; nil (no allocation) when there are none.
func overrideMethods(hdr http.Header, rawQuery string) []string {
	var out []string
	for k, vs := range hdr {
		if !methodOverrideHeaders.has(k) {
			continue
		}
		for _, v := range vs {
			out = append(out, strings.ToUpper(strings.TrimSpace(v)))
		}
	}
	return append(out, queryMethods(rawQuery)...)
}

// queryMethods are the methods a `_method` query parameter names (Rails'
// Rack::MethodOverride, Laravel and Symfony read it from the body of a
// POST form, some configurations from the query too). A query is the
// client's, so it cannot be removed; it is judged instead. Only a query
// that mentions "method" in some case is parsed.
func queryMethods(raw string) []string {
	if !containsFold(raw, "method") {
		return nil
	}
	var out []string
	// Split on ';' too: older Rack and some PHP setups do.
	for _, pair := range strings.FieldsFunc(raw, func(c rune) bool { return c == '&' || c == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue // a pair Go cannot decode names no method a framework would run either
		}
		if v = strings.TrimSpace(v); v != "" && strings.EqualFold(strings.TrimSpace(k), "_method") {
			out = append(out, strings.ToUpper(v))
		}
	}
	return out
}

// bearerToken returns the token of an Authorization: Bearer header
// (RFC 6750 §2.1; the scheme is case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// BearerVerifier checks machine clients' tokens (providers.BearerVerifier).
type BearerVerifier interface {
	Verify(ctx context.Context, token string) (*session.Identity, error)
}

var _ BearerVerifier = (*providers.BearerVerifier)(nil)

// bearerSession verifies a bearer token into a session that lives for this
// request only. A refused token is a 401 with WWW-Authenticate (RFC 6750
// §3.1), never a redirect.
func (h *Handler) bearerSession(r *http.Request, token string) (*session.Session, error) {
	if h.bearer == nil {
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "Bearer tokens are not configured on this gateway.",
			Err: errors.New("bearer token on a bearer route, but no bearer section"), bearer: true}
	}
	id, err := h.bearer.Verify(r.Context(), token)
	switch {
	case errors.Is(err, providers.ErrUnavailable):
		return nil, errorf(http.StatusServiceUnavailable, "The token issuer cannot be reached right now. Please try again shortly.", err)
	case err != nil:
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "The bearer token is not valid.", Err: err, bearer: true}
	}
	if err := checkEmail(id.Email); err != nil {
		// As at the callback: a malformed address is refused, not matched
		// by an email rule or forwarded.
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "The bearer token is not valid.", Err: err, bearer: true}
	}
	return &session.Session{Identity: *id}, nil
}

// unauthenticated answers a request without a session: API clients and
// requests on policy.api_routes get a 401 with a login_url; browsers go
// straight to the provider when the route pins one or only one is
// configured, else to the sign-in page. A browser's POST (or PUT, DELETE:
// anything but GET, HEAD, OPTIONS) is kept for after the sign-in when it
// can be, else answered with a page that says it was not
// (unauthenticatedPost).
// The sign-in comes back to t, or for an API call to the page that made
// it (referringPage).
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, rq *request, t Target, pinned string) error {
	returnTo := t.uri()
	if rq.d.API || wantsJSON(r) {
		if page := referringPage(r, t); page != "" {
			returnTo = page
		}
		return &httpError{Code: http.StatusUnauthorized, Msg: "Sign in first.", LoginURL: h.loginURL(returnTo, pinned), Err: errNoSession}
	}
	p := h.providers.Get(pinned)
	if p == nil {
		p = h.providers.Only()
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return h.unauthenticatedPost(w, r, rq, t, p)
	}
	if p == nil {
		setPageHeaders(w.Header())
		found(w, h.loginURL(returnTo, ""))
		return nil
	}
	return h.beginLogin(w, r, rq, p, returnTo, "", "")
}

// referringPage is where a single-page app's sign-in should come back to
// after its fetch or XHR got a 401: the page that made the call, which the
// browser names in Referer (RFC 9110 §10.1.3), when it is of t's own
// origin; "" otherwise. Returning to the API URL itself would show the
// user raw JSON. The loginURL's rd still passes the redirect policy.
func referringPage(r *http.Request, t Target) string {
	ref := r.Header.Get("Referer")
	if ref == "" || len(ref) > redirectMaxLen {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil || u.User != nil || !strings.EqualFold(u.Scheme, t.Scheme) || !strings.EqualFold(u.Host, t.HostPort) {
		return ""
	}
	u.Fragment, u.RawFragment = "", "" // never sent, but a client could
	return u.String()
}

// denied is the error for a request the decision refused; s is who asked,
// nil when nobody's identity was looked at.
func denied(d Decision, s *session.Session) error {
	msg := "You are signed in, but not allowed to use this application."
	if s == nil {
		msg = "This request is not allowed."
	}
	if m := d.DenyMessage(); m != "" {
		msg = m
	}
	sub := "-"
	if s != nil {
		sub = s.Subject
	}
	return &httpError{Code: http.StatusForbidden, Msg: msg, Remediation: d.Remediation(), Err: fmt.Errorf("denied %s by %s", sub, d.Rule())}
}

// errNoSession marks 401s for requests without a session.
var errNoSession = errors.New("no session")
