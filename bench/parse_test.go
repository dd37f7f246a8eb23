package main

import (
	"net/http"
	"strings"
	"testing"
)

// These tests cover the harness's parsing and configuration only; the
// harness itself runs for minutes and is started with `make bench`.

func TestParseWrk(t *testing.T) {
	out := []byte(`Running 5s test @ http://127.0.0.1:4180/
  1 threads and 64 connections
  65079 requests in 5.07s, 9.37MB read
Requests/sec:  12831.03
BENCH-RESULT {"requests":65079,"duration_us":5072001,"non200":3,"bad_status":302,"reissued":1,"connect":0,"read":2,"write":0,"timeout":0,"p50_us":4285,"p99_us":34216,"max_us":69692}
`)
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 65079 || r.P50US != 4285 || r.P99US != 34216 || r.Non200 != 3 || r.BadStatus != 302 || r.Read != 2 {
		t.Errorf("parseWrk = %+v", r)
	}
	if got := r.RPS(); got < 12830 || got > 12832 {
		t.Errorf("RPS = %.2f, want 12831", got)
	}
	if p := r.problem(); !strings.Contains(p, "3 responses were not 200 (e.g. 302)") || !strings.Contains(p, "2 socket errors") {
		t.Errorf("problem() = %q", p)
	}
	if _, err := parseWrk([]byte("Requests/sec: 10\n")); err == nil {
		t.Error("output without the result line parsed")
	}
	if p := (result{Requests: 10, DurationUS: 1e6}).problem(); p != "" {
		t.Errorf("a clean run has problem %q", p)
	}
}

func TestParseGoBench(t *testing.T) {
	out := []byte(`goos: linux
goarch: amd64
pkg: github.com/portcullis/portcullis/proxy
cpu: Intel(R) Xeon(R) Processor
BenchmarkServeHTTPAuthenticated-2   	  106705	     11043 ns/op	    5978 B/op	      70 allocs/op
BenchmarkForwardAuth-2              	  125112	      9530 ns/op	    3456 B/op	      44 allocs/op
BenchmarkCustom                     	     100	       2.5 ns/op	       7 cookie-bytes	       0 B/op	       0 allocs/op
PASS
ok  	github.com/portcullis/portcullis/proxy	3.1s
`)
	got := parseGoBench(out)
	want := []microResult{
		{"BenchmarkServeHTTPAuthenticated", 11043, 5978, 70},
		{"BenchmarkForwardAuth", 9530, 3456, 44},
		{"BenchmarkCustom", 2.5, 0, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("parseGoBench = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"none", nil, 0},
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"outlier", []float64{10, 11, 1000, 9, 12}, 11},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.xs); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	cookies := []*http.Cookie{
		{Name: "_portcullis_login_0a1b2c", Value: "login"},
		{Name: "_portcullis_0", Value: "a"},
		{Name: "_portcullis_1", Value: "b"},
		{Name: "theme", Value: "dark"},
	}
	if got, want := sessionCookie(cookies, "_portcullis"), "_portcullis_0=a; _portcullis_1=b"; got != want {
		t.Errorf("chunked: %q, want %q", got, want)
	}
	if got, want := sessionCookie([]*http.Cookie{{Name: "_portcullis", Value: "v"}}, "_portcullis"), "_portcullis=v"; got != want {
		t.Errorf("single: %q, want %q", got, want)
	}
}

// TestNginxConfig checks that the documented block still has what the
// harness replaces, so a change to docs/forward-auth.md breaks this test
// rather than the benchmark.
func TestNginxConfig(t *testing.T) {
	block, err := nginxServerBlock("..")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := nginxConfig(block, "/tmp/x", "127.0.0.1:1000", "127.0.0.1:2000", "127.0.0.1:3000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"listen 127.0.0.1:1000;", "server 127.0.0.1:2000;", "server 127.0.0.1:3000;", "keepalive 64;",
		"auth_request /oauth2/auth;", "proxy_pass http://auth_service;", "proxy_pass http://app;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx configuration lacks %q", want)
		}
	}
	if strings.Contains(conf, "127.0.0.1:4180") || strings.Contains(conf, "127.0.0.1:8080") {
		t.Error("a documented address was left in place")
	}
	if n := strings.Count(conf, `proxy_set_header Connection "";`); n != strings.Count(conf, "proxy_pass ") {
		t.Errorf("%d proxy_pass without keep-alive headers", strings.Count(conf, "proxy_pass ")-n)
	}
}

func TestParsePProfTop(t *testing.T) {
	out := []byte(`File: portcullis
Type: cpu
Duration: 5s, Total samples = 3.37s (67.4%)
Showing nodes accounting for 930ms, 27.60% of 3370ms total
      flat  flat%   sum%        cum   cum%
     230ms  6.82%  6.82%      230ms  6.82%  aeshashbody
         0     0%  6.82%     1.20s 35.61%  github.com/portcullis/portcullis/proxy.(*Handler).ServeHTTP
     120us  3.56% 10.38%   1.5mins 10.68%  runtime.concatstrings
`)
	lines, total, err := parsePProfTop(out)
	if err != nil || total != 3.37 || len(lines) != 3 {
		t.Fatalf("parsePProfTop = %d lines, total %v, %v", len(lines), total, err)
	}
	want := []profLine{
		{0.23, 0.23, "6.82%", "6.82%", "aeshashbody"},
		{0, 1.2, "0%", "35.61%", "github.com/portcullis/portcullis/proxy.(*Handler).ServeHTTP"},
		{120e-6, 90, "3.56%", "10.68%", "runtime.concatstrings"},
	}
	for i, w := range want {
		if g := lines[i]; g.fn != w.fn || g.flatPct != w.flatPct || g.cumPct != w.cumPct || !near(g.flat, w.flat) || !near(g.cum, w.cum) {
			t.Errorf("line %d = %+v, want %+v", i, g, w)
		}
	}
	ours := topBy(lines, func(l profLine) float64 { return l.cum }, "github.com/portcullis/", 5)
	if len(ours) != 1 || ours[0].fn != "proxy.(*Handler).ServeHTTP" {
		t.Errorf("Portcullis rows = %+v", ours)
	}
	byFlat := topBy(lines, func(l profLine) float64 { return l.flat }, "", 2)
	if len(byFlat) != 2 || byFlat[0].fn != "aeshashbody" || byFlat[1].fn != "runtime.concatstrings" {
		t.Errorf("top 2 by flat = %+v", byFlat)
	}
	if _, _, err := parsePProfTop([]byte("no table here\n")); err == nil {
		t.Error("no error for output without a total")
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestParseCommandCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_hmget:calls=1234,usec=5678,usec_per_call=4.60,rejected_calls=0,failed_calls=0\r\ncmdstat_ping:calls=3,usec=1\r\n"
	for cmd, want := range map[string]int64{"hmget": 1234, "ping": 3, "hset": 0} {
		if got, err := parseCommandCalls(info, cmd); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", cmd, got, err, want)
		}
	}
	if c := (cacheHitResult{requests: 1000, misses: 10}); c.ratio() != 0.99 {
		t.Errorf("ratio = %v", c.ratio())
	}
}
