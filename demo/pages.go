package demo

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
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
		renderPage(w, he.Code, "message", messageData{Title: http.StatusText(he.Code), Message: he.Msg})
	})
}

// messageData fills the message page: errors and "signed out".
type messageData struct {
	Title   string
	Message string
}

// loginData fills the login page.
type loginData struct {
	Action        string // where the form posts
	AuthRequestID string
	Username      string // login_hint, or what was typed before an error
	Error         string
	Hints         []string // usernames, when Config.ShowUserHints is on
}

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
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

var pageTemplates = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Portcullis demo identity provider</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}
label{display:block;font-weight:600;margin-top:1rem}
input{box-sizing:border-box;width:100%;padding:.5rem;font-size:1rem;border:1px solid #8a93a5;border-radius:4px}
input:focus,button:focus{outline:3px solid #4c7ee8;outline-offset:1px}
button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;background:#2454c6;color:#fff;border:0;border-radius:4px;cursor:pointer}
.error{background:#fde8e8;color:#8a1c1c;border-left:4px solid #c62828;padding:.5rem .75rem}
.hint{color:#4a5366;font-size:.9rem;margin-top:1.5rem}
</style>
</head>
<body>
<main>{{end}}

{{define "foot"}}</main>
</body>
</html>
{{end}}

{{define "login"}}{{template "head" "Sign in"}}
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
{{if .Hints}}<p class="hint">Demo users: {{range $i, $u := .Hints}}{{if $i}}, {{end}}<code>{{$u}}</code>{{end}}. Their passwords were printed when the demo started.</p>{{end}}
{{template "foot"}}{{end}}

{{define "message"}}{{template "head" .Title}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{template "foot"}}{{end}}
`))
