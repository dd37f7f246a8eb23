package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// preserve.go keeps work across a re-login (issue 17): a browser's form
// post that arrives without a session is kept (session.Posts, sealed, for
// the login's lifetime) and, after the sign-in it starts, re-submitted to
// the same URL by an auto-submitting same-origin form with a visible "Send
// again" button. What cannot be kept (a file, a body over
// session.preserve_post.max_bytes, JSON, a cross-site post) gets a page
// that says so instead of a silent redirect that drops it. API clients
// keep their 401 JSON (unauthenticated). Reverse-proxy mode only: the
// forward-auth endpoints never see a request body.
//
// Only a same-origin post is kept. A cross-site or origin-less one is not:
// kept, it would come back after the victim signed in as a same-origin
// POST the gateway itself submitted, with the victim's session and none of
// the Origin/Sec-Fetch-Site evidence the application's CSRF defence looks
// for. The gateway would launder a cross-site request into a same-origin
// one (SECURITY.md, "Preserved posts").

const preserveTemplates = `
{{define "resubmit"}}{{template "top" .}}<h1>Sending your form again</h1>
<p>Sending what you entered before you signed in…</p>
<form id="resubmit" method="post" action="{{.Action}}" enctype="{{.Enctype}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Press the button to send it.</p></noscript>
<p><button type="submit">Send again</button></p></form>
<script>` + resubmitScript + `</script>
{{template "bottom" .}}{{end}}

{{define "post_lost"}}{{template "top" .}}<h1>Your session expired</h1>
{{if .SignInURL}}<p>Please sign in and repeat what you were doing: what you sent could not be kept.</p>
<p><a class="button" href="{{.SignInURL}}">Sign in</a></p>
{{else}}<p>You are signed in again, but what you sent before could not be kept. Please repeat what you were doing.</p>
<p><a class="button" href="{{.HomeURL}}">Continue</a></p>{{end}}
{{template "bottom" .}}{{end}}`

// resubmitScript submits the resubmit form. Through the prototype, not
// form.submit(): a field named "submit" would shadow that method.
const resubmitScript = `HTMLFormElement.prototype.submit.call(document.getElementById("resubmit"));`

var resubmitHash = func() string {
	sum := sha256.Sum256([]byte(resubmitScript))
	return base64.StdEncoding.EncodeToString(sum[:])
}()

// resubmitData is what the resubmit page shows.
type resubmitData struct {
	pageData
	Action  string
	Enctype string
	Fields  []session.Field
}

// Form encodings an HTML form can send again (HTML §4.10.21.7); text/plain
// is not kept: it cannot be parsed back into fields reliably.
const (
	enctypeURLEncoded = "application/x-www-form-urlencoded"
	enctypeMultipart  = "multipart/form-data"
)

// unauthenticatedPost answers a browser's non-GET request without a
// session: kept and on to the provider p when it can be, else the "please
// repeat" page.
func (h *Handler) unauthenticatedPost(w http.ResponseWriter, r *http.Request, rq *request, t Target, p providers.Provider) error {
	post, why := h.keepable(r, t, p)
	if post != nil {
		id, err := h.posts.Keep(r.Context(), post)
		if err == nil {
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "post preserved", slog.String("id", rq.id),
				slog.Int("bytes", post.Size), slog.Int("fields", len(post.Fields)), slog.String("enctype", post.Enctype))
			return h.beginLogin(w, r, rq, p, post.URL, "", id)
		}
		why = "store: " + err.Error()
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "post not preserved", slog.String("id", rq.id), slog.String("reason", why))
	returnTo := t.uri()
	if page := referringPage(r, t); page != "" {
		returnTo = page // the form's page: the target may not answer a GET
	}
	pinned := ""
	if p != nil {
		pinned = p.ID()
	}
	// 401: the request was not carried out for want of a session. RFC 9110
	// §15.5.2 wants a challenge with it; the gateway's usual one.
	w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis"`)
	h.pages.write(w, http.StatusUnauthorized, "post_lost", pageData{Title: "Your session expired", RequestID: rq.id,
		SignInURL: h.loginURL(returnTo, pinned)})
	return nil
}

// keepable returns r's form as a post to keep, or nil and why not.
func (h *Handler) keepable(r *http.Request, t Target, p providers.Provider) (*session.Post, string) {
	switch {
	case h.posts == nil:
		return nil, "preservation disabled"
	case p == nil:
		return nil, "several providers to choose from" // the sign-in page has no attempt to keep it for
	case r.Method != http.MethodPost:
		return nil, "method " + r.Method // an HTML form posts or gets
	case !h.sameOriginPost(r, t):
		return nil, "not same-origin"
	case r.Header.Get("Sec-Fetch-Mode") != "" && r.Header.Get("Sec-Fetch-Mode") != "navigate":
		// A form submission navigates (Fetch Metadata,
		// #sec-fetch-mode-header); a script's request would not follow
		// the resubmit page.
		return nil, "not a navigation"
	}
	target := t.uri()
	if h.redirects.safe(target) != target {
		return nil, "target not admitted by the redirect policy"
	}
	enctype, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (enctype != enctypeURLEncoded && enctype != enctypeMultipart) {
		return nil, "not a form"
	}
	limit := h.posts.MaxBytes()
	if r.ContentLength > int64(limit) {
		return nil, "larger than max_bytes"
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, "reading the body: " + err.Error()
	}
	if len(b) > limit {
		return nil, "larger than max_bytes"
	}
	var fields []session.Field
	if enctype == enctypeURLEncoded {
		fields, err = urlencodedFields(string(b))
	} else {
		fields, err = multipartFields(b, params["boundary"])
	}
	if err != nil {
		return nil, err.Error()
	}
	return &session.Post{URL: target, Enctype: enctype, Fields: fields, Size: len(b)}, ""
}

