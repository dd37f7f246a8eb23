package proxy

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// oauth2-proxy's routing and policy options (issue 16 item 3):
// skip_auth_routes, trusted_ips, api_routes, whitelist_domains,
// authenticated_emails_file and pass_encoded_slashes.

func TestOAuth2ProxyOptionsValidation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		want   string // in the error; "" for none
	}{
		{"skip: anchored", func(c *Config) {
			c.Policy.SkipAuthRoutes = []string{"^/public/", "GET=^/probe$", "post = ^/hook$", "^/a|^/b", "(?i)^/docs/", `\A/x`}
		}, ""},
		{"skip: compile error names the entry", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"^/ok", "^/bad(/"} }, `policy.skip_auth_routes[1] "^/bad(/"`},
		{"skip: unanchored", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"/public"} }, `policy.skip_auth_routes[0] "/public": the regex must start with ^`},
		{"skip: unanchored with method", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"GET=/public"} }, "must start with ^"},
		{"skip: one alternative unanchored", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"^/a|/admin"} }, "in every alternative"},
		{"skip: multi-line anchor", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"(?m)^/a"} }, "must start with ^"},
		{"skip: optional anchor", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"(^/a)?/b"} }, "must start with ^"},
		{"skip: negation", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"GET!=^/admin"} }, "negated entries"},
		{"skip: bad method", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"G T=^/x"} }, "want METHOD=^regex"},
		{"skip: empty regex", func(c *Config) { c.Policy.SkipAuthRoutes = []string{"GET="} }, "empty regex"},
		{"api: anchored", func(c *Config) { c.Policy.APIRoutes = []string{"^/api/", "^/v[12]/"} }, ""},
		{"api: unanchored", func(c *Config) { c.Policy.APIRoutes = []string{"/api/"} }, `policy.api_routes[0] "/api/"`},
		{"api: no method form", func(c *Config) { c.Policy.APIRoutes = []string{"GET=^/api/"} }, "policy.api_routes[0]"},
		{"api: compile error", func(c *Config) { c.Policy.APIRoutes = []string{"^/api/[z-a]"} }, "policy.api_routes[0]"},
		{"trusted ips", func(c *Config) { c.Policy.TrustedIPs = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"} }, ""},
		{"trusted ips: everyone v4", func(c *Config) { c.Policy.TrustedIPs = []string{"0.0.0.0/0"} }, `policy.trusted_ips[0]: "0.0.0.0/0" admits every address`},
		{"trusted ips: everyone v6", func(c *Config) { c.Policy.TrustedIPs = []string{"10.0.0.0/8", "::/0"} }, `policy.trusted_ips[1]: "::/0" admits every address`},
		{"trusted ips: mapped", func(c *Config) { c.Policy.TrustedIPs = []string{"::ffff:0.0.0.0/96"} }, "IPv4 form"},
		{"trusted ips: not an address", func(c *Config) { c.Policy.TrustedIPs = []string{"example.com"} }, "is not an IP address or CIDR"},
		{"whitelist domains", func(c *Config) {
			c.Server.WhitelistDomains = []string{"*.example.com", ".example.org", "app.example.net:8443", "tools.example.net"}
		}, ""},
		{"whitelist: any port", func(c *Config) { c.Server.WhitelistDomains = []string{"app.example.com:*"} }, `server.whitelist_domains "app.example.com:*": any-port`},
		{"whitelist: url", func(c *Config) { c.Server.WhitelistDomains = []string{"https://app.example.com"} }, `server.whitelist_domains "https://app.example.com"`},
		{"whitelist: top-level domain", func(c *Config) { c.Server.WhitelistDomains = []string{"*.com"} }, "at least two labels"},
		{"whitelist: bare wildcard", func(c *Config) { c.Server.WhitelistDomains = []string{"*"} }, "wildcards are not supported"},
		{"emails file", func(c *Config) {
			c.Policy.AuthenticatedEmailsFile, c.Policy.AuthenticatedEmails = "emails.txt", []byte("# team\nalice@example.com\n")
		}, ""},
		{"emails file: malformed", func(c *Config) {
			c.Policy.AuthenticatedEmailsFile, c.Policy.AuthenticatedEmails = "emails.txt", []byte("alice@example.com\n\nbob at example.com\n")
		}, `policy.authenticated_emails_file emails.txt: line 3: "bob at example.com" is not an email address`},
		{"encoded slashes: routes disagree", func(c *Config) {
			c.Policy.Routes = []RouteConfig{{Path: "/api/", Methods: []string{"GET"}, PassEncodedSlashes: true}, {Path: "/api/", Methods: []string{"POST"}}}
		}, "pass_encoded_slashes differs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryNew(t, tt.mutate)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want %q in it", err, tt.want)
			}
		})
	}
}

