package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// logout.go ends sessions: the user's own sign-out (continuing to the
// provider's end-session endpoint, RP-Initiated Logout 1.0), the return
// from there, and the provider's back-channel logout (Back-Channel Logout
// 1.0).

// signOut ends the session. A GET shows a confirmation page whose form
// POSTs back with a token bound to the session; a POST is accepted with that
// token or from the gateway's own origin, so a third-party page cannot sign
// users out (RFC 9700 §2.1 in spirit; SECURITY.md RPL-4). The gateway's own
// session is cleared first (every cookie chunk, the Redis record); then,
// when the provider offers it, the browser continues to the provider's
// end_session_endpoint (RP-Initiated Logout 1.0 §2).
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, rq *request) error {
	s, err := h.loadSession(r)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		rd := h.signOutTarget(r.URL.Query().Get("rd"))
		if s == nil {
			// Nothing to end: say so rather than offer a button that does
			// nothing visible.
			h.pages.write(w, http.StatusOK, "not_signed_in", pageData{Title: "You are not signed in", RequestID: rq.id,
				SignInURL: h.loginURL(rd, "")})
			return nil
		}
		data := pageData{Title: "Sign out", RequestID: rq.id, Action: h.prefix + "/sign_out", RedirectTo: rd, CSRF: h.csrfToken(s),
			CancelURL: rd}
		if data.CancelURL == "" {
			data.CancelURL = redirectFallback
		}
		data.User = s.Email
		if data.User == "" {
			data.User = h.userValue(s)
		}
		if !h.endsSessions(r.Context(), s.Provider) {
			data.Provider = h.providerName(s.Provider)
		}
		h.pages.writeForm(w, http.StatusOK, "sign_out", data, h.signOutOrigins(r, rq, s, rd))
		return nil
	case http.MethodPost:
	default:
		return errorf(http.StatusMethodNotAllowed, "Use the sign-out button.", fmt.Errorf("method %s", r.Method))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errorf(http.StatusBadRequest, "The sign-out request could not be read.", err)
	}
	if !h.sameOrigin(r) && !h.keys.VerifyMAC(r.PostForm.Get("csrf"), session.PurposeCSRF, csrfSubject(s)...) {
		return &httpError{Code: http.StatusForbidden, Msg: "Sign-out must be confirmed on this gateway's own page.",
			Err: errors.New("cross-site sign-out without a valid token")}
	}
	if err := h.sessions.Clear(w, r); err != nil {
		return errorf(http.StatusServiceUnavailable, "The session could not be ended right now. Please try again.", err)
	}
	h.login.ClearAll(w, r)
	rd := h.signOutTarget(r.PostForm.Get("rd"))
	if s == nil {
		return h.finishSignOut(w, r, rq, rd, "")
	}
	rq.user = h.userValue(s)
	h.metrics.ended("sign_out")
	h.audit(r, rq, "sign_out", s)
	h.endDeviceTokens(r, rq, s)
	h.revokeTokens(r, rq, s)
	if p, ok := h.providers.Get(s.Provider).(providers.EndSessioner); ok {
		hint := s.IDToken
		if !h.keepIDToken {
			hint = "" // kept for pass_authorization_header only: keep_id_token false sends client_id alone
		}
		u, err := p.EndSessionURL(r.Context(), hint, h.signedOutURL(), h.logoutState(rd))
		switch {
		case err != nil:
			// The local session is gone either way; say so rather than
			// fail the sign-out.
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "could not continue sign-out at the provider",
				slog.String("id", rq.id), slog.String("provider", s.Provider), slog.Any("err", err))
		case u != "":
			setPageHeaders(w.Header())
			found(w, u)
			return nil
		}
	}
	// No end_session_endpoint (or end_session: never): the sign-out was
	// local, and the page says the provider's own session may remain.
	return h.finishSignOut(w, r, rq, rd, h.providerName(s.Provider))
}

// endDeviceTokens ends, with the sign-in being signed out of, the device
// tokens it approved (device.go): they share its provider session id.
// Best effort: the sign-out goes on either way.
func (h *Handler) endDeviceTokens(r *http.Request, rq *request, s *session.Session) {
	if h.devices == nil || s.SID == "" {
		return
	}
	if _, err := h.sessions.RevokeSID(r.Context(), s.Issuer, s.SID); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "could not end the device tokens of the signed-out session",
			slog.String("id", rq.id), slog.Any("err", err))
	}
}

