package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// clientEnv trusts the load balancers in 10.0.0.0/8 and 192.0.2.1.
func clientEnv(t *testing.T, header string) *env {
	return newEnv(t, func(c *Config) {
		c.Server.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8:ffff::/48"}
		c.Server.RealClientIPHeader = header
	})
}

func TestClientIPFromTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name       string
		header     string // server.real_client_ip_header
		peer       string
		sent       []string // header name, value pairs from the peer
		wantIP     string
		wantScheme string
		wantXFF    string
	}{
		{"untrusted peer: spoofed X-Forwarded-For not believed", "", "203.0.113.9:4000",
			[]string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https", "X-Real-Ip", "198.51.100.2"}, "203.0.113.9", "http", "203.0.113.9"},
		{"untrusted peer: spoofed Forwarded not believed", "Forwarded", "203.0.113.9:4000",
			[]string{"Forwarded", "for=198.51.100.1;proto=https"}, "203.0.113.9", "http", "203.0.113.9"},
		{"one trusted hop", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https"}, "198.51.100.1", "https", "198.51.100.1, 10.0.0.2"},
		{"several trusted hops, client's own claim on the left", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "6.6.6.6, 198.51.100.1, 192.0.2.1, 10.1.1.1"}, "198.51.100.1", "http", "6.6.6.6, 198.51.100.1, 192.0.2.1, 10.1.1.1, 10.0.0.2"},
		{"chain over several header lines", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "10.1.1.1"}, "198.51.100.1", "http", "198.51.100.1,10.1.1.1, 10.0.0.2"},
		{"addresses with ports", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1:555, [2001:db8:ffff::1]:80"}, "198.51.100.1", "http", "198.51.100.1:555, [2001:db8:ffff::1]:80, 10.0.0.2"},
		{"only trusted hops: the left-most", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "10.9.9.9, 10.1.1.1"}, "10.9.9.9", "http", "10.9.9.9, 10.1.1.1, 10.0.0.2"},
		{"garbage stops the walk at the last known hop", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1, not-an-ip, 10.1.1.1"}, "10.1.1.1", "http", "198.51.100.1, not-an-ip, 10.1.1.1, 10.0.0.2"},
		{"no header from a trusted peer", "", "10.0.0.2:4000", nil, "10.0.0.2", "http", "10.0.0.2"},
		{"appended X-Forwarded-Proto: the right-most counts", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https, http"}, "198.51.100.1", "http", "198.51.100.1, 10.0.0.2"},
		{"bogus X-Forwarded-Proto: the connection's", "", "10.0.0.2:4000",
			[]string{"X-Forwarded-Proto", "javascript"}, "10.0.0.2", "http", "10.0.0.2"},
		{"X-Real-Ip", "x-real-ip", "10.0.0.2:4000",
			[]string{"X-Real-Ip", "198.51.100.1", "X-Forwarded-For", "6.6.6.6"}, "198.51.100.1", "http", "6.6.6.6, 10.0.0.2"},
		{"X-Real-Ip not an address", "X-Real-Ip", "10.0.0.2:4000",
			[]string{"X-Real-Ip", "_hidden"}, "10.0.0.2", "http", "10.0.0.2"},
		{"X-Real-Ip ignored in X-Forwarded-For mode", "", "10.0.0.2:4000",
			[]string{"X-Real-Ip", "198.51.100.1"}, "10.0.0.2", "http", "10.0.0.2"},
		{"Forwarded, quoted IPv6 with port", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for="[2001:db8:cafe::17]:4711";proto=https;host=app.example.com`}, "2001:db8:cafe::17", "https", "10.0.0.2"},
		{"Forwarded, several hops, proto of the client's element", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=6.6.6.6;proto=http, for=198.51.100.1;proto=https, For=10.1.1.1;proto=http`}, "198.51.100.1", "https", "10.0.0.2"},
		{"Forwarded over two lines", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=198.51.100.1;proto=https`, "Forwarded", `for="[2001:db8:ffff::5]"`}, "198.51.100.1", "https", "10.0.0.2"},
		{"Forwarded, obfuscated client: the last known hop", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=_hidden;proto=https, for=10.1.1.1`}, "10.1.1.1", "https", "10.0.0.2"},
		{"Forwarded, unknown client", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=unknown`}, "10.0.0.2", "http", "10.0.0.2"},
		{"Forwarded, quoted comma does not split", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=198.51.100.1;host="a,for=6.6.6.6"`}, "198.51.100.1", "http", "10.0.0.2"},
		{"Forwarded, unquoted IPv6 is malformed", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=[2001:db8::1]`}, "10.0.0.2", "http", "10.0.0.2"},
		{"Forwarded, repeated for= voids the element", "Forwarded", "10.0.0.2:4000",
			[]string{"Forwarded", `for=198.51.100.1;for=10.1.1.1`}, "10.0.0.2", "http", "10.0.0.2"},
		{"Forwarded, X-Forwarded-For ignored for the client", "Forwarded", "10.0.0.2:4000",
			[]string{"X-Forwarded-For", "198.51.100.1"}, "10.0.0.2", "http", "198.51.100.1, 10.0.0.2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := clientEnv(t, tt.header)
			r := get("http://gw.example.com/x", append([]string{"Cookie", e.bob()}, tt.sent...)...)
			r.RemoteAddr = tt.peer
			if resp := e.do(r); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			up := e.last().Header
			for _, c := range []struct{ name, want string }{
				{"X-Real-Ip", tt.wantIP},
				{"X-Forwarded-Proto", tt.wantScheme},
				{"X-Forwarded-For", tt.wantXFF},
				{"Forwarded", "for=" + forwardedNode(tt.wantIP) + ";host=gw.example.com;proto=" + tt.wantScheme},
			} {
				if got := strings.Join(up.Values(c.name), "|"); got != c.want {
					t.Errorf("upstream %s = %q, want %q", c.name, got, c.want)
				}
			}
			peer, _, _ := strings.Cut(tt.peer, ":")
			logs := e.logs.String()
			if !strings.Contains(logs, "remote="+tt.wantIP) {
				t.Errorf("access log lacks remote=%s:\n%s", tt.wantIP, logs)
			}
			if hasPeer := strings.Contains(logs, "peer="+peer); hasPeer != (peer != tt.wantIP) {
				t.Errorf("access log peer=%s present %v, want %v:\n%s", peer, hasPeer, peer != tt.wantIP, logs)
			}
		})
	}
}

func TestRealClientIPHeaderValidated(t *testing.T) {
	err := tryNew(t, func(c *Config) { c.Server.RealClientIPHeader = "CF-Connecting-IP" })
	if err == nil || !strings.Contains(err.Error(), "server.real_client_ip_header") {
		t.Fatalf("err = %v, want one naming server.real_client_ip_header", err)
	}
}

func TestSplitForwarded(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string // the for= of each element
	}{
		{`for=192.0.2.60;proto=http;by=203.0.113.43`, []string{"192.0.2.60"}},
		{`for="_gazonk"`, []string{"_gazonk"}},
		{`For="[2001:db8:cafe::17]:4711"`, []string{"[2001:db8:cafe::17]:4711"}},
		{`for=192.0.2.43, for=198.51.100.17`, []string{"192.0.2.43", "198.51.100.17"}},
		{`for="a\"b"`, []string{`a"b`}},
		{`for="unterminated`, []string{""}},
		{`for=a b;proto=http, for=1.2.3.4`, []string{"", "1.2.3.4"}},
		{`proto=https`, []string{""}},
		{`;;,for=1.2.3.4`, []string{"", "1.2.3.4"}},
	} {
		var got []string
		for _, e := range splitForwarded(tt.in) {
			got = append(got, e["for"])
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitForwarded(%q) for= %q, want %q", tt.in, got, tt.want)
		}
	}
}