// signInRedirect reports whether resp sends a browser to sign in.
func signInRedirect(resp *http.Response) bool {
	return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), "https://idp.test/authorize")
}

// TestSkipAuthRoutes: entries pass without sign-in and without identity,
// matched on the canonical path with their method; traversal and encoding
// tricks are refused before anything is matched, and an unanchored match
// never happens.
func TestSkipAuthRoutes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Policy.SkipAuthRoutes = []string{"GET=^/probe$", "^/public/", "POST=^/hooks/[a-z]+$"}
		c.Policy.Routes = []RouteConfig{{Path: "/admin/", Groups: []string{"admins"}}}
	})
	alice := e.sessionCookie("alice", "alice@example.com", "admins")
	for _, tt := range []struct {
		method, target string
		header         []string
		want           int // 0: a redirect to sign in (for a POST without Origin: the "please repeat" page)
	}{
		{"GET", "/probe", nil, 200},
		{"HEAD", "/probe", nil, 200},
		{"POST", "/probe", nil, 0},
		{"GET", "/probe/x", nil, 0},
		{"GET", "/public/", nil, 200},
		{"DELETE", "/public/x", nil, 200},
		{"POST", "/hooks/github", nil, 200},
		{"GET", "/hooks/github", nil, 0},
		{"POST", "/hooks/github/x", nil, 0},
		{"GET", "/%70ublic/x", nil, 200},  // %70 is "p": the canonical path is /public/x
		{"GET", "/admin/public/", nil, 0}, // anchored: not /public/
		{"GET", "/x/probe", nil, 0},
		{"GET", "/PUBLIC/x", nil, 0},               // regexes are case-sensitive
		{"GET", "/public/../admin/", nil, 400},     // never reaches a skip
		{"GET", "/public/%2e%2e/admin/", nil, 400}, // nor encoded
		{"GET", "/public/%2E%2E/admin/", nil, 400},
		{"GET", "/public/..%2Fadmin/", nil, 400},
		{"GET", "/public//admin/", nil, 400},
		{"GET", "/public/x;/../admin/", nil, 400},
		{"GET", "/public\\..\\admin/", nil, 400},
		// A method override must be skipped too, or the request is judged.
		{"GET", "/probe", []string{"X-HTTP-Method-Override", "DELETE"}, 0},
		{"POST", "/public/x", []string{"X-HTTP-Method-Override", "DELETE"}, 200},
	} {
		r := httptestRequest(tt.method, "https://gw.example.com"+tt.target, tt.header...)
		resp := e.do(r)
		switch {
		case tt.want == 0 && !signInRedirect(resp) && !postLost(resp):
			t.Errorf("%s %s = %d %s, want a redirect to sign in", tt.method, tt.target, resp.StatusCode, resp.Header.Get("Location"))
		case tt.want != 0 && resp.StatusCode != tt.want:
			t.Errorf("%s %s = %d, want %d", tt.method, tt.target, resp.StatusCode, tt.want)
		}
	}

	// No identity reaches the upstream, not even a signed-in user's, and
	// a client's own identity headers are removed.
	n := e.count()
	resp := e.do(get("https://gw.example.com/public/x", "Cookie", alice, "X-Forwarded-User", "mallory", "X-Forwarded-Email", "mallory@example.com"))
	if resp.StatusCode != 200 || e.count() != n+1 {
		t.Fatalf("skipped route with a session = %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Portcullis-Assertion"} {
		if v := e.last().Header.Get(h); v != "" {
			t.Errorf("upstream got %s: %q on a skipped route", h, v)
		}
	}
	if !strings.Contains(e.logs.String(), `rule="policy.skip_auth_routes[1] ^/public/ public"`) {
		t.Errorf("the access log does not name the skip entry:\n%s", e.logs)
	}

	// Forward-auth decides the forwarded path the same way: 202 without
	// identity headers.
	for _, uri := range []string{"/public/x", "/probe"} {
		resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", uri, "Cookie", alice))
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Auth-Request-User") != "" {
			t.Errorf("auth %s = %d user %q, want 202 without identity", uri, resp.StatusCode, resp.Header.Get("X-Auth-Request-User"))
		}
	}
	for _, uri := range []string{"/public/%2e%2e/admin/", "/public/../admin/"} {
		if resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", uri)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("auth %s = %d, want 403 (refused)", uri, resp.StatusCode)
		}
	}
}

