package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// start begins a sign-in: /oauth2/start?rd=/where/to/return.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, rq *request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "Use GET to sign in.", fmt.Errorf("method %s", r.Method))
	}
	rd := r.URL.Query().Get("rd")
	if rd == "" && rq.fwd != nil && !h.ownEndpoint(rq.fwd.redirect) {
		// nginx's error_page 401 = /oauth2/start passes the original URI
		// in X-Auth-Request-Redirect (from a trusted proxy only), which spares
		// nginx from escaping it into a query parameter. A visit to /start
		// itself carries its own URI there; returning to it would loop.
		rd = rq.fwd.redirect
	}
	if rd == "" {
		rd = "/"
	}
	hint := h.loginHint(r)
	if id := r.URL.Query().Get("provider"); id != "" {
		p := h.providers.Get(id)
		if p == nil {
			return errorf(http.StatusBadRequest, "There is no such identity provider.", fmt.Errorf("unknown provider %q", truncate(id, 64)))
		}
		return h.beginLogin(w, r, rq, p, rd, hint, "")
	}
	if p := h.providers.Only(); p != nil {
		return h.beginLogin(w, r, rq, p, rd, hint, "")
	}
	return h.signInPage(w, rq, h.redirects.safe(rd), hint)
}

// loginHint is /start's login_hint parameter when it may be passed on to
// the provider (OpenID Connect Core §3.1.2.1: a hint, so one that is too
// long or not printable is dropped, with a debug line, not refused).
func (h *Handler) loginHint(r *http.Request) string {
	hint := r.URL.Query().Get("login_hint")
	if hint == "" || providers.LoginHint(hint) {
		return hint
	}
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "login_hint dropped: too long or not printable", slog.Int("bytes", len(hint)))
	return ""
}

// signInPage lists the providers, each a plain link: no JavaScript needed.
func (h *Handler) signInPage(w http.ResponseWriter, rq *request, rd, hint string) error {
	data := pageData{Title: h.cfg.UI.Title, RequestID: rq.id}
	if data.Title == "" {
		data.Title = "Sign in"
	}
	for _, p := range h.providers.All() {
		u := h.loginURL(rd, p.ID())
		if hint != "" {
			u += "&" + url.Values{"login_hint": {hint}}.Encode() // loginURL's has provider
		}
		data.Providers = append(data.Providers, providerLink{Name: p.Name(), URL: u})
	}
	h.pages.write(w, http.StatusOK, "sign_in", data)
	return nil
}

