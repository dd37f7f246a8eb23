package proxy

import (
	"html"
	"io"
	"net/http"
	"strconv"
)

// signIn is /oauth2/sign_in, oauth2-proxy's name for /oauth2/start: with
// one provider straight to it, with several the chooser; back to rd, or
// without rd to a trusted proxy's X-Auth-Request-Redirect, both through
// the redirect policy. oauth2-proxy's nginx block sends 401s here.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, rq *request) error {
	return h.start(&continueWriter{ResponseWriter: w}, r, rq)
}

// continueWriter gives a 302 a body a browser can act on when the answer
// is shown rather than followed: nginx's `error_page 401 =403
// /oauth2/sign_in` serves it with status 403, and browsers ignore Location
// on a 403 (RFC 9110 §10.2.2 defines it for 201 and 3xx only). The page
// moves on by itself (a meta refresh, HTML's Refresh pragma) and has a
// link to the same target for clients that do not refresh. Any other
// answer passes through untouched.
type continueWriter struct {
	http.ResponseWriter
	replaced bool
}

func (c *continueWriter) WriteHeader(code int) {
	loc := c.Header().Get("Location")
	if code != http.StatusFound || loc == "" || c.replaced {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	c.replaced = true
	u := html.EscapeString(loc) // the target is escaped, never interpreted
	body := `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0;url=` + u + `">` +
		`<title>Sign in</title></head><body><p><a href="` + u + `">Continue to sign in</a></p></body></html>` + "\n"
	c.Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Header().Set("Content-Length", strconv.Itoa(len(body)))
	c.ResponseWriter.WriteHeader(code)
	io.WriteString(c.ResponseWriter, body)
}

// Write drops the redirect's own short body once it has been replaced.
func (c *continueWriter) Write(b []byte) (int, error) {
	if c.replaced {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}
