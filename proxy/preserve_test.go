package proxy

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/redistest"
	"github.com/portcullis/portcullis/session"
)

// postLost reports whether resp is the "please repeat" page of a post
// that was not kept.
func postLost(resp *http.Response) bool {
	return resp.StatusCode == http.StatusUnauthorized && strings.Contains(body(resp), "<h1>Your session expired</h1>")
}

// formPost is a browser's form submission to target without a session.
func formPost(target, ctype, payload string, header ...string) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(payload))
	r.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// sameOriginNav are the headers a browser sends with a form submitted from
// a page of the gateway's origin.
var sameOriginNav = []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Origin", "https://gw.example.com"}

// sessionJar is the Cookie header a browser sends after resp.
func sessionJar(resp *http.Response) string {
	var jar []string
	for _, c := range resp.Cookies() {
		if c.MaxAge >= 0 && c.Value != "" {
			jar = append(jar, c.Name+"="+c.Value)
		}
	}
	return strings.Join(jar, "; ")
}

var (
	formTag   = regexp.MustCompile(`<form id="resubmit" method="post" action="([^"]*)" enctype="([^"]*)">`)
	hiddenTag = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// resubmitted parses the resubmit page as a browser would: the form's
// action and enctype, and its fields in order, unescaped.
func resubmitted(t *testing.T, page string) (action, enctype string, fields []session.Field) {
	t.Helper()
	m := formTag.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no resubmit form in:\n%s", page)
	}
	for _, f := range hiddenTag.FindAllStringSubmatch(page, -1) {
		fields = append(fields, session.Field{Name: html.UnescapeString(f[1]), Value: html.UnescapeString(f[2])})
	}
	return html.UnescapeString(m[1]), html.UnescapeString(m[2]), fields
}

// encodeForm encodes fields as a browser submits them in enctype.
func encodeForm(t *testing.T, enctype string, fields []session.Field) (ctype, payload string) {
	t.Helper()
	if enctype == enctypeMultipart {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, f := range fields {
			mw.WriteField(f.Name, f.Value)
		}
		mw.Close()
		return mw.FormDataContentType(), b.String()
	}
	var parts []string
	for _, f := range fields {
		parts = append(parts, url.QueryEscape(f.Name)+"="+url.QueryEscape(f.Value))
	}
	return enctypeURLEncoded, strings.Join(parts, "&")
}