// TestSkipAuthRouteCaseFolding: where a case-folding backend would serve
// a skipped spelling from a stricter route, the skip must match that
// reading too.
func TestSkipAuthRouteCaseFolding(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.SkipAuthRoutes = []string{"^/Admin/help", "(?i)^/admin/docs", "^/Docs/"}
		c.Policy.Routes = []RouteConfig{{Path: "/admin/", Groups: []string{"admins"}}}
	})
	for _, tt := range []struct {
		target string
		skip   bool
	}{
		{"/Admin/help", false}, // /admin/help on a folding backend: the admins route
		{"/admin/docs/x", true},
		{"/ADMIN/DOCS/x", true}, // matches as spelled and folded
		{"/Docs/x", true},       // folding lands on no other route
	} {
		resp := e.do(get("https://gw.example.com" + tt.target))
		if got := resp.StatusCode == 200; got != tt.skip {
			t.Errorf("%s = %d, want skipped %v", tt.target, resp.StatusCode, tt.skip)
		}
	}
}

// TestSkipAuthRoutesKeepRefusals: a skip does not override what no
// identity could change: nothing serves the path, or the method is not
// one the route lists.
func TestSkipAuthRoutesKeepRefusals(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/app/", URL: c.Upstreams[0].URL}}
		c.Policy.SkipAuthRoutes = []string{"^/"}
		c.Policy.Routes = []RouteConfig{{Path: "/app/ro/", Methods: []string{"GET"}}}
	})
	for _, tt := range []struct {
		method, target string
		want           int
	}{
		{"GET", "/app/x", 200},
		{"GET", "/other", 404},
		{"GET", "/app/ro/x", 200},
		{"POST", "/app/ro/x", 403},
	} {
		if resp := e.do(httptestRequest(tt.method, "https://gw.example.com"+tt.target)); resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.target, resp.StatusCode, tt.want)
		}
	}
}

