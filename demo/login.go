package demo

import (
	"log/slog"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// zitadel sends the browser to the login page with the ID of the stored
// authorization request; the form posts it back with the credentials, and a
// successful login continues at zitadel's callback, which issues the code.

const (
	msgBadLink     = "This sign-in link is invalid, expired or already used. Go back to the application and sign in again."
	msgBadPassword = "Wrong username or password."
	maxLoginForm   = 64 << 10
)

// loginPage shows the form for ?authRequestID=. With prompt=none it answers
// login_required right away: the provider keeps no session to reuse.
func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("authRequestID")
	ar, err := p.store.authRequest(id)
	if err != nil || ar.Done() {
		return httpError{Code: http.StatusBadRequest, Msg: msgBadLink, Err: err}
	}
	if ar.promptNone() {
		_ = p.store.DeleteAuthRequest(r.Context(), id)
		op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("the demo provider keeps no session"), p.op)
		return nil
	}
	p.renderLogin(w, http.StatusOK, id, ar.loginHint, "")
	return nil
}

// loginSubmit checks the posted credentials. A wrong password and an
// unknown user get the same answer (401, the form again) in the same time.
func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		return httpError{Code: http.StatusBadRequest, Msg: "The form could not be read.", Err: err}
	}
	id := r.PostForm.Get("authRequestID")
	username := r.PostForm.Get("username")
	ar, err := p.store.authRequest(id)
	if err != nil || ar.Done() {
		return httpError{Code: http.StatusBadRequest, Msg: msgBadLink, Err: err}
	}

	userID, ok := p.store.checkPassword(username, r.PostForm.Get("password"))
	if !ok {
		p.stats.add(func(s *Stats) { s.LoginFailures++ })
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "demo idp login rejected", slog.String("client", ar.clientID))
		p.renderLogin(w, http.StatusUnauthorized, id, username, msgBadPassword)
		return nil
	}
	if err := p.store.completeAuthRequest(id, userID); err != nil {
		return httpError{Code: http.StatusBadRequest, Msg: msgBadLink, Err: err}
	}
	p.stats.add(func(s *Stats) { s.LoginSuccesses++ })
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "demo idp login",
		slog.String("user", userID), slog.String("client", ar.clientID))

	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, id), http.StatusSeeOther)
	return nil
}

func (p *Provider) renderLogin(w http.ResponseWriter, status int, id, username, errMsg string) {
	data := loginData{
		frame:         frame{Title: "Sign in", Product: providerName},
		Action:        p.issuerPath() + loginPath,
		AuthRequestID: id,
		Username:      username,
		Error:         errMsg,
	}
	if p.showHints {
		data.Hints = p.store.usernames()
	}
	renderPage(w, status, "login", data)
}

// signedOut is where end_session lands without a registered
// post_logout_redirect_uri.
func (p *Provider) signedOut(w http.ResponseWriter, _ *http.Request) error {
	renderPage(w, http.StatusOK, "message", message("Signed out", "You have been signed out. You can close this window."))
	return nil
}