// TestPreservedPostResubmitted: a same-origin form post without a session
// is kept through the sign-in and comes back as an auto-submitting form
// to the same URL; submitting it reaches the upstream with the original
// fields, in order.
func TestPreservedPostResubmitted(t *testing.T) {
	tricky := `"><script>alert(1)</script>&amp; 'x' <b>`
	for _, tt := range []struct {
		name   string
		target string
		ctype  string
		body   string
		header []string
		want   []session.Field
	}{
		{"urlencoded", "https://gw.example.com/notes/new?draft=1", enctypeURLEncoded,
			"title=" + url.QueryEscape(tricky) + "&body=line1%0D%0Aline2&title=second&empty=&csrf_token=abc",
			sameOriginNav,
			pairs("title", tricky, "body", "line1\r\nline2", "title", "second", "empty", "", "csrf_token", "abc")},
		{"urlencoded, Origin only (no Fetch Metadata)", "https://gw.example.com/notes", enctypeURLEncoded, "a=1&submit=go",
			[]string{"Origin", "https://gw.example.com"}, pairs("a", "1", "submit", "go")},
		{"urlencoded, Fetch Metadata only", "https://gw.example.com/notes", enctypeURLEncoded, "a=%C3%A9t%C3%A9",
			[]string{"Sec-Fetch-Site", "same-origin"}, pairs("a", "été")},
		{"multipart text fields", "https://gw.example.com/upload", "", "", sameOriginNav,
			pairs("name", tricky, "comment", "two\r\nlines")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctype, payload := tt.ctype, tt.body
			if ctype == "" {
				ctype, payload = encodeForm(t, enctypeMultipart, tt.want)
			}
			start := e.do(formPost(tt.target, ctype, payload, tt.header...))
			if !signInRedirect(start) {
				t.Fatalf("post without session = %d %q, want a redirect to the provider", start.StatusCode, start.Header.Get("Location"))
			}
			cb := e.finish(start, "alice", "alice@example.com")
			page := body(cb)
			if cb.StatusCode != http.StatusOK {
				t.Fatalf("callback = %d, want 200 resubmit page:\n%s", cb.StatusCode, page)
			}
			if !strings.Contains(page, "<h1>Sending your form again</h1>") || !strings.Contains(page, ">Send again</button>") {
				t.Errorf("resubmit page lacks its heading or fallback button:\n%s", page)
			}
			if strings.Contains(page, "<script>alert") {
				t.Errorf("a field value reached the page unescaped:\n%s", page)
			}
			csp := cb.Header.Get("Content-Security-Policy")
			for _, want := range []string{"form-action 'self'", "script-src 'sha256-" + resubmitHash + "'", "default-src 'none'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if got := cb.Header.Get("Referrer-Policy"); got != "strict-origin" {
				t.Errorf("Referrer-Policy = %q, want strict-origin (no-referrer makes the POST's Origin null)", got)
			}
			action, enctype, fields := resubmitted(t, page)
			u, _ := url.Parse(tt.target)
			if action != u.RequestURI() {
				t.Errorf("form action = %q, want %q", action, u.RequestURI())
			}
			if !equalFields(fields, tt.want) {
				t.Errorf("fields = %q, want %q", fields, tt.want)
			}
			// The browser submits it, signed in now.
			ctype, payload = encodeForm(t, enctype, fields)
			resp := e.do(formPost("https://gw.example.com"+action, ctype, payload, append(sameOriginNav, "Cookie", sessionJar(cb))...))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("resubmission = %d, want 200 from the upstream", resp.StatusCode)
			}
			up := e.last()
			if up.Method != "POST" || up.Path != u.Path || up.Body != payload {
				t.Errorf("upstream saw %s %s %q, want POST %s %q", up.Method, up.Path, up.Body, u.Path, payload)
			}
			if tt.ctype != "" && up.Body != tt.body {
				t.Errorf("upstream body %q, want the original %q", up.Body, tt.body)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "post preserved") || strings.Contains(logs, "csrf_token=abc") || strings.Contains(logs, "alert(1)") {
				t.Errorf("want a \"post preserved\" line naming no field value, got:\n%s", logs)
			}
		})
	}
}

