package proxy

import (
	"log/slog"
	"net/http"

	"github.com/portcullis/portcullis/session"
)

// audit.go writes the audit log: one JSON object per security event, apart
// from the access log. The schema is stable (docs/operations.md):
//
//	time, level, msg ("audit"), event, request_id, remote, peer, provider,
//	issuer, sub, email, route, rule, reason, sessions
//
// with event one of sign_in, sign_in_failed, sign_out, refresh,
// refresh_failed, session_ended, denied, revoked, backchannel_logout.
// Absent fields are left out. Never tokens, cookies or codes.

// audit records one event about the request.
func (h *Handler) audit(r *http.Request, rq *request, event string, s *session.Session, attrs ...slog.Attr) {
	if h.auditLog == nil {
		return
	}
	base := make([]slog.Attr, 0, 10+len(attrs))
	base = append(base, slog.String("event", event))
	if rq != nil {
		base = append(base, slog.String("request_id", rq.id))
		base = rq.client.appendAttrs(base, r)
	} else {
		base = append(base, slog.String("remote", remoteIP(r)))
	}
	if s != nil {
		base = append(base, slog.String("provider", s.Provider), slog.String("issuer", s.Issuer), slog.String("sub", s.Subject))
		if s.Email != "" {
			base = append(base, slog.String("email", s.Email))
		}
	}
	h.auditLog.LogAttrs(r.Context(), slog.LevelInfo, "audit", append(base, attrs...)...)
}
