package demo

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hostileRequest carries everything the app must not echo raw.
func hostileRequest(t *testing.T, url, accept string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("X-Forwarded-User", `<script>alert("u")</script>`)
	req.Header.Set("X-Forwarded-Email", "alice@example.com")
	req.Header.Set("X-Forwarded-Groups", "admins,<img src=x onerror=alert(1)>")
	req.Header.Set("X-Evil", `"><svg onload=alert(2)>`)
	req.Header.Set("Authorization", "Bearer secret-access-token")
	req.Header.Set("X-Forwarded-Access-Token", "secret-forwarded-token")
	req.Header.Add("Cookie", "_portcullis=secret-session-value; theme=secret-theme-value")
	return req
}

var secrets = []string{"secret-access-token", "secret-forwarded-token", "secret-session-value", "secret-theme-value"}

func TestAppEchoJSON(t *testing.T) {
	srv := httptest.NewServer(NewApp("Demo"))
	defer srv.Close()
	resp, err := http.DefaultClient.Do(hostileRequest(t, srv.URL+"/a%2Fb/c?x=1&y=%3C", "application/json"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var got echo
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"method", got.Method, "GET"},
		{"path", got.Path, "/a/b/c"},
		{"raw_path", got.RawPath, "/a%2Fb/c"},
		{"query", got.Query, "x=1&y=%3C"},
		{"host", got.Host, strings.TrimPrefix(srv.URL, "http://")},
		{"cookies", got.Cookies, []string{"_portcullis", "theme"}},
		{"Authorization", got.Headers["Authorization"], []string{"Bearer " + redacted}},
		{"X-Forwarded-Access-Token", got.Headers["X-Forwarded-Access-Token"], []string{redacted}},
		{"X-Evil", got.Headers["X-Evil"], []string{`"><svg onload=alert(2)>`}},
		{"Cookie header", got.Headers["Cookie"], []string(nil)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
	for _, s := range append(secrets, "<svg", "<script") {
		if strings.Contains(string(body), s) {
			t.Errorf("JSON body contains %q raw:\n%s", s, body)
		}
	}
}

func TestAppEchoHTML(t *testing.T) {
	srv := httptest.NewServer(NewApp(`Demo <b>app</b>`))
	defer srv.Close()
	resp, err := http.DefaultClient.Do(hostileRequest(t, srv.URL+"/dashboard?q=%3Cx%3E", "text/html"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)

	for _, c := range []struct {
		what string
		got  bool
		want bool
	}{
		{"html content type", strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"), true},
		{"escaped title", strings.Contains(page, "<h1>Demo &lt;b&gt;app&lt;/b&gt;</h1>"), true},
		{"escaped user", strings.Contains(page, "&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;"), true},
		{"email shown", strings.Contains(page, "alice@example.com"), true},
		{"sign-out form", strings.Contains(page, `<form method="post" action="/oauth2/sign_out">`), true},
		{"cookie names", strings.Contains(page, "names: _portcullis, theme"), true},
		{"redacted authorization", strings.Contains(page, "Bearer "+redacted), true},
		{"raw script", strings.Contains(page, "<script"), false},
		{"raw img", strings.Contains(page, "<img"), false},
		{"raw svg", strings.Contains(page, "<svg"), false},
		{"raw query", strings.Contains(page, "<x>"), false},
	} {
		if c.got != c.want {
			t.Errorf("page has %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, s := range secrets {
		if strings.Contains(page, s) {
			t.Errorf("page contains secret %q", s)
		}
	}
}

func TestAppNoIdentity(t *testing.T) {
	rec := httptest.NewRecorder()
	NewApp("Demo").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := rec.Body.String(); !strings.Contains(got, "sent no identity headers") {
		t.Errorf("page without identity headers lacks the hint:\n%s", got)
	}
}

func TestAppStatus(t *testing.T) {
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/status/404", 404},
		{"/status/503", 503},
		{"/status/599", 599},
		{"/status/200", 400},
		{"/status/302", 400},
		{"/status/600", 400},
		{"/status/abc", 400},
		{"/status/", 400},
	} {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			NewApp("Demo").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestAppSlow(t *testing.T) {
	for _, tt := range []struct {
		query      string
		wantStatus int
		minDur     time.Duration
	}{
		{"ms=120", 200, 120 * time.Millisecond},
		{"ms=0", 200, 0},
		{"ms=-1", 400, 0},
		{"ms=x", 400, 0},
	} {
		t.Run(tt.query, func(t *testing.T) {
			start := time.Now()
			rec := httptest.NewRecorder()
			NewApp("Demo").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/slow?"+tt.query, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if d := time.Since(start); d < tt.minDur {
				t.Errorf("answered after %v, want at least %v", d, tt.minDur)
			}
		})
	}
}

// TestAppStream reads the first line before the last is written, which
// only works if lines are flushed one by one.
func TestAppStream(t *testing.T) {
	srv := httptest.NewServer(NewApp("Demo"))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/stream?n=4&ms=150")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	var got []string
	var firstAt time.Duration
	for lines.Scan() {
		if got = append(got, lines.Text()); len(got) == 1 {
			firstAt = time.Since(start)
		}
	}
	want := []string{"line 1 of 4", "line 2 of 4", "line 3 of 4", "line 4 of 4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if total := time.Since(start); firstAt > total/2 {
		t.Errorf("first line after %v of %v: not streamed", firstAt, total)
	}
}
