package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDrain: once draining, /ready fails while requests are served; an
// open websocket is waited for and, when the grace ends, ended.
func TestDrain(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw) // echo until the gateway closes the tunnel
	}))
	t.Cleanup(up.Close)
	e := newEnv(t, func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: up.URL}}
		c.Policy.Routes = []RouteConfig{{Path: "/ws", Public: true}}
	})
	gw := httptest.NewServer(e.h)
	t.Cleanup(gw.Close)

	if n := e.h.EndTunnels(context.Background()); n != 0 {
		t.Fatalf("EndTunnels without tunnels: %d", n)
	}
	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: gw.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through the tunnel: %q %v", line, err)
	}
	if n := e.h.Tunnels(); n != 1 {
		t.Fatalf("Tunnels = %d with one websocket open", n)
	}

	e.h.Drain()
	ready := e.do(get("https://gw.example.com/ready"))
	if b := body(ready); ready.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "shutting down") {
		t.Errorf("/ready while draining: %d %s", ready.StatusCode, b)
	}
	if ping := e.do(get("https://gw.example.com/ping")); ping.StatusCode != http.StatusOK {
		t.Errorf("/ping while draining: %d", ping.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if n := e.h.EndTunnels(ctx); n != 1 {
		t.Errorf("EndTunnels ended %d websockets, want 1", n)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Error("the websocket is still open after EndTunnels")
	}
	if n := e.h.Tunnels(); n != 0 {
		t.Errorf("Tunnels = %d after EndTunnels", n)
	}
}
