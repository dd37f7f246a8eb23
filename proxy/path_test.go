package proxy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

var canonicalPathTests = []struct {
	name    string
	in      string
	path    string
	rawPath string
	reason  string // non-empty: want an errAmbiguousPath error containing this
}{
	// Accepted.
	{"root", "/", "/", "/", ""},
	{"plain", "/api/v1/users", "/api/v1/users", "/api/v1/users", ""},
	{"trailing slash kept", "/api/", "/api/", "/api/", ""},
	{"case preserved", "/ADMIN", "/ADMIN", "/ADMIN", ""},
	{"encoded letter decoded", "/%61dmin", "/admin", "/admin", ""},
	{"encoded upper-case letters decoded", "/%41%44MIN", "/ADMIN", "/ADMIN", ""},
	{"encoded digit hyphen underscore tilde decoded", "/%31%2D%5F%7e", "/1-_~", "/1-_~", ""},
	{"encoded space stays escaped", "/my%20docs", "/my docs", "/my%20docs", ""},
	{"lower-case hex upper-cased", "/caf%c3%a9", "/café", "/caf%C3%A9", ""},
	{"raw UTF-8 escaped", "/café", "/café", "/caf%C3%A9", ""},
	{"unicode CJK", "/%E6%96%87%E6%A1%A3", "/文档", "/%E6%96%87%E6%A1%A3", ""},
	{"raw space escaped", "/a b", "/a b", "/a%20b", ""},
	{"raw quote and brackets escaped", `/a"<>[]{}|^` + "`", `/a"<>[]{}|^` + "`", "/a%22%3C%3E%5B%5D%7B%7D%7C%5E%60", ""},
	{"sub-delims raw", "/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b", ""},
	{"encoded sub-delim stays escaped", "/a%3Ab%40c%2B", "/a:b@c+", "/a%3Ab%40c%2B", ""},
	{"dots inside segments", "/.well-known/a..b/x", "/.well-known/a..b/x", "/.well-known/a..b/x", ""},
	{"segment of three dots", "/a/.../b", "", "", "segment ends in a dot or a space"},
	{"segment with a trailing dot", "/admin./x", "", "", "segment ends in a dot or a space"},
	{"last segment with a trailing dot", "/admin/x.", "", "", "segment ends in a dot or a space"},
	{"segment with an encoded trailing space", "/admin%20/x", "", "", "segment ends in a dot or a space"},
	{"dotfile", "/.git", "/.git", "/.git", ""},

	// Refused.
	{"empty", "", "", "", `start with "/"`},
	{"relative", "admin", "", "", `start with "/"`},
	{"asterisk form", "*", "", "", `start with "/"`},
	{"absolute form", "http://evil.com/admin", "", "", `start with "/"`},
	{"leading double slash", "//admin", "", "", "empty segment"},
	{"inner double slash", "/public//admin", "", "", "empty segment"},
	{"trailing double slash", "/admin//", "", "", "empty segment"},
	{"dot segment", "/./admin", "", "", "dot segment"},
	{"dotdot segment", "/public/../admin", "", "", "dot segment"},
	{"trailing dot", "/admin/.", "", "", "dot segment"},
	{"trailing dotdot", "/public/..", "", "", "dot segment"},
	{"only dotdot", "/..", "", "", "dot segment"},
	{"backslash", `/public\..\admin`, "", "", "backslash"},
	{"backslash only", `/\`, "", "", "backslash"},
	{"semicolon dotdot", "/public/..;/admin", "", "", "semicolon"},
	{"matrix parameter", "/admin;jsessionid=1", "", "", "semicolon"},
	{"CVE-2026-41059 raw hash", "/admin#/public", "", "", `raw "#"`},
	{"CVE-2025-54576 query as path", "/admin?x=/public/", "", "", `raw "?"`},
	{"CVE-2026-41059 encoded hash", "/foo/secret%23/bar", "", "", "%23"},
	{"encoded question mark", "/admin%3Fx=/public/", "", "", "%3F"},
	{"encoded slash", "/public/..%2Fadmin", "", "", "%2F"},
	{"encoded slash lower-case", "/a%2fb", "", "", "%2F"},
	{"encoded dotdot", "/public/%2e%2e/admin", "", "", "%2E"},
	{"encoded dot", "/%2E/admin", "", "", "%2E"},
	{"encoded backslash", "/public/%5c../admin", "", "", "%5C"},
	{"encoded semicolon", "/admin%3bx", "", "", "%3B"},
	{"double encoding", "/%2561dmin", "", "", "%25"},
	{"double-encoded slash", "/public/..%252Fadmin", "", "", "%25"},
	{"raw tab", "/admin\t", "", "", "control character"},
	{"raw NUL", "/admin\x00", "", "", "control character"},
	{"raw CR LF", "/a\r\nX-Injected: 1", "", "", "control character"},
	{"raw DEL", "/admin\x7f", "", "", "control character"},
	{"encoded NUL", "/admin%00.html", "", "", "encoded control"},
	{"encoded CR LF", "/a%0D%0AX-Injected:%201", "", "", "encoded control"},
	{"encoded tab", "/%09/admin", "", "", "encoded control"},
	{"encoded DEL", "/a%7f", "", "", "encoded control"},
	{"invalid escape", "/%zz", "", "", "invalid percent-encoding"},
	{"truncated escape", "/a%2", "", "", "invalid percent-encoding"},
	{"lone percent", "/100%", "", "", "invalid percent-encoding"},
	{"half-hex escape", "/%g1", "", "", "invalid percent-encoding"},
	{"invalid UTF-8 encoded", "/%FF", "", "", "UTF-8"},
	{"invalid UTF-8 raw", "/\xff", "", "", "UTF-8"},
	{"overlong UTF-8 dot", "/%C0%AE%C0%AE/admin", "", "", "UTF-8"},
	{"overlong UTF-8 slash", "/public%C0%AFadmin", "", "", "UTF-8"},
	{"fullwidth dots", "/%EF%BC%8E%EF%BC%8E/admin", "", "", "look-alike"},
	{"two dot leader", "/public/\u2025/admin", "", "", "look-alike"},
	{"fullwidth solidus", "/public\uff0fadmin", "", "", "look-alike"},
	{"division slash", "/public%E2%88%95admin", "", "", "look-alike"},
	{"fullwidth semicolon", "/admin\uff1bx", "", "", "look-alike"},
	{"greek question mark", "/admin\u037ex", "", "", "look-alike"},
	{"too long", "/" + strings.Repeat("a", pathMaxLen), "", "", "longer than 8192"},
	{"too long once escaped", "/" + strings.Repeat("\u00e9", 2000), "", "", "once escaped"},
}

func TestCanonicalPath(t *testing.T) {
	for _, tt := range canonicalPathTests {
		t.Run(tt.name, func(t *testing.T) {
			path, rawPath, err := canonicalPath(tt.in)
			if tt.reason != "" {
				if !errors.Is(err, errAmbiguousPath) || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("canonicalPath(%q) error = %v, want errAmbiguousPath containing %q", tt.in, err, tt.reason)
				}
				if path != "" || rawPath != "" {
					t.Errorf("canonicalPath(%q) = %q, %q with an error, want empty", tt.in, path, rawPath)
				}
				return
			}
			if err != nil {
				t.Fatalf("canonicalPath(%q) error = %v", tt.in, err)
			}
			if path != tt.path || rawPath != tt.rawPath {
				t.Errorf("canonicalPath(%q) = %q, %q, want %q, %q", tt.in, path, rawPath, tt.path, tt.rawPath)
			}
		})
	}
}

// TestCanonicalPathLengthLimit pins the boundary: 8192 bytes are accepted.
func TestCanonicalPathLengthLimit(t *testing.T) {
	in := "/" + strings.Repeat("a", pathMaxLen-1)
	if _, _, err := canonicalPath(in); err != nil {
		t.Errorf("canonicalPath(%d bytes) error = %v", len(in), err)
	}
}

func TestPathHasPrefix(t *testing.T) {
	for _, tt := range []struct {
		path, prefix string
		want         bool
	}{
		{"/api/", "/api/", true},
		{"/api/x", "/api/", true},
		{"/api/x/y", "/api/", true},
		{"/api", "/api/", false},
		{"/apis", "/api/", false},
		{"/api", "/api", true},
		{"/api/", "/api", true},
		{"/api/x", "/api", true},
		{"/apis", "/api", false},
		{"/ap", "/api", false},
		{"/API/x", "/api", false},
		{"/", "/", true},
		{"/anything/at/all", "/", true},
		{"/public/admin", "/public", true},
		{"/admin", "/public", false},
		{"/a/b", "/a/b", true},
		{"/a/bc", "/a/b", false},
		{"/a/b/c", "/a/b", true},
		{"/x", "", false},
		{"/x", "x", false},
	} {
		if got := pathHasPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("pathHasPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

func FuzzCanonicalPath(f *testing.F) {
	for _, tt := range canonicalPathTests {
		// Oversized rows are left out: they are table-tested, and long
		// seeds slow the mutator down for no coverage.
		if len(tt.in) <= 512 {
			f.Add(tt.in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		path, rawPath, err := canonicalPath(in)
		if err != nil {
			if !errors.Is(err, errAmbiguousPath) {
				t.Fatalf("canonicalPath(%q) error %v does not wrap errAmbiguousPath", in, err)
			}
			return
		}
		if !strings.HasPrefix(path, "/") {
			t.Fatalf("canonicalPath(%q) path %q does not start with /", in, path)
		}
		for _, bad := range []string{"//", "/./", "/../", `\`, ";", "#", "?"} {
			if strings.Contains(path, bad) {
				t.Fatalf("canonicalPath(%q) path %q contains %q", in, path, bad)
			}
		}
		if strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..") {
			t.Fatalf("canonicalPath(%q) path %q ends in a dot segment", in, path)
		}
		for i := 0; i < len(path); i++ {
			if path[i] < 0x20 || path[i] == 0x7f {
				t.Fatalf("canonicalPath(%q) path %q contains control byte %#x", in, path, path[i])
			}
		}
		for i := 0; i < len(rawPath); i++ {
			if c := rawPath[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("canonicalPath(%q) rawPath %q contains unescaped byte %#x", in, rawPath, c)
			}
		}
		if dec, err := url.PathUnescape(rawPath); err != nil || dec != path {
			t.Fatalf("canonicalPath(%q): PathUnescape(%q) = %q, %v, want %q", in, rawPath, dec, err, path)
		}
		p2, r2, err := canonicalPath(rawPath)
		if err != nil || p2 != path || r2 != rawPath {
			t.Fatalf("canonicalPath(%q) = %q, %q; canonicalPath(%q) = %q, %q, %v", in, path, rawPath, rawPath, p2, r2, err)
		}
	})
}
