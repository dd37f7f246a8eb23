package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portcullis/portcullis/session"
)

// deviceverify.go is the verification page of the device grant (RFC 8628
// §3.3): /oauth2/device. The user signs in as for any page, types the
// code their device shows (or follows verification_uri_complete), sees
// which device asked, from where and when, and approves or denies with a
// POST that must come from this gateway's own page: same origin and a
// token bound to the session and the code (§5.3 remote phishing, §5.4
// session spying). Lookups are rate limited per client address and in
// all (§5.1 user code brute forcing), and every one is audited.

const devicePageTemplates = `
{{define "device_code"}}{{template "top" .}}<h1>Connect a device</h1>
{{if .Message}}<p class="error" role="alert">{{.Message}}</p>{{end}}
<p>Enter the code your device or terminal shows. You are signed in as <strong>{{.User}}</strong>.</p>
<form method="get" action="{{.Action}}">
<p><label for="user_code">Code</label><br><input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus></p>
<p class="actions"><button type="submit">Continue</button></p></form>
{{template "bottom" .}}{{end}}

{{define "device_confirm"}}{{template "top" .}}<h1>Sign in on a device?</h1>
<p>A device asks to use this gateway as <strong>{{.User}}</strong>. Approve only if you started this yourself and the code matches the one on your device.</p>
{{with .Device}}<dl>
<dt>Code</dt><dd><code>{{.UserCode}}</code></dd>
{{if .Client}}<dt>Application</dt><dd>{{.Client}}</dd>{{end}}
<dt>From</dt><dd>{{.Source}}</dd>
{{if .Agent}}<dt>Program</dt><dd>{{.Agent}}</dd>{{end}}
<dt>Asked</dt><dd>{{.Requested}}</dd>
</dl>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="user_code" value="{{.Device.UserCode}}">
<p class="actions"><button type="submit" name="decision" value="approve">Approve</button> <button type="submit" name="decision" value="deny" class="secondary">Deny</button></p></form>
{{template "bottom" .}}{{end}}

{{define "device_done"}}{{template "top" .}}<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{template "bottom" .}}{{end}}`

// devicePage is what the device pages show of a request.
type devicePage struct {
	UserCode  string // XXXX-XXXX
	Client    string // the client_id it gave, if any
	Source    string // its address, as the gateway saw it
	Agent     string // its User-Agent
	Requested string // when, in UTC
}

