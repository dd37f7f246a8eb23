package proxy

import (
	"errors"
	"fmt"
	"net/http"
)

// httpError keeps what the client sees apart from what we log.
type httpError struct {
	Code int    // status sent to the client
	Msg  string // sentence shown to the client; never err.Error()
	Err  error  // cause, logged on the server
	// LoginURL, when set, is offered as a "sign in" link on the page and as
	// login_url in JSON (the user can retry).
	LoginURL string
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
			Error     string `json:"error"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
			LoginURL  string `json:"login_url,omitempty"`
		}{errorCode(e.Code), e.Msg, rq.id, e.LoginURL}
		writeJSON(w, e.Code, body)
		return
	}
	h.pages.write(w, e.Code, "error", pageData{
		Title:     http.StatusText(e.Code),
		Message:   e.Msg,
		RequestID: rq.id,
		SignInURL: e.LoginURL,
	})
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