// loginURL is the sign-in URL that returns to rd, through provider when
// one is named.
func (h *Handler) loginURL(rd, provider string) string {
	q := url.Values{}
	// The link already carries only a target the redirect policy admits
	// (RFC 9700 §4.11.1), not whatever a forwarded Host said: /start
	// checks it again, but a link to it must not advertise an open
	// redirect either.
	if rd != "" && rd != "/" {
		rd = h.redirects.safe(rd)
	}
	if rd != "" && rd != redirectFallback {
		q.Set("rd", rd)
	}
	if provider != "" {
		q.Set("provider", provider)
	}
	u := h.public.String() + h.prefix + "/start"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// returnMarkMax bounds the rd a state carries: providers and proxies cap
// URL lengths, and a longer rd still works while the login cookie lives.
const returnMarkMax = 512

// returnMark is what beginLogin appends to a state so that where the user
// was going survives the login cookie (10 minutes): ".<rd>.<MAC>", rd
// base64url, already admitted by the redirect policy. The state stays
// bound to this browser by the login cookie (RFC 6749 §10.12); the mark
// only tells the "link expired" page where "Sign in" returns to.
func (h *Handler) returnMark(rd string) string {
	if rd == redirectFallback || len(rd) > returnMarkMax {
		return ""
	}
	return "." + base64.RawURLEncoding.EncodeToString([]byte(rd)) + "." + h.keys.MAC(session.PurposeCSRF, "return", rd)
}

// markedReturn is the rd a state's mark carries, validated again by the
// redirect policy; "/" for a state without a valid one.
func (h *Handler) markedReturn(state string) string {
	parts := strings.Split(state, ".")
	if len(parts) != 3 || len(state) > 2*returnMarkMax {
		return redirectFallback
	}
	rd, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !h.keys.VerifyMAC(parts[2], session.PurposeCSRF, "return", string(rd)) {
		return redirectFallback
	}
	return h.redirects.safe(string(rd))
}

// ownEndpoint reports whether a request-target points into the gateway's
// own endpoints.
func (h *Handler) ownEndpoint(uri string) bool {
	path, _, _ := strings.Cut(uri, "?")
	return path == h.prefix || strings.HasPrefix(path, h.prefix+"/")
}

// beginLogin remembers a fresh attempt (state, nonce, PKCE verifier) in its
// own login cookie and sends the browser to the provider. rd is validated
// now and again after the callback. post, when set, redeems the form post
// the attempt keeps (preserve.go).
func (h *Handler) beginLogin(w http.ResponseWriter, r *http.Request, rq *request, p providers.Provider, rd, hint, post string) error {
	if pr, ok := p.(providers.Prober); ok {
		// Discovery is kept once it succeeded; whether the provider
		// answers now is another matter: never send a browser to a
		// provider that is down.
		if err := pr.Reachable(r.Context()); err != nil {
			return providerDown(err)
		}
	}
	a := providers.NewAttempt()
	a.LoginHint = hint
	rd = h.loginReturn(r, rq, rd)
	a.State += h.returnMark(rd)
	authURL, err := p.AuthCodeURL(r.Context(), a)
	if err != nil {
		return providerDown(err)
	}
	st := &session.LoginState{
		State:      a.State,
		Nonce:      a.Nonce,
		Verifier:   a.Verifier,
		RedirectTo: rd,
		Provider:   p.ID(),
		Issuer:     p.Issuer(),
		Post:       post,
	}
	if err := h.login.Begin(w, r, st); err != nil {
		return fmt.Errorf("starting sign-in: %w", err)
	}
	setPageHeaders(w.Header())
	found(w, authURL)
	return nil
}

// loginReturnMax bounds the deep link a login cookie carries: with the
// state, nonce, verifier and provider, sealed twice over in base64, it
// must stay within the 4096 bytes a browser keeps of a cookie (RFC 6265
// §6.1).
const loginReturnMax = 1024

// loginReturn is where a sign-in comes back to: rd as the redirect policy
// admits it, without its query when that is longer than a login cookie
// can carry (logged), rather than a sign-in that cannot start.
func (h *Handler) loginReturn(r *http.Request, rq *request, rd string) string {
	rd = h.redirects.safe(rd)
	if len(rd) <= loginReturnMax {
		return rd
	}
	short, _, _ := strings.Cut(rd, "?")
	if len(short) > loginReturnMax {
		short = redirectFallback
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "deep link too long to carry through the sign-in; returning without its query",
		slog.String("id", rq.id), slog.Int("bytes", len(rd)), slog.Int("max", loginReturnMax))
	return h.redirects.safe(short)
}

// callback finishes a sign-in. The order is the security argument: the
// state must match this browser's login cookie before anything else of the
// response is believed (RFC 9700 §4.7.1, RFC 6749 §10.12); the issuer is
// checked before the code is redeemed (RFC 9207 §2.4); the ID token is
// verified before any identity is taken from it (RFC 9700 §4.5.3.2).
func (h *Handler) callback(w http.ResponseWriter, r *http.Request, rq *request) error {
	if r.Method != http.MethodGet {
		return h.signInFailed(r, rq, "", errorf(http.StatusMethodNotAllowed, "This address only accepts the identity provider's redirect.", fmt.Errorf("method %s", r.Method)))
	}
	q, err := responseParams(r.URL.RawQuery)
	if err != nil {
		return h.signInFailed(r, rq, "", &httpError{Code: http.StatusBadRequest, LoginURL: h.loginURL("/", ""), Err: err,
			Msg: "This sign-in response is malformed. Please sign in again."})
	}
	st, err := h.login.Take(w, r, q.Get("state"))
	if err != nil {
		// The login cookie expired (or was lost): the state still says,
		// signed, where the user was going.
		return h.signInFailed(r, rq, "", &httpError{Code: http.StatusBadRequest, Heading: "This sign-in link has expired",
			LoginURL: h.loginURL(h.markedReturn(q.Get("state")), ""), Err: err,
			Msg: "This sign-in link is no longer valid: it expired, was already used, or was started in another browser."})
	}
	s, err := h.completeSignIn(r, q, st)
	if err != nil {
		return h.signInFailed(r, rq, st.Provider, err)
	}
	h.keepNeededTokens(r.Context(), s)
	// A fresh session at every sign-in: nothing from a previous cookie
	// carries over (no session fixation).
	s.CreatedAt, s.ExpiresAt, s.LastSeen = time.Time{}, time.Time{}, h.now()
	if err := h.saveNew(w, r, rq, s); err != nil {
		return h.signInFailed(r, rq, st.Provider, err)
	}
	rq.user = h.userValue(s)
	h.metrics.signIn(s.Provider, "success")
	h.audit(r, rq, "sign_in", s)
	h.noteAmbiguous(r.Context(), rq, s, "sign_in")
	if st.Post != "" {
		h.resubmit(w, r, rq, s, st)
		return nil
	}
	setPageHeaders(w.Header())
	found(w, h.redirects.safe(st.RedirectTo))
	return nil
}

// signInFailed counts and audits a failed sign-in and returns its error.
func (h *Handler) signInFailed(r *http.Request, rq *request, provider string, err error) error {
	reason := signInFailure(err)
	if provider == "" {
		provider = "unknown"
	}
	h.metrics.signIn(provider, reason)
	h.audit(r, rq, "sign_in_failed", nil, slog.String("provider", provider), slog.String("reason", reason))
	return err
}

// signInFailure names why a sign-in failed, from a fixed vocabulary (it is
// a metric label).
func signInFailure(err error) string {
	switch {
	case errors.Is(err, session.ErrNoLogin), errors.Is(err, session.ErrLoginMismatch), errors.Is(err, errStateReplayed):
		return "state_invalid"
	case errors.Is(err, errMalformed):
		return "response_malformed"
	case errors.Is(err, providers.ErrMixUp):
		return "issuer_mismatch"
	case errors.Is(err, errProviderError):
		return "provider_error"
	case errors.Is(err, providers.ErrUnverifiedEmail):
		return "email_unverified"
	case errors.Is(err, providers.ErrNotAdmitted):
		return "not_admitted"
	case errors.Is(err, providers.ErrRejected):
		return "code_rejected"
	case errors.Is(err, errEmailMalformed):
		return "email_malformed"
	case errors.Is(err, errNoRuleAdmits):
		return "not_admitted_by_policy"
	case errors.Is(err, providers.ErrInvalidToken):
		return "token_invalid"
	case errors.Is(err, providers.ErrUnavailable):
		return "provider_unavailable"
	case errors.Is(err, providers.ErrBadResponse):
		return "provider_bad_response" // answered, uselessly: not an outage
	case errors.Is(err, session.ErrUnavailable):
		return "store_unavailable"
	}
	return "error"
}

var (
	errStateReplayed = errors.New("state replayed")
	errProviderError = errors.New("the provider answered with an error")
	errMalformed     = errors.New("malformed authorization response")
)

// providerDown is the page for a provider that cannot be reached.
func providerDown(err error) *httpError {
	return &httpError{Code: http.StatusServiceUnavailable, Heading: "The sign-in service cannot be reached",
		Msg: "Your identity provider is not answering right now. Please try again in a minute.", Err: err, retryAfter: 30}
}

// errorDescription is the provider's error_description as the error page
// may show it (escaped by the template), or "". Error parameters are
// attacker input (OpenID Connect Core §3.1.2.6): the text is shown only
// when the response carries an iss that CheckResponse matched to the
// attempt's provider (RFC 9207 §2.4), so it comes from that provider, and
// only when it keeps to RFC 6749 §4.1.2.1's character set (printable
// ASCII without '"' and '\\'), cut to 200 characters.
func errorDescription(q url.Values) string {
	d := q.Get("error_description")
	if q.Get("iss") == "" {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return truncate(d, 200)
}

// responseParams parses the authorization response's query. RFC 6749
// §3.1: parameters "MUST NOT be included more than once", so a repeated
// one (two codes, two states, two iss: which did the provider send?) is
// refused before the login cookie is looked at, as is a query Go would
// parse only in part (a ';' separator, a bad escape), so nothing later
// reads a different parameter set than the one checked here.
func responseParams(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, fmt.Errorf("%w: parameter %s repeated %d times", errMalformed, strconv.Quote(truncate(k, 32)), len(vs))
		}
	}
	return q, nil
}