// pairs makes fields of name, value, name, value...
func pairs(kv ...string) []session.Field {
	var out []session.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, session.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func equalFields(a, b []session.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// multipartBody builds a multipart/form-data body; a part whose name
// starts with "file:" is a file input holding its value.
func multipartBody(parts ...string) (ctype, payload string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(parts); i += 2 {
		if name, ok := strings.CutPrefix(parts[i], "file:"); ok {
			fw, _ := mw.CreateFormFile(name, parts[i+1])
			fw.Write([]byte(parts[i+1]))
			continue
		}
		mw.WriteField(parts[i], parts[i+1])
	}
	mw.Close()
	return mw.FormDataContentType(), b.String()
}

// TestPostNotPreserved: what must not or cannot be kept gets the "please
// repeat" page (401, never a 500), keeps nothing and starts no sign-in;
// its Sign in returns to the form's page when the Referer names one of the
// gateway's own, else to the target.
func TestPostNotPreserved(t *testing.T) {
	withFile, fileBody := multipartBody("title", "x", "file:attachment", "secret file contents")
	emptyFile, emptyBody := multipartBody("title", "x", "file:attachment", "")
	big := "a=" + strings.Repeat("x", session.DefaultPreserveMaxBytes-1)
	for _, tt := range []struct {
		name   string
		method string
		host   string
		ctype  string
		body   string
		header []string
	}{
		{"cross-site", "POST", "", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"same-site sibling", "POST", "", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://app.example.com"}},
		{"user-initiated (none)", "POST", "", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "none"}},
		{"same-origin claimed, other Origin", "POST", "", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "same-origin", "Origin", "https://evil.example"}},
		{"Origin of another host", "POST", "", enctypeURLEncoded, "a=1", []string{"Origin", "https://evil.example"}},
		{"Origin null", "POST", "", enctypeURLEncoded, "a=1", []string{"Origin", "null"}},
		{"Origin http for https", "POST", "", enctypeURLEncoded, "a=1", []string{"Origin", "http://gw.example.com"}},
		{"no Origin, no Fetch Metadata", "POST", "", enctypeURLEncoded, "a=1", nil},
		{"target on another host", "POST", "app.example.com", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "same-origin", "Origin", "https://app.example.com"}},
		{"one byte over max_bytes", "POST", "", enctypeURLEncoded, big + "xx", sameOriginNav},
		{"multipart with a file", "POST", "", withFile, fileBody, sameOriginNav},
		{"multipart with an empty file input", "POST", "", emptyFile, emptyBody, sameOriginNav},
		{"multipart file part without Content-Type", "POST", "", "multipart/form-data; boundary=zz",
			"--zz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\ndata\r\n--zz--\r\n", sameOriginNav},
		{"multipart file part as text/plain (filename*)", "POST", "", "multipart/form-data; boundary=zz",
			"--zz\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''a.txt\r\nContent-Type: text/plain\r\n\r\ndata\r\n--zz--\r\n", sameOriginNav},
		{"multipart part with a transfer encoding", "POST", "", "multipart/form-data; boundary=zz",
			"--zz\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZGF0YQ==\r\n--zz--\r\n", sameOriginNav},
		{"multipart without boundary", "POST", "", "multipart/form-data", "--x\r\n", sameOriginNav},
		{"malformed multipart", "POST", "", "multipart/form-data; boundary=zz", "--zz\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated", sameOriginNav},
		{"JSON body from a navigation", "POST", "", "application/json", `{"a":1}`, sameOriginNav},
		{"text/plain form", "POST", "", "text/plain", "a=1", sameOriginNav},
		{"no Content-Type", "POST", "", "", "a=1", sameOriginNav},
		{"not UTF-8", "POST", "", enctypeURLEncoded, "a=%FF%FE", sameOriginNav},
		{"bad escape", "POST", "", enctypeURLEncoded, "a=%zz", sameOriginNav},
		{"script, not a navigation", "POST", "", enctypeURLEncoded, "a=1", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "same-origin", "Origin", "https://gw.example.com"}},
		{"PUT", "PUT", "", enctypeURLEncoded, "a=1", sameOriginNav},
		{"DELETE", "DELETE", "", "", "", sameOriginNav},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			r := formPost("https://gw.example.com/notes/new?x=1", tt.ctype, tt.body, append(tt.header, "Referer", "https://gw.example.com/notes/edit?id=7")...)
			r.Method = tt.method
			if tt.host != "" {
				r.Host = tt.host
			}
			if tt.ctype == "" {
				r.Header.Del("Content-Type")
			}
			want := "https://gw.example.com/notes/edit?id=7" // the Referer, of the target's origin
			if tt.host != "" {
				want = "/notes/new?x=1" // the Referer is of another origin than the target's
			}
			checkPostLost(t, e.do(r), want)
			if strings.Contains(e.logs.String(), "secret file contents") {
				t.Error("the log carries a field value")
			}
		})
	}
}

// checkPostLost checks the "please repeat" page of a post that was not
// kept: 401 with a challenge, no form, no cookie, and a Sign in that
// returns to rd.
func checkPostLost(t *testing.T, resp *http.Response, rd string) {
	t.Helper()
	page := body(resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "<h1>Your session expired</h1>") {
		t.Fatalf("= %d, want 401 \"Your session expired\" page:\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "what you sent could not be kept") || strings.Contains(page, "<form") {
		t.Errorf("page does not say the post was lost, or carries a form:\n%s", page)
	}
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate (RFC 9110 §15.5.2)")
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("set cookies %v: no sign-in may start, nothing be kept", resp.Cookies())
	}
	signIn := html.UnescapeString(between(page, `<a class="button" href="`, `"`))
	u, err := url.Parse(signIn)
	if err != nil || u.Path != "/oauth2/start" {
		t.Fatalf("Sign in link %q, want /oauth2/start", signIn)
	}
	if got := u.Query().Get("rd"); got != rd {
		t.Errorf("Sign in returns to %q, want %q", got, rd)
	}
}

