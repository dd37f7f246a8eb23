package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// admin.go is the session admin API, served on its own listener
// (admin.listen) and never on the public one:
//
//	GET    /admin/sessions?user=SUB[&provider=ID|&issuer=ISS]  list a user's sessions (no tokens)
//	DELETE /admin/sessions?user=SUB[&provider=ID]        revoke all of them
//	DELETE /admin/sessions/{id}?user=SUB[&provider=ID]   revoke one
//
// Every call needs Authorization: Bearer <admin token>. Revocations reach
// every replica within a second in Redis mode (pub/sub); in cookie mode
// they are kept by the replica that receives them.

// AdminConfig is the `admin` section.
type AdminConfig struct {
	// Listen is the admin API's address; empty disables it. Keep it off
	// public networks.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token callers must present (at least 32
	// characters). Read by main.
	TokenFile string `yaml:"token_file"`
}

// lister is implemented by stores that can list a user's sessions.
type lister interface {
	ListUser(ctx context.Context, issuer, subject string) ([]session.SessionInfo, error)
	RevokeTicket(ctx context.Context, issuer, subject, id string) error
}

// Admin serves the admin API.
type Admin struct {
	h         *Handler
	token     []byte
	store     session.Store
	providers []providers.Provider
	log       *slog.Logger
}

// NewAdmin builds the admin API. token is the contents of token_file.
func NewAdmin(token string, h *Handler) (*Admin, error) {
	token = strings.TrimSpace(token)
	if len(token) < 32 {
		return nil, errors.New("admin.token_file: the token must be at least 32 characters (openssl rand -hex 32)")
	}
	if _, ok := h.store.(revoker); !ok {
		return nil, errors.New("admin: the session store cannot revoke sessions")
	}
	return &Admin{h: h, token: []byte(token), store: h.store, providers: h.providers, log: h.log}, nil
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, err := a.serve(w, r)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	a.log.LogAttrs(r.Context(), level, "admin", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("user", r.URL.Query().Get("user")), slog.Int("status", status), slog.Duration("dur", time.Since(start)),
		slog.String("remote", remoteIP(r)), slog.Any("err", err))
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) (int, error) {
	reply := func(code int, v any) (int, error) {
		writeJSON(w, code, v)
		return code, nil
	}
	problem := func(code int, msg string, err error) (int, error) {
		writeJSON(w, code, map[string]string{"error": errorCode(code), "message": msg})
		return code, err
	}
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth[7:])), a.token) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
		return problem(http.StatusUnauthorized, "A valid admin token is required.", errors.New("bad admin token"))
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/sessions")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return problem(http.StatusNotFound, "Unknown admin endpoint.", nil)
	}
	id := strings.TrimPrefix(rest, "/")
	q := r.URL.Query()
	sub := q.Get("user")
	if sub == "" {
		return problem(http.StatusBadRequest, "Name the user: ?user=<subject>.", nil)
	}
	issuer, err := a.issuer(q.Get("provider"))
	if err != nil {
		return problem(http.StatusBadRequest, err.Error(), nil)
	}
	if iss := q.Get("issuer"); iss != "" {
		// Sessions are keyed by the token's issuer, which can differ from
		// the provider's (a multi-tenant Entra app: each tenant's own).
		issuer = iss
	}
	rv := a.store.(revoker)
	ls, canList := a.store.(lister)
	switch {
	case r.Method == http.MethodGet && id == "":
		if !canList {
			return problem(http.StatusNotImplemented, "Cookie sessions live in browsers and cannot be listed; use session.store: redis.", nil)
		}
		infos, err := ls.ListUser(r.Context(), issuer, sub)
		if err != nil {
			return problem(http.StatusServiceUnavailable, "Sessions cannot be listed right now.", err)
		}
		out := make([]map[string]any, 0, len(infos))
		for _, in := range infos {
			out = append(out, map[string]any{"id": in.ID, "created": in.CreatedAt.UTC(), "last_seen": in.LastSeen.UTC(),
				"expires": in.ExpiresAt.UTC(), "user_agent": in.UserAgent})
		}
		return reply(http.StatusOK, map[string]any{"user": sub, "issuer": issuer, "sessions": out})
	case r.Method == http.MethodDelete && id == "":
		n, err := rv.RevokeUser(r.Context(), issuer, sub)
		if err != nil {
			return problem(http.StatusServiceUnavailable, "Sessions cannot be revoked right now.", err)
		}
		a.h.metrics.ended("admin")
		a.h.audit(r, nil, "revoked", nil, slog.String("issuer", issuer), slog.String("sub", sub), slog.Int("sessions", n))
		return reply(http.StatusOK, map[string]any{"user": sub, "issuer": issuer, "revoked": n})
	case r.Method == http.MethodDelete:
		if !canList {
			return problem(http.StatusNotImplemented, "Single cookie sessions cannot be revoked; revoke the user, or use session.store: redis.", nil)
		}
		err := ls.RevokeTicket(r.Context(), issuer, sub, id)
		switch {
		case errors.Is(err, session.ErrNoSession):
			return problem(http.StatusNotFound, "No such session for this user.", nil)
		case err != nil:
			return problem(http.StatusServiceUnavailable, "The session cannot be revoked right now.", err)
		}
		a.h.metrics.ended("admin")
		a.h.audit(r, nil, "revoked", nil, slog.String("issuer", issuer), slog.String("sub", sub), slog.String("session", id))
		return reply(http.StatusOK, map[string]any{"user": sub, "issuer": issuer, "revoked": 1})
	}
	w.Header().Set("Allow", "GET, DELETE")
	return problem(http.StatusMethodNotAllowed, "Use GET to list and DELETE to revoke.", nil)
}

// issuer resolves ?provider=ID, or the only provider.
func (a *Admin) issuer(id string) (string, error) {
	if id == "" {
		if len(a.providers) == 1 {
			return a.providers[0].Issuer(), nil
		}
		return "", errors.New("several providers are configured: name one with ?provider=<id>")
	}
	for _, p := range a.providers {
		if p.ID() == id {
			return p.Issuer(), nil
		}
	}
	return "", fmt.Errorf("no provider %q", id)
}