// completeSignIn checks the authorization response for the attempt st
// that this browser started and redeems its code: the provider's session,
// not yet saved. Failures offer to sign in again, back to where st was
// going.
func (h *Handler) completeSignIn(r *http.Request, q url.Values, st *session.LoginState) (*session.Session, error) {
	again := h.loginURL(st.RedirectTo, st.Provider)
	restart := func(code int, msg string, err error) error {
		return &httpError{Code: code, Msg: msg, Err: err, LoginURL: again}
	}
	if !h.states.use(st.State, h.now()) {
		return nil, restart(http.StatusBadRequest, "This sign-in link was already used.", errStateReplayed)
	}
	p := h.providers.Get(st.Provider)
	if p == nil || p.Issuer() != st.Issuer {
		return nil, restart(http.StatusBadRequest, "This sign-in was started for an identity provider that is no longer configured.", fmt.Errorf("provider %q (issuer %q) unknown", st.Provider, st.Issuer))
	}
	if err := p.CheckResponse(r.Context(), q); err != nil {
		if errors.Is(err, providers.ErrUnavailable) {
			return nil, providerDown(err)
		}
		return nil, restart(http.StatusBadRequest, "The sign-in response did not come from the expected identity provider.", err)
	}
	if e := q.Get("error"); e != "" {
		// RFC 9207 §2.4 and ISS-3: an error response may not come from
		// where it claims; say something generic and act on nothing. The
		// error code is logged (quoted), never rendered as given.
		// Not "Forbidden": the user may only have pressed Cancel.
		return nil, &httpError{Code: http.StatusForbidden, Heading: "Sign-in not completed", LoginURL: again,
			Msg:    "The identity provider did not complete the sign-in: it was cancelled or refused there. You can try again.",
			Detail: errorDescription(q),
			Err:    fmt.Errorf("%w: %s", errProviderError, strconv.Quote(truncate(e, 64)))}
	}
	code := q.Get("code")
	if code == "" {
		return nil, restart(http.StatusBadRequest, "The sign-in response is missing its code.", errors.New("no code"))
	}
	s, err := p.Redeem(r.Context(), code, providers.Attempt{State: st.State, Nonce: st.Nonce, Verifier: st.Verifier})
	switch {
	case errors.Is(err, providers.ErrUnavailable), errors.Is(err, providers.ErrBadResponse):
		return nil, errorf(http.StatusBadGateway, "The identity provider could not complete the sign-in. Please try again.", err)
	case errors.Is(err, providers.ErrUnverifiedEmail):
		return nil, errorf(http.StatusForbidden, "Your email address is not verified with the identity provider.", err)
	case errors.Is(err, providers.ErrNotAdmitted):
		return nil, errorf(http.StatusForbidden, "Your account is not admitted by this gateway's identity provider settings.", err)
	case errors.Is(err, providers.ErrRejected):
		return nil, restart(http.StatusBadRequest, "The identity provider rejected the sign-in code; it may have expired or been used already.", err)
	case err != nil:
		return nil, restart(http.StatusForbidden, "The identity provider's answer could not be verified.", err)
	}
	if err := h.routes.admits(&s.Identity); err != nil {
		// Before any session exists: the deny page, no cookie, and the
		// identity never reaches a header.
		return nil, &httpError{Code: http.StatusForbidden, Msg: "You are signed in, but not allowed to use this application.", Err: fmt.Errorf("sign-in of %s refused: %w", s.Subject, err)}
	}
	return s, nil
}

