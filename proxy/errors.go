package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// httpError keeps what the client sees apart from what we log.
type httpError struct {
	Code int    // status sent to the client
	Msg  string // sentence shown to the client; never err.Error()
	Err  error  // cause, logged on the server
	// Heading, when set, heads the page instead of the status's own
	// (pageHeading): a sentence for the situation, not a reason phrase.
	Heading string
	// Detail, when set, is what the identity provider said, shown on
	// the page in small print (never in JSON).
	Detail string
	// Remediation, when set, tells the user what to do (a rule's
	// remediation): on the page and as remediation in JSON.
	Remediation string
	// LoginURL, when set, is offered as a "sign in" link on the page and as
	// login_url in JSON (the user can retry).
	LoginURL string
	// retryAfter, when set, is sent as Retry-After (RFC 9110 §10.2.3):
	// seconds until trying again is worth it.
	retryAfter int
	// bearer marks a refused bearer token: the 401 says so in
	// WWW-Authenticate (RFC 6750 §3.1).
	bearer bool
	// body, when set, is sent as JSON instead of the page or the usual
	// JSON: endpoints for machines with an error format of their own.
	body any
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s: %v", e.Code, e.Msg, e.Err) }
func (e *httpError) Unwrap() error { return e.Err }

func errorf(code int, msg string, err error) *httpError {
	return &httpError{Code: code, Msg: msg, Err: err}
}

// asHTTPError maps any error to what the client may see: an httpError as
// is, anything else as a bare 500 whose cause stays in the log.
func asHTTPError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return &httpError{Code: http.StatusInternalServerError, Msg: "Something went wrong on the gateway.", Err: err}
}

// render writes e for the client: JSON for API clients, a page for
// browsers. The cause is never shown; the request id ties the two together.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, rq *request, e *httpError) {
	setPageHeaders(w.Header())
	w.Header().Set("X-Request-Id", rq.id)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	asJSON := wantsJSON(r) || rq.d.API // policy.api_routes answer in JSON
	switch {
	case e.bearer:
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis", error="invalid_token"`)
	case e.Code == http.StatusUnauthorized && asJSON:
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis"`)
	}
	if e.body != nil {
		writeJSON(w, e.Code, e.body)
		return
	}
	if asJSON {
		body := struct {
			Error       string `json:"error"`
			Message     string `json:"message"`
			RequestID   string `json:"request_id"`
			LoginURL    string `json:"login_url,omitempty"`
			Remediation string `json:"remediation,omitempty"`
		}{errorCode(e.Code), e.Msg, rq.id, e.LoginURL, e.Remediation}
		writeJSON(w, e.Code, body)
		return
	}
	heading := e.Heading
	if heading == "" {
		heading = pageHeading(e.Code)
	}
	data := pageData{Title: heading, Message: e.Msg, Detail: e.Detail, Remediation: e.Remediation, RequestID: rq.id, SignInURL: e.LoginURL}
	if e.Code == http.StatusNotFound && data.SignInURL == "" {
		data.HomeURL = "/" // a 404 always has a way out
	}
	h.pages.write(w, e.Code, "error", data)
}

// pageHeading heads an error page: what happened, in words a user reads,
// rather than the HTTP reason phrase.
func pageHeading(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "This request cannot be used"
	case http.StatusUnauthorized:
		return "Please sign in"
	case http.StatusForbidden:
		return "You don't have access to this page"
	case http.StatusNotFound:
		return "Page not found"
	case http.StatusMethodNotAllowed:
		return "This action is not available here"
	case http.StatusRequestEntityTooLarge:
		return "This request is too large"
	case http.StatusBadGateway:
		return "The application is not answering"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	case http.StatusGatewayTimeout:
		return "The application took too long to answer"
	}
	if code >= 500 {
		return "Something went wrong"
	}
	return "This request cannot be completed"
}

// errorCode is the machine-readable error for a status.
func errorCode(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	}
	return "error"
}
