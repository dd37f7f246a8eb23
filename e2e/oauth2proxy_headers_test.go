package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// headersWorld is a world whose gateway trusts 127.0.0.1/32 as its load
// balancer (server.trusted_proxies), names the client from
// X-Forwarded-For (the default server.real_client_ip_header), passes
// the ID token to its upstream (pass_authorization_header) and the
// X-Auth-Request-* copies too (headers.set_xauthrequest), as an
// oauth2-proxy user behind a balancer configures it. newWorld's
// configuration is edited and the gateway restarted with it.
func headersWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, worldOptions{})
	rp := w.replicas[0]
	cfg, err := os.ReadFile(rp.config)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), "\nserver:\n", "\nserver:\n  trusted_proxies: [127.0.0.1/32]\n", 1)
	s = strings.Replace(s, "    url: "+w.upstream.URL+"\n", "    url: "+w.upstream.URL+"\n    pass_authorization_header: true\n", 1)
	if strings.Contains(s, "\nheaders:") {
		t.Fatalf("the configuration has a headers section already:\n%s", cfg)
	}
	s += "\nheaders:\n  set_xauthrequest: true\n"
	if !strings.Contains(s, "pass_authorization_header") || !strings.Contains(s, "trusted_proxies") {
		t.Fatalf("could not edit the configuration:\n%s", cfg)
	}
	rp.stop(t)
	if err := os.WriteFile(rp.config, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	rp.start(t)
	w.cmd, w.logs = rp.cmd, rp.logs
	return w
}

func TestOAuth2ProxyHeaders(t *testing.T) {
	w := headersWorld(t)
	c := browser(t)
	decodeSeen(t, w.signIn(c, "/", "alice"))

	t.Run("client IP and scheme from the trusted balancer", func(t *testing.T) {
		req, _ := http.NewRequest("GET", w.gateway+"/behind-the-balancer", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		up := decodeSeen(t, resp).Header
		for _, h := range []struct{ name, want string }{
			{"X-Real-Ip", "203.0.113.7"},
			{"X-Forwarded-Proto", "https"},
			{"X-Forwarded-For", "203.0.113.7, 127.0.0.1"},
			// RFC 7239 §4: host:port is no token, so it is quoted.
			{"Forwarded", `for=203.0.113.7;host="` + strings.TrimPrefix(w.gateway, "http://") + `";proto=https`},
		} {
			if got := strings.Join(up.Values(h.name), "|"); got != h.want {
				t.Errorf("upstream %s = %q, want %q", h.name, got, h.want)
			}
		}
		if !w.logs.waitFor("path=/behind-the-balancer", "remote=203.0.113.7 peer=127.0.0.1") {
			t.Errorf("the access log does not show remote=203.0.113.7 with peer=127.0.0.1:\n%s", w.logs.String())
		}
	})

	t.Run("set_xauthrequest sends the X-Auth-Request copies upstream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", w.gateway+"/xauth", nil)
		req.Header.Set("X-Auth-Request-Email", "ceo@example.com") // the client's copy never survives
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		up := decodeSeen(t, resp).Header
		if got := up.Values("X-Auth-Request-Email"); len(got) != 1 || got[0] != "alice@example.com" {
			t.Errorf("upstream X-Auth-Request-Email = %q, want alice's", got)
		}
		if got, want := up.Get("X-Auth-Request-User"), up.Get("X-Forwarded-User"); got == "" || got != want {
			t.Errorf("upstream X-Auth-Request-User = %q, want X-Forwarded-User's %q", got, want)
		}
	})

	t.Run("pass_authorization_header delivers the ID token", func(t *testing.T) {
		resp, err := c.Get(w.gateway + "/with-id-token")
		if err != nil {
			t.Fatal(err)
		}
		auth := decodeSeen(t, resp).Header.Values("Authorization")
		if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
			t.Fatalf("upstream Authorization = %q, want one Bearer token", auth)
		}
		parts := strings.Split(strings.TrimPrefix(auth[0], "Bearer "), ".")
		if len(parts) != 3 {
			t.Fatalf("the bearer is not a JWS: %q", auth[0])
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
			Exp float64         `json:"exp"`
			Sub string          `json:"sub"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatalf("ID token payload %s: %v", payload, err)
		}
		if claims.Iss != w.idp.URL {
			t.Errorf("iss = %q, want the demo provider %q", claims.Iss, w.idp.URL)
		}
		var aud []string
		if json.Unmarshal(claims.Aud, &aud) != nil {
			var one string
			json.Unmarshal(claims.Aud, &one)
			aud = []string{one}
		}
		if len(aud) == 0 || aud[0] != "portcullis" {
			t.Errorf("aud = %s, want the client portcullis", claims.Aud)
		}
		if claims.Sub != "u-alice" || time.Unix(int64(claims.Exp), 0).Before(time.Now()) {
			t.Errorf("sub %q exp %v: want alice's live token", claims.Sub, claims.Exp)
		}
	})
}