// saveNew stores a new session. When its groups are too many for cookies,
// it keeps only the groups the policy names (the rest cannot change a
// decision), logs that, and tries again.
func (h *Handler) saveNew(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session) error {
	err := h.sessions.Save(w, r, s)
	named := h.routes.groupNames() // nil: every group may matter
	if errors.Is(err, session.ErrTooLarge) && named == nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "session too large for cookies, and a policy expression reads identity.groups, so no group can be dropped",
			slog.String("id", rq.id), slog.String("sub", s.Subject), slog.Int("groups", len(s.Groups)),
			slog.String("hint", "use session.store: redis to keep every group"))
		return errorf(http.StatusForbidden, "Your account is in too many groups for this gateway's sessions. Ask its operators to store sessions in Redis.", err)
	}
	if errors.Is(err, session.ErrTooLarge) {
		kept := make([]string, 0, len(named))
		for _, g := range s.Groups {
			if named[g] {
				kept = append(kept, g)
			}
		}
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "session too large for cookies: keeping only the groups the policy names",
			slog.String("id", rq.id), slog.String("sub", s.Subject), slog.Int("groups", len(s.Groups)), slog.Int("kept", len(kept)),
			slog.String("hint", "use session.store: redis to keep every group"))
		s.Groups = kept
		err = h.sessions.Save(w, r, s)
	}
	switch {
	case errors.Is(err, session.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, "Sign-in is unavailable right now: sessions cannot be stored. Please try again shortly.", err)
	case err != nil:
		return errorf(http.StatusInternalServerError, "Your session could not be saved.", err)
	}
	return nil
}