// sameOriginPost reports whether the browser says r comes from a page of
// t's own origin, which must also be the gateway's public origin (where
// the resubmit page, at the callback, posts to): Sec-Fetch-Site:
// same-origin (W3C Fetch Metadata Request Headers, #sec-fetch-site-header)
// or, from a browser without it, an Origin header (RFC 6454 §7; Fetch
// §3.1 sends it with every POST) equal to that origin (RFC 6454 §6.1
// serialization).
// Unlike sameOrigin (sign-out), a request with neither header is not
// same-origin here: nothing vouches for where the form came from.
func (h *Handler) sameOriginPost(r *http.Request, t Target) bool {
	want := targetOrigin(Target{Scheme: h.public.Scheme, HostPort: h.public.Host}) // public_url may name :443
	if targetOrigin(t) != want {
		return false
	}
	origin := r.Header.Get("Origin")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return origin == "" || origin == want
	case "":
		return origin == want
	}
	return false
}

// targetOrigin is t's origin as a browser serializes it: lower case, no
// default port (RFC 6454 §6.1).
func targetOrigin(t Target) string {
	hp := strings.ToLower(t.HostPort)
	switch {
	case t.Scheme == "https":
		hp = strings.TrimSuffix(hp, ":443")
	case t.Scheme == "http":
		hp = strings.TrimSuffix(hp, ":80")
	}
	return t.Scheme + "://" + hp
}

// urlencodedFields parses an application/x-www-form-urlencoded body in
// order (url.ParseQuery would lose it). Any pair that does not decode to
// UTF-8 makes the body not worth keeping: the page that re-submits it is
// UTF-8 and would change it.
func urlencodedFields(body string) ([]session.Field, error) {
	var out []session.Field
	for _, pair := range strings.Split(body, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errors.New("a field does not decode")
		}
		out = append(out, session.Field{Name: k, Value: v})
	}
	return out, nil
}

// multipartFields parses a multipart/form-data body (RFC 7578) whose
// parts are all plain text fields. A part with a filename parameter, even
// an empty one (a file input left empty), is a file: files are never kept.
func multipartFields(body []byte, boundary string) ([]session.Field, error) {
	if boundary == "" {
		return nil, errors.New("multipart without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out []session.Field
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, errors.New("malformed multipart body")
		}
		disp, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" {
			return nil, errors.New("a part is not form-data")
		}
		if _, file := params["filename"]; file {
			return nil, errors.New("a part is a file")
		}
		if ct := part.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
				return nil, errors.New("a part is not text")
			}
		}
		if enc := part.Header.Get("Content-Transfer-Encoding"); enc != "" {
			return nil, errors.New("a part has a transfer encoding") // RFC 7578 §4.7: deprecated, not a browser's
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, errors.New("malformed multipart body")
		}
		name := params["name"]
		if !utf8.ValidString(name) || !utf8.Valid(v) {
			return nil, errors.New("a field is not UTF-8")
		}
		out = append(out, session.Field{Name: name, Value: string(v)})
	}
}

// resubmit answers the callback of an attempt that kept a post: the page
// that sends it again, to the attempt's validated rd, which must be the
// URL it was sent to; or, when it is gone (expired, redeemed, kept in the
// memory of another replica), the page that says so, with a link to rd:
// never a silent GET in its place.
func (h *Handler) resubmit(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session, st *session.LoginState) {
	action := h.redirects.safe(st.RedirectTo)
	var post *session.Post
	err := errors.New("preservation disabled")
	if h.posts != nil {
		post, err = h.posts.Take(r.Context(), st.Post)
	}
	if err == nil && post.URL != action {
		err = errors.New("kept for another URL")
	}
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "preserved post lost", slog.String("id", rq.id), slog.String("reason", err.Error()))
		h.pages.write(w, http.StatusOK, "post_lost", pageData{Title: "Your session expired", RequestID: rq.id, HomeURL: action})
		return
	}
	h.audit(r, rq, "post_resubmitted", s, slog.Int("bytes", post.Size), slog.Int("fields", len(post.Fields)))
	h.writeResubmit(w, resubmitData{pageData: pageData{Title: "Sending your form again", RequestID: rq.id},
		Action: action, Enctype: post.Enctype, Fields: post.Fields})
}

// writeResubmit renders the resubmit page. Not through pages.render: its
// pages say Referrer-Policy: no-referrer, under which a browser sends a
// POST with "Origin: null" (Fetch §3.1, append a request Origin header),
// which Django's and Rails' CSRF origin checks refuse. strict-origin sends
// the gateway's origin, never the callback URL with its code (RFC 9700
// §4.2.4).
func (h *Handler) writeResubmit(w http.ResponseWriter, data resubmitData) {
	data.Product, data.LogoURL = h.pages.product, h.pages.logo
	// The page may run its one script, by hash (CSP Level 3 §8.3
	// hash-source), and submit forms to its own origin only (form-action
	// 'self', §6.4.1), which the resubmission's target must be.
	resubmitCSP := h.pages.formCSP(nil) + "; script-src 'sha256-" + resubmitHash + "'"
	var buf bytes.Buffer
	if err := h.pages.t.ExecuteTemplate(&buf, "resubmit", data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError) // templates are fixed at build time
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Referrer-Policy", "strict-origin")
	w.Header().Set("Content-Security-Policy", resubmitCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
