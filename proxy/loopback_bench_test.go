package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// BenchmarkLoopback compares a bare ReverseProxy and the gateway over real
// loopback connections (client → proxy → upstream), in one process, so a
// CPU profile shows the whole request path, the HTTP server included.
func BenchmarkLoopback(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the upstream\n")
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	upstreamTransport := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}
	}
	floor := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:  upstreamTransport(),
		BufferPool: copyBuffers,
	}
	h, store := benchHandler(b, func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: up.URL}} })
	h.upstreams[0].rp.Transport = upstreamTransport()
	cookie := benchCookie(b, store)
	for _, tt := range []struct {
		name     string
		h        http.Handler
		timeouts bool
	}{{"floor", floor, false}, {"floor-timeouts", floor, true}, {"gateway", h, true}} {
		b.Run(tt.name, func(b *testing.B) {
			srv := httptest.NewUnstartedServer(tt.h)
			if tt.timeouts {
				srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout, srv.Config.WriteTimeout, srv.Config.IdleTimeout = 10*time.Second, 60*time.Second, 0, 120*time.Second
			}
			srv.Start()
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", srv.URL+"/dashboard/panel?id=7", nil)
					req.Header.Set("Cookie", cookie)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello") {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