// keepNeededTokens drops tokens nothing will use, so cookies stay small and
// a stolen cookie carries as little as possible.
func (h *Handler) keepNeededTokens(ctx context.Context, s *session.Session) {
	if !h.keepAccess {
		s.AccessToken = ""
	}
	if h.passIDToken {
		return // an upstream's pass_authorization_header sends it
	}
	if !h.keepIDToken || !h.endsSessions(ctx, s.Provider) {
		s.IDToken = ""
	}
}

// endsSessions reports whether sign-out continues at provider: its
// discovery advertises an end_session_endpoint. Only then is the ID token
// worth its kilobyte in the session, as the id_token_hint (RP-Initiated
// Logout 1.0 §2, RECOMMENDED; without it Ory Hydra and Okta refuse the
// logout and Keycloak asks the user to confirm, §6). Called after the code
// exchange or a refresh, when discovery is already at hand.
func (h *Handler) endsSessions(ctx context.Context, provider string) bool {
	p, ok := h.providers.Get(provider).(providers.EndSessioner)
	if !ok {
		return false
	}
	u, err := p.EndSessionURL(ctx, "", "", "")
	return err == nil && u != ""
}

// userinfo returns the signed-in identity as JSON. Never tokens: a script on
// the app's origin can read this (Pomerium CVE-2024-39315).
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request, rq *request) error {
	s, err := h.loadSession(r)
	if err != nil {
		return err
	}
	if s == nil {
		return &httpError{Code: http.StatusUnauthorized, Msg: "Sign in first.", LoginURL: h.loginURL("/", ""), Err: errNoSession}
	}
	rq.user = h.userValue(s)
	groups := s.Groups
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":               rq.user,
		"subject":            s.Subject,
		"issuer":             s.Issuer,
		"provider":           s.Provider,
		"email":              s.Email,
		"email_verified":     s.EmailVerified,
		"name":               s.Name,
		"preferred_username": s.PreferredUsername,
		"groups":             groups,
		"expires_at":         s.ExpiresAt.UTC().Format(time.RFC3339),
	})
	return nil
}

// usedStates remembers states that reached the callback, so a replayed
// callback fails even if the login cookie is replayed with it
// (RFC 9700 §4.2.4). Bounded: the oldest are forgotten first, and entries
// expire with the attempt lifetime.
type usedStates struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	seen  map[string]time.Time
	order []string
}

func newUsedStates(ttl time.Duration, max int) *usedStates {
	return &usedStates{ttl: ttl, max: max, seen: make(map[string]time.Time)}
}

// use records state and reports whether it was new.
func (u *usedStates) use(state string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for len(u.order) > 0 {
		oldest := u.order[0]
		if exp, ok := u.seen[oldest]; ok && now.Before(exp) && len(u.order) < u.max {
			break
		}
		delete(u.seen, oldest)
		u.order = u.order[1:]
	}
	if exp, ok := u.seen[state]; ok && now.Before(exp) {
		return false
	}
	u.seen[state] = now.Add(u.ttl)
	u.order = append(u.order, state)
	return true
}
