package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// reverse.go is reverse-proxy mode: an application request is matched in
// the route table, decided, and then forwarded to the row's upstream or
// answered here (404, sign-in, 403).

// proxy serves an application request at the canonical path.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request, rq *request, path, rawPath string) error {
	t := Target{Method: r.Method, Also: overrideMethods(r.Header, r.URL.RawQuery), Host: normHost(r.Host), Path: path, Proxied: true,
		Scheme: h.public.Scheme, HostPort: r.Host, RawPath: rawPath, Query: r.URL.RawQuery}
	if t.Also != nil {
		methodOverrideHeaders.strip(r.Header) // judged for every method they name; the upstream sees the method judged
	}
	m := h.match(r, rq, t)
	rq.mode, rq.route = "proxy", h.routeLabel(m.row.upstream)
	d, s, err := h.decide(w, r, rq, &m, nil)
	if err != nil {
		return err
	}
	switch d.Outcome {
	case NotFound:
		return errorf(http.StatusNotFound, "There is nothing here.", errors.New(d.Rule()))
	case SignIn:
		return h.unauthenticated(w, r, rq, t, d.Provider)
	case Deny:
		return denied(d, s)
	}
	if isUpgrade(r) {
		// Websockets outlive the server's read and write deadlines; a
		// shutdown waits for them, within its grace (drain.go).
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
		ctx, done := h.drain.tunnel(r.Context())
		defer done()
		r = r.WithContext(ctx)
	}
	// The Rewrite hook and the error handler find what they need in the
	// context; only proxied requests pay for that Request copy.
	px := &proxied{rq: rq, session: s, path: path, rawPath: rawPath}
	up := h.upstreams[d.upstream]
	if err := h.assert(px, up); err != nil {
		return err
	}
	up.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxiedKey{}, px)))
	return nil
}

// routeLabel names an upstream for logs and metrics: its configured path,
// or "none".
func (h *Handler) routeLabel(i int) string {
	if i < 0 {
		return "none"
	}
	return h.upstreams[i].prefix
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}