// deviceVerify is GET and POST /oauth2/device.
func (h *Handler) deviceVerify(w http.ResponseWriter, r *http.Request, rq *request) error {
	if h.devices == nil {
		return h.deviceOff()
	}
	s, err := h.loadSession(r)
	if err != nil {
		return err
	}
	if s != nil {
		if s, err = h.maintain(w, r, rq, s); err != nil {
			return err
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if s == nil {
			// Sign in first, then back here with the code.
			setPageHeaders(w.Header())
			found(w, h.loginURL(h.prefix+"/device?"+url.Values{"user_code": {truncate(r.URL.Query().Get("user_code"), 32)}}.Encode(), ""))
			return nil
		}
		rq.user = h.userValue(s)
		return h.deviceShow(w, r, rq, s, r.URL.Query().Get("user_code"))
	case http.MethodPost:
		return h.deviceDecide(w, r, rq, s)
	}
	return errorf(http.StatusMethodNotAllowed, "Use the form on this page.", errMethod(r.Method))
}

// deviceShow shows the code form, or the request a code names.
func (h *Handler) deviceShow(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session, typed string) error {
	data := pageData{Title: "Connect a device", RequestID: rq.id, Action: h.prefix + "/device", User: h.displayUser(s)}
	if typed == "" {
		h.pages.writeForm(w, http.StatusOK, "device_code", data, nil)
		return nil
	}
	if !h.codeGuesses.allow(rq.client.ip, h.now()) {
		h.audit(r, rq, "device_code_refused", s, slog.String("reason", "rate_limited"))
		return &httpError{Code: http.StatusTooManyRequests, Msg: "Too many codes tried. Wait a minute, then try again.", retryAfter: 60,
			Err: errors.New("user code lookups rate limited")}
	}
	g, err := h.devices.ByUserCode(r.Context(), typed)
	switch {
	case errors.Is(err, session.ErrGrantGone):
		h.audit(r, rq, "device_code_refused", s, slog.String("reason", "unknown_or_expired"))
		data.Message = "That code is not valid or has expired. Check it against your device, or start again there."
		h.pages.writeForm(w, http.StatusNotFound, "device_code", data, nil)
		return nil
	case err != nil:
		return errorf(http.StatusServiceUnavailable, "Device sign-in is unavailable right now. Please try again shortly.", err)
	case g.Status != session.GrantPending:
		h.audit(r, rq, "device_code_refused", s, slog.String("reason", "decided_already"))
		data.Message = "That code was used already. Start again on your device."
		h.pages.writeForm(w, http.StatusConflict, "device_code", data, nil)
		return nil
	}
	h.audit(r, rq, "device_code_shown", s, slog.String("user_code", session.FormatUserCode(g.UserCode)), slog.String("device_ip", g.Source))
	data.Title = "Sign in on a device?"
	data.CSRF = h.deviceCSRF(s, g.UserCode)
	data.Device = &devicePage{UserCode: session.FormatUserCode(g.UserCode), Client: g.ClientID, Source: g.Source, Agent: g.UserAgent,
		Requested: g.CreatedAt.UTC().Format("2 Jan 2006 15:04:05 MST")}
	h.pages.writeForm(w, http.StatusOK, "device_confirm", data, nil)
	return nil
}

// deviceDecide is the approval's POST: same origin, and the token of the
// page that showed this code to this session.
func (h *Handler) deviceDecide(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		return errorf(http.StatusBadRequest, "The form could not be read.", err)
	}
	if s == nil {
		return &httpError{Code: http.StatusUnauthorized, Msg: "Sign in first, then enter the code again.", LoginURL: h.loginURL(h.prefix+"/device", ""),
			Err: errors.New("device decision without a session")}
	}
	rq.user = h.userValue(s)
	code, _ := session.NormalizeUserCode(r.PostForm.Get("user_code"))
	if code == "" || !h.fromOwnPage(r) || !h.keys.VerifyMAC(r.PostForm.Get("csrf"), session.PurposeCSRF, deviceCSRFSubject(s, code)...) {
		h.audit(r, rq, "device_code_refused", s, slog.String("reason", "cross_site_or_bad_token"))
		return &httpError{Code: http.StatusForbidden, Msg: "Approve devices on this gateway's own page.",
			Err: errors.New("device decision: cross-site, or without the page's token")}
	}
	approve := r.PostForm.Get("decision") == "approve"
	var approver *session.Session
	if approve {
		approver = s
	}
	err := h.devices.Decide(r.Context(), code, approver)
	switch {
	case errors.Is(err, session.ErrGrantGone), errors.Is(err, session.ErrGrantDecided):
		h.pages.write(w, http.StatusConflict, "device_done", pageData{Title: "This code cannot be used", RequestID: rq.id,
			Message: "It has expired or was used already. Start again on your device."})
		return nil
	case err != nil:
		return errorf(http.StatusServiceUnavailable, "Device sign-in is unavailable right now. Please try again shortly.", err)
	}
	if approve {
		h.audit(r, rq, "device_approved", s, slog.String("user_code", session.FormatUserCode(code)))
		h.pages.write(w, http.StatusOK, "device_done", pageData{Title: "Device signed in", RequestID: rq.id,
			Message: "You can close this page and go back to your device."})
		return nil
	}
	h.audit(r, rq, "device_denied", s, slog.String("user_code", session.FormatUserCode(code)))
	h.pages.write(w, http.StatusOK, "device_done", pageData{Title: "Request denied", RequestID: rq.id,
		Message: "The device was not signed in. If you did not start this, someone may have sent you the code: tell your security team."})
	return nil
}

// fromOwnPage reports whether a form POST comes from one of the gateway's
// own pages. The pages send Referrer-Policy: no-referrer, under which a
// browser's POST says "Origin: null" (Fetch §3.1); Sec-Fetch-Site, which
// no page can set (a forbidden header name), says same-origin. Without
// Sec-Fetch-Site, an Origin must be the gateway's.
func (h *Handler) fromOwnPage(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
		o := r.Header.Get("Origin")
		return o == "" || o == h.public.String()
	}
	return false
}

func (h *Handler) deviceCSRF(s *session.Session, code string) string {
	return h.keys.MAC(session.PurposeCSRF, deviceCSRFSubject(s, code)...)
}

// deviceCSRFSubject binds the approval form to the session that saw it
// and the code it showed.
func deviceCSRFSubject(s *session.Session, code string) []string {
	return []string{"device", code, s.Issuer, s.Subject, strconv.FormatInt(s.CreatedAt.Unix(), 10)}
}

// displayUser is how a page names the signed-in user: the email, else
// the user header's value.
func (h *Handler) displayUser(s *session.Session) string {
	if s.Email != "" {
		return s.Email
	}
	return h.userValue(s)
}