// TestClientFromChain: the one walk behind the logs, the upstream's
// X-Real-Ip and policy.trusted_ips. known is false wherever the client
// cannot be named for certain; last is then the last hop known.
func TestClientFromChain(t *testing.T) {
	tp, err := parseTrustedProxies([]string{"192.0.2.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		xff, last string
		known     bool
	}{
		{"198.51.100.7", "198.51.100.7", true},
		{"198.51.100.7, 192.0.2.11", "198.51.100.7", true},
		{"10.0.0.1, 198.51.100.7, 192.0.2.11, 192.0.2.12", "198.51.100.7", true}, // the left one is the client's to write
		{"198.51.100.7,203.0.113.9", "203.0.113.9", true},
		{"[2001:db8::5]:443, 198.51.100.7:5000", "198.51.100.7", true},
		{"::ffff:198.51.100.7", "198.51.100.7", true},
		{"192.0.2.11, 2001:db8::1", "192.0.2.11", true}, // every hop trusted: the left-most
		{"", "", false},
		{"  ", "", false},
		{"unknown", "", false},
		{"198.51.100.7, garbage", "", false},
		{"garbage, 192.0.2.11", "192.0.2.11", false}, // logged as the proxy, admitted as nobody
		{"198.51.100.7,", "", false},
		{"fe80::1%eth0", "", false},
	} {
		last, known := tp.clientFromChain(tt.xff)
		if known != tt.known || addrString(last) != tt.last {
			t.Errorf("clientFromChain(%q) = %v, %v, want %q, %v", tt.xff, last, known, tt.last, tt.known)
		}
	}
}

// TestClientFromForwarded: the same walk over RFC 7239 for= parameters.
func TestClientFromForwarded(t *testing.T) {
	tp, err := parseTrustedProxies([]string{"192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		v, last, proto string
		known          bool
	}{
		{`for=198.51.100.7;proto=https`, "198.51.100.7", "https", true},
		{`for=198.51.100.7;proto=https, for=192.0.2.11;proto=http`, "198.51.100.7", "https", true},
		{`for="[2001:db8:1::9]:4711"`, "2001:db8:1::9", "", true},
		{`for=203.0.113.5, for=198.51.100.7`, "198.51.100.7", "", true},
		{`for=192.0.2.11, for=192.0.2.12`, "192.0.2.11", "", true},
		{``, "", "", false},
		{`for=unknown`, "", "", false},                           // §6.3: withheld
		{`for=_hidden, for=192.0.2.11`, "192.0.2.11", "", false}, // §6.2: obfuscated
		{`proto=https`, "", "https", false},
	} {
		last, known, proto := tp.clientFromForwarded(tt.v)
		if known != tt.known || addrString(last) != tt.last || proto != tt.proto {
			t.Errorf("clientFromForwarded(%q) = %v, %v, %q, want %q, %v, %q", tt.v, last, known, proto, tt.last, tt.known, tt.proto)
		}
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// TestTrustedIPsForwarded: with server.real_client_ip_header Forwarded,
// policy.trusted_ips reads the same strict walk.
func TestTrustedIPsForwarded(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Server.RealClientIPHeader = "Forwarded"
		c.Policy.TrustedIPs = []string{"198.51.100.0/24"}
	})
	for _, tt := range []struct {
		name   string
		header []string
		pass   bool
	}{
		{"named", []string{"Forwarded", "for=198.51.100.7"}, true},
		{"behind two proxies", []string{"Forwarded", "for=198.51.100.7, for=192.0.2.11"}, true},
		{"client spoofed the left element", []string{"Forwarded", "for=198.51.100.7, for=203.0.113.5"}, false},
		{"withheld", []string{"Forwarded", "for=unknown"}, false},
		{"obfuscated behind a proxy", []string{"Forwarded", "for=_x, for=192.0.2.11"}, false},
		{"X-Forwarded-For is not the configured header", []string{"X-Forwarded-For", "198.51.100.7"}, false},
		{"none", nil, false},
	} {
		r := get("https://gw.example.com/app", tt.header...)
		r.RemoteAddr = trustedPeer
		if resp := e.do(r); tt.pass != (resp.StatusCode == 200) || !tt.pass && !signInRedirect(resp) {
			t.Errorf("%s: %d, want pass=%v", tt.name, resp.StatusCode, tt.pass)
		}
	}
}

// TestTrustedIPsRealIPHeader: with server.real_client_ip_header X-Real-Ip
// the client behind a trusted proxy is the one X-Real-Ip names, read
// strictly: exactly one address.
func TestTrustedIPsRealIPHeader(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Server.RealClientIPHeader = "X-Real-Ip"
		c.Policy.TrustedIPs = []string{"198.51.100.0/24"}
	})
	for _, tt := range []struct {
		name   string
		header []string
		pass   bool
	}{
		{"named", []string{"X-Real-Ip", "198.51.100.7"}, true},
		{"another client", []string{"X-Real-Ip", "203.0.113.5"}, false},
		{"X-Forwarded-For is not the configured header", []string{"X-Forwarded-For", "198.51.100.7"}, false},
		{"none", nil, false}, // the proxy itself is no client
		{"two", []string{"X-Real-Ip", "198.51.100.7", "X-Real-Ip", "198.51.100.8"}, false},
		{"garbage", []string{"X-Real-Ip", "unknown"}, false},
	} {
		r := get("https://gw.example.com/app", tt.header...)
		r.RemoteAddr = trustedPeer
		if resp := e.do(r); tt.pass != (resp.StatusCode == 200) || !tt.pass && !signInRedirect(resp) {
			t.Errorf("%s: %d, want pass=%v", tt.name, resp.StatusCode, tt.pass)
		}
	}
}

