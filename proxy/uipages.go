package proxy

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/proxy/ui"
)

// pageNames are the pages ui.templates_dir may replace, each by a file
// <name>.html; "top" and "bottom" are the layout around every page.
// (The page that sends a kept form again, "resubmit", runs the one script
// the CSP admits by hash, and cannot be replaced.)
var pageNames = []string{"top", "bottom", "error", "sign_in", "sign_out", "not_signed_in", "signed_out", "frontchannel_logout", "post_lost",
	"device_code", "device_confirm", "device_done"}

// builtinPages is the stock page set.
var builtinPages = stockPages(ui.Style)

// stockPages parses the built-in pages in style.
func stockPages(style string) *template.Template {
	return template.Must(template.New("pages").Parse(ui.Layout(style) + pageTemplates + preserveTemplates + devicePageTemplates))
}

// newPages builds the page set for cfg: the stock pages, then any
// overrides from cfg.TemplatesDir, each parsed and tried with sample data
// now, so a broken template stops the start instead of a user's sign-in.
func newPages(cfg UIConfig, imgSrc string, log *slog.Logger) (pages, error) {
	p := pages{t: builtinPages, stock: builtinPages, log: log, product: cfg.ProductName, logo: cfg.LogoURL}
	if p.product == "" {
		p.product = "Portcullis"
	}
	style := ui.Style
	if cfg.TemplatesDir != "" {
		css, err := readStyle(cfg.TemplatesDir)
		if err != nil {
			return pages{}, err
		}
		if css != "" {
			style += "\n" + css
		}
		if p.t, err = parseOverrides(cfg.TemplatesDir, style); err != nil {
			return pages{}, err
		}
		p.stock = stockPages(style) // what an override failing at run time falls back to
	}
	p.base = "default-src 'none'; style-src " + ui.Hash(style) + "; frame-ancestors 'none'; base-uri 'none'"
	if imgSrc != "" {
		p.base += "; img-src " + imgSrc
	}
	p.csp = p.base + "; form-action 'none'"
	return p, nil
}

// readStyle reads dir/style.css, "" when there is none.
func readStyle(dir string) (string, error) {
	css, err := os.ReadFile(filepath.Join(dir, "style.css"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("ui.templates_dir: %w", err)
	case strings.Contains(strings.ToLower(string(css)), "</style"):
		return "", errors.New("ui.templates_dir: style.css must not contain </style")
	}
	return string(css), nil
}

// parseOverrides parses the stock pages with style, then every <page>.html
// in dir over them, and executes each page with sample data.
func parseOverrides(dir, style string) (*template.Template, error) {
	t := stockPages(style)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ui.templates_dir: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".html")
		if !ok || e.IsDir() {
			continue
		}
		if !slices.Contains(pageNames, name) {
			return nil, fmt.Errorf("ui.templates_dir: %s is not a page (want one of %s.html)", e.Name(), strings.Join(pageNames, ".html, "))
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("ui.templates_dir: %w", err)
		}
		if _, err := t.New(name).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("ui.templates_dir: %s: %w", e.Name(), err)
		}
	}
	for _, name := range pageNames {
		if err := t.ExecuteTemplate(io.Discard, name, samplePage()); err != nil {
			return nil, fmt.Errorf("ui.templates_dir: page %s: %w", name, err)
		}
	}
	return t, nil
}

// samplePage fills every field, as some page will at run time.
func samplePage() pageData {
	return pageData{Title: "Title", Product: "Portcullis", LogoURL: "https://example.com/logo.png", Message: "Message.",
		Detail: "detail", RequestID: "id", SignInURL: "/oauth2/start", User: "user@example.com", Action: "/oauth2/sign_out",
		CSRF: "csrf", RedirectTo: "/", CancelURL: "/", HomeURL: "/", Provider: "Provider",
		Providers: []providerLink{{Name: "Provider", URL: "/oauth2/start?provider=p"}},
		Device:    &devicePage{UserCode: "BCDF-GHJK", Client: "portcullis-cli", Source: "192.0.2.1", Agent: "curl/8.0", Requested: "1 Jan 2026 12:00:00 UTC"}}
}
