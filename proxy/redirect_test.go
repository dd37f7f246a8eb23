package proxy

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// redirectTestAllowed is the allowlist the hostile-input table runs against.
var redirectTestAllowed = []string{
	"app.example.com",
	"api.example.com:8443",
	".example.net",
	".bar.foo",
	"xn--bcher-kva.example",
	"203.0.113.7",
}

func redirectTestPolicy(t testing.TB, public string, allowed []string) *redirectPolicy {
	t.Helper()
	u, err := url.Parse(public)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newRedirectPolicy(u, allowed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// redirectSafeTests run against https://auth.example.com with redirectTestAllowed.
var redirectSafeTests = []struct {
	name string
	in   string
	want string
}{
	// Scheme-relative and slash runs (RFC 3986 §4.2).
	{"scheme-relative", "//evil.com", "/"},
	{"scheme-relative with path", "//evil.com/login", "/"},
	{"triple slash", "///evil.com", "/"},
	{"four slashes", "////evil.com", "/"},
	{"double slash later in path", "/a//evil.com", "/"},

	// Backslashes in every position (browsers read "\" as "/").
	{"CVE-2020-5233 slash backslash", `/\evil.com`, "/"},
	{"backslash slash", `\/evil.com`, "/"},
	{"double backslash", `\\evil.com`, "/"},
	{"backslash slash pairs", `\/\/evil.com`, "/"},
	{"backslash in path", `/foo\bar`, "/"},
	{"backslash in query", `/foo?x=a\b`, "/"},
	{"backslash in fragment", `/foo#\evil`, "/"},
	{"backslash in authority before at", `https://evil.com\@app.example.com/`, "/"},
	{"CVE-2021-39191 backslash in host", `https://google.fr\.app.example.com`, "/"},
	{"CVE-2019-20479 logout slash backslash", `/\phishing-site.example/login`, "/"},
	{"https slash backslash", `https:/\evil.com`, "/"},
	{"http double backslash", `http:\\evil.com`, "/"},
	{"https double backslash", `https:\\evil.com`, "/"},

	// Percent-encoded dangers, checked once decoded.
	{"encoded double slash", "/%2F%2Fevil.com", "/"},
	{"encoded slash after slash", "/%2fevil.com", "/"},
	{"encoded backslash", "/%5Cevil.com", "/"},
	{"encoded backslash lowercase", "/%5cevil.com", "/"},
	{"encoded tab between slashes", "/%09/evil.com", "/"},
	{"encoded double slash without leading slash", "%2F%2Fevil.com", "/"},
	{"encoded space between slashes", "/%20/evil.com", "/"},
	{"encoded NBSP between slashes", "/%C2%A0/evil.com", "/"},
	{"encoded zero-width space between slashes", "/%E2%80%8B/evil.com", "/"},
	{"CRLF header injection", "/%0d%0aSet-Cookie:x=1", "/"},
	{"encoded LF in query", "/x?a=%0aSet-Cookie:x", "/"},
	{"encoded NUL", "/%00/evil.com", "/"},
	{"encoded DEL", "/foo%7F", "/"},
	{"invalid escape", "/%zz", "/"},
	{"truncated escape", "/foo%2", "/"},
	{"double-encoded slashes", "/%252F%252Fevil.com", "/"},
	{"encoded fullwidth solidus after slash", "/%EF%BC%8Fevil.com", "/"},
	{"encoded U+3031 after slash (mod_auth_openidc list)", "/%E3%80%B1evil.com", "/"},
	{"encoded katakana long mark after slash", "/%E3%83%BCevil.com", "/"},
	{"encoded backslash in query", "/x?a=%5C", "/"},
	{"invalid UTF-8 in path", "/%FF%FE", "/"},

	// Literal whitespace and control characters.
	{"CVE-2020-11053 tab between slashes", "/\t/evil.com", "/"},
	{"CVE-2020-11053 space between slashes", "/ /evil.com", "/"},
	{"CVE-2020-4037 many tabs", "/\t\t/\t/evil.com", "/"},
	{"leading space", " /dashboard", "/"},
	{"trailing newline", "/dashboard\n", "/"},
	{"literal CRLF", "/\r\nSet-Cookie: x=1", "/"},
	{"NUL", "/foo\x00", "/"},
	{"DEL", "/foo\x7f", "/"},
	{"vertical tab", "/\v/evil.com", "/"},
	{"form feed", "/\f/evil.com", "/"},
	{"NBSP", "/\u00a0/evil.com", "/"},
	{"ideographic space", "/\u3000/evil.com", "/"},
	{"zero-width space", "/\u200b/evil.com", "/"},
	{"fullwidth solidus", "/\uff0fevil.com", "/"},
	{"leading tab before scheme", "\thttps://app.example.com/", "/"},
	{"tab inside javascript scheme", "java\tscript:alert(1)", "/"},
	{"space in absolute path", "https://app.example.com/a b", "/"},

	// Userinfo (RFC 3986 §3.2.1).
	{"userinfo allowed host at evil", "https://app.example.com@evil.com", "/"},
	{"userinfo at evil", "https://good@evil.com", "/"},
	{"userinfo with dot host", "https://good.com@evil.com", "/"},
	{"userinfo on allowed host", "https://user:pass@app.example.com/", "/"},
	{"empty userinfo", "https://@app.example.com/", "/"},
	{"encoded at in authority", "https://evil.com%40app.example.com/", "/"},
	{"colon userinfo", "https://app.example.com:443@evil.com/", "/"},

	// Look-alike hosts.
	{"allowed host as prefix", "https://app.example.com.evil.net/", "/"},
	{"own host as prefix", "https://auth.example.com.evil.net/", "/"},
	{"hyphen look-alike", "https://evil-example.com/", "/"},
	{"glued look-alike", "https://evilexample.com/", "/"},
	{"suffix without dot boundary", "https://evilexample.net/", "/"},
	{"suffix hyphen look-alike", "https://evil-example.net/", "/"},
	{"CVE-2021-21291 evilbar.foo", "https://evilbar.foo/", "/"},
	{"suffix entry does not allow apex", "https://example.net/", "/"},
	{"trailing dot on allowed host", "https://app.example.com./", "/"},
	{"trailing dot on suffix host", "https://x.example.net./", "/"},
	{"parent of own host", "https://example.com/", "/"},
	{"sibling of own host", "https://other.example.com/", "/"},
	{"percent-encoded host", "https://%61pp.example.com/", "/"},
	{"empty label", "https://x..example.net/", "/"},
	{"underscore label", "https://a_b.example.net/", "/"},

	// IDN and homoglyphs.
	{"cyrillic a in allowed host", "https://\u0430pp.example.com/", "/"},
	{"cyrillic o under suffix", "https://g\u043e\u043egle.example.net/", "/"},
	{"encoded cyrillic host", "https://%D0%B0pp.example.com/", "/"},
	{"ideographic full stop in host", "https://app.example\u3002com/", "/"},
	{"fullwidth host", "https://\uff41pp.example.com/", "/"},
	{"punycode under suffix entry", "https://xn--pple-43d.example.net/", "/"},
	{"punycode deep under suffix entry", "https://a.xn--pple-43d.example.net/", "/"},

	// Ports.
	{"allowed host other port", "https://app.example.com:8443/", "/"},
	{"listed-port host on default port", "https://api.example.com/", "/"},
	{"listed-port host on other port", "https://api.example.com:9443/", "/"},
	{"leading zero port", "https://app.example.com:0443/", "/"},
	{"empty port", "https://app.example.com:/", "/"},
	{"port zero", "https://app.example.com:0/", "/"},
	{"port overflow", "https://app.example.com:65536/", "/"},
	{"non-numeric port", "https://app.example.com:https/", "/"},
	{"own host other port", "https://auth.example.com:8443/", "/"},
	{"two ports", "https://app.example.com:443:443/", "/"},

	// Scheme tricks.
	{"javascript", "javascript:alert(1)", "/"},
	{"javascript mixed case", "JaVaScRiPt:alert(1)", "/"},
	{"javascript with authority", "javascript://app.example.com/%0aalert(1)", "/"},
	{"data", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "/"},
	{"vbscript", "vbscript:msgbox(1)", "/"},
	{"https opaque", "https:evil.com", "/"},
	{"http opaque", "http:evil.com", "/"},
	{"https one slash", "https:/evil.com", "/"},
	{"https three slashes", "https:///evil.com", "/"},
	{"empty host", "https://", "/"},
	{"ftp", "ftp://app.example.com/", "/"},
	{"file", "file:///etc/passwd", "/"},
	{"http to allowed host", "http://app.example.com/", "/"},
	{"http to own host served over https", "http://auth.example.com/", "/"},
	{"digit-led scheme", "1https://app.example.com/", "/"},
	{"bare host", "evil.com", "/"},
	{"bare relative path", "dashboard", "/"},
	{"query only", "?next=/x", "/"},
	{"fragment only", "#top", "/"},

	// Dot segments (RFC 3986 §5.2.4).
	{"CVE-2020-4037 dot backslash", `/./\evil.com`, "/"},
	{"CVE-2020-4037 dotdot backslash", `/../\evil.com`, "/"},
	{"dot then double slash", "/.//evil.com", "/"},
	{"dotdot then double slash", "/..//evil.com", "/"},
	{"dot segment", "/a/./b", "/"},
	{"dotdot segment", "/a/../b", "/"},
	{"trailing dot", "/a/.", "/"},
	{"trailing dotdot", "/a/..", "/"},
	{"encoded dotdot", "/%2e%2e/admin", "/"},
	{"encoded dot then encoded slash", "/%2E/%2Fevil.com", "/"},
	{"dot with tab", "/.%09/evil.com", "/"},
	{"dotdot with path parameter", "/..;/evil", "/"},
	{"dot segment in absolute", "https://app.example.com/a/../b", "/"},
	{"double slash in absolute path", "https://app.example.com//evil.com", "/"},

	// IP address tricks.
	{"hex IPv4", "https://0x7f000001/", "/"},
	{"decimal IPv4", "https://2130706433/", "/"},
	{"short IPv4", "https://127.1/", "/"},
	{"octal IPv4", "https://0177.0.0.1/", "/"},
	{"decimal form of allowed IP", "https://3405803783/", "/"},
	{"leading zero in allowed IP", "https://203.0.113.07/", "/"},
	{"hex last label under suffix", "https://a.0x7f.example.net.0x1/", "/"},
	{"IPv6 loopback", "https://[::1]/", "/"},
	{"IPv4-mapped IPv6 of allowed IP", "https://[::ffff:203.0.113.7]/", "/"},
	{"unterminated IPv6", "https://[::1/", "/"},

	// Query values that chain to another redirect (Vouch badStrings).
	{"next is https URL", "/login?next=https://evil.com", "/"},
	{"next is encoded http URL", "/login?next=http%3A%2F%2Fevil.com", "/"},
	{"next is scheme-relative", "/login?next=//evil.com", "/"},
	{"next is encoded scheme-relative", "/login?next=%2F%2Fevil.com", "/"},
	{"next is double-encoded scheme-relative", "/login?next=%252F%252Fevil.com", "/"},
	{"next is upper-case", "/login?next=HTTPS://evil.com", "/"},
	{"next is javascript", "/login?a=1&next=javascript:alert(1)", "/"},
	{"next is data", "/login?next=data:text/html,x", "/"},
	{"next has leading plus-space", "/login?next=+//evil.com", "/"},
	{"semicolon separated next", "/login?a=1;next=https://evil.com", "/"},
	{"query key is a URL", "/login?https://evil.com", "/"},
	{"chain through allowed host", "https://app.example.com/redirect?to=https://evil.com", "/"},

	// Markup and other characters outside RFC 3986.
	{"html injection", `/"><script>alert(1)</script>`, "/"},
	{"brackets in path", "/[x]", "/"},
	{"brackets in query", "/x?a[]=1", "/"},
	{"second hash", "/a#b#c", "/"},
	{"pipe", "/a|b", "/"},
	{"caret", "/a^b", "/"},

	// Length.
	{"empty", "", "/"},
	{"overlong relative", "/" + strings.Repeat("a", 2048), "/"},
	{"overlong absolute", "https://app.example.com/" + strings.Repeat("a", 2048), "/"},

	// Accepted.
	{"root", "/", "/"},
	{"path", "/dashboard", "/dashboard"},
	{"path query fragment", "/dashboard?x=1#top", "/dashboard?x=1#top"},
	{"trailing slash", "/a/b/", "/a/b/"},
	{"dotfile segment", "/a/.well-known/x", "/a/.well-known/x"},
	{"encoded space in path", "/my%20docs", "/my%20docs"},
	{"encoded UTF-8 in path", "/caf%C3%A9", "/caf%C3%A9"},
	{"query with encoded space", "/search?q=hello%20world&page=2", "/search?q=hello%20world&page=2"},
	{"query with local path value", "/x?next=/y", "/x?next=/y"},
	{"query with percent", "/x?discount=50%25", "/x?discount=50%25"},
	{"sub-delims in path", "/a-b_c.d~e/!$&'()*+,=:@", "/a-b_c.d~e/!$&'()*+,=:@"},
	{"longest relative", "/" + strings.Repeat("a", 2047), "/" + strings.Repeat("a", 2047)},
	{"own origin", "https://auth.example.com/after", "https://auth.example.com/after"},
	{"own origin normalised", "HTTPS://AUTH.Example.COM/After?X=1#Y", "https://auth.example.com/After?X=1#Y"},
	{"own origin default port dropped", "https://auth.example.com:443/x", "https://auth.example.com/x"},
	{"own origin empty path", "https://auth.example.com", "https://auth.example.com/"},
	{"own origin empty path with query", "https://auth.example.com?x=1", "https://auth.example.com/?x=1"},
	{"allowed exact host", "https://app.example.com/a?b=c#d", "https://app.example.com/a?b=c#d"},
	{"allowed host mixed case", "https://App.Example.Com/a", "https://app.example.com/a"},
	{"allowed host with listed port", "https://api.example.com:8443/v1", "https://api.example.com:8443/v1"},
	{"allowed suffix subdomain", "https://x.example.net/", "https://x.example.net/"},
	{"allowed deep suffix subdomain", "https://a.b.example.net/p", "https://a.b.example.net/p"},
	{"allowed suffix at dot boundary", "https://x.bar.foo/", "https://x.bar.foo/"},
	{"allowed punycode exact", "https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"},
	{"allowed IPv4 exact", "https://203.0.113.7/x", "https://203.0.113.7/x"},
	{"allowed numeric inner label", "https://1.2.example.net/", "https://1.2.example.net/"},
}

func TestRedirectSafe(t *testing.T) {
	p := redirectTestPolicy(t, "https://auth.example.com", redirectTestAllowed)
	for _, tt := range redirectSafeTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.safe(tt.in); got != tt.want {
				t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedirectSafeHostileCount(t *testing.T) {
	n := 0
	for _, tt := range redirectSafeTests {
		if tt.want == "/" && tt.in != "/" {
			n++
		}
	}
	if n < 70 {
		t.Errorf("%d hostile rows, want at least 70", n)
	}
}

// TestRedirectSafeOrigins covers gateways served over http (development) and
// on an IPv6 literal, where the own origin is the only absolute target.
func TestRedirectSafeOrigins(t *testing.T) {
	for _, tt := range []struct {
		name   string
		public string
		in     string
		want   string
	}{
		{"http dev own origin", "http://localhost:8080", "http://localhost:8080/x?y=1", "http://localhost:8080/x?y=1"},
		{"http dev default port", "http://localhost", "http://localhost:80/x", "http://localhost/x"},
		{"http dev wrong port", "http://localhost:8080", "http://localhost/x", "/"},
		{"http dev https is another origin", "http://localhost:8080", "https://localhost:8080/x", "/"},
		{"http dev other host", "http://localhost:8080", "http://127.0.0.1:8080/", "/"},
		{"http dev IPv4 own origin", "http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
		{"http dev IPv4 short form", "http://127.0.0.1:8080", "http://127.1:8080/", "/"},
		{"http dev IPv4 decimal form", "http://127.0.0.1:8080", "http://2130706433:8080/", "/"},
		{"IPv6 own origin", "http://[::1]:8080", "http://[::1]:8080/x", "http://[::1]:8080/x"},
		{"IPv6 non-canonical", "http://[::1]:8080", "http://[0:0::1]:8080/x", "/"},
		{"IPv6 upper-case own origin", "http://[fe80::1]:8080", "http://[FE80::1]:8080/x", "http://[fe80::1]:8080/x"},
		{"IPv6 zone", "http://[fe80::1]:8080", "http://[fe80::1%25eth0]:8080/x", "/"},
		{"IPv6 other port", "http://[::1]:8080", "http://[::1]:8081/x", "/"},
		{"public URL path ignored", "https://auth.example.com/oauth2", "https://auth.example.com/x", "https://auth.example.com/x"},
		{"public URL upper-case host", "https://AUTH.example.com", "https://auth.EXAMPLE.com/x", "https://auth.example.com/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := redirectTestPolicy(t, tt.public, nil)
			if got := p.safe(tt.in); got != tt.want {
				t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedirectSafeNilPolicy(t *testing.T) {
	var p *redirectPolicy
	if got := p.safe("/x"); got != "/" {
		t.Errorf("nil policy: safe(%q) = %q, want %q", "/x", got, "/")
	}
}

func TestNewRedirectPolicyEntries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entry   string
		want    redirectHost // zero when an error is expected
		wantErr string       // substring of the error
	}{
		{"exact host", "app.example.com", redirectHost{name: "app.example.com", port: "443"}, ""},
		{"exact host lowercased", "APP.Example.com", redirectHost{name: "app.example.com", port: "443"}, ""},
		{"exact host with port", "app.example.com:8443", redirectHost{name: "app.example.com", port: "8443"}, ""},
		{"suffix", ".example.com", redirectHost{name: ".example.com", suffix: true, port: "443"}, ""},
		{"suffix with port", ".Example.com:8443", redirectHost{name: ".example.com", suffix: true, port: "8443"}, ""},
		{"punycode", "xn--bcher-kva.example", redirectHost{name: "xn--bcher-kva.example", port: "443"}, ""},
		{"single-label exact host", "intranet", redirectHost{name: "intranet", port: "443"}, ""},
		{"IPv4 exact", "203.0.113.7", redirectHost{name: "203.0.113.7", port: "443"}, ""},
		{"empty", "", redirectHost{}, "empty"},
		{"leading space", " app.example.com", redirectHost{}, "whitespace"},
		{"trailing space", "app.example.com ", redirectHost{}, "whitespace"},
		{"inner space", "app .example.com", redirectHost{}, "whitespace"},
		{"tab", "app.example.com\t", redirectHost{}, "whitespace"},
		{"newline", "app.example.com\n", redirectHost{}, "whitespace"},
		{"NBSP", "app.example.com\u00a0", redirectHost{}, "non-ASCII"},
		{"scheme", "https://app.example.com", redirectHost{}, "not a URL"},
		{"path", "app.example.com/path", redirectHost{}, "not a URL"},
		{"backslash", `app.example.com\x`, redirectHost{}, "not a URL"},
		{"userinfo", "user@app.example.com", redirectHost{}, "userinfo"},
		{"wildcard subdomain", "*.example.com", redirectHost{}, "wildcard"},
		{"wildcard", "*", redirectHost{}, "wildcard"},
		{"non-ASCII", "b\u00fccher.example", redirectHost{}, "non-ASCII"},
		{"cyrillic homoglyph", "\u0430pp.example.com", redirectHost{}, "non-ASCII"},
		{"trailing dot", "app.example.com.", redirectHost{}, "trailing dot"},
		{"dot only", ".", redirectHost{}, "1-253"},
		{"double leading dot", "..example.com", redirectHost{}, "empty label"},
		{"empty label", "app..example.com", redirectHost{}, "empty label"},
		{"single-label suffix", ".com", redirectHost{}, "two labels"},
		{"empty port", "app.example.com:", redirectHost{}, "port"},
		{"port zero", "app.example.com:0", redirectHost{}, "port"},
		{"port overflow", "app.example.com:65536", redirectHost{}, "port"},
		{"port leading zero", "app.example.com:08443", redirectHost{}, "port"},
		{"port name", "app.example.com:https", redirectHost{}, "port"},
		{"port only", ":8443", redirectHost{}, "1-253"},
		{"two colons", "app.example.com:1:2", redirectHost{}, "colons"},
		{"IPv6", "[::1]", redirectHost{}, "IPv6"},
		{"bare IPv6", "::1", redirectHost{}, "colons"},
		{"leading hyphen", "-app.example.com", redirectHost{}, "invalid label"},
		{"underscore", "app_x.example.com", redirectHost{}, "letters, digits"},
		{"long label", strings.Repeat("a", 64) + ".example.com", redirectHost{}, "invalid label"},
		{"short IPv4", "127.1", redirectHost{}, "dotted-quad"},
		{"hex IPv4", "0x7f000001", redirectHost{}, "dotted-quad"},
		{"decimal IPv4", "2130706433", redirectHost{}, "dotted-quad"},
		{"leading-zero IPv4", "127.0.0.01", redirectHost{}, "dotted-quad"},
		{"IPv4 suffix", ".0.0.1", redirectHost{}, "dotted-quad"},
		{"IPv4 as suffix", ".203.0.113.7", redirectHost{}, "not an IP address"},
		{"percent", "app%2Eexample.com", redirectHost{}, "letters, digits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse("https://auth.example.com")
			p, err := newRedirectPolicy(u, []string{"ok.example.com", tt.entry})
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("newRedirectPolicy(%q) succeeded, want error containing %q", tt.entry, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "allowed_redirect_hosts") {
					t.Errorf("newRedirectPolicy(%q) error = %q, want it to contain %q", tt.entry, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.entry)) {
					t.Errorf("newRedirectPolicy(%q) error = %q does not name the entry", tt.entry, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("newRedirectPolicy(%q) = %v", tt.entry, err)
			}
			if got := p.hosts[1]; got != tt.want {
				t.Errorf("newRedirectPolicy(%q) entry = %+v, want %+v", tt.entry, got, tt.want)
			}
		})
	}
}

func TestNewRedirectPolicyPublicURL(t *testing.T) {
	for _, tt := range []struct {
		name    string
		public  string
		wantErr bool
	}{
		{"https", "https://auth.example.com", false},
		{"http with port", "http://localhost:8080", false},
		{"IPv6", "http://[::1]:8080", false},
		{"ftp", "ftp://auth.example.com", true},
		{"no scheme", "auth.example.com", true},
		{"userinfo", "https://user@auth.example.com", true},
		{"opaque", "https:auth.example.com", true},
		{"empty host", "https:///x", true},
		{"bad port", "https://auth.example.com:99999", true},
		{"trailing dot", "https://auth.example.com.", true},
		{"short IPv4", "http://127.1:8080", true},
		{"IPv6 zone", "http://[fe80::1%25eth0]:8080", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.public)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newRedirectPolicy(u, nil)
			if (err != nil) != tt.wantErr {
				t.Errorf("newRedirectPolicy(%q) error = %v, wantErr %v", tt.public, err, tt.wantErr)
			}
		})
	}
	if _, err := newRedirectPolicy(nil, nil); err == nil {
		t.Error("newRedirectPolicy(nil) succeeded, want error")
	}
}

// redirectFuzzHostAllowed restates, independently of redirectPolicy, which
// hosts the fuzz policy may send a browser to.
func redirectFuzzHostAllowed(u *url.URL) bool {
	h := u.Hostname()
	switch h {
	case "auth.example.com", "app.example.com", "api.example.com", "xn--bcher-kva.example", "203.0.113.7":
		return true
	}
	return strings.HasSuffix(h, ".example.net") || strings.HasSuffix(h, ".bar.foo")
}

func FuzzRedirectSafe(f *testing.F) {
	for _, tt := range redirectSafeTests {
		// Oversized rows are left out: they are table-tested, and long
		// seeds slow the mutator down for no coverage.
		if len(tt.in) <= 512 {
			f.Add(tt.in)
		}
	}
	p := redirectTestPolicy(f, "https://auth.example.com", redirectTestAllowed)
	f.Fuzz(func(t *testing.T, in string) {
		out := p.safe(in)
		if again := p.safe(out); again != out {
			t.Fatalf("safe(%q) = %q, but safe(%q) = %q", in, out, out, again)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("safe(%q) = %q: not UTF-8", in, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || r == '\\' || unicode.IsSpace(r) || r >= utf8.RuneSelf {
				t.Fatalf("safe(%q) = %q: contains %q", in, out, r)
			}
		}
		if len(out) > redirectMaxLen {
			t.Fatalf("safe(%q) = %q: longer than %d", in, out, redirectMaxLen)
		}
		if out == "/" {
			return
		}
		if strings.HasPrefix(out, "/") {
			if strings.HasPrefix(out, "//") || strings.HasPrefix(out, `/\`) {
				t.Fatalf("safe(%q) = %q: scheme-relative", in, out)
			}
			if out != in {
				t.Fatalf("safe(%q) = %q: relative target changed", in, out)
			}
			return
		}
		u, err := url.Parse(out)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.User != nil ||
			!redirectFuzzHostAllowed(u) || u.Scheme == "http" {
			t.Fatalf("safe(%q) = %q: not an allowed absolute URL (err %v)", in, out, err)
		}
		if !strings.HasPrefix(out, u.Scheme+"://"+u.Host+"/") {
			t.Fatalf("safe(%q) = %q: not rebuilt as scheme://host/", in, out)
		}
	})
}