// TestTrustedIPs: the client's address is the peer's, or behind a trusted
// proxy the right-most untrusted X-Forwarded-For entry; a spoofed
// X-Forwarded-For from anyone else counts for nothing.
func TestTrustedIPs(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Policy.TrustedIPs = []string{"198.51.100.0/24", "2001:db8:1::/48"}
		c.Policy.Routes = []RouteConfig{{Path: "/ro/", Methods: []string{"GET"}}}
	})
	for _, tt := range []struct {
		name, peer string
		header     []string
		pass       bool
	}{
		{"trusted peer", "198.51.100.7:4000", nil, true},
		{"trusted v6 peer", "[2001:db8:1::9]:4000", nil, true},
		{"mapped v4 peer", "[::ffff:198.51.100.7]:4000", nil, true},
		{"other peer", "203.0.113.5:4000", nil, false},
		{"other peer spoofing X-Forwarded-For", "203.0.113.5:4000", []string{"X-Forwarded-For", "198.51.100.7"}, false},
		{"other peer spoofing X-Real-Ip", "203.0.113.5:4000", []string{"X-Real-Ip", "198.51.100.7"}, false},
		{"via proxy", trustedPeer, []string{"X-Forwarded-For", "198.51.100.7"}, true},
		{"via two proxies", trustedPeer, []string{"X-Forwarded-For", "198.51.100.7, 192.0.2.11"}, true},
		{"via proxy, client spoofed the left entry", trustedPeer, []string{"X-Forwarded-For", "198.51.100.7, 203.0.113.5"}, false},
		{"via proxy, two headers", trustedPeer, []string{"X-Forwarded-For", "198.51.100.7", "X-Forwarded-For", "203.0.113.5"}, false},
		{"via proxy, no X-Forwarded-For", trustedPeer, nil, false}, // the proxy relays somebody
		{"via proxy, garbage", trustedPeer, []string{"X-Forwarded-For", "198.51.100.7, nonsense"}, false},
	} {
		r := get("https://gw.example.com/app", tt.header...)
		r.RemoteAddr = tt.peer
		resp := e.do(r)
		switch {
		case tt.pass && resp.StatusCode != 200:
			t.Errorf("%s: %d, want 200", tt.name, resp.StatusCode)
		case !tt.pass && !signInRedirect(resp):
			t.Errorf("%s: %d, want a redirect to sign in", tt.name, resp.StatusCode)
		}
		if tt.pass && e.last().Header.Get("X-Forwarded-User") != "" {
			t.Errorf("%s: identity passed on", tt.name)
		}
	}
	// A method the route does not list stays refused.
	r := httptestRequest("POST", "https://gw.example.com/ro/x")
	r.RemoteAddr = "198.51.100.7:4000"
	if resp := e.do(r); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /ro/x from a trusted ip = %d, want 403", resp.StatusCode)
	}
	// Forward-auth: the client behind the ingress.
	resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", "/app", "X-Forwarded-For", "198.51.100.7"))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("auth from a trusted ip behind the ingress = %d, want 202", resp.StatusCode)
	}
	resp = e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", "/app", "X-Forwarded-For", "203.0.113.5"))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("auth from another ip behind the ingress = %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(e.logs.String(), `rule="policy.trusted_ips 198.51.100.0/24"`) {
		t.Errorf("the access log does not name trusted_ips:\n%s", e.logs)
	}
}

