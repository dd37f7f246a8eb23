package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The gateway's own pages: errors, the sign-out confirmation and the
// signed-out notice. Parsed once; every value is escaped by html/template.
// They load nothing from elsewhere (RFC 9700 §4.2.4) and carry a CSP that
// allows only their own inline style, by hash, and forms only where the
// page has one (the sign-out confirmation).
const pageStyle = `body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:32rem;margin:12vh auto;background:#fff;border-radius:.5rem;padding:2rem 2.5rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.5}
.id{color:#667;font-size:.85rem}
a.button,button{display:inline-block;background:#2456c8;color:#fff;border:0;border-radius:.3rem;padding:.6rem 1.2rem;font-size:1rem;text-decoration:none;cursor:pointer}
a:focus-visible,button:focus-visible{outline:3px solid #1d2330;outline-offset:2px}
ul.providers{list-style:none;padding:0}ul.providers li{margin:.6rem 0}ul.providers a.button{display:block;text-align:center}
img.logo{max-height:3rem}
a.cancel{margin-left:1rem;color:#2456c8}`

const pageTemplates = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title><style>` + pageStyle + `</style></head>
<body><main>{{end}}
{{define "bottom"}}{{if .RequestID}}<p class="id">Request id: {{.RequestID}}</p>{{end}}</main></body></html>{{end}}

{{define "error"}}{{template "top" .}}<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .SignInURL}}<p><a class="button" href="{{.SignInURL}}">Sign in</a></p>{{else if .HomeURL}}<p><a class="button" href="{{.HomeURL}}">Go to the start page</a></p>{{end}}
{{template "bottom" .}}{{end}}

{{define "sign_out"}}{{template "top" .}}<h1>Sign out?</h1>
{{if .User}}<p>You are signed in as <strong>{{.User}}</strong>.</p>{{end}}
{{if .Provider}}<p>This signs you out of this gateway only. You may still be signed in at {{.Provider}}.</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="rd" value="{{.RedirectTo}}">
<p class="actions"><button type="submit" autofocus>Sign out</button> <a class="cancel" href="{{.CancelURL}}">Cancel</a></p></form>
{{template "bottom" .}}{{end}}

{{define "not_signed_in"}}{{template "top" .}}<h1>You are not signed in</h1>
<p>There is no session on this gateway to sign out of.</p>
<p><a class="button" href="{{.SignInURL}}">Sign in</a></p>
{{template "bottom" .}}{{end}}

{{define "sign_in"}}{{template "top" .}}{{if .LogoURL}}<p><img src="{{.LogoURL}}" alt="" class="logo"></p>{{end}}<h1>{{.Title}}</h1>
<p>Choose how to sign in:</p>
<ul class="providers">{{range .Providers}}<li><a class="button" href="{{.URL}}">Sign in with {{.Name}}</a></li>{{end}}</ul>
{{template "bottom" .}}{{end}}

{{define "frontchannel_logout"}}{{template "top" .}}<h1>Signed out</h1><p>Your session on this gateway has ended.</p>
{{template "bottom" .}}{{end}}

