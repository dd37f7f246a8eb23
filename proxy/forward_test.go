package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestValidHostPort(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"app.example.com", true}, {"app.example.com:8443", true}, {"127.0.0.1:80", true}, {"[::1]:443", true}, {"[::1]", true},
		{"", false}, {"app.example.com:", false}, {"app.example.com:123456", false}, {"a/b", false}, {"a@b", false},
		{"a b", false}, {"[::1", false}, {"[zz]:1", false}, {"[::1]x", false}, {"app.example.com:80:80", false},
		{"ex\u0430mple.com", false}, {"a\\b", false}, {"a?b", false}, {"a#b", false}, {strings.Repeat("a", 300), false},
	} {
		if got := validHostPort(tt.in); got != tt.want {
			t.Errorf("validHostPort(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzForwardedTarget feeds arbitrary forwarded headers from a trusted
// proxy: no panic, and whatever is accepted is a canonical path on a valid
// host with a known scheme and a token method.
func FuzzForwardedTarget(f *testing.F) {
	for _, s := range [][6]string{
		{"GET", "https", "app.example.com", "/admin/x?y=1", "", ""},
		{"", "", "", "", "https://app.example.com/public/", ""},
		{"", "", "", "", "", "/a%2Fb"},
		{"POST", "HTTP", "[::1]:8443", "/x", "http://[::1]:8443/x", ""},
		{"GET /", "gopher", "evil.com/x", "//evil", "javascript:alert(1)", "/../admin"},
		{"get", "https", "a", "/public/..%2Fadmin", "", "/public/..%2Fadmin"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	h := &Handler{}
	h.public, _ = url.Parse("https://gw.example.com")
	f.Fuzz(func(t *testing.T, method, proto, host, uri, originalURL, originalURI string) {
		hdr := http.Header{}
		for k, v := range map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Proto": proto, "X-Forwarded-Host": host,
			"X-Forwarded-Uri": uri, "X-Original-Url": originalURL, "X-Original-Uri": originalURI} {
			if v != "" {
				hdr.Set(k, v)
			}
		}
		fw := readForwarded(hdr)
		tg, err := h.forwardedTarget(&fw)
		if err != nil {
			return
		}
		if tg.Scheme != "http" && tg.Scheme != "https" {
			t.Fatalf("scheme %q", tg.Scheme)
		}
		if !isToken(tg.Method) || strings.ToUpper(tg.Method) != tg.Method {
			t.Fatalf("method %q", tg.Method)
		}
		if tg.HostPort != "gw.example.com" && !validHostPort(tg.HostPort) {
			t.Fatalf("host %q", tg.HostPort)
		}
		if p, raw, err := canonicalPath(tg.RawPath); err != nil || p != tg.Path || raw != tg.RawPath {
			t.Fatalf("path %q / %q not canonical: %v", tg.Path, tg.RawPath, err)
		}
		if strings.ContainsAny(tg.Query, "#\r\n") {
			t.Fatalf("query %q", tg.Query)
		}
	})
}
