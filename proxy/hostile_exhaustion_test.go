package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

// Resource exhaustion (SECURITY.md §4.1 "Server"; mod_auth_openidc
// CVE-2024-24814; CK-8): oversized headers, queries and bodies, cookie
// floods and slow clients are cut off by the gateway's own server settings
// and body limits, with a 4xx, never a 500.

func TestServerLimitsConfigured(t *testing.T) {
	e := hostileEnv(t)
	sc := e.h.ServerConfig()
	srv := sc.HTTPServer(e.h, newTestLogger(e.logs))
	for _, tt := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 10 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, 60 * time.Second},
		{"IdleTimeout", srv.IdleTimeout, 120 * time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want %d", srv.MaxHeaderBytes, 64<<10)
	}
	if srv.Handler != e.h {
		t.Error("the server does not serve the gateway")
	}
}

// TestHugeHeaders: the gateway's server answers 431 to headers beyond
// MaxHeaderBytes (net/http allows 4 KiB of slack above it) before the
// handler runs; just under the limit the handler answers normally.
func TestHugeHeaders(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	for _, tt := range []struct {
		name   string
		line   string
		header []string
		want   int
	}{
		{"one 128 KiB header", "GET /app HTTP/1.1", []string{"X-Pad", strings.Repeat("a", 128<<10)}, 431},
		{"many headers totalling 80 KiB", "GET /app HTTP/1.1", manyHeaders(80, 1<<10), 431},
		{"100 KiB request line", "GET /app?q=" + strings.Repeat("a", 100<<10) + " HTTP/1.1", nil, 431},
		{"100 KiB callback state", "GET /oauth2/callback?code=c&state=" + strings.Repeat("s", 100<<10) + " HTTP/1.1", nil, 431},
		{"100 KiB forward-auth URI", "GET /oauth2/auth HTTP/1.1", []string{"X-Original-URI", "/" + strings.Repeat("a", 100<<10)}, 431},
		{"60 KiB header under the limit", "GET /app HTTP/1.1", []string{"X-Pad", strings.Repeat("a", 60<<10), "Accept", "application/json"}, 401},
		{"1000 small headers under the limit", "GET /app HTTP/1.1", append(manyHeaders(1000, 16), "Accept", "application/json"), 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawDo(t, srv, tt.line, tt.header...)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if e.count() != 0 {
		t.Error("the upstream was reached")
	}
}

func manyHeaders(n, size int) []string {
	var h []string
	for i := 0; i < n; i++ {
		h = append(h, fmt.Sprintf("X-Pad-%d", i), strings.Repeat("b", size))
	}
	return h
}

// TestHugeQueries through the handler: bounded answers, never the query
// echoed into a redirect target the validator would refuse anyway.
func TestHugeQueries(t *testing.T) {
	e := hostileEnv(t)
	big := strings.Repeat("q", 60<<10)
	for _, tt := range []struct {
		name, target string
		header       []string
		want         int
	}{
		{"signed-out browser", "/app?x=" + big, []string{"Accept", "text/html"}, http.StatusFound},
		{"signed-out API client", "/app?x=" + big, []string{"Accept", "application/json"}, http.StatusUnauthorized},
		{"start with a huge rd", "/oauth2/start?rd=/" + big, nil, http.StatusFound},
		{"many parameters", "/oauth2/start?" + strings.Repeat("a=1&", 15000), nil, http.StatusFound},
		{"forward-auth narrowing", "/oauth2/auth?" + strings.Repeat("allowed_groups=g&", 3000), []string{"X-Original-URI", "/admin/"}, http.StatusUnauthorized},
		{"sign-out page", "/oauth2/sign_out?rd=/" + big, nil, http.StatusOK},
		{"signed-out return", "/oauth2/signed_out?state=" + big, nil, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, hdr := e.serve(authReq(trustedPeer, tt.target, tt.header...))
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			for k, vs := range hdr {
				for _, v := range vs {
					if len(v) > 8<<10 && k != "Location" {
						t.Errorf("%s is %d bytes", k, len(v))
					}
				}
			}
			// A sign-in started with a huge target returns to "/".
			if resp.StatusCode == http.StatusFound {
				if got := e.finish(resp, "alice", "alice@example.com").Header.Get("Location"); got != "/" {
					t.Errorf("after sign-in went to a %d-byte Location", len(got))
				}
			}
		})
	}
	// Forward-auth cache of narrowing rules stays bounded when every call
	// names different groups.
	for i := 0; i < 2000; i++ {
		e.do(authReq(trustedPeer, fmt.Sprintf("/oauth2/auth?allowed_groups=g%d", i), "X-Original-URI", "/x"))
	}
	n := 0
	e.h.narrowCache.Range(func(any, any) bool { n++; return true })
	if n > 1024 {
		t.Errorf("narrowing cache holds %d entries, want at most 1024", n)
	}
}

// TestHugeBodies: the POST endpoints read at most 64 KiB.
func TestHugeBodies(t *testing.T) {
	e := hostileEnv(t)
	srv := e.rawServer()
	post := func(path, ctype string, size int, header ...string) *http.Response {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var b strings.Builder
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: gw.example.com\r\nContent-Type: %s\r\nContent-Length: %d\r\n", path, ctype, size)
		for i := 0; i+1 < len(header); i += 2 {
			fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
		}
		b.WriteString("Connection: close\r\n\r\n")
		conn.Write([]byte(b.String()))
		// Write the body in the background: the server may answer and
		// close before reading it all.
		go func() {
			chunk := []byte("rd=" + strings.Repeat("a", 32<<10) + "&")
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := conn.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp
	}
	form := "application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name, path, ctype string
		size              int
		header            []string
		want              []int
	}{
		{"sign_out 1 MiB", "/oauth2/sign_out", form, 1 << 20, []string{"Sec-Fetch-Site", "same-origin"}, []int{400, 413}},
		{"sign_out 65 KiB", "/oauth2/sign_out", form, 65 << 10, []string{"Sec-Fetch-Site", "same-origin"}, []int{400, 413}},
		{"sign_out 100 MiB announced", "/oauth2/sign_out", form, 100 << 20, []string{"Sec-Fetch-Site", "same-origin"}, []int{400, 413}},
		{"backchannel_logout 1 MiB", "/oauth2/backchannel_logout", form, 1 << 20, nil, []int{400, 413}},
		{"backchannel_logout 100 MiB announced", "/oauth2/backchannel_logout", form, 100 << 20, nil, []int{400, 413}},
		{"sign_out 1 MiB multipart", "/oauth2/sign_out", "multipart/form-data; boundary=x", 1 << 20, []string{"Sec-Fetch-Site", "same-origin"}, []int{200, 302, 400, 413}},
		{"backchannel_logout 1 MiB of text", "/oauth2/backchannel_logout", "text/plain", 1 << 20, nil, []int{400, 413}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp := post(tt.path, tt.ctype, tt.size, tt.header...)
			ok := false
			for _, w := range tt.want {
				ok = ok || resp.StatusCode == w
			}
			if !ok {
				t.Errorf("status %d, want one of %v", resp.StatusCode, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// A form just under the limit is read.
	r := authReq(untrustedPeer, "/oauth2/backchannel_logout")
	r.Method = "POST"
	r.Body = io.NopCloser(strings.NewReader("logout_token=" + strings.Repeat("a", 60<<10)))
	r.Header.Set("Content-Type", form)
	if resp := e.do(r); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("backchannel_logout with a 60 KiB junk token: %d, want 400", resp.StatusCode)
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("an oversized body was logged as a server error:\n%s", e.logs.String())
	}
}

// TestManyLoginCookies: however many sign-ins a page starts, the browser
// ends up holding at most session.MaxLoginCookies login cookies, and a jar
// flooded beyond the gateway's own bound converges to it.
func TestManyLoginCookies(t *testing.T) {
	e := hostileEnv(t)
	prefix := e.store.Name() + "_login_"
	jar := map[string]string{}
	apply := func(resp *http.Response) {
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				delete(jar, c.Name)
			} else {
				jar[c.Name] = c.Value
			}
		}
	}
	header := func() string {
		var pairs []string
		for n, v := range jar {
			pairs = append(pairs, n+"="+v)
		}
		return strings.Join(pairs, "; ")
	}
	count := func() int {
		n := 0
		for name := range jar {
			if strings.HasPrefix(name, prefix) {
				n++
			}
		}
		return n
	}
	for i := 0; i < 30; i++ {
		e.advance(time.Second)
		resp, hdr := e.serve(get("https://gw.example.com/app?i="+fmt.Sprint(i), "Cookie", header(), "Accept", "text/html"))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
		if n := len(hdr["Set-Cookie"]); n > 2 {
			t.Errorf("sign-in %d set %d cookies", i, n)
		}
		apply(resp)
		if n := count(); n > session.MaxLoginCookies {
			t.Fatalf("after %d sign-ins the browser holds %d login cookies, want at most %d", i+1, n, session.MaxLoginCookies)
		}
	}
	// The newest attempts still complete.
	if got := e.finish(e.do(get("https://gw.example.com/oauth2/start?rd=/last", "Cookie", header())), "alice", "alice@example.com").Header.Get("Location"); got != "/last" {
		t.Errorf("latest sign-in went to %q", got)
	}

	// A flooded jar (300 login cookies, more than the gateway ever sets).
	jar = map[string]string{}
	for i := 0; i < 300; i++ {
		jar[fmt.Sprintf("%s%016x", prefix, i)] = strings.Repeat("B", 40)
	}
	for round := 1; ; round++ {
		resp, hdr := e.serve(get("https://gw.example.com/oauth2/start", "Cookie", header()))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("round %d: %d", round, resp.StatusCode)
		}
		if n := len(hdr["Set-Cookie"]); n > 66 {
			t.Errorf("round %d: %d Set-Cookie lines", round, n)
		}
		apply(resp)
		if count() <= session.MaxLoginCookies {
			t.Logf("a jar of 300 login cookies is down to %d after %d sign-in starts", count(), round)
			break
		}
		if round > 10 {
			t.Fatalf("still %d login cookies after %d rounds", count(), round)
		}
	}
}

// TestSlowClient: a client that never finishes its headers is cut off by
// ReadHeaderTimeout (10 s by default, asserted above; shortened here so the
// test does not wait).
func TestSlowClient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.ReadHeaderTimeout = 200 * time.Millisecond })
	srv := e.rawServer()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /app HTTP/1.1\r\nHost: gw.example.com\r\nX-Slow: a"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if d := time.Since(start); err != nil || d > 3*time.Second {
		t.Errorf("slow client not cut off: %v after %v", err, d)
	}
	if e.count() != 0 {
		t.Error("the upstream was reached")
	}
	// The configured value reaches the server.
	if got := e.h.ServerConfig().HTTPServer(e.h, newTestLogger(e.logs)).ReadHeaderTimeout; got != 200*time.Millisecond {
		t.Errorf("ReadHeaderTimeout = %v", got)
	}
}
