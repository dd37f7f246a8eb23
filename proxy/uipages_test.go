package proxy

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/proxy/ui"
)

// TestPagesShareOneLayout: every gateway page carries the product name,
// the logo and the one stylesheet, admitted by its hash and nothing else.
func TestPagesShareOneLayout(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.UI.ProductName = "Acme Access"
		c.UI.LogoURL = "https://cdn.acme.example/logo.svg"
		c.Policy.Routes = []RouteConfig{{Path: "/admin/", Groups: []string{"admins"}}}
	})
	cookie := e.bob()
	for name, r := range map[string]*http.Request{
		"403":      get("https://gw.example.com/admin/", "Cookie", cookie),
		"404":      get("https://gw.example.com/oauth2/nothing"),
		"sign_out": get("https://gw.example.com/oauth2/sign_out", "Cookie", cookie),
		"not_in":   get("https://gw.example.com/oauth2/sign_out"),
	} {
		resp := e.do(r)
		b := body(resp)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(b, "<header><img src=\"https://cdn.acme.example/logo.svg\" alt=\"\"><span>Acme Access</span></header>") {
			t.Errorf("%s: no product header: %s", name, b)
		}
		if !strings.Contains(b, "· Acme Access</title>") || !strings.Contains(b, "prefers-color-scheme:dark") {
			t.Errorf("%s: title or stylesheet missing: %s", name, b)
		}
		if !strings.Contains(csp, "style-src "+ui.Hash(ui.Style)+";") || !strings.Contains(csp, "img-src https://cdn.acme.example") {
			t.Errorf("%s: CSP %q does not admit the stylesheet and the logo", name, csp)
		}
	}
}

// TestErrorDescriptionShown: the provider's words appear, escaped, only
// when the response's iss ties them to the provider (RFC 9207).
func TestErrorDescriptionShown(t *testing.T) {
	e := hostileEnv(t)
	for _, tt := range []struct {
		name, query, want, not string
	}{
		{"verified iss", "&iss=https%3A%2F%2Fidp.test&error_description=User+cancelled+%3Cb%3Ehere%3C%2Fb%3E", "said: <q>User cancelled &lt;b&gt;here&lt;/b&gt;</q>", "<b>"},
		{"no iss", "&error_description=Call+555-0100", "Sign-in not completed", "555-0100"},
		{"outside RFC 6749's characters", "&iss=https%3A%2F%2Fidp.test&error_description=%22quoted%22", "Sign-in not completed", "quoted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := e.begin("/x")
			resp, _ := e.callback("state="+url.QueryEscape(a.state)+"&error=access_denied"+tt.query, a.login)
			b := body(resp)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, tt.want) || strings.Contains(b, tt.not) {
				t.Errorf("status %d, want %q and not %q in: %s", resp.StatusCode, tt.want, tt.not, b)
			}
		})
	}
}

// TestTemplatesDir: overrides replace pages, style.css joins the hashed
// stylesheet, and anything broken stops the start with the file's name.
func TestTemplatesDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("error.html", `{{template "top" .}}<h1>Oops: {{.Title}}</h1><p>{{.Message}}</p><p>Ask the service desk, quoting {{.RequestID}}.</p>{{template "bottom" .}}`)
	write("style.css", `main{border-top:4px solid #c00}`)
	write("README.md", "not a page: ignored")
	// Passes the start's trial with sample data, fails on a real request.
	write("not_signed_in.html", `{{if ne .Title "Title"}}{{.Nope}}{{end}}`)
	e := newEnv(t, func(c *Config) { c.UI.TemplatesDir = dir })
	resp := e.do(get("https://gw.example.com/oauth2/nothing"))
	b := body(resp)
	if !strings.Contains(b, "<h1>Oops: Page not found</h1>") || !strings.Contains(b, "Ask the service desk, quoting ") {
		t.Errorf("override not used: %s", b)
	}
	style := ui.Style + "\n" + `main{border-top:4px solid #c00}`
	if !strings.Contains(b, style) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), ui.Hash(style)) {
		t.Errorf("style.css not in the hashed stylesheet: CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
	// An override failing at run time: the built-in page, in the same
	// style, and a log line.
	resp = e.do(get("https://gw.example.com/oauth2/sign_out"))
	if b := body(resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, "You are not signed in") || !strings.Contains(b, style) || !strings.Contains(e.logs.String(), "page template failed") {
		t.Errorf("failing override: %d %s; logs %s", resp.StatusCode, b, e.logs.String())
	}

	for _, tt := range []struct{ file, text, want string }{
		{"eror.html", `x`, "eror.html is not a page"},
		{"sign_in.html", `{{template "top" .}}{{.Nope}}`, "page sign_in"},
		{"signed_out.html", `{{if}}`, "signed_out.html"},
		{"style.css", `</style><script>`, "must not contain </style"},
	} {
		bad := t.TempDir()
		if err := os.WriteFile(filepath.Join(bad, tt.file), []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		c := Config{
			Server:    ServerConfig{PublicURL: "https://gw.example.com"},
			Upstreams: []UpstreamConfig{{Path: "/", URL: "http://127.0.0.1:1"}},
			Policy:    PolicyConfig{EmailDomains: []string{"example.com"}},
			UI:        UIConfig{TemplatesDir: bad},
		}
		if _, err := c.Validate(Known{Providers: []string{"corp"}}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to name %q", tt.file, err, tt.want)
		}
	}
}
