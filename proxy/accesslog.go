package proxy

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// accesslog.go is the edge's record of a request: one line per request in
// the access log, and the status and size it reports.

// request is the per-request record the access log line and the request
// metrics are made of. Handlers return what they decided; the record
// takes it in a few places only (see docs/architecture.md).
type request struct {
	id    string
	start time.Time
	fwd   *forwarded // what a trusted proxy said, nil for other peers
	// client is who sent the request and how, from the peer and what a
	// trusted proxy said of it (clientOf).
	client client
	mode   string // proxy, auth or endpoint
	route  string // the upstream's path, the endpoint's name, or none
	user   string
	d      Decision // what the route table decided, for the rule in the log
	err    error
}

// decided takes in a decision and who it was about.
func (rq *request) decided(d Decision, user string) { rq.d, rq.user = d, user }

func (h *Handler) newRequestID() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], h.idPrefix...), h.idSeq.Add(1), 36))
}

// logRequest writes the access line: no query strings (they carry codes
// and states), no cookies, no tokens.
func (h *Handler) logRequest(r *http.Request, rec *recorder, rq *request) {
	level := slog.LevelInfo
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 500 {
		level = slog.LevelError
	}
	if !h.log.Enabled(r.Context(), level) {
		return
	}
	path := r.URL.EscapedPath()
	if len(path) > 256 {
		path = path[:256] + "…"
	}
	attrs := []slog.Attr{
		slog.String("id", rq.id),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("dur", h.now().Sub(rq.start)),
		slog.String("route", rq.route),
	}
	attrs = rq.client.appendAttrs(attrs, r)
	if rq.user != "" {
		attrs = append(attrs, slog.String("user", rq.user))
	}
	if rq.d.rule != "" {
		attrs = append(attrs, slog.String("rule", rq.d.Rule()))
	}
	if rq.err != nil {
		attrs = append(attrs, slog.String("err", rq.err.Error()))
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// appendAttrs adds remote, the client's address, and peer, the TCP peer's,
// when they differ. A record without a client (none computed) falls back to
// the peer.
func (c client) appendAttrs(attrs []slog.Attr, r *http.Request) []slog.Attr {
	if c.ip == "" {
		return append(attrs, slog.String("remote", remoteIP(r)))
	}
	attrs = append(attrs, slog.String("remote", c.ip))
	if c.peer != c.ip {
		attrs = append(attrs, slog.String("peer", c.peer))
	}
	return attrs
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recorder notes the status and size for the access log. It unwraps for
// http.ResponseController, so flushing and hijacking (websockets) reach the
// server's writer.
//
// It is also where Strict-Transport-Security is set, just before the
// header goes out, so every response carries the gateway's value: its
// own, and a proxied one whose upstream header was copied in already.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	sts         []string // Handler.hsts, nil for none
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status, w.wroteHeader = code, true
		w.setSTS()
	}
	w.ResponseWriter.WriteHeader(code)
}

// setSTS replaces whatever Strict-Transport-Security the header holds with
// the gateway's (RFC 6797 §8.1: browsers heed only the first).
func (w *recorder) setSTS() {
	if w.sts != nil {
		w.ResponseWriter.Header()[hdrSTS] = w.sts
	}
}

const hdrSTS = "Strict-Transport-Security"

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
		w.setSTS()
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
		w.setSTS()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// atomicCounter is a tiny wrapper so zero values work in structs.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) Add(d int64) int64 { return c.n.Add(d) }
