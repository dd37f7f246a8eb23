package demo

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/portcullis/portcullis/proxy/ui"
)

// httpError keeps what the browser sees apart from what we log.
type httpError struct {
	Code int    // status sent to the client
	Msg  string // shown on the page; never err.Error()
	Err  error  // cause, logged
}

func (e httpError) Error() string { return fmt.Sprintf("%d %s: %v", e.Code, e.Msg, e.Err) }
func (e httpError) Unwrap() error { return e.Err }

// handle adapts a page handler that returns errors: an httpError is shown
// as a page with its status, anything else as a 500.
func (p *Provider) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var he httpError
		if !errors.As(err, &he) {
			he = httpError{Code: http.StatusInternalServerError, Msg: "Something went wrong.", Err: err}
		}
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "demo idp page error",
			slog.String("path", r.URL.Path), slog.Int("status", he.Code), slog.Any("err", he.Err))
		renderPage(w, he.Code, "message", message(heading(he.Code), he.Msg))
	})
}

// heading names what happened, in words rather than a reason phrase.
func heading(code int) string {
	switch {
	case code == http.StatusNotFound:
		return "Page not found"
	case code == http.StatusMethodNotAllowed:
		return "This action is not available here"
	case code < 500:
		return "This sign-in request cannot be used"
	}
	return "Something went wrong"
}

// frame is what ui.Layout's "top" and "bottom" read; every page's data
// embeds it.
type frame struct {
	Title     string
	Product   string
	LogoURL   string
	RequestID string
}

// providerName heads every page of the demo provider: it looks like
// Portcullis, but must not pass for the gateway itself.
const providerName = "Demo identity provider"

// messageData fills the message page: errors and "signed out".
type messageData struct {
	frame
	Message string
}

func message(title, msg string) messageData {
	return messageData{frame: frame{Title: title, Product: providerName}, Message: msg}
}

// loginData fills the login page.
type loginData struct {
	frame
	Action        string // where the form posts
	AuthRequestID string
	Username      string // login_hint, or what was typed before an error
	Error         string
	Hints         []string // usernames, when Config.ShowUserHints is on
}

// pageCSP admits the shared stylesheet by its hash, and nothing else.
var pageCSP = "default-src 'none'; style-src " + ui.Hash(ui.Style) + "; frame-ancestors 'none'; base-uri 'none'"

// renderPage writes one of pageTemplates with headers that keep the page
// out of frames and caches and forbid scripts and remote resources.
func renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "demo: rendering page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

var pageTemplates = template.Must(template.New("").Parse(ui.Layout(ui.Style) + `
{{define "login"}}{{template "top" .}}
<h1>Sign in</h1>
{{if .Error}}<p class="error" role="alert" id="login-error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{{.Username}}"{{if not .Username}} autofocus{{end}}{{if .Error}} aria-describedby="login-error"{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}>
<button type="submit">Sign in</button>
</form>
{{if .Hints}}<p class="detail">Demo users: {{range $i, $u := .Hints}}{{if $i}}, {{end}}<code>{{$u}}</code>{{end}}. Their passwords were printed when the demo started.</p>{{end}}
{{template "bottom" .}}{{end}}

{{define "message"}}{{template "top" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{template "bottom" .}}{{end}}
`))