func TestTrustedIPsWarning(t *testing.T) {
	s, err := Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "http://127.0.0.1:1"}},
		Policy:    PolicyConfig{EmailDomains: []string{"*"}, TrustedIPs: []string{"10.1.0.0/16", "192.0.2.7"}},
	}.Validate(Known{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range s.Warnings() {
		found = found || strings.Contains(w, "trusted_ips bypasses authentication") && strings.Contains(w, "10.1.0.0/16, 192.0.2.7/32")
	}
	if !found {
		t.Errorf("no trusted_ips warning in %q", s.Warnings())
	}
}

// TestAPIRoutes: without a session, a path on api_routes gets a 401 in
// JSON whatever the client accepts, in reverse-proxy mode and at
// /oauth2/forward_auth; other paths still redirect browsers.
func TestAPIRoutes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Policy.APIRoutes = []string{"^/api/", "^/v[0-9]+/"}
	})
	browserAccept := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, target := range []string{"/api/x", "/api/", "/v2/items"} {
		resp := e.do(get("https://gw.example.com"+target, "Accept", browserAccept))
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("%s = %d (Location %q), want 401", target, resp.StatusCode, resp.Header.Get("Location"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want JSON", target, ct)
		}
		var body struct {
			Error    string `json:"error"`
			LoginURL string `json:"login_url"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "unauthenticated" || !strings.HasPrefix(body.LoginURL, "https://gw.example.com/oauth2/start") {
			t.Errorf("%s: body %+v (%v)", target, body, err)
		}
	}
	for _, target := range []string{"/app/api/x", "/apix", "/API/x", "/v/x"} {
		if resp := e.do(get("https://gw.example.com"+target, "Accept", browserAccept)); !signInRedirect(resp) {
			t.Errorf("%s = %d, want a redirect to sign in", target, resp.StatusCode)
		}
	}
	alice := e.sessionCookie("alice", "alice@example.com")
	if resp := e.do(get("https://gw.example.com/api/x", "Cookie", alice)); resp.StatusCode != 200 {
		t.Errorf("signed in at /api/x = %d", resp.StatusCode)
	}
	// /oauth2/forward_auth redirects browsers, except on api routes.
	fa := func(uri string) *http.Response {
		return e.do(authReq(trustedPeer, "/oauth2/forward_auth", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", uri, "Accept", browserAccept))
	}
	if resp := fa("/api/x"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("forward_auth /api/x = %d %s, want a JSON 401", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp := fa("/app"); resp.StatusCode != http.StatusFound {
		t.Errorf("forward_auth /app = %d, want 302", resp.StatusCode)
	}
}

// TestWhitelistDomains: oauth2-proxy's name for allowed_redirect_hosts,
// merged with it, "*.example.com" read as ".example.com", and every check
// of the redirect policy kept.
func TestWhitelistDomains(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.AllowedRedirectHosts = []string{"app.example.com"}
		c.Server.WhitelistDomains = []string{"*.apps.example.com", "tools.example.com:8443"}
	})
	for _, tt := range []struct {
		rd   string
		safe bool
	}{
		{"https://app.example.com/x", true},    // allowed_redirect_hosts
		{"https://a.apps.example.com/x", true}, // *.apps.example.com
		{"https://b.a.apps.example.com/", true},
		{"https://apps.example.com/", false}, // strict subdomains only
		{"https://evilapps.example.com/", false},
		{"https://a.apps.example.com.evil.com/", false},
		{"http://a.apps.example.com/", false}, // https only
		{"https://a.apps.example.com:8443/", false},
		{"https://tools.example.com:8443/x", true},
		{"https://tools.example.com/x", false},
		{"https://user@a.apps.example.com/", false},
		{"//a.apps.example.com/", false},
		{"https://a.apps.example.com\\@evil.com/", false},
	} {
		got := e.h.redirects.safe(tt.rd)
		if (got != "/") != tt.safe {
			t.Errorf("safe(%q) = %q, want allowed %v", tt.rd, got, tt.safe)
		}
	}
	// Through sign-in: the rd survives to the login cookie's target only
	// when allowed.
	resp := e.do(get("https://gw.example.com/oauth2/start?rd=https://a.apps.example.com/x"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/oauth2/start = %d", resp.StatusCode)
	}
}

// emailsEnv admits nobody but the emails file's addresses.
func emailsEnv(t *testing.T, contents string) *env {
	return newEnv(t, func(c *Config) {
		c.Policy.EmailDomains = nil
		c.Policy.AuthenticatedEmailsFile, c.Policy.AuthenticatedEmails = "/etc/portcullis/emails", []byte(contents)
	})
}

// sessionCookieVerified is sessionCookie with email_verified as given.
func (e *env) sessionCookieVerified(sub, email string, verified bool) string {
	e.t.Helper()
	v, err := e.store.Seal(&session.Session{
		Identity:  session.Identity{Issuer: e.idp.issuer, Subject: sub, Email: email, EmailVerified: verified},
		Provider:  "corp",
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

// TestAuthenticatedEmailsFile: the file's addresses are admitted like
// policy.emails (case-insensitively, verified only); a new version
// replaces the list, and a malformed one keeps the last good list.
func TestAuthenticatedEmailsFile(t *testing.T) {
	e := emailsEnv(t, "# the team\r\nAlice@Example.ORG\r\n\r\n  carol@example.net , Carol  \n")
	status := func(cookie string) int {
		return e.do(get("https://gw.example.com/app", "Cookie", cookie)).StatusCode
	}
	alice := e.sessionCookie("alice", "alice@example.org")
	bob := e.sessionCookie("bob", "bob@example.org")
	carol := e.sessionCookie("carol", "CAROL@example.net")
	aliceUnverified := e.sessionCookieVerified("alice2", "alice@example.org", false)
	for name, tt := range map[string]struct {
		cookie string
		want   int
	}{
		"alice": {alice, 200}, "carol": {carol, 200}, "bob": {bob, 403}, "alice unverified": {aliceUnverified, 403},
	} {
		if got := status(tt.cookie); got != tt.want {
			t.Errorf("%s = %d, want %d", name, got, tt.want)
		}
	}
	if !strings.Contains(e.logs.String(), "authenticated_emails_file") {
		t.Error("the access log does not name the emails file as what admitted")
	}

	f := e.h.routes.emails
	if n, err := f.Load([]byte("bob@example.org\n")); err != nil || n != 1 {
		t.Fatalf("Load = %d, %v", n, err)
	}
	if status(alice) != 403 || status(bob) != 200 {
		t.Errorf("after the reload: alice %d, bob %d; want 403, 200", status(alice), status(bob))
	}
	if _, err := f.Load([]byte("alice@example.org\nnot-an-address\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Load of a malformed file = %v, want an error naming line 2", err)
	}
	if status(alice) != 403 || status(bob) != 200 || f.Len() != 1 {
		t.Errorf("a malformed file changed the list: alice %d, bob %d, %d addresses", status(alice), status(bob), f.Len())
	}
	if _, err := f.Load(nil); err != nil || status(bob) != 403 {
		t.Errorf("an empty file: %v, bob %d; want no error and 403", err, status(bob))
	}
}

// TestAuthenticatedEmailsFileAtSignIn: an identity only the file admits
// may sign in; the policy with only a file does not warn that it admits
// nobody.
func TestAuthenticatedEmailsFileAtSignIn(t *testing.T) {
	e := emailsEnv(t, "dave@example.com\n")
	if err := e.h.routes.admits(&session.Identity{Subject: "dave", Email: "dave@example.com", EmailVerified: true}); err != nil {
		t.Errorf("dave refused at sign-in: %v", err)
	}
	if err := e.h.routes.admits(&session.Identity{Subject: "erin", Email: "erin@example.com", EmailVerified: true}); err == nil {
		t.Error("erin admitted at sign-in")
	}
	if e.h.routes.denies() {
		t.Error("a policy with only an emails file reported as admitting nobody")
	}
}

func TestParseEmailsFile(t *testing.T) {
	set, err := parseEmailsFile([]byte("#c\n\n a@x.io \n\"B@X.io\"\nc@x.io,extra\n#d@x.io\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 || !set["a@x.io"] || !set["b@x.io"] || !set["c@x.io"] || set["d@x.io"] {
		t.Errorf("parsed %v", set)
	}
	for _, bad := range []string{"a@x.io\n@x.io\n", "a@b@x.io\n", "a\n", "a@x.io # trailing comment\n", "a@x..io\n"} {
		if _, err := parseEmailsFile([]byte(bad)); err == nil {
			t.Errorf("parseEmailsFile(%q) accepted", bad)
		}
	}
}

// TestPassEncodedSlashes: under a route with pass_encoded_slashes, "%2F"
// reaches the upstream as sent while the decision reads the canonical
// path; elsewhere, and wherever a decoding backend could read it as
// another path, it is refused as before.
func TestPassEncodedSlashes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"192.0.2.0/24"}
		c.Policy.Routes = []RouteConfig{
			{Path: "/api/", PassEncodedSlashes: true},
			{Path: "/api/admin/", Groups: []string{"admins"}},
			{Path: "/pub/", Public: true, PassEncodedSlashes: true},
		}
	})
	c := extAuthzClient(t, e)
	bob := e.sessionCookie("bob", "bob@example.com")
	for _, tt := range []struct {
		target  string
		want    int
		rawPath string // as the upstream received it
	}{
		{"/api/queues/%2F/q1", 200, "/api/queues/%2F/q1"},
		{"/api/queues/%2f/q1", 200, "/api/queues/%2F/q1"},
		{"/api/exchanges/%2F/amq.direct", 200, "/api/exchanges/%2F/amq.direct"},
		{"/api/vhosts/a%2Fb%2F", 200, "/api/vhosts/a%2Fb%2F"},
		{"/api/queues/%2F%2F/q", 200, "/api/queues/%2F%2F/q"},
		{"/api/q/%2F/caf%C3%A9", 200, "/api/q/%2F/caf%C3%A9"},
		{"/pub/%2F", 200, "/pub/%2F"},
		{"/api/queues/%2F/..", 400, ""},
		{"/api/..%2Fadmin/x", 400, ""},
		{"/api/x%2F..%2Fadmin/x", 400, ""},
		{"/api/x%2F.%2Fy", 400, ""},
		{"/api/x.%2Fy", 400, ""},
		{"/api/x%20%2Fy", 400, ""},
		{"/api/admin%2Fx", 400, ""}, // decoded, /api/admin/x: another route
		{"/api%2Fadmin/x", 400, ""}, // the row "/" does not opt in
		{"/other/%2F", 400, ""},
		{"/%2F", 400, ""},
		{"/api/q/%2F%2e%2e/x", 400, ""},
		{"/api/q/%252F", 400, ""},
		{"/api/q/%2F;/x", 400, ""},
		{"/oauth2/%2F", 400, ""},
	} {
		n := e.count()
		resp := e.do(get("https://gw.example.com"+tt.target, "Cookie", bob))
		if resp.StatusCode != tt.want {
			t.Errorf("%s = %d, want %d", tt.target, resp.StatusCode, tt.want)
			continue
		}
		if tt.want != 200 {
			continue
		}
		if e.count() != n+1 {
			t.Errorf("%s: the upstream received nothing", tt.target)
			continue
		}
		if got := e.last(); got.RawPath != tt.rawPath || got.Path != strings.ReplaceAll(tt.rawPath, "%2F", "/") && !strings.Contains(tt.rawPath, "%C3") {
			t.Errorf("%s reached the upstream as %q (path %q), want %q", tt.target, got.RawPath, got.Path, tt.rawPath)
		}
	}
	// The decision reads the canonical path: "/api/admin/" governs
	// "%2F" below it too.
	if resp := e.do(get("https://gw.example.com/api/admin/%2F", "Cookie", bob)); resp.StatusCode != 400 {
		// /api/admin/ does not opt in: refused before any decision.
		t.Errorf("/api/admin/%%2F = %d, want 400", resp.StatusCode)
	}
	if resp := e.do(get("https://gw.example.com/api/queues/%2F/q1")); !signInRedirect(resp) {
		t.Errorf("/api/queues/%%2F/q1 without a session = %d, want a redirect to sign in", resp.StatusCode)
	}
	// Forward-auth decides such a path as well.
	resp := e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", "/api/queues/%2F/q1", "Cookie", bob))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("auth /api/queues/%%2F/q1 = %d, want 202", resp.StatusCode)
	}
	resp = e.do(authReq(trustedPeer, "/oauth2/auth", "X-Forwarded-Uri", "/other/%2F", "Cookie", bob))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("auth /other/%%2F = %d, want 403 (refused)", resp.StatusCode)
	}
	// Envoy's HTTP ext_authz (path_prefix /oauth2/auth) and gRPC
	// ext_authz judge the tail with the same table.
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/api/queues/%2F/q1", 200},
		{"/api/queues/%2f/q1", 200},
		{"/api/admin%2Fx", 400},
		{"/other/%2F", 400},
		{"/api/..%2Fadmin/x", 400},
	} {
		resp := e.do(get("https://gw.example.com/oauth2/auth"+tt.path, "Cookie", bob))
		if resp.StatusCode != tt.want {
			t.Errorf("HTTP ext_authz %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
		res := check(t, c, checkRequest("GET", "gw.example.com", tt.path, "cookie", bob))
		if tt.want == 200 {
			okHeaders(t, res)
		} else {
			denial(t, res, tt.want)
		}
	}
	if resp := e.do(get("https://gw.example.com/oauth2/auth%2Fapi/queues/q1", "Cookie", bob)); resp.StatusCode != 400 {
		t.Errorf("/oauth2/auth%%2Fapi/... = %d, want 400", resp.StatusCode)
	}
}

// TestEncodedSlashesRefusedByDefault: without the opt-in nothing changes.
func TestEncodedSlashesRefusedByDefault(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.sessionCookie("alice", "alice@example.com")
	if resp := e.do(get("https://gw.example.com/api/queues/%2F/q1", "Cookie", alice)); resp.StatusCode != 400 {
		t.Errorf("%%2F without pass_encoded_slashes = %d, want 400", resp.StatusCode)
	}
}

// TestCanonicalPathSlashes: "%2F" kept, everything canonicalPath refuses
// still refused, and the result canonical: canonicalising it again gives
// the same.
func TestCanonicalPathSlashes(t *testing.T) {
	for _, tt := range []struct{ in, path, raw string }{
		{"/a/%2F/b", "/a/%2F/b", "/a/%2F/b"},
		{"/a/%2f", "/a/%2F", "/a/%2F"},
		{"/a/%41%2F%7e", "/a/A%2F~", "/a/A%2F~"},
		{"/a/%20x%2F", "/a/ x%2F", "/a/%20x%2F"},
		{"/a/b", "/a/b", "/a/b"},
	} {
		p, r, err := canonicalPathSlashes(tt.in)
		if err != nil || p != tt.path || r != tt.raw {
			t.Errorf("canonicalPathSlashes(%q) = %q, %q, %v; want %q, %q", tt.in, p, r, err, tt.path, tt.raw)
			continue
		}
		if p2, r2, err := canonicalPathSlashes(r); err != nil || p2 != p || r2 != r {
			t.Errorf("canonicalPathSlashes(%q) again = %q, %q, %v", r, p2, r2, err)
		}
	}
	for _, in := range []string{"%2F/a", "/a/%2F..", "/a/..%2F", "/a/%2F.%2F", "/a/b.%2F", "/a/%2F%2e", "/a/%2F%5C", "/a//%2F", "/a/%2F/../b", "/a/%2", "/a/%2F%00", "/a/%2F\xff"} {
		if _, _, err := canonicalPathSlashes(in); err == nil {
			t.Errorf("canonicalPathSlashes(%q) accepted", in)
		}
	}
}

func httptestRequest(method, target string, header ...string) *http.Request {
	r := get(target, header...)
	r.Method = method
	return r
}