// TestPostPreservationOff: with preservation disabled, or a choice of
// providers (the sign-in page starts no attempt to keep it for), a form
// post gets the "please repeat" page, and its Sign in the provider choice.
func TestPostPreservationOff(t *testing.T) {
	other := newFakeProvider()
	other.id, other.issuer = "other", "https://other.test"
	for _, tt := range []struct {
		name string
		e    func(t *testing.T) *env
	}{
		{"disabled", func(t *testing.T) *env { return newEnvOpts(t, nil, func(o *Options) { o.Posts = nil }) }},
		{"several providers", func(t *testing.T) *env { return newEnvOpts(t, nil, nil, other) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e(t)
			checkPostLost(t, e.do(formPost("https://gw.example.com/notes", enctypeURLEncoded, "a=1", sameOriginNav...)), "/notes")
		})
	}
}

// TestPostFromAPIClient: scripts and API clients keep their 401 JSON with a
// login_url; nothing is kept for them.
func TestPostFromAPIClient(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header []string
	}{
		{"Accept JSON", []string{"Accept", "application/json"}},
		{"X-Requested-With", []string{"X-Requested-With", "XMLHttpRequest"}},
		{"fetch (Sec-Fetch-Mode cors)", []string{"Sec-Fetch-Mode", "cors"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			h := append([]string{"Sec-Fetch-Site", "same-origin", "Origin", "https://gw.example.com"}, tt.header...)
			resp := e.do(formPost("https://gw.example.com/api/notes", enctypeURLEncoded, "a=1", h...))
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("= %d %s, want 401 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if m := decodeJSON(t, resp); m["login_url"] == nil || m["error"] != "unauthenticated" {
				t.Errorf("JSON = %v, want error unauthenticated with a login_url", m)
			}
			if len(resp.Cookies()) != 0 || strings.Contains(e.logs.String(), "post preserved") {
				t.Error("an API client's post started a sign-in or was kept")
			}
		})
	}
}

// startPost sends a same-origin form post without a session and returns
// the redirect to the provider and the login cookie it set.
func (e *env) startPost(target, payload string) (*http.Response, string) {
	e.t.Helper()
	start := e.do(formPost(target, enctypeURLEncoded, payload, sameOriginNav...))
	if !signInRedirect(start) {
		e.t.Fatalf("post without session = %d, want a redirect to the provider", start.StatusCode)
	}
	return start, sessionJar(start)
}

// TestPreservedPostOnce: the kept post is re-submitted by one callback
// only; a replayed callback is refused and shows no form, and a callback
// after the post expired (the login still valid) says it was lost and
// links to the target, never a silent GET.
func TestPreservedPostOnce(t *testing.T) {
	e := newEnv(t, nil)
	start, login := e.startPost("https://gw.example.com/notes", "a=1")
	cb := e.finish(start, "alice", "alice@example.com")
	if page := body(cb); cb.StatusCode != http.StatusOK || !strings.Contains(page, `<form id="resubmit"`) {
		t.Fatalf("callback = %d, want the resubmit page:\n%s", cb.StatusCode, page)
	}
	state := mustState(t, start)
	replay, _ := e.callback("code=again&state="+url.QueryEscape(state), login)
	if page := body(replay); replay.StatusCode == http.StatusOK || strings.Contains(page, "<form id=\"resubmit\"") {
		t.Errorf("replayed callback = %d, re-rendered the post:\n%s", replay.StatusCode, page)
	}

	start, _ = e.startPost("https://gw.example.com/notes?draft=2", "a=2")
	e.advance(session.LoginTTL + time.Second) // the kept post's clock; the login cookie's is the wall clock
	cb = e.finish(start, "alice", "alice@example.com")
	page := body(cb)
	if cb.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Your session expired</h1>") || strings.Contains(page, "<form") {
		t.Fatalf("callback after the post expired = %d, want the 200 \"could not be kept\" page:\n%s", cb.StatusCode, page)
	}
	if href := html.UnescapeString(between(page, `<a class="button" href="`, `"`)); href != "/notes?draft=2" {
		t.Errorf("Continue links to %q, want the target /notes?draft=2", href)
	}
	if sessionJar(cb) == "" {
		t.Error("the sign-in itself must still succeed")
	}
}

