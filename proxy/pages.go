package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The gateway's own pages: errors, the sign-out confirmation, the
// signed-out notice and the sign-in chooser, in the layout and stylesheet
// every Portcullis page shares (package ui). Parsed once at start; every
// value is escaped by html/template. They load nothing from elsewhere
// (RFC 9700 §4.2.4) and carry a CSP that allows only their own inline
// style, by hash, the logo's origin, and forms only where the page has one
// (the sign-out confirmation). ui.templates_dir may replace any of them.
const pageTemplates = `
{{define "error"}}{{template "top" .}}<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Remediation}}<p><strong>What you can do:</strong> {{.Remediation}}</p>{{end}}
{{if .Detail}}<p class="detail">The identity provider said: <q>{{.Detail}}</q></p>{{end}}
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

{{define "sign_in"}}{{template "top" .}}<h1>{{.Title}}</h1>
<p>Choose how to sign in:</p>
<ul class="choices">{{range .Providers}}<li><a class="button" href="{{.URL}}">Sign in with {{.Name}}</a></li>{{end}}</ul>
{{template "bottom" .}}{{end}}

{{define "frontchannel_logout"}}{{template "top" .}}<h1>Signed out</h1><p>Your session on this gateway has ended.</p>
{{template "bottom" .}}{{end}}

{{define "signed_out"}}{{template "top" .}}<h1>You are signed out</h1>{{if .Provider}}<p>You are signed out of this gateway. You may still be signed in at {{.Provider}}.</p>
{{else}}<p>You have been signed out of this gateway.</p>{{end}}
<p><a class="button" href="{{.SignInURL}}">Sign in again</a></p>
{{template "bottom" .}}{{end}}`

// UIConfig is the `ui` section: how the gateway's own pages look.
type UIConfig struct {
	// ProductName names the gateway in every page's header and title
	// (default "Portcullis"): the name users know it by.
	ProductName string `yaml:"product_name"`
	// Title heads the sign-in page (default "Sign in").
	Title string `yaml:"title"`
	// LogoURL is an https URL (or a data:image URL) of a logo shown in
	// every page's header. The pages' Content-Security-Policy admits that
	// one origin.
	LogoURL string `yaml:"logo_url"`
	// TemplatesDir holds page overrides: <page>.html replaces that page
	// (Go html/template; see docs/ui.md for the pages and their data) and
	// style.css is added to the stylesheet. Checked at start.
	TemplatesDir string `yaml:"templates_dir"`
}

// pageData is what every page template is given; docs/ui.md documents it
// for ui.templates_dir, so fields are added, never renamed.
type pageData struct {
	Title   string // the page's heading, also its <title>
	Product string // ui.product_name, set by render
	LogoURL string // ui.logo_url, set by render
	Message string
	Detail  string // what the identity provider said (error_description), escaped
	// Remediation is what the user can do about a 403: the deciding
	// rule's remediation (docs/policy.md).
	Remediation string
	RequestID   string
	SignInURL   string
	User        string
	Action      string
	CSRF        string
	RedirectTo  string
	CancelURL   string // where Cancel on the sign-out confirmation goes
	HomeURL     string // the way out of a page with nothing else to offer (404)
	Providers   []providerLink
	// Provider names the provider whose own session a local sign-out
	// leaves alone (it has no end-session endpoint).
	Provider string
	// Device is the device-grant request the device_confirm page shows.
	Device *devicePage
}

type providerLink struct{ Name, URL string }

// pages renders the gateway's pages under their CSP.
type pages struct {
	t       *template.Template
	stock   *template.Template // the built-in pages, in t's style
	log     *slog.Logger
	product string
	logo    string
	// base is the CSP every page shares: nothing but its own style (and
	// the logo), no framing (RFC 9700 §4.16), no third-party content
	// (§4.2.4). csp adds form-action 'none' (CSP Level 3 §6.4.1;
	// default-src does not cover it) for every page without a form.
	base, csp string
}

// formCSP is the CSP of a page whose form posts to the gateway. Chrome
// checks form-action against every redirect that follows the submission
// too (w3c/webappsec-csp#8), so origins lists where those redirects may
// lead: the provider's end-session endpoint, the rd target. Each entry
// must come from cspOrigin.
func (p pages) formCSP(origins []string) string {
	v := p.base + "; form-action 'self'"
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
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
}

func (p pages) write(w http.ResponseWriter, code int, name string, data pageData) {
	p.render(w, code, name, data, p.csp)
}

// writeForm renders a page with a form; see formCSP for origins.
func (p pages) writeForm(w http.ResponseWriter, code int, name string, data pageData, origins []string) {
	p.render(w, code, name, data, p.formCSP(origins))
}

// render writes a page under the given Content-Security-Policy.
func (p pages) render(w http.ResponseWriter, code int, name string, data pageData, csp string) {
	data.Product, data.LogoURL = p.product, p.logo
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, data); err != nil {
		// Only an override from ui.templates_dir can fail here (start
		// tried each with sample data): show the built-in page instead.
		p.log.Error("page template failed; showing the built-in page", slog.String("page", name), slog.Any("err", err))
		buf.Reset()
		if err := p.stock.ExecuteTemplate(&buf, name, data); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
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
