package proxy

import (
	"bytes"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
