package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// These tests cover the soak's verdict, its metrics parsing and its
// websocket code; the soak itself runs for minutes and is started with
// `make soak`.

// flat is n samples of a gateway that holds steady: the same RSS,
// goroutines, descriptors, streams and latency every interval.
func flat(n int) []soakSample {
	s := make([]soakSample, n)
	for i := range s {
		s[i] = soakSample{at: time.Duration(i+1) * 30 * time.Second, rssKB: 30_000, goroutines: 60, fds: 35, streams: 5,
			proxied: 6000, p50: time.Millisecond, p99: 5 * time.Millisecond, signIns: 60, signOuts: 30, refreshes: 40, wsMessages: 270}
	}
	return s
}

// with is flat(n) with f applied to sample i for every i.
func with(n int, f func(i int, s *soakSample)) []soakSample {
	s := flat(n)
	for i := range s {
		f(i, &s[i])
	}
	return s
}

func TestJudgeSoak(t *testing.T) {
	for _, tt := range []struct {
		name     string
		samples  []soakSample
		failures int64
		quiesced *soakSample
		want     string // a problem the verdict must name; "" for a pass
	}{
		{"flat", flat(20), 0, &soakSample{goroutines: 30, fds: 20}, ""},
		{"one failed request", flat(20), 1, nil, "1 requests failed"},
		{"leaking a goroutine a second", with(20, func(i int, s *soakSample) { s.goroutines += 30 * i }), 0, nil, "goroutines grew from 90 to 630"},
		{"noise within the margin", with(20, func(i int, s *soakSample) { s.goroutines += 7 * (i % 5) }), 0, nil, ""},
		{"a high warm-up is skipped", with(20, func(i int, s *soakSample) {
			if i == 0 {
				s.goroutines, s.rssKB = 10, 5_000
			}
		}), 0, nil, ""},
		{"more streams open at the end", with(20, func(i int, s *soakSample) {
			if i == 19 {
				s.streams += 20
				s.goroutines += 20 * goroutinesPerStream
				s.fds += 20 * fdsPerStream
			}
		}), 0, nil, ""},
		{"leaking descriptors", with(20, func(i int, s *soakSample) { s.fds += 3 * i }), 0, nil, "open descriptors grew from 38 to 92"},
		{"RSS climbing to 1.6x", with(20, func(i int, s *soakSample) { s.rssKB += 1_000 * i }), 0, nil, "rose in each of the last 3 intervals"},
		{"RSS at 1.6x but level at the end", with(20, func(i int, s *soakSample) {
			s.rssKB += 1_000 * min(i, 17)
		}), 0, nil, ""},
		{"RSS more than doubled", with(20, func(i int, s *soakSample) {
			if i > 10 {
				s.rssKB = 70_000
			}
		}), 0, nil, "more than twice"},
		{"p99 growing", with(21, func(i int, s *soakSample) { s.p99 = time.Duration(i+1) * 5 * time.Millisecond }), 0, nil, "p99 grew"},
		{"one slow interval", with(21, func(i int, s *soakSample) {
			if i == 15 {
				s.p99 = time.Second
			}
		}), 0, nil, ""},
		{"too short", flat(3), 0, nil, "2 samples after the warm-up"},
		{"goroutines left after the traffic", flat(20), 0, &soakSample{goroutines: 200, fds: 20}, "200 goroutines remain"},
		{"descriptors left after the traffic", flat(20), 0, &soakSample{goroutines: 30, fds: 90}, "90 descriptors remain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := judgeSoak(tt.samples, tt.failures, tt.quiesced)
			got := strings.Join(j.problems, "; ")
			switch {
			case tt.want == "" && got != "":
				t.Errorf("judgeSoak failed a run that should pass: %s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("judgeSoak problems = %q, want one saying %q", got, tt.want)
			}
		})
	}
}

func TestJudgeSoakSummary(t *testing.T) {
	s := with(10, func(i int, s *soakSample) {
		s.goroutines = 100 + i
		if i == 4 {
			s.fds = 80
		}
	})
	j := judgeSoak(s, 0, nil)
	if j.start.goroutines != 101 || j.end.goroutines != 109 || j.max.goroutines != 109 || j.max.fds != 80 {
		t.Errorf("start %d, end %d, max %d goroutines, max %d FDs; want 101, 109, 109, 80",
			j.start.goroutines, j.end.goroutines, j.max.goroutines, j.max.fds)
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 57
portcullis_session_refreshes_total{provider="demo",result="success"} 1234
portcullis_session_refreshes_total{provider="demo",result="rejected"} 2
portcullis_session_refreshes_total{provider="other",result="success"} 6 1700000000000
go_goroutines_extra 9
`
	for _, tt := range []struct {
		name   string
		metric string
		labels []string
		want   float64
		found  bool
	}{
		{"gauge", "go_goroutines", nil, 57, true},
		{"all series", "portcullis_session_refreshes_total", nil, 1242, true},
		{"one label", "portcullis_session_refreshes_total", []string{`result="success"`}, 1240, true},
		{"two labels", "portcullis_session_refreshes_total", []string{`provider="demo"`, `result="rejected"`}, 2, true},
		{"no such label", "portcullis_session_refreshes_total", []string{`result="busy"`}, 0, false},
		{"no such metric", "go_threads", nil, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, found := metricSum(text, tt.metric, tt.labels...)
			if got != tt.want || found != tt.found {
				t.Errorf("metricSum(%s, %v) = %v, %v; want %v, %v", tt.metric, tt.labels, got, found, tt.want, tt.found)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(ds, 0.99); got != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %v, want 99ms", got)
	}
	if got := percentile(ds, 0.50); got != 50*time.Millisecond {
		t.Errorf("p50 of 1..100 ms = %v, want 50ms", got)
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

func TestWebsocketAccept(t *testing.T) {
	// RFC 6455 §1.3's example.
	if got := wsAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("wsAccept = %q", got)
	}
}

func TestWebsocketEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serveWebsocket))
	defer srv.Close()
	ws, resp, err := dialWebsocket(srv.URL, "a=b")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	for _, msg := range []string{"hello", "", strings.Repeat("x", 300)} { // 300 bytes: the 16-bit length
		if err := ws.echo(msg); err != nil {
			t.Fatalf("echo %d bytes: %v", len(msg), err)
		}
	}
	if err := ws.close(); err != nil {
		t.Fatal(err)
	}

	// A plain GET is no upgrade.
	r, err := http.Get(srv.URL + wsPath)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("a GET without an upgrade got %s, want 400", r.Status)
	}
}

func TestWebsocketFrameMasking(t *testing.T) {
	var b strings.Builder
	if err := wsWriteFrame(&b, wsText, []byte("hi"), true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wsReadFrame(strings.NewReader(b.String()), false); err == nil {
		t.Error("a client reading a masked frame accepted it")
	}
	op, got, err := wsReadFrame(strings.NewReader(b.String()), true)
	if err != nil || op != wsText || string(got) != "hi" {
		t.Errorf("server read %#x %q %v, want text \"hi\"", op, got, err)
	}
}
