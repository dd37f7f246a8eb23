package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/proxy/ui"
)

// NewApp returns the demo's protected app, also a handy upstream for tests.
//
//   - /slow?ms=N answers after N milliseconds (at most 10s).
//   - /stream?n=N&ms=M writes N lines (default 10, at most 1000), flushing
//     each and pausing M ms between them (default 50; 10s in all at most).
//   - /status/{code} answers with that status, 400-599 (anything else 400).
//   - Any other path echoes the request. With Accept: application/json the
//     answer is {"method","path","raw_path","query","host","headers",
//     "cookies"}; otherwise an HTML page shows who the gateway says the user
//     is (X-Forwarded-User, -Email, -Groups, -Preferred-Username), the
//     request headers and a sign-out button posting to /oauth2/sign_out.
//
// Secrets are never echoed: cookies appear by name only (the JSON headers
// leave Cookie out), Authorization and Proxy-Authorization keep only their
// scheme, and headers named like tokens, secrets or passwords are redacted.
// Paths are dispatched without cleaning, so odd paths echo as received.
func NewApp(title string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/slow":
			appSlow(w, r)
		case p == "/stream":
			appStream(w, r)
		case strings.HasPrefix(p, "/status/"):
			appStatus(w, strings.TrimPrefix(p, "/status/"))
		case wantsJSON(r):
			appEchoJSON(w, r)
		default:
			appEchoHTML(w, r, title)
		}
	})
}

const (
	maxSlow       = 10 * time.Second
	maxStreamN    = 1000
	defaultStream = 10
	defaultGapMS  = 50
	redacted      = "…(redacted)"
)

func appSlow(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 {
		http.Error(w, "ms must be a non-negative number of milliseconds", http.StatusBadRequest)
		return
	}
	d := min(time.Duration(ms)*time.Millisecond, maxSlow)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintf(w, "slept %d ms\n", d.Milliseconds())
	case <-r.Context().Done():
	}
}

func appStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := queryInt(q.Get("n"), defaultStream, 1, maxStreamN)
	gap := time.Duration(queryInt(q.Get("ms"), defaultGapMS, 0, int(maxSlow.Milliseconds()))) * time.Millisecond
	if n > 1 {
		gap = min(gap, maxSlow/time.Duration(n-1))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "line %d of %d\n", i, n)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// queryInt parses v, falling back to def when it is missing or malformed,
// and clamps it to [lo, hi].
func queryInt(v string, def, lo, hi int) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		n = def
	}
	return max(lo, min(n, hi))
}

func appStatus(w http.ResponseWriter, code string) {
	c, err := strconv.Atoi(code)
	if err != nil || c < 400 || c > 599 {
		c = http.StatusBadRequest
	}
	http.Error(w, fmt.Sprintf("status %d", c), c)
}

func wantsJSON(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// echo is the request as the app reports it.
type echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	RawPath string              `json:"raw_path"` // the escaped path as received
	Query   string              `json:"query"`    // the raw query string
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Cookies []string            `json:"cookies"` // names only
}

func newEcho(r *http.Request) echo {
	e := echo{
		Method:  r.Method,
		Path:    r.URL.Path,
		RawPath: r.URL.EscapedPath(),
		Query:   r.URL.RawQuery,
		Host:    r.Host,
		Headers: make(map[string][]string, len(r.Header)),
		Cookies: cookieNames(r),
	}
	for name, values := range r.Header {
		if name == "Cookie" {
			continue
		}
		for _, v := range values {
			e.Headers[name] = append(e.Headers[name], redactHeader(name, v))
		}
	}
	return e
}

func cookieNames(r *http.Request) []string {
	names := []string{}
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	return names
}

// redactHeader hides credentials: Authorization keeps its scheme, headers
// named like tokens, secrets or passwords keep nothing.
func redactHeader(name, value string) string {
	lower := strings.ToLower(name)
	switch {
	case lower == "authorization" || lower == "proxy-authorization":
		if scheme, _, ok := strings.Cut(value, " "); ok {
			return scheme + " " + redacted
		}
		return redacted
	case strings.Contains(lower, "token"), strings.Contains(lower, "secret"), strings.Contains(lower, "password"):
		return redacted
	}
	return value
}

func appEchoJSON(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(newEcho(r), "", "  ")
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}

// appPage fills the app's HTML page.
type appPage struct {
	frame
	Request  echo
	Identity []appRow
	Headers  []appRow
}

type appRow struct{ Name, Value string }

func appEchoHTML(w http.ResponseWriter, r *http.Request, title string) {
	e := newEcho(r)
	page := appPage{frame: frame{Title: title, Product: "Demo app"}, Request: e}
	for _, h := range []struct{ label, header string }{
		{"User", "X-Forwarded-User"},
		{"Email", "X-Forwarded-Email"},
		{"Groups", "X-Forwarded-Groups"},
		{"Preferred username", "X-Forwarded-Preferred-Username"},
	} {
		if v := r.Header.Values(h.header); len(v) > 0 {
			page.Identity = append(page.Identity, appRow{h.label, strings.Join(v, ", ")})
		}
	}
	for name, values := range e.Headers {
		for _, v := range values {
			page.Headers = append(page.Headers, appRow{name, v})
		}
	}
	if len(e.Cookies) > 0 {
		page.Headers = append(page.Headers, appRow{"Cookie", "names: " + strings.Join(e.Cookies, ", ")})
	}
	slices.SortStableFunc(page.Headers, func(a, b appRow) int { return strings.Compare(a.Name, b.Name) })

	var buf bytes.Buffer
	if err := appTemplate.Execute(&buf, page); err != nil {
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	buf.WriteTo(w)
}

var appTemplate = template.Must(template.New("app").Parse(ui.Layout(ui.Style) + `{{template "top" .}}
<h1>{{.Title}}</h1>
<h2>Signed in as</h2>
{{if .Identity}}<dl>
{{range .Identity}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>
{{end}}</dl>
{{else}}<p>The gateway sent no identity headers. Are you reaching this app through Portcullis?</p>
{{end}}
<form method="post" action="/oauth2/sign_out"><button type="submit">Sign out</button></form>
<h2>Request</h2>
<p><code>{{.Request.Method}} {{.Request.RawPath}}{{if .Request.Query}}?{{.Request.Query}}{{end}}</code> on <code>{{.Request.Host}}</code></p>
<table>
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
{{range .Headers}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</tbody>
</table>
{{template "bottom" .}}
`))