func mustState(t *testing.T, start *http.Response) string {
	t.Helper()
	loc, err := url.Parse(start.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("state")
}

// TestPreservedPostAcrossReplicas: with store: redis the post kept by one
// replica is re-submitted by another that receives the callback, once,
// and Redis holds it sealed only while it waits.
func TestPreservedPostAcrossReplicas(t *testing.T) {
	srv := redistest.Standalone(t)
	rcfg := session.RedisConfig{Addrs: []string{srv.Addr()}, KeyPrefix: "pp:"}
	replica := func(keys *session.KeyRing) (session.Backend, *session.Posts) {
		st, err := session.NewRedisStore(rcfg, keys, session.RedisStoreOptions{Cookie: session.CookieConfig{Name: "_portcullis"}, Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		posts, err := session.NewPosts(session.PreserveConfig{}, keys, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, posts
	}
	var second Options
	e := newEnvOpts(t, nil, func(o *Options) {
		o.Sessions, o.Posts = replica(o.Keys)
		second = *o
		second.Sessions, second.Posts = replica(o.Keys)
	})
	b, err := build(Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []UpstreamConfig{{Path: "/", URL: e.upstream.URL}},
		Policy:    PolicyConfig{EmailDomains: []string{"example.com"}},
	}, second)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	start, _ := e.startPost("https://gw.example.com/notes", "secret=hunter2&n=1")
	keys, err := rdb.Keys(ctx, "pp:post:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("redis keys %v (%v), want one kept post", keys, err)
	}
	if v, _ := rdb.Get(ctx, keys[0]).Result(); strings.Contains(v, "hunter2") {
		t.Error("the kept post is not sealed in Redis")
	}
	if ttl, _ := rdb.PTTL(ctx, keys[0]).Result(); ttl <= 0 || ttl > session.LoginTTL {
		t.Errorf("kept post TTL %v, want at most %v", ttl, session.LoginTTL)
	}
	e.h = b // the callback reaches the other replica
	cb := e.finish(start, "alice", "alice@example.com")
	_, _, fields := resubmitted(t, body(cb))
	if !equalFields(fields, pairs("secret", "hunter2", "n", "1")) {
		t.Errorf("fields = %q", fields)
	}
	if n, _ := rdb.Exists(ctx, keys[0]).Result(); n != 0 {
		t.Error("the kept post is still in Redis after it was re-submitted")
	}
}

// TestPreservedPostAfterExpiry: the case the feature is for. A signed-in
// user's session expires (idle timeout) while they fill in a form; the
// post is kept, and after the sign-in re-submitted.
func TestPreservedPostAfterExpiry(t *testing.T) {
	e := newEnvOpts(t, nil, func(o *Options) { o.IdleTimeout = 30 * time.Minute })
	cookie := e.sessionCookie("alice", "alice@example.com")
	if resp := e.do(get("https://gw.example.com/notes/edit", "Cookie", cookie)); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in GET = %d", resp.StatusCode)
	}
	e.advance(31 * time.Minute)
	start := e.do(formPost("https://gw.example.com/notes", enctypeURLEncoded, "text=hours+of+work", append(sameOriginNav, "Cookie", cookie)...))
	if !signInRedirect(start) {
		t.Fatalf("post with an idle session = %d, want a redirect to the provider", start.StatusCode)
	}
	cb := e.finish(start, "alice", "alice@example.com")
	if _, _, fields := resubmitted(t, body(cb)); !equalFields(fields, pairs("text", "hours of work")) {
		t.Errorf("fields = %q", fields)
	}
}

// TestPreservedPostDefaultPort: a public_url that names the default port
// still matches the Origin browsers send, which never does (RFC 6454 §6.1).
func TestPreservedPostDefaultPort(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.PublicURL = "https://gw.example.com:443" })
	for _, target := range []string{"https://gw.example.com/notes", "https://gw.example.com:443/notes"} {
		if resp := e.do(formPost(target, enctypeURLEncoded, "a=1", sameOriginNav...)); !signInRedirect(resp) {
			t.Errorf("POST %s = %d, want the post kept and a redirect to the provider", target, resp.StatusCode)
		}
	}
}