// signOutTarget is where a sign-out continues: rd when one was asked for
// and the redirect policy admits it, "" (the signed-out page) otherwise.
// A refused rd does not fall back to "/": that would sign the user
// straight in again and look as if the sign-out failed.
func (h *Handler) signOutTarget(rd string) string {
	if rd == "" {
		return ""
	}
	if safe := h.redirects.safe(rd); safe != redirectFallback || rd == redirectFallback {
		return safe
	}
	return ""
}

// providerName is what pages call the provider with id.
func (h *Handler) providerName(id string) string {
	if p := h.providers.Get(id); p != nil {
		return p.Name()
	}
	return "your identity provider"
}

// revokeWait is how long a sign-out waits for the provider's revocation
// answer before it goes on; the revocation itself runs on, bounded by the
// provider's timeout.
const revokeWait = 2 * time.Second

// revokeTokens revokes s's refresh token (or access token) at its
// provider when the provider offers revocation (RFC 7009 §2.1). It never
// fails the sign-out: the outcome is counted and logged (§2.2), and the
// request waits at most revokeWait for it.
func (h *Handler) revokeTokens(r *http.Request, rq *request, s *session.Session) {
	p, ok := h.providers.Get(s.Provider).(providers.Revoker)
	if !ok {
		return
	}
	// Detached: the browser moving on must not cancel the revocation.
	ctx := context.WithoutCancel(r.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := p.RevokeTokens(ctx, s)
		result := revocationResult(err)
		if result == "" {
			return
		}
		h.metrics.revocation(s.Provider, result)
		level, msg := slog.LevelDebug, "token revoked at the provider"
		if err != nil {
			level, msg = slog.LevelWarn, "token revocation at the provider failed"
		}
		h.log.LogAttrs(ctx, level, msg, slog.String("id", rq.id), slog.String("provider", s.Provider),
			slog.String("result", result), slog.Any("err", err))
	}()
	t := time.NewTimer(revokeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		h.log.LogAttrs(ctx, slog.LevelInfo, "token revocation still running; sign-out goes on",
			slog.String("id", rq.id), slog.String("provider", s.Provider))
	}
}

// revocationResult is the metric label for a revocation's outcome, ""
// when nothing was sent.
func revocationResult(err error) string {
	switch {
	case err == nil:
		return "revoked"
	case errors.Is(err, providers.ErrNoRevocation):
		return ""
	case errors.Is(err, providers.ErrUnavailable):
		return "unavailable"
	}
	return "failed"
}

// signOutOrigins are the origins other than the gateway's that the
// sign-out form's submission may be redirected to, for the page's CSP
// form-action: the provider's end-session endpoint (when s has a provider
// that offers one) and rd's origin when it is absolute. Whatever cannot be
// named safely is left out: the browser then stops at that redirect,
// after the gateway's own session has been cleared.
func (h *Handler) signOutOrigins(r *http.Request, rq *request, s *session.Session, rd string) []string {
	var out []string
	if o, ok := cspOrigin(rd); ok && o != h.public.String() {
		out = append(out, o)
	}
	if s == nil {
		return out
	}
	p, ok := h.providers.Get(s.Provider).(providers.EndSessioner)
	if !ok {
		return out
	}
	u, err := p.EndSessionURL(r.Context(), "", h.signedOutURL(), "")
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "could not find the provider's end-session endpoint",
			slog.String("id", rq.id), slog.String("provider", s.Provider), slog.Any("err", err))
		return out
	}
	if o, ok := cspOrigin(u); ok && o != h.public.String() && !slices.Contains(out, o) {
		out = append(out, o)
	}
	return out
}

// csrfToken binds the sign-out form to the session it ends.
func (h *Handler) csrfToken(s *session.Session) string {
	return h.keys.MAC(session.PurposeCSRF, csrfSubject(s)...)
}

func csrfSubject(s *session.Session) []string {
	if s == nil {
		return []string{"sign_out", "anonymous"}
	}
	return []string{"sign_out", s.Issuer, s.Subject, strconv.FormatInt(s.CreatedAt.Unix(), 10)}
}

// sameOrigin reports whether a browser says the request comes from the
// gateway's own pages (Fetch Metadata, then Origin), or no browser is
// involved at all (neither header: curl and friends, which can only affect
// their own cookies).
func (h *Handler) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	switch {
	case site == "same-origin":
		return origin == "" || origin == h.public.String()
	case site != "":
		return false
	case origin != "":
		return origin == h.public.String()
	}
	return true
}

// signedOutURL is where providers send the browser back after their own
// sign-out.
func (h *Handler) signedOutURL() string { return h.public.String() + h.prefix + "/signed_out" }