{{define "signed_out"}}{{template "top" .}}<h1>You are signed out</h1>{{if .Provider}}<p>You are signed out of this gateway. You may still be signed in at {{.Provider}}.</p>
{{else}}<p>You have been signed out of this gateway.</p>{{end}}
<p><a class="button" href="{{.SignInURL}}">Sign in again</a></p>
{{template "bottom" .}}{{end}}`

// UIConfig is the `ui` section: how the gateway's own pages look.
type UIConfig struct {
	// Title heads the sign-in page (default "Sign in").
	Title string `yaml:"title"`
	// LogoURL is an https URL (or a data:image URL) of a logo shown above
	// it. The page's Content-Security-Policy admits that one origin.
	LogoURL string `yaml:"logo_url"`
}

type pageData struct {
	Title      string
	Message    string
	RequestID  string
	SignInURL  string
	User       string
	Action     string
	CSRF       string
	RedirectTo string
	CancelURL  string // where Cancel on the sign-out confirmation goes
	HomeURL    string // the way out of a page with nothing else to offer (404)
	LogoURL    string
	Providers  []providerLink
	// Provider names the provider whose own session a local sign-out
	// leaves alone (it has no end-session endpoint).
	Provider string
}

type providerLink struct{ Name, URL string }

type pages struct {
	t *template.Template
}

var (
	parsedPages = pages{template.Must(template.New("pages").Parse(pageTemplates + preserveTemplates))}
	styleHash   = func() string {
		sum := sha256.Sum256([]byte(pageStyle))
		return base64.StdEncoding.EncodeToString(sum[:])
	}()
	// cspBase lets our pages do nothing but show themselves (RFC 9700
	// §4.16: no framing; §4.2.4: no third-party content).
	cspBase = "default-src 'none'; style-src 'sha256-" + styleHash + "'; frame-ancestors 'none'; base-uri 'none'"
	// pageCSP is every response's CSP but the sign-out page's: no form may
	// be submitted anywhere (CSP Level 3 §6.4.1 form-action; default-src
	// does not cover it). Only the sign-out page has a form.
	pageCSP = cspBase + "; form-action 'none'"
)

// formCSP is the CSP of a page whose form posts to the gateway. Chrome
// checks form-action against every redirect that follows the submission
// too (w3c/webappsec-csp#8), so origins lists where those redirects may
// lead: the provider's end-session endpoint, the rd target. Each entry
// must come from cspOrigin.
func formCSP(origins []string) string {
	v := cspBase + "; form-action 'self'"
	for _, o := range origins {
		v += " " + o
	}
	return v
}

// cspOrigin is raw's origin as a CSP host-source (CSP Level 3 §2.3.1,
// scheme://host[:port]), or false when raw is not an http(s) URL whose
// host is plainly a host name or address: nothing that could end or
// widen a directive (no ';', ',', quotes, spaces or '*') gets in.
func cspOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", false
	}
	host := strings.ToLower(u.Host)
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return "", false
		}
	}
	return u.Scheme + "://" + host, true
}

// setPageHeaders hardens every response the gateway writes itself.
func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", pageCSP)
}

func (p pages) write(w http.ResponseWriter, code int, name string, data pageData) {
	p.render(w, code, name, data, pageCSP)
}

// writeWith renders a page whose CSP also admits images from imgSrc.
func (p pages) writeWith(w http.ResponseWriter, code int, name string, data pageData, imgSrc string) {
	csp := pageCSP
	if imgSrc != "" {
		csp += "; img-src " + imgSrc
	}
	p.render(w, code, name, data, csp)
}

// writeForm renders a page with a form; see formCSP for origins.
func (p pages) writeForm(w http.ResponseWriter, code int, name string, data pageData, origins []string) {
	p.render(w, code, name, data, formCSP(origins))
}

// render writes a page under the given Content-Security-Policy.
func (p pages) render(w http.ResponseWriter, code int, name string, data pageData, csp string) {
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, data); err != nil {
		// Templates are fixed at build time; this is a programming error.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", csp)
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		// A page some origin may frame (front-channel logout): CSP
		// frame-ancestors says which, and X-Frame-Options would forbid all.
		w.Header().Del("X-Frame-Options")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

// wantsJSON reports whether the request comes from a script or an API
// client rather than a browser navigating: those get JSON and a 401 with a
// login_url instead of a redirect they cannot follow.
func wantsJSON(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" || r.Header.Get("Sec-Fetch-Mode") == "cors" {
		return true
	}
	if _, ok := bearerToken(r); ok {
		return true // a machine client: never a redirect
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// logoSource validates ui.logo_url and returns the CSP img-src admitting it.
func logoSource(logo string) (string, error) {
	switch {
	case logo == "":
		return "", nil
	case strings.HasPrefix(logo, "data:image/"):
		return "data:", nil
	}
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(logo, "'; \"\\") {
		return "", fmt.Errorf("ui.logo_url %q: want an https URL or a data:image URL", logo)
	}
	return "https://" + u.Host, nil
}