// finishSignOut sends the browser on to rd, or shows the signed-out page.
// stillAt names the provider whose own session the sign-out left alone
// (it has no end-session endpoint), "" when there is none.
func (h *Handler) finishSignOut(w http.ResponseWriter, r *http.Request, rq *request, rd, stillAt string) error {
	if rd != "" {
		setPageHeaders(w.Header())
		found(w, h.redirects.safe(rd))
		return nil
	}
	h.pages.write(w, http.StatusOK, "signed_out", pageData{Title: "Signed out", RequestID: rq.id, SignInURL: h.loginURL("", ""), Provider: stillAt})
	return nil
}

// logoutState carries where to go after the provider's sign-out, signed
// and short-lived, so the return cannot be steered (RP-Initiated Logout
// §3 state; SECURITY.md RPL-3).
func (h *Handler) logoutState(rd string) string {
	exp := strconv.FormatInt(h.now().Add(10*time.Minute).Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(rd)) + "." + exp + "." + h.keys.MAC(session.PurposeCSRF, "logout", rd, exp)
}

func (h *Handler) readLogoutState(state string) (string, bool) {
	parts := strings.Split(state, ".")
	if len(parts) != 3 || len(state) > 4096 {
		return "", false
	}
	rd, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !h.keys.VerifyMAC(parts[2], session.PurposeCSRF, "logout", string(rd), parts[1]) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || h.now().Unix() > exp {
		return "", false
	}
	return string(rd), true
}

// signedOut is where the provider sends the browser back after its own
// sign-out. Only a state we signed can name where to go next.
func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request, rq *request) error {
	rd, ok := h.readLogoutState(r.URL.Query().Get("state"))
	if !ok {
		rd = ""
	}
	return h.finishSignOut(w, r, rq, rd, "")
}

// backchannelLogout is POST /oauth2/backchannel_logout (Back-Channel Logout
// 1.0 §2.5–2.8): validate the logout token, refuse replays, and end the
// sessions it names on every replica. Any failure is a 400 and ends
// nothing.
func (h *Handler) backchannelLogout(w http.ResponseWriter, r *http.Request, rq *request) error {
	// Back-Channel Logout §2.8: a refused request is a 400, optionally
	// with an OAuth-style JSON error.
	fail := func(err error) error {
		return &httpError{Code: http.StatusBadRequest, Msg: "The logout token was not accepted.", Err: err,
			body: map[string]string{"error": "invalid_request", "error_description": "the logout token was not accepted"}}
	}
	if r.Method != http.MethodPost {
		return errorf(http.StatusMethodNotAllowed, "Providers POST logout tokens here.", fmt.Errorf("method %s", r.Method))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return fail(fmt.Errorf("reading the form: %w", err))
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" || len(r.PostForm["logout_token"]) != 1 {
		return fail(errors.New("no logout_token"))
	}
	lt, err := h.providers.VerifyLogoutToken(r.Context(), raw)
	switch {
	case errors.Is(err, providers.ErrUnavailable):
		// The provider's keys cannot be fetched: not the token's fault,
		// and the provider retries on a 5xx.
		return errorf(http.StatusServiceUnavailable, "The identity provider's keys are unavailable.", err)
	case err != nil:
		return fail(err)
	}
	// The jti replay cache (SECURITY.md BCL-8): kept at least as long as the
	// token is valid, shared by every replica in Redis mode.
	sum := sha256.Sum256([]byte(lt.Issuer + "\x00" + lt.ID))
	ttl := max(time.Until(lt.Expiry)+2*time.Minute, 5*time.Minute)
	first, err := h.sessions.FirstUse(r.Context(), "jti:"+hex.EncodeToString(sum[:16]), ttl)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "Sessions cannot be ended right now.", err)
	}
	if !first {
		return fail(errors.New("logout token replayed (jti seen before)"))
	}
	// With a sid, the provider session it names ends; without one, every
	// session of the user (Back-Channel Logout §2.7).
	var n int
	if lt.SessionID != "" {
		n, err = h.sessions.RevokeSID(r.Context(), lt.Issuer, lt.SessionID)
	} else {
		n, err = h.sessions.RevokeUser(r.Context(), lt.Issuer, lt.Subject)
	}
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "Sessions cannot be ended right now.", err)
	}
	h.metrics.ended("backchannel_logout")
	h.audit(r, rq, "backchannel_logout", nil, slog.String("issuer", lt.Issuer), slog.String("sub", lt.Subject),
		slog.Bool("by_sid", lt.SessionID != ""), slog.Int("sessions", n))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
